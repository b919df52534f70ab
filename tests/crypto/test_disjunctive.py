"""Disjunctive Chaum–Pedersen membership proofs: completeness, soundness against tampering, encoding."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto._batch import check_equation
from crypto._disjunctive import (
    DisjunctiveProof,
    _prove,
    allowed_range,
    canonical_allowed,
    membership_equations,
    prove_membership,
    prove_with_nonces,
    verify_membership,
)
from crypto._elgamal import Ciphertext, encrypt
from crypto._errors import InvalidEncoding, ProofError
from crypto._group import IDENTITY, G, L, Point, Scalar, small_multiple
from tests.strategies import base_hashes, nonzero_scalars

CTX = ("selection", b"\x11" * 32, b"\x22" * 32, "mayor", "alice")


def _key(seed: int = 1) -> tuple[Scalar, Point]:
    s = Scalar.random(random.Random(seed))
    return s, s * G


SECRET, K = _key()


@st.composite
def statements(draw: st.DrawFn) -> tuple[tuple[int, ...], int, Scalar]:
    lo = draw(st.integers(0, 4))
    hi = draw(st.integers(lo, lo + 4))
    s = allowed_range(lo, hi)
    m = draw(st.sampled_from(s))
    return s, m, draw(nonzero_scalars)


@given(statements())
@settings(max_examples=30, deadline=None)
def test_complete(stmt: tuple[tuple[int, ...], int, Scalar]) -> None:
    allowed, m, r = stmt
    ct = encrypt(K, m, r)
    proof = prove_membership(K, ct, m, r, allowed, CTX)
    assert len(proof.challenges) == len(allowed)
    verify_membership(K, ct, proof, allowed, CTX)
    verify_membership(K, ct, proof, reversed(allowed), CTX)  # the set, not its order, is the statement


@pytest.mark.parametrize("m", [0, 1])
def test_complete_zero_one(m: int) -> None:
    r = Scalar(123456789)
    ct = encrypt(K, m, r)
    verify_membership(K, ct, prove_membership(K, ct, m, r, (0, 1), CTX), (0, 1), CTX)


@pytest.mark.parametrize(("allowed", "m"), [((0, 1), 2), ((0, 1), 5), ((1, 2, 3), 0), ((1, 2, 3), 4)])
def test_honest_prover_refuses_false_statement(allowed: tuple[int, ...], m: int) -> None:
    r = Scalar(99)
    with pytest.raises(ValueError, match="false statement"):
        prove_membership(K, encrypt(K, m, r), m, r, allowed, CTX)


def test_prover_refuses_non_int_plaintext() -> None:
    r = Scalar(99)
    with pytest.raises(ValueError):
        prove_membership(K, encrypt(K, 1, r), True, r, (0, 1), CTX)


@pytest.mark.parametrize("lie", [0, 1])
def test_cheating_prover_cannot_prove_two_in_zero_one(lie: int) -> None:
    """Running the prover's algebra with a claimed plaintext that is not the real one yields junk."""
    r = Scalar(4242)
    ct = encrypt(K, 2, r)
    rng = random.Random(7)
    fakes = {j: (Scalar.random(rng), Scalar.random(rng)) for j in (0, 1) if j != lie}
    proof = _prove(K, ct, lie, r, (0, 1), CTX, Scalar.random(rng), fakes)
    # the challenges split the hash of the published commitments, but a group equation fails
    with pytest.raises(ProofError, match="disjunctive-equation"):
        verify_membership(K, ct, proof, (0, 1), CTX)
    eqs = membership_equations(K, ct, proof, (0, 1), CTX)
    assert not all(check_equation(e) for e in eqs)


def test_proof_for_bigger_set_does_not_pass_for_smaller() -> None:
    r = Scalar(77)
    ct = encrypt(K, 2, r)
    proof = prove_membership(K, ct, 2, r, (0, 1, 2), CTX)
    with pytest.raises(ProofError, match="disjunctive-shape"):
        verify_membership(K, ct, proof, (0, 1), CTX)
    truncated = DisjunctiveProof(proof.commitments[:2], proof.challenges[:2], proof.responses[:2])
    with pytest.raises(ProofError):
        verify_membership(K, ct, truncated, (0, 1), CTX)


