"""Schnorr and Chaum–Pedersen proofs: completeness, soundness against tampering, strict encoding."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from _tools import load_tool, read_json
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto._batch import check_equation, combined_point, failing_items
from crypto._errors import InvalidEncoding, ProofError
from crypto._group import IDENTITY, G, L, Point, Scalar
from crypto._hash import challenge, encode_transcript
from crypto._proofs import (
    ChaumPedersenProof,
    SchnorrProof,
    chaum_pedersen_equations,
    prove_chaum_pedersen,
    prove_schnorr,
    random_scalar,
    schnorr_equations,
    verify_chaum_pedersen,
    verify_schnorr,
)

scalars = st.integers(min_value=1, max_value=L - 1).map(Scalar)
seeds = st.integers(min_value=0, max_value=2**32)
contexts = st.lists(
    st.one_of(st.binary(max_size=40), st.text(max_size=20), st.integers(0, 2**64 - 1)), max_size=4
)
BASE = bytes(range(32))
CTX = ("test", BASE, 3)


def _rng(seed: int = 0) -> random.Random:
    return random.Random(seed)


# ----------------------------------------------------------------------------------------------- Schnorr


@settings(max_examples=40, deadline=None)
@given(x=scalars, ctx=contexts, seed=seeds)
def test_schnorr_complete(x: Scalar, ctx: list, seed: int) -> None:
    X = x * G
    proof = prove_schnorr(x, X, context=ctx, rng=_rng(seed))
    verify_schnorr(X, proof, context=ctx)
    # commitment form: the published R is what was hashed, and v·G == R + c·X
    c = challenge("schnorr-pok", G, X, proof.commitment, len(ctx), *ctx)
    assert proof.response * G == proof.commitment + c * X
    (eq,) = schnorr_equations(X, proof, context=ctx)
    assert check_equation(eq)


@settings(max_examples=25, deadline=None)
@given(x=scalars, seed=seeds, delta=st.integers(1, L - 1))
def test_schnorr_sound_against_tampering(x: Scalar, seed: int, delta: int) -> None:
    X = x * G
    proof = prove_schnorr(x, X, context=CTX, rng=_rng(seed))
    bad = [
        (X, SchnorrProof(proof.commitment + Scalar(delta) * G, proof.response), CTX),
        (X, SchnorrProof(proof.commitment, proof.response + delta), CTX),
        (X + G, proof, CTX),  # another statement
        (X, proof, ("test", BASE, 4)),  # other context
        (X, proof, ("test", bytes(32), 3)),  # other base hash
        (X, proof, ("test", BASE)),  # shorter context
        (X, proof, ("other", BASE, 3)),  # other label
    ]
    for statement, p, ctx in bad:
        with pytest.raises(ProofError) as ei:
            verify_schnorr(statement, p, context=ctx)
        assert ei.value.check == "schnorr-pok"
        assert not all(check_equation(eq) for eq in schnorr_equations(statement, p, context=ctx))


def test_schnorr_proof_not_reusable_for_other_statement() -> None:
    x, y = Scalar(1234567), Scalar(7654321)
    px = prove_schnorr(x, x * G, context=CTX, rng=_rng())
    with pytest.raises(ProofError):
        verify_schnorr(y * G, px, context=CTX)
    with pytest.raises(ProofError):
        verify_schnorr(-(x * G), px, context=CTX)


def test_schnorr_identity_statement_is_well_defined() -> None:
    # x = 0: the statement is the identity; the proof is still well defined and binds the identity.
    proof = prove_schnorr(Scalar(0), IDENTITY, context=CTX, rng=_rng())
    verify_schnorr(IDENTITY, proof, context=CTX)
    with pytest.raises(ProofError):
        verify_schnorr(G, proof, context=CTX)


def test_schnorr_prover_refuses_wrong_statement() -> None:
    with pytest.raises(ValueError):
        prove_schnorr(Scalar(2), G, context=CTX)


def test_schnorr_nonce_is_fresh_without_rng() -> None:
    x = Scalar(99)
    p1 = prove_schnorr(x, x * G, context=CTX)
    p2 = prove_schnorr(x, x * G, context=CTX)
    assert p1 != p2
    verify_schnorr(x * G, p1, context=CTX)
    verify_schnorr(x * G, p2, context=CTX)


def test_context_must_be_a_sequence_of_items() -> None:
    x = Scalar(5)
    with pytest.raises(TypeError):
        prove_schnorr(x, x * G, context="abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        prove_schnorr(x, x * G, context=[1.5])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        prove_schnorr(x, x * G, context=[-1])


# ----------------------------------------------------------------------------------------- Chaum–Pedersen


@settings(max_examples=30, deadline=None)
@given(s=scalars, a=scalars, ctx=contexts, seed=seeds)
def test_chaum_pedersen_complete(s: Scalar, a: Scalar, ctx: list, seed: int) -> None:
    A = a * G
    X, Y = s * G, s * A
    proof = prove_chaum_pedersen(s, X, A, Y, context=ctx, rng=_rng(seed))
    verify_chaum_pedersen(X, A, Y, proof, context=ctx)
    (R1, R2), v = proof.commitments, proof.response
    c = challenge("chaum-pedersen", G, A, X, Y, R1, R2, len(ctx), *ctx)
    assert v * G == R1 + c * X and v * A == R2 + c * Y
    assert all(check_equation(eq) for eq in chaum_pedersen_equations(X, A, Y, proof, context=ctx))


@settings(max_examples=20, deadline=None)
@given(s=scalars, a=scalars, seed=seeds, delta=st.integers(1, L - 1))
def test_chaum_pedersen_sound_against_tampering(s: Scalar, a: Scalar, seed: int, delta: int) -> None:
    A = a * G
    X, Y = s * G, s * A
    proof = prove_chaum_pedersen(s, X, A, Y, context=CTX, rng=_rng(seed))
    bad = [
        (
            X,
            A,
            Y,
            ChaumPedersenProof(
                (proof.commitments[0] + Scalar(delta) * G, proof.commitments[1]), proof.response
            ),
            CTX,
        ),
        (
            X,
            A,
            Y,
            ChaumPedersenProof(
                (proof.commitments[0], proof.commitments[1] + Scalar(delta) * G), proof.response
            ),
            CTX,
        ),
        (X, A, Y, ChaumPedersenProof(proof.commitments, proof.response + delta), CTX),
        (X, A, Y + G, proof, CTX),  # wrong decryption share
        (X + G, A, Y, proof, CTX),  # wrong public share
        (X, A + G, Y, proof, CTX),  # other ciphertext
        (Y, A, X, proof, CTX) if X != Y else (X, A, Y + A, proof, CTX),  # swapped statement
        (X, A, Y, proof, ("test", bytes(32), 3)),  # other base hash
        (X, A, Y, proof, ("test", BASE, 4)),  # other trustee index
    ]
    if A != G:  # with A = G the two commitments are equal
        bad.append((X, A, Y, ChaumPedersenProof(proof.commitments[::-1], proof.response), CTX))
    for X_, A_, Y_, p, ctx in bad:
        with pytest.raises(ProofError) as ei:
            verify_chaum_pedersen(X_, A_, Y_, p, context=ctx)
        # A + G is the identity when a = L - 1: then the statement itself is impossible (§T2.2 rule 1)
        want = "chaum-pedersen-identity" if A_.is_identity and not Y_.is_identity else "chaum-pedersen"
        assert ei.value.check == want


def test_chaum_pedersen_unequal_logs_cannot_be_proved_or_forged() -> None:
    s, a = Scalar(11), Scalar(13)
    A = a * G
    with pytest.raises(ValueError):
        prove_chaum_pedersen(s, s * G, A, (s + 1) * A, context=CTX)
    # a proof for (X, Y) does not transfer to (X, Y') with log_A(Y') != log_G(X)
    proof = prove_chaum_pedersen(s, s * G, A, s * A, context=CTX, rng=_rng())
    with pytest.raises(ProofError):
        verify_chaum_pedersen(s * G, A, (s + 1) * A, proof, context=CTX)


def test_chaum_pedersen_identity_base() -> None:
    # A = identity (the aggregate of an empty tally): Y = s·A is the identity, the proof is well defined.
    s = Scalar(424242)
    X = s * G
    proof = prove_chaum_pedersen(s, X, IDENTITY, IDENTITY, context=CTX, rng=_rng(3))
    verify_chaum_pedersen(X, IDENTITY, IDENTITY, proof, context=CTX)
    with pytest.raises(ProofError) as ei:
        verify_chaum_pedersen(X, IDENTITY, G, proof, context=CTX)
    assert ei.value.check == "chaum-pedersen-identity"
    with pytest.raises(ProofError) as ei:
        verify_chaum_pedersen(X + G, IDENTITY, IDENTITY, proof, context=CTX)
    assert ei.value.check == "chaum-pedersen"


def test_chaum_pedersen_identity_share_for_nonidentity_base_is_rejected() -> None:
    # A cheating trustee publishing D = identity for a real ciphertext cannot make a proof stick.
    s = Scalar(77)
    A = Scalar(5) * G
    proof = prove_chaum_pedersen(s, s * G, A, s * A, context=CTX, rng=_rng())
    with pytest.raises(ProofError):
        verify_chaum_pedersen(s * G, A, IDENTITY, proof, context=CTX)


def test_schnorr_and_chaum_pedersen_are_domain_separated() -> None:
    # A Schnorr proof's values never verify as a Chaum–Pedersen proof for the same X (different purpose).
    s = Scalar(31337)
    X = s * G
    sp = prove_schnorr(s, X, context=CTX, rng=_rng())
    as_cp = ChaumPedersenProof((sp.commitment, sp.commitment), sp.response)
    with pytest.raises(ProofError):
        verify_chaum_pedersen(X, G, X, as_cp, context=CTX)


# ----------------------------------------------------------------------------------------- encodings


@settings(max_examples=25, deadline=None)
@given(r=st.integers(0, L - 1), r2=st.integers(0, L - 1), v=st.integers(0, L - 1))
def test_proof_dict_round_trip(r: int, r2: int, v: int) -> None:
    R, R2 = Scalar(r) * G, Scalar(r2) * G
    sp = SchnorrProof(R, Scalar(v))
    assert sp.to_dict() == {"commitment": R.hex(), "response": Scalar(v).hex()}
    assert SchnorrProof.from_dict(sp.to_dict()) == sp
    cp = ChaumPedersenProof((R, R2), Scalar(v))
    assert cp.to_dict() == {"commitments": [R.hex(), R2.hex()], "response": Scalar(v).hex()}
    assert ChaumPedersenProof.from_dict(cp.to_dict()) == cp


NON_CANONICAL = (L).to_bytes(32, "little").hex()
BAD_POINT = "01" + "00" * 31  # the edwards25519 identity encoding: not a ristretto255 element


def test_schnorr_strict_decoding() -> None:
    good = SchnorrProof(Scalar(0xABCDEF) * G, Scalar(2)).to_dict()
    bad = [
        None,
        [],
        {"commitment": good["commitment"]},
        {"challenge": good["response"], "response": good["response"]},  # the v1 compact form
        {**good, "extra": "00"},
        {**good, "commitment": good["commitment"].upper()},
        {**good, "commitment": BAD_POINT},
        {**good, "commitment": good["commitment"][:-2]},
        {**good, "response": NON_CANONICAL},
        {**good, "response": "zz" * 32},
        {**good, "response": 5},
        {**good, "response": bytes(32)},
    ]
    for d in bad:
        with pytest.raises(InvalidEncoding):
            SchnorrProof.from_dict(d)


def test_chaum_pedersen_strict_decoding() -> None:
    good = ChaumPedersenProof((Scalar(3) * G, Scalar(4) * G), Scalar(2)).to_dict()
    c0, c1 = good["commitments"]
    bad = [
        None,
        {"commitment": c0, "response": good["response"]},
        {**good, "commitments": [c0]},
        {**good, "commitments": [c0, c1, c1]},
        {**good, "commitments": {"0": c0, "1": c1}},
        {**good, "commitments": [c0, BAD_POINT]},
        {**good, "commitments": [c0.upper(), c1]},
        {**good, "response": NON_CANONICAL},
        {**good, "extra": 1},
    ]
    for d in bad:
        with pytest.raises(InvalidEncoding):
            ChaumPedersenProof.from_dict(d)


def test_proof_types_refuse_wrong_types() -> None:
    with pytest.raises(TypeError):
        SchnorrProof(Scalar(1), Scalar(2))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ChaumPedersenProof((G,), Scalar(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ChaumPedersenProof([G, G], Scalar(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        verify_schnorr(Scalar(1), SchnorrProof(G, Scalar(2)), context=())  # type: ignore[arg-type]


def test_random_scalar_uses_64_bytes_reduced() -> None:
    class Fixed:
        def randbytes(self, n: int) -> bytes:
            return b"\xff" * n

    assert random_scalar(Fixed()) == Scalar(int.from_bytes(b"\xff" * 64, "little"))

    class Short:
        def randbytes(self, n: int) -> bytes:
            return b"\x01" * (n - 1)

    with pytest.raises(ValueError):
        random_scalar(Short())
    assert isinstance(random_scalar(), Scalar)
    assert Point.from_bytes(G.to_bytes()) == G


# ------------------------------------------------------------------------------ known-answer vectors

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "proofs.json"


def _generator():  # type: ignore[no-untyped-def]
    return load_tool("gen_threshold_vectors")


class FixedNonce:
    """Feeds a published nonce back into the prover (64 bytes whose little-endian value is the nonce)."""

    def __init__(self, k_hex: str) -> None:
        self.k = Scalar.from_hex(k_hex)

    def randbytes(self, n: int) -> bytes:
        assert n == 64
        return self.k.to_bytes() + bytes(32)


def _ctx(items: list) -> tuple:
    return tuple(load_tool("_vectors_common").item_from_json(x) for x in items)


def _sha512_mod_l(data: bytes) -> Scalar:
    return Scalar(int.from_bytes(hashlib.sha512(data).digest(), "little") % L)


def test_proof_vectors_are_reproduced_byte_for_byte() -> None:
    gen = _generator()
    text = VECTORS.read_text(encoding="utf-8")
    assert gen.build()[gen.PROOFS] == text
    data = read_json(VECTORS)
    assert "tools/gen_threshold_vectors.py" in data["source"] and "seed" in data["source"]


def test_schnorr_known_answers() -> None:
    cases = read_json(VECTORS)["schnorr"]
    assert len(cases) >= 4
    for v in cases:
        x, k = Scalar.from_hex(v["secret"]), Scalar.from_hex(v["nonce"])
        X = Point.from_hex(v["statement"])
        ctx = _ctx(v["context"])
        proof = SchnorrProof.from_dict(v["proof"])
        R = proof.commitment
        assert X == x * G and R == k * G
        transcript = bytes.fromhex(v["transcript"])
        assert transcript == encode_transcript("schnorr-pok", (G, X, R, len(ctx), *ctx))
        assert transcript[4 : 4 + len(b"tvote/2/")] == b"tvote/2/"
        c = _sha512_mod_l(transcript)
        assert c == Scalar.from_hex(v["challenge"])
        assert proof.response == k + c * x
        verify_schnorr(X, proof, context=ctx)
        assert prove_schnorr(x, X, context=ctx, rng=FixedNonce(v["nonce"])) == proof


def test_chaum_pedersen_known_answers() -> None:
    cases = read_json(VECTORS)["chaum_pedersen"]
    assert any(Point.from_hex(v["base"]).is_identity for v in cases)
    for v in cases:
        s, k = Scalar.from_hex(v["secret"]), Scalar.from_hex(v["nonce"])
        A = Point.from_hex(v["base"])
        X, Y = Point.from_hex(v["statement"]["X"]), Point.from_hex(v["statement"]["Y"])
        ctx = _ctx(v["context"])
        proof = ChaumPedersenProof.from_dict(v["proof"])
        R1, R2 = proof.commitments
        assert (X, Y, R1, R2) == (s * G, s * A, k * G, k * A)
        transcript = bytes.fromhex(v["transcript"])
        assert transcript == encode_transcript("chaum-pedersen", (G, A, X, Y, R1, R2, len(ctx), *ctx))
        c = _sha512_mod_l(transcript)
        assert c == Scalar.from_hex(v["challenge"])
        assert proof.response == k + c * s
        verify_chaum_pedersen(X, A, Y, proof, context=ctx)
        assert prove_chaum_pedersen(s, X, A, Y, context=ctx, rng=FixedNonce(v["nonce"])) == proof


def test_negative_vectors_fail_with_the_named_check() -> None:
    cases = read_json(VECTORS)["negative"]
    assert {v["kind"] for v in cases} == {"schnorr", "chaum-pedersen"}
    for v in cases:
        ctx = _ctx(v["context"])
        with pytest.raises(ProofError) as ei:
            if v["kind"] == "schnorr":
                verify_schnorr(
                    Point.from_hex(v["statement"]), SchnorrProof.from_dict(v["proof"]), context=ctx
                )
            else:
                verify_chaum_pedersen(
                    Point.from_hex(v["statement"]["X"]),
                    Point.from_hex(v["base"]),
                    Point.from_hex(v["statement"]["Y"]),
                    ChaumPedersenProof.from_dict(v["proof"]),
                    context=ctx,
                )
        assert ei.value.check == v["check"], v["why"]


def test_invalid_encoding_vectors_are_refused_by_the_decoder() -> None:
    cases = read_json(VECTORS)["invalid_encoding"]
    assert {v["kind"] for v in cases} == {"schnorr", "chaum-pedersen"}
    for v in cases:
        cls = SchnorrProof if v["kind"] == "schnorr" else ChaumPedersenProof
        with pytest.raises(InvalidEncoding):
            cls.from_dict(v["proof"])


def _case_equations(v: dict) -> tuple:
    ctx = _ctx(v["context"])
    if v["kind"] == "schnorr":
        X = Point.from_hex(v["statement"])
        return schnorr_equations(X, SchnorrProof.from_dict(v["proof"]), context=ctx)
    return chaum_pedersen_equations(
        Point.from_hex(v["statement"]["X"]),
        Point.from_hex(v["base"]),
        Point.from_hex(v["statement"]["Y"]),
        ChaumPedersenProof.from_dict(v["proof"]),
        context=ctx,
    )


def test_batch_vectors_over_proofs() -> None:
    """§12 over trustee proofs: the weights from the named stream give the published combined point (the
    identity iff every proof holds), and bisection names exactly the bad proof in the middle."""
    stream = load_tool("_vectors_common").ShakeStream
    batch = read_json(VECTORS)["batch"]
    seed = _generator().SEED
    for name, want_identity in (("valid", True), ("one_bad", False)):
        b = batch[name]
        eqs = [eq for v in b["items"] for eq in _case_equations(v)]
        assert len(eqs) == b["equations"]
        weights = stream(seed, b["weights_stream"])
        assert [str(int.from_bytes(weights.randbytes(16), "little")) for _ in eqs] == b["weights"]
        point = combined_point(eqs, stream(seed, b["weights_stream"]))
        assert point.hex() == b["combined"] and point.is_identity == want_identity
        assert failing_items(b["items"], _case_equations) == b["failing"]
    assert batch["one_bad"]["failing"] == [2]