# --- tampering -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def honest() -> tuple[Ciphertext, DisjunctiveProof, Scalar]:
    r = Scalar(31337)
    ct = encrypt(K, 1, r)
    return ct, prove_membership(K, ct, 1, r, (0, 1), CTX), r


def _bump(t: tuple[Scalar, ...], i: int) -> tuple[Scalar, ...]:
    return (*t[:i], t[i] + 1, *t[i + 1 :])


def _moved(pairs: tuple[tuple[Point, Point], ...], i: int, k: int) -> tuple[tuple[Point, Point], ...]:
    a, b = pairs[i]
    pair = (a + G, b) if k == 0 else (a, b + G)
    return (*pairs[:i], pair, *pairs[i + 1 :])


@pytest.mark.parametrize(
    ("field", "check"),
    [
        ("challenges", "disjunctive-challenge"),
        ("responses", "disjunctive-equation"),
        ("commitment-a", "disjunctive-challenge"),
        ("commitment-b", "disjunctive-challenge"),
    ],
)
@pytest.mark.parametrize("i", [0, 1])
def test_each_changed_field_rejected(
    honest: tuple[Ciphertext, DisjunctiveProof, Scalar], field: str, check: str, i: int
) -> None:
    ct, proof, _ = honest
    if field == "challenges":
        bad = DisjunctiveProof(proof.commitments, _bump(proof.challenges, i), proof.responses)
    elif field == "responses":
        bad = DisjunctiveProof(proof.commitments, proof.challenges, _bump(proof.responses, i))
    else:
        bad = DisjunctiveProof(
            _moved(proof.commitments, i, 0 if field.endswith("a") else 1), proof.challenges, proof.responses
        )
    with pytest.raises(ProofError) as info:
        verify_membership(K, ct, bad, (0, 1), CTX, subject="mayor/alice")
    assert info.value.subject == "mayor/alice"
    assert info.value.check == check
    # the batch form refuses the same proof: before the equations, or by an equation that fails
    try:
        eqs = membership_equations(K, ct, bad, (0, 1), CTX)
    except ProofError as e:
        assert e.check == check
    else:
        assert check == "disjunctive-equation" and not all(check_equation(e) for e in eqs)


def test_swapped_branches_rejected(honest: tuple[Ciphertext, DisjunctiveProof, Scalar]) -> None:
    ct, proof, _ = honest
    swapped = DisjunctiveProof(proof.commitments[::-1], proof.challenges[::-1], proof.responses[::-1])
    with pytest.raises(ProofError):
        verify_membership(K, ct, swapped, (0, 1), CTX)
    only_challenges = DisjunctiveProof(proof.commitments, proof.challenges[::-1], proof.responses)
    with pytest.raises(ProofError, match="disjunctive-equation"):
        verify_membership(K, ct, only_challenges, (0, 1), CTX)


@given(statements())
@settings(max_examples=15, deadline=None)
def test_equations_hold_exactly_for_honest_proofs(stmt: tuple[tuple[int, ...], int, Scalar]) -> None:
    """The batch form's equations (§8.3 step 4) agree with the single check: all hold for an honest proof;
    a changed response breaks exactly its branch's two equations."""
    allowed, m, r = stmt
    ct = encrypt(K, m, r)
    proof = prove_membership(K, ct, m, r, allowed, CTX)
    eqs = membership_equations(K, ct, proof, allowed, CTX)
    assert len(eqs) == 2 * len(allowed) and all(check_equation(e) for e in eqs)
    i = len(allowed) - 1
    bad = DisjunctiveProof(proof.commitments, proof.challenges, _bump(proof.responses, i))
    held = [check_equation(e) for e in membership_equations(K, ct, bad, allowed, CTX)]
    assert held == [True] * (2 * i) + [False, False]


def test_other_statement_rejected(honest: tuple[Ciphertext, DisjunctiveProof, Scalar]) -> None:
    ct, proof, r = honest
    _, other_key = _key(2)
    with pytest.raises(ProofError):
        verify_membership(other_key, ct, proof, (0, 1), CTX)
    for other_ct in (
        Ciphertext(ct.b, ct.a),
        Ciphertext(ct.a, ct.b + G),
        Ciphertext(ct.a + G, ct.b),
        encrypt(K, 0, r),
        encrypt(K, 1, r + 1),
    ):
        with pytest.raises(ProofError):
            verify_membership(K, other_ct, proof, (0, 1), CTX)
    with pytest.raises(ProofError):
        verify_membership(K, ct, proof, (1, 2), CTX)


@pytest.mark.parametrize("i", range(len(CTX)))
def test_each_context_item_bound(honest: tuple[Ciphertext, DisjunctiveProof, Scalar], i: int) -> None:
    ct, proof, _ = honest
    item = CTX[i]
    changed = item + "x" if isinstance(item, str) else bytes([item[0] ^ 1]) + item[1:]
    ctx = (*CTX[:i], changed, *CTX[i + 1 :])
    with pytest.raises(ProofError):
        verify_membership(K, ct, proof, (0, 1), ctx)
    with pytest.raises(ProofError):
        verify_membership(K, ct, proof, (0, 1), CTX[:i] + CTX[i + 1 :])


@given(base_hashes)
@settings(max_examples=10, deadline=None)
def test_other_election_hash_rejected(h: bytes) -> None:
    r = Scalar(5)
    ct = encrypt(K, 0, r)
    proof = prove_membership(K, ct, 0, r, (0, 1), CTX)
    ctx = (CTX[0], h, *CTX[2:])
    if h != CTX[1]:
        with pytest.raises(ProofError):
            verify_membership(K, ct, proof, (0, 1), ctx)


def test_proof_reused_for_another_ciphertext_rejected() -> None:
    r1, r2 = Scalar(1001), Scalar(1002)
    ct1, ct2 = encrypt(K, 1, r1), encrypt(K, 1, r2)
    p1 = prove_membership(K, ct1, 1, r1, (0, 1), CTX)
    with pytest.raises(ProofError):
        verify_membership(K, ct2, p1, (0, 1), CTX)


def test_identity_key_refused() -> None:
    r = Scalar(3)
    ct = encrypt(K, 0, r)
    proof = prove_membership(K, ct, 0, r, (0, 1), CTX)
    with pytest.raises(ProofError, match="disjunctive-key"):
        verify_membership(IDENTITY, ct, proof, (0, 1), CTX)
    with pytest.raises(ValueError):
        prove_membership(IDENTITY, ct, 0, r, (0, 1), CTX)


def test_identity_ciphertext_components_are_handled() -> None:
    """r = 0 gives A = identity; the algebra must still work (identity is a legitimate value)."""
    ct = encrypt(K, 0, Scalar(0))
    assert ct.a == IDENTITY and ct.b == IDENTITY
    proof = prove_membership(K, ct, 0, Scalar(0), (0, 1), CTX)
    verify_membership(K, ct, proof, (0, 1), CTX)
    ct1 = encrypt(K, 1, Scalar(0))
    assert ct1.b == small_multiple(1)
    verify_membership(K, ct1, prove_membership(K, ct1, 1, Scalar(0), (0, 1), CTX), (0, 1), CTX)


# --- determinism and the known-answer form ----------------------------------------------------------


def test_rng_determinism_and_nonce_form_agree() -> None:
    r = Scalar(8080)
    ct = encrypt(K, 2, r)
    allowed = (0, 1, 2, 3)
    p1 = prove_membership(K, ct, 2, r, allowed, CTX, rng=random.Random(5))
    assert p1 == prove_membership(K, ct, 2, r, allowed, CTX, rng=random.Random(5))
    assert p1 != prove_membership(K, ct, 2, r, allowed, CTX, rng=random.Random(6))
    rng = random.Random(5)
    u = Scalar.random(rng)
    fake = {}
    for j in allowed:
        if j != 2:
            c, w = Scalar.random(rng), Scalar.random(rng)
            fake[j] = (c, w + c * r)
    assert prove_with_nonces(K, ct, 2, r, allowed, CTX, u, fake) == p1
    with pytest.raises(ValueError):
        prove_with_nonces(K, ct, 2, r, allowed, CTX, u, {0: fake[0]})


# --- serialization -------------------------------------------------------------------------------------


@given(statements())
@settings(max_examples=15, deadline=None)
def test_dict_round_trip(stmt: tuple[tuple[int, ...], int, Scalar]) -> None:
    allowed, m, r = stmt
    ct = encrypt(K, m, r)
    proof = prove_membership(K, ct, m, r, allowed, CTX)
    d = proof.to_dict()
    assert all(x == x.lower() and len(x) == 64 for x in d["challenges"] + d["responses"])
    assert DisjunctiveProof.from_dict(d) == proof


def _good() -> dict[str, list[str]]:
    return {
        "commitments": [(Scalar(k) * G).hex() for k in (5, 6, 7, 8)],
        "challenges": [Scalar(1).hex(), Scalar(2).hex()],
        "responses": [Scalar(3).hex(), Scalar(4).hex()],
    }


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("responses"),
        lambda d: d.update(extra=[]),
        lambda d: d["challenges"].pop(),
        lambda d: d.update(challenges=[], responses=[]),
        lambda d: d["challenges"].__setitem__(0, d["challenges"][0].upper().replace("01", "0A")),
        lambda d: d["challenges"].__setitem__(0, L.to_bytes(32, "little").hex()),
        lambda d: d["responses"].__setitem__(1, (2**256 - 1).to_bytes(32, "little").hex()),
        lambda d: d["responses"].__setitem__(1, "00" * 31),
        lambda d: d["responses"].__setitem__(1, "0" * 63),
        lambda d: d.update(responses="00" * 32),
        lambda d: d["responses"].__setitem__(0, 5),
        lambda d: d.pop("commitments"),
        lambda d: d["commitments"].pop(),
        lambda d: d["commitments"].append(d["commitments"][0]),
        lambda d: d["commitments"].__setitem__(2, "01" + "00" * 31),
        lambda d: d["commitments"].__setitem__(2, d["commitments"][2].upper()),
        lambda d: d.update(commitments=[d["commitments"][:2], d["commitments"][2:]]),
    ],
)
def test_from_dict_strict(mutate: object) -> None:
    d = _good()
    DisjunctiveProof.from_dict(d)
    mutate(d)  # type: ignore[operator]
    with pytest.raises(InvalidEncoding):
        DisjunctiveProof.from_dict(d)


def test_from_dict_needs_object() -> None:
    with pytest.raises(InvalidEncoding):
        DisjunctiveProof.from_dict([])


def test_value_type_validates() -> None:
    with pytest.raises(ValueError):
        DisjunctiveProof(((G, G),), (Scalar(1),), ())
    with pytest.raises(ValueError):
        DisjunctiveProof((), (Scalar(1),), (Scalar(1),))
    with pytest.raises(TypeError):
        DisjunctiveProof(((G, G),), (1,), (Scalar(1),))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        DisjunctiveProof(((G,),), (Scalar(1),), (Scalar(1),))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [[], [0, 0], [-1], [True], [1.0], range(2000)])
def test_allowed_set_validated(bad: object) -> None:
    with pytest.raises(ValueError):
        canonical_allowed(bad)  # type: ignore[arg-type]


def test_allowed_range() -> None:
    assert allowed_range(0, 1) == (0, 1)
    assert allowed_range(2, 4) == (2, 3, 4)
    assert canonical_allowed([3, 1, 2]) == (1, 2, 3)
    with pytest.raises(ValueError):
        allowed_range(3, 2)
