"""Ballot recipes: encryption, verification, tampering, serialization, tracking codes, Benaloh, tally."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto._ballot import (
    MAX_SELECTIONS,
    ZERO_ONE,
    BallotSecrets,
    ContestSecrets,
    ContestSpec,
    ElectionContext,
    EncryptedBallot,
    EncryptedContest,
    EncryptedSelection,
    RevealedBallot,
    SelectionSecret,
    contest_context,
    normalize_tracking_code,
    proof_heads,
    selection_context,
    tracking_code_from_hash,
)
from crypto._ballot_encrypt import encrypt_ballot, reveal
from crypto._ballot_verify import (
    decode_verified_ballot,
    tally_ciphertexts,
    verify_ballot,
    verify_ballots,
    verify_revealed,
)
from crypto._checked import CheckedBallot
from crypto._disjunctive import MAX_ALLOWED, _prove, context_head, prove_membership
from crypto._dlog import discrete_log
from crypto._elgamal import ZERO, encrypt, sum_ciphertexts
from crypto._errors import BallotError, BatchError, InvalidEncoding, ProofError
from crypto._group import IDENTITY, G, Scalar
from crypto._native import PythonEngine
from tests.strategies import base_hashes, choices_for, contest_specs, overvotes_for

SECRET = Scalar.random(random.Random(2024))
K = SECRET * G
H = bytes(range(32))

MAYOR = ContestSpec.one_of("mayor", ["a", "b", "c", "d", "e"])
COUNCIL = ContestSpec.up_to("council", [f"s{i}" for i in range(8)], 3)
REFERENDUM = ContestSpec.yes_no("ref-1")
CTX1 = ElectionContext(H, K, (MAYOR,))
CTX3 = ElectionContext(H, K, (MAYOR, COUNCIL, REFERENDUM))
VOTE3 = {"mayor": ["c"], "council": ["s1", "s6"], "ref-1": ["no"]}


def _decrypt(ballot: EncryptedBallot) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in ballot.contests:
        out[c.contest_id] = [
            s.selection_id for s in c.selections if discrete_log(s.ciphertext.decrypt_point(SECRET), 1) == 1
        ]
    return out


def _manifest_order(ctx: ElectionContext, choices: dict[str, list[str]]) -> dict[str, list[str]]:
    return {c.contest_id: [s for s in c.selection_ids if s in choices[c.contest_id]] for c in ctx.contests}


@pytest.fixture(scope="module")
def ballot3() -> tuple[EncryptedBallot, BallotSecrets]:
    return encrypt_ballot(CTX3, VOTE3, rng=random.Random(1))


# --- specs -----------------------------------------------------------------------------------------


def test_contest_kinds() -> None:
    assert (MAYOR.min_selections, MAYOR.max_selections) == (0, 1)
    assert ContestSpec.one_of("x", ["a", "b"], required=True).min_selections == 1
    assert (COUNCIL.min_selections, COUNCIL.max_selections) == (0, 3)
    assert REFERENDUM.selection_ids == ("yes", "no")
    assert COUNCIL.allowed_sums == (0, 1, 2, 3)


@pytest.mark.parametrize(
    "args",
    [
        ("", ("a",), 0, 1),
        ("c d", ("a",), 0, 1),
        ("c", (), 0, 0),
        ("c", ("a", "a"), 0, 1),
        ("c", ("a", "b/"), 0, 1),
        ("c", ("a", ""), 0, 1),
        ("c", ("a",), 1, 0),
        ("c", ("a",), 0, 2),
        ("c", ("a",), -1, 1),
        ("c", ("a",), False, True),
        ("c", ["a"], 0, 1),
        ("x" * 65, ("a",), 0, 1),
        ("c", tuple(f"s{i}" for i in range(1024)), 0, 1),  # more than MAX_SELECTIONS (§9.1)
    ],
)
def test_contest_spec_validated(args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError):
        ContestSpec(*args)


def test_election_context_validated() -> None:
    with pytest.raises(ValueError):
        ElectionContext(b"x" * 31, K, (MAYOR,))
    with pytest.raises(ValueError):
        ElectionContext(H, IDENTITY, (MAYOR,))
    with pytest.raises(ValueError):
        ElectionContext(H, K, (MAYOR, MAYOR))
    with pytest.raises(ValueError):
        ElectionContext(H, K, ())
    with pytest.raises(TypeError):
        ElectionContext(H, K.to_bytes(), (MAYOR,))  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        CTX1.base_hash = bytes(32)  # type: ignore[misc]


# --- encryption and verification --------------------------------------------------------------------


@given(st.data())
@settings(max_examples=10, deadline=None)
def test_three_contest_ballot_round_trip(data: st.DataObject) -> None:
    choices = {c.contest_id: data.draw(choices_for(c)) for c in CTX3.contests}
    ballot, secrets = encrypt_ballot(CTX3, choices)
    verify_ballot(CTX3, ballot)
    assert _decrypt(ballot) == _manifest_order(CTX3, choices)
    again = EncryptedBallot.from_dict(json.loads(json.dumps(ballot.to_dict())))
    assert again == ballot
    assert again.ballot_hash() == ballot.ballot_hash()
    assert BallotSecrets.from_dict(json.loads(json.dumps(secrets.to_dict()))) == secrets


@given(st.data())
@settings(max_examples=10, deadline=None)
def test_random_contest_shapes(data: st.DataObject) -> None:
    specs = [data.draw(contest_specs(contest_id=f"c{i}")) for i in range(data.draw(st.integers(1, 2)))]
    ctx = ElectionContext(H, K, tuple(specs))  # type: ignore[arg-type]
    choices = {c.contest_id: data.draw(choices_for(c)) for c in ctx.contests}
    ballot, _ = encrypt_ballot(ctx, choices)
    verify_ballot(ctx, ballot)
    assert _decrypt(ballot) == _manifest_order(ctx, choices)


@pytest.mark.parametrize("ctx", [CTX1, CTX3], ids=["1-of-5", "3-contests"])
def test_blank_ballot_verifies(ctx: ElectionContext) -> None:
    ballot, secrets = encrypt_ballot(ctx, {c.contest_id: [] for c in ctx.contests})
    verify_ballot(ctx, ballot)
    assert verify_revealed(ctx, ballot, reveal(ballot, secrets)) == {c.contest_id: [] for c in ctx.contests}


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ({"mayor": ["a", "b"], "council": [], "ref-1": []}, "over-vote"),
        ({"mayor": [], "council": ["s0", "s1", "s2", "s3"], "ref-1": []}, "over-vote"),
        ({"mayor": [], "council": [], "ref-1": ["yes", "no"]}, "over-vote"),
        ({"mayor": ["a", "a"], "council": [], "ref-1": []}, "more than once"),
        ({"mayor": ["z"], "council": [], "ref-1": []}, "unknown selection"),
        ({"mayor": [], "council": [], "ref-1": [], "other": []}, "unknown contest"),
        ({"mayor": [], "council": []}, "no choice given"),
        ({"mayor": "a", "council": [], "ref-1": []}, "list of selection ids"),
    ],
)
def test_invalid_choices_refused(choices: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encrypt_ballot(CTX3, choices)


@given(st.data())
@settings(max_examples=25, deadline=None)
def test_random_overvotes_refused(data: st.DataObject) -> None:
    spec = data.draw(contest_specs(contest_id="c").filter(lambda c: c.max_selections < len(c.selection_ids)))
    ctx = ElectionContext(H, K, (spec,))
    with pytest.raises(ValueError, match="over-vote"):
        encrypt_ballot(ctx, {"c": data.draw(overvotes_for(spec))})


def test_required_contest_refuses_blank() -> None:
    ctx = ElectionContext(H, K, (ContestSpec.one_of("mayor", ["a", "b"], required=True),))
    with pytest.raises(ValueError, match="at least 1"):
        encrypt_ballot(ctx, {"mayor": []})
    ballot, _ = encrypt_ballot(ctx, {"mayor": ["b"]})
    verify_ballot(ctx, ballot)


def test_deterministic_with_rng_and_explicit_nonce() -> None:
    b1, s1 = encrypt_ballot(CTX1, {"mayor": ["a"]}, rng=random.Random(9))
    b2, s2 = encrypt_ballot(CTX1, {"mayor": ["a"]}, rng=random.Random(9))
    assert (b1, s1) == (b2, s2)
    b3, _ = encrypt_ballot(CTX1, {"mayor": ["a"]})
    assert b3.ballot_nonce != b1.ballot_nonce
    nonce = b"\x07" * 32
    b4, _ = encrypt_ballot(CTX1, {"mayor": ["a"]}, ballot_nonce=nonce)
    assert b4.ballot_nonce == nonce
    verify_ballot(CTX1, b4)
    with pytest.raises(ValueError):
        encrypt_ballot(CTX1, {"mayor": ["a"]}, ballot_nonce=b"short")


# --- soundness of the ballot as a whole -------------------------------------------------------------


def test_overvote_spliced_from_permissive_manifest_rejected() -> None:
    loose = ElectionContext(H, K, (ContestSpec.up_to("mayor", MAYOR.selection_ids, 5),))
    ballot, _ = encrypt_ballot(loose, {"mayor": ["a", "b"]})
    verify_ballot(loose, ballot)
    with pytest.raises(ProofError) as info:
        verify_ballot(CTX1, ballot)
    assert info.value.check == "contest-proof"
    assert info.value.subject == "mayor"


def test_cheating_contest_proof_for_overvote_rejected() -> None:
    """Selections proven 0/1 honestly, but two of them are 1 and the sum proof claims 1."""
    loose = ElectionContext(H, K, (ContestSpec.up_to("mayor", MAYOR.selection_ids, 5),))
    ballot, secrets = encrypt_ballot(loose, {"mayor": ["a", "b"]}, rng=random.Random(3))
    contest = ballot.contests[0]
    total_r = sum((s.randomness for s in secrets.contests[0].selections), Scalar(0))
    rng = random.Random(4)
    fake_proof = _prove(
        K,
        contest.sum_ciphertext(),
        1,  # the lie: the real sum is 2
        total_r,
        (0, 1),
        ("ballot-contest", H, ballot.ballot_nonce, "mayor"),
        Scalar.random(rng),
        {0: (Scalar.random(rng), Scalar.random(rng))},
    )
    forged = dataclasses.replace(ballot, contests=(dataclasses.replace(contest, proof=fake_proof),))
    with pytest.raises(ProofError, match="contest-proof"):
        verify_ballot(CTX1, forged)


def _replace_selection(ballot: EncryptedBallot, ci: int, si: int, new: EncryptedSelection) -> EncryptedBallot:
    c = ballot.contests[ci]
    sels = (*c.selections[:si], new, *c.selections[si + 1 :])
    contests = (*ballot.contests[:ci], dataclasses.replace(c, selections=sels), *ballot.contests[ci + 1 :])
    return dataclasses.replace(ballot, contests=contests)


def test_other_election_hash_rejected(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, _ = ballot3
    other = dataclasses.replace(CTX3, base_hash=b"\xff" * 32)
    with pytest.raises(BallotError, match="election-hash"):
        verify_ballot(other, ballot)
    relabelled = dataclasses.replace(ballot, election_hash=other.base_hash)
    with pytest.raises(ProofError) as info:
        verify_ballot(other, relabelled)
    assert info.value.check == "selection-proof"
    assert info.value.subject == "mayor/a"


def test_other_key_rejected(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, _ = ballot3
    with pytest.raises(ProofError, match="selection-proof"):
        verify_ballot(dataclasses.replace(CTX3, public_key=Scalar(5) * G), ballot)


def test_other_ballot_nonce_rejected(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, _ = ballot3
    with pytest.raises(ProofError, match="selection-proof"):
        verify_ballot(CTX3, dataclasses.replace(ballot, ballot_nonce=bytes(32)))


def test_selection_from_another_ballot_rejected(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, _ = ballot3
    other, _ = encrypt_ballot(CTX3, VOTE3)
    forged = _replace_selection(ballot, 1, 2, other.contests[1].selections[2])
    with pytest.raises(ProofError) as info:
        verify_ballot(CTX3, forged)
    assert (info.value.check, info.value.subject) == ("selection-proof", "council/s2")


def test_selection_relabelled_rejected(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    """Swap two selections' contents but keep the manifest order of ids: proofs name the ids."""
    ballot, _ = ballot3
    c = ballot.contests[0]
    s0, s2 = c.selections[0], c.selections[2]
    forged = _replace_selection(ballot, 0, 0, dataclasses.replace(s2, selection_id=s0.selection_id))
    forged = _replace_selection(forged, 0, 2, dataclasses.replace(s0, selection_id=s2.selection_id))
    with pytest.raises(ProofError) as info:
        verify_ballot(CTX3, forged)
    assert (info.value.check, info.value.subject) == ("selection-proof", "mayor/a")


def test_contest_proof_moved_rejected(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, _ = ballot3
    mayor, ref = ballot.contests[0], ballot.contests[2]
    forged = dataclasses.replace(
        ballot, contests=(mayor, ballot.contests[1], dataclasses.replace(ref, proof=mayor.proof))
    )
    with pytest.raises(ProofError) as info:
        verify_ballot(CTX3, forged)
    assert (info.value.check, info.value.subject) == ("contest-proof", "ref-1")


def test_ciphertext_changed_rejected(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, _ = ballot3
    sel = ballot.contests[2].selections[0]
    shifted = dataclasses.replace(sel.ciphertext, b=sel.ciphertext.b + G)
    with pytest.raises(ProofError, match="selection-proof"):
        verify_ballot(CTX3, _replace_selection(ballot, 2, 0, dataclasses.replace(sel, ciphertext=shifted)))


@pytest.mark.parametrize(
    ("order", "check"),
    [
        ([0, 1], "missing-contest"),
        ([0, 1, 2, 2], "duplicate-contest"),
        ([0, 2, 1], "contest-order"),
    ],
)
def test_contest_structure(
    ballot3: tuple[EncryptedBallot, BallotSecrets], order: list[int], check: str
) -> None:
    ballot, _ = ballot3
    forged = dataclasses.replace(ballot, contests=tuple(ballot.contests[i] for i in order))
    with pytest.raises(BallotError) as info:
        verify_ballot(CTX3, forged)
    assert info.value.check == check


def test_unknown_contest(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, _ = ballot3
    stray = dataclasses.replace(ballot.contests[2], contest_id="ref-2")
    with pytest.raises(BallotError) as info:
        verify_ballot(CTX3, dataclasses.replace(ballot, contests=(*ballot.contests, stray)))
    assert (info.value.check, info.value.subject) == ("unknown-contest", "ref-2")


@pytest.mark.parametrize(
    ("edit", "check", "subject"),
    [
        (lambda s: s[:-1], "missing-selection", "ref-1/no"),
        (lambda s: (*s, s[0]), "duplicate-selection", "ref-1/yes"),
        (lambda s: s[::-1], "selection-order", "ref-1"),
        (
            lambda s: (s[0], dataclasses.replace(s[1], selection_id="maybe")),
            "unknown-selection",
            "ref-1/maybe",
        ),
    ],
)
def test_selection_structure(
    ballot3: tuple[EncryptedBallot, BallotSecrets], edit: Any, check: str, subject: str
) -> None:
    ballot, _ = ballot3
    c = ballot.contests[2]
    forged = dataclasses.replace(
        ballot, contests=(*ballot.contests[:2], dataclasses.replace(c, selections=edit(c.selections)))
    )
    with pytest.raises(BallotError) as info:
        verify_ballot(CTX3, forged)
    assert (info.value.check, info.value.subject) == (check, subject)
    assert subject in info.value.operator_message


# --- serialization ----------------------------------------------------------------------------------


def _mutations() -> list[tuple[str, Any]]:
    def at(path: list[Any], fn: Any) -> Any:
        def run(d: dict[str, Any]) -> None:
            obj: Any = d
            for p in path:
                obj = obj[p]
            fn(obj)

        return run

    sel = ["contests", 0, "selections", 0]
    return [
        ("extra top key", at([], lambda o: o.update(extra=1))),
        ("missing nonce", at([], lambda o: o.pop("ballot_nonce"))),
        ("version 1", at([], lambda o: o.update(version=1))),
        ("version 3", at([], lambda o: o.update(version=3))),
        ("version float", at([], lambda o: o.update(version=2.0))),
        ("version bool", at([], lambda o: o.update(version=True))),
        ("version str", at([], lambda o: o.update(version="2"))),
        ("uppercase hash", at([], lambda o: o.update(election_hash=o["election_hash"].upper()))),
        ("short nonce", at([], lambda o: o.update(ballot_nonce=o["ballot_nonce"][:-2]))),
        ("odd nonce", at([], lambda o: o.update(ballot_nonce=o["ballot_nonce"][:-1]))),
        ("no contests", at([], lambda o: o.update(contests=[]))),
        ("contests not list", at([], lambda o: o.update(contests={}))),
        ("extra contest key", at(["contests", 0], lambda o: o.update(x=1))),
        ("bad contest id", at(["contests", 0], lambda o: o.update(contest_id="a b"))),
        ("no selections", at(["contests", 0], lambda o: o.update(selections=[]))),
        ("extra selection key", at(sel, lambda o: o.update(x=1))),
        ("bad selection id", at(sel, lambda o: o.update(selection_id=""))),
        ("selection id int", at(sel, lambda o: o.update(selection_id=1))),
        ("edwards identity", at([*sel, "ciphertext"], lambda o: o.update(a="01" + "00" * 31))),
        ("negative s", at([*sel, "ciphertext"], lambda o: o.update(a="01" + "ff" * 30 + "7f"))),
        ("top bit set", at([*sel, "ciphertext"], lambda o: o.update(a=_top_bit(o["a"])))),
        ("s >= p", at([*sel, "ciphertext"], lambda o: o.update(b="ed" + "ff" * 30 + "7f"))),
        ("bad commitment", at([*sel, "proof"], lambda o: o["commitments"].__setitem__(1, "01" + "00" * 31))),
        ("proof lists unequal", at([*sel, "proof"], lambda o: o["responses"].pop())),
        ("uppercase point", at([*sel, "ciphertext"], lambda o: o.update(a=o["a"].upper()))),
        ("proof extra key", at([*sel, "proof"], lambda o: o.update(x=[]))),
        ("scalar >= L", at([*sel, "proof"], lambda o: o["responses"].__setitem__(0, "ff" * 31 + "1f"))),
        ("short scalar", at([*sel, "proof"], lambda o: o["challenges"].__setitem__(0, "00" * 31))),
    ]


def _top_bit(h: str) -> str:
    return h[:-2] + f"{int(h[-2:], 16) | 0x80:02x}"


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[m[0] for m in _mutations()])
def test_from_dict_strict(ballot3: tuple[EncryptedBallot, BallotSecrets], name: str, mutate: Any) -> None:
    d = json.loads(json.dumps(ballot3[0].to_dict()))
    EncryptedBallot.from_dict(d)
    mutate(d)
    with pytest.raises(InvalidEncoding):
        EncryptedBallot.from_dict(d)


def _strict(ctx: ElectionContext, d: Any) -> EncryptedBallot | None:
    """The reference for decode_verified_ballot: from_dict, then verify_ballot; None if either raises."""
    try:
        ballot = EncryptedBallot.from_dict(d)
        verify_ballot(ctx, ballot)
    except Exception:
        return None
    return ballot


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[m[0] for m in _mutations()])
def test_fast_path_refuses_what_from_dict_refuses(
    ballot3: tuple[EncryptedBallot, BallotSecrets], name: str, mutate: Any
) -> None:
    d = json.loads(json.dumps(ballot3[0].to_dict()))
    assert decode_verified_ballot(CTX3, d) == ballot3[0] == EncryptedBallot.from_dict(d)
    mutate(d)
    assert decode_verified_ballot(CTX3, d) is None


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[m[0] for m in _mutations()])
def test_reference_check_ballot_is_from_dict_then_verify(
    ballot3: tuple[EncryptedBallot, BallotSecrets], name: str, mutate: Any
) -> None:
    """The reference engine's ``check_ballot`` (the intake's check without the native engine): the record
    and hash of ``from_dict`` + ``verify_ballot``, or their error (the native one: tests/native)."""
    d = json.loads(json.dumps(ballot3[0].to_dict()))
    checked = PythonEngine().check_ballot(CTX3, d)
    assert checked == CheckedBallot(ballot3[0].to_dict(), ballot3[0].ballot_hash())
    assert list(checked.record) == ["version", "election_hash", "ballot_nonce", "contests"]
    mutate(d)
    with pytest.raises(InvalidEncoding) as e:
        PythonEngine().check_ballot(CTX3, d)
    with pytest.raises(InvalidEncoding) as want:
        EncryptedBallot.from_dict(d)
    assert str(e.value) == str(want.value)


def test_reference_check_ballot_raises_the_verification_error(
    ballot3: tuple[EncryptedBallot, BallotSecrets],
) -> None:
    with pytest.raises(BallotError, match="another election") as e:
        PythonEngine().check_ballot(ElectionContext(bytes(32), K, CTX3.contests), ballot3[0].to_dict())
    assert e.value.check == "election-hash"


def _point_texts() -> st.SearchStrategy[str]:
    """64 hex digits that are often not a valid ristretto255 encoding (or not lowercase, or not 64)."""
    return st.one_of(
        st.binary(min_size=32, max_size=32).map(bytes.hex),
        st.sampled_from(["01" + "00" * 31, "01" + "ff" * 30 + "7f", "ed" + "ff" * 30 + "7f", "00" * 32]),
        st.text("0123456789abcdefABCDEF", min_size=62, max_size=66),
    )


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fast_path_agrees_with_the_strict_path(
    ballot3: tuple[EncryptedBallot, BallotSecrets], data: st.DataObject
) -> None:
    """decode_verified_ballot (commitments decoded without point validation, then verified) returns a
    ballot exactly when from_dict and verify_ballot both accept it, and then the same ballot: for random
    corruptions of a valid ballot's points (commitments above all), scalars and hashes, and for another
    ballot's commitment moved in."""
    d = json.loads(json.dumps(ballot3[0].to_dict()))
    other = encrypt_ballot(CTX3, VOTE3, rng=random.Random(2))[0].to_dict()
    ci = data.draw(st.integers(0, len(d["contests"]) - 1))
    contest = d["contests"][ci]
    proofs = [contest["proof"], *(s["proof"] for s in contest["selections"])]
    kind = data.draw(st.sampled_from(["commitment", "moved", "ciphertext", "scalar", "nonce", "none"]))
    if kind == "commitment":
        proof = data.draw(st.sampled_from(proofs))
        k = data.draw(st.integers(0, len(proof["commitments"]) - 1))
        proof["commitments"][k] = data.draw(_point_texts())
    elif kind == "moved":
        proof = data.draw(st.sampled_from(proofs))
        k = data.draw(st.integers(0, len(proof["commitments"]) - 1))
        proof["commitments"][k] = other["contests"][ci]["proof"]["commitments"][0]
    elif kind == "ciphertext":
        sel = data.draw(st.sampled_from(contest["selections"]))
        sel["ciphertext"][data.draw(st.sampled_from(["a", "b"]))] = data.draw(_point_texts())
    elif kind == "scalar":
        proof = data.draw(st.sampled_from(proofs))
        field = data.draw(st.sampled_from(["challenges", "responses"]))
        k = data.draw(st.integers(0, len(proof[field]) - 1))
        proof[field][k] = data.draw(st.binary(min_size=32, max_size=32).map(bytes.hex))
    elif kind == "nonce":
        d["ballot_nonce"] = data.draw(st.binary(min_size=32, max_size=32).map(bytes.hex))
    assert decode_verified_ballot(CTX3, d) == _strict(CTX3, d)


def test_dict_is_lowercase_hex(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    text = json.dumps(ballot3[0].to_dict())
    for h in re.findall(r'"([0-9a-fA-F]{64})"', text):
        assert h == h.lower()
    assert (
        ballot3[0].canonical_bytes()
        == json.dumps(ballot3[0].to_dict(), sort_keys=True, separators=(",", ":")).encode()
    )


def test_ballot_hash_covers_everything(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, _ = ballot3
    h = ballot.ballot_hash()
    assert len(h) == 32
    assert dataclasses.replace(ballot, ballot_nonce=bytes(32)).ballot_hash() != h
    sel = ballot.contests[0].selections[0]
    proof2 = dataclasses.replace(sel.proof, responses=(sel.proof.responses[0] + 1, *sel.proof.responses[1:]))
    assert _replace_selection(ballot, 0, 0, dataclasses.replace(sel, proof=proof2)).ballot_hash() != h


# --- tracking codes ---------------------------------------------------------------------------------


def test_tracking_code_format(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    code = ballot3[0].tracking_code()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", code)
    assert code == tracking_code_from_hash(ballot3[0].ballot_hash())


def test_tracking_code_by_hand() -> None:
    assert tracking_code_from_hash(bytes(32)) == "0000-0000-0000-0000"
    assert tracking_code_from_hash(b"\xff" * 10 + bytes(22)) == "ZZZZ-ZZZZ-ZZZZ-ZZZZ"
    assert tracking_code_from_hash(bytes(9) + b"\x01" + b"\xff" * 22) == "0000-0000-0000-0001"
    # 0x08 0x42 ... : bits 00001 00001 00001 0 → "111" then continues
    assert tracking_code_from_hash(b"\x08\x42" + bytes(30)).startswith("1110")
    assert tracking_code_from_hash(b"\xf8" + bytes(31)) == "Z000-0000-0000-0000"
    with pytest.raises(ValueError):
        tracking_code_from_hash(bytes(10))


def test_normalize_tracking_code() -> None:
    assert normalize_tracking_code("abcd efgh jkmn pqrs") == "ABCD-EFGH-JKMN-PQRS"
    assert normalize_tracking_code("oooo-iiii-llll-0000") == "0000-1111-1111-0000"
    with pytest.raises(ValueError):
        normalize_tracking_code("ABCD-EFGH-JKMN-PQRU")  # U is not Crockford
    with pytest.raises(ValueError):
        normalize_tracking_code("ABCD-EFGH-JKMN")


# --- Benaloh challenge ------------------------------------------------------------------------------


def test_revealed_ballot_verifies(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, secrets = ballot3
    revealed = reveal(ballot, secrets)
    assert revealed.ballot_hash == ballot.ballot_hash()
    again = RevealedBallot.from_dict(json.loads(json.dumps(revealed.to_dict())))
    assert again == revealed
    assert verify_revealed(CTX3, ballot, again) == _manifest_order(CTX3, VOTE3)


def _edit_secret(secrets: BallotSecrets, ci: int, si: int, **changes: Any) -> BallotSecrets:
    c = secrets.contests[ci]
    sels = (*c.selections[:si], dataclasses.replace(c.selections[si], **changes), *c.selections[si + 1 :])
    contests = (*secrets.contests[:ci], dataclasses.replace(c, selections=sels), *secrets.contests[ci + 1 :])
    return BallotSecrets(contests)


@pytest.mark.parametrize(
    "change",
    [
        {"plaintext": 1},  # mayor/a was 0
        {"randomness": Scalar(12345)},
    ],
)
def test_wrong_revealed_value_rejected(ballot3: tuple[EncryptedBallot, BallotSecrets], change: Any) -> None:
    ballot, secrets = ballot3
    revealed = reveal(ballot, _edit_secret(secrets, 0, 0, **change))
    with pytest.raises(BallotError) as info:
        verify_revealed(CTX3, ballot, revealed)
    assert (info.value.check, info.value.subject) == ("revealed-reencryption", "mayor/a")


def test_revealed_flip_of_chosen_rejected(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, secrets = ballot3
    revealed = reveal(ballot, _edit_secret(secrets, 0, 2, plaintext=0))  # mayor/c was 1
    with pytest.raises(BallotError, match="revealed-reencryption"):
        verify_revealed(CTX3, ballot, revealed)


def test_revealed_for_other_ballot_rejected(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, _secrets = ballot3
    other, other_secrets = encrypt_ballot(CTX3, VOTE3)
    with pytest.raises(BallotError, match="revealed-ballot-hash"):
        verify_revealed(CTX3, ballot, reveal(other, other_secrets))
    with pytest.raises(BallotError, match="revealed-reencryption"):
        verify_revealed(CTX3, ballot, reveal(ballot, other_secrets))


def test_revealed_structure_rejected(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, secrets = ballot3
    revealed = RevealedBallot(ballot.ballot_hash(), secrets.contests[:2])
    with pytest.raises(BallotError, match="revealed-structure"):
        verify_revealed(CTX3, ballot, revealed)
    with pytest.raises(ValueError):
        reveal(ballot, BallotSecrets(secrets.contests[:2]))


def test_revealed_of_invalid_ballot_rejected(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, secrets = ballot3
    forged = dataclasses.replace(ballot, ballot_nonce=bytes(32))
    with pytest.raises(ProofError):
        verify_revealed(CTX3, forged, reveal(forged, secrets))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["contests"][0]["selections"][0].update(plaintext=2),
        lambda d: d["contests"][0]["selections"][0].update(plaintext=True),
        lambda d: d["contests"][0]["selections"][0].update(plaintext="1"),
        lambda d: d["contests"][0]["selections"][0].update(extra=0),
        lambda d: d.update(ballot_hash=d["ballot_hash"].upper()),
        lambda d: d.pop("ballot_hash"),
    ],
)
def test_revealed_from_dict_strict(ballot3: tuple[EncryptedBallot, BallotSecrets], mutate: Any) -> None:
    d = json.loads(json.dumps(reveal(*ballot3).to_dict()))
    RevealedBallot.from_dict(d)
    mutate(d)
    with pytest.raises(InvalidEncoding):
        RevealedBallot.from_dict(d)


# --- tally ----------------------------------------------------------------------------------------


def test_tally_decrypts_to_counts() -> None:
    votes = [VOTE3, {"mayor": ["c"], "council": ["s1"], "ref-1": ["yes"]}, {c: [] for c in VOTE3}]
    ballots = [encrypt_ballot(CTX3, v)[0] for v in votes]
    totals = tally_ciphertexts(ballots, ctx=CTX3)
    counts = {k: discrete_log(ct.decrypt_point(SECRET), len(ballots)) for k, ct in totals.items()}
    assert counts[("mayor", "c")] == 2
    assert counts[("council", "s1")] == 2
    assert counts[("council", "s6")] == 1
    assert counts[("ref-1", "no")] == 1
    assert counts[("ref-1", "yes")] == 1
    assert counts[("mayor", "a")] == 0
    assert totals[("mayor", "a")].decrypt_point(SECRET) == IDENTITY
    assert sum(counts.values()) == 7
    assert tally_ciphertexts(ballots) == totals


def test_empty_tally_is_identity() -> None:
    totals = tally_ciphertexts([], ctx=CTX3)
    assert len(totals) == 5 + 8 + 2
    assert all(ct == ZERO for ct in totals.values())
    assert discrete_log(totals[("mayor", "a")].decrypt_point(SECRET), 0) == 0
    assert tally_ciphertexts([]) == {}


def test_tally_refuses_mixed_elections(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, _ = ballot3
    one, _ = encrypt_ballot(CTX1, {"mayor": []})
    with pytest.raises(ValueError):
        tally_ciphertexts([ballot, one])
    with pytest.raises(ValueError):
        tally_ciphertexts([dataclasses.replace(ballot, election_hash=bytes(32))], ctx=CTX3)


def test_value_types_are_frozen(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ballot3[0].ballot_nonce = bytes(32)  # type: ignore[misc]
    with pytest.raises(ValueError):
        EncryptedBallot(H, b"x", ())
    assert isinstance(ballot3[0].contests[0], EncryptedContest)


# --- protocol v2: zero randomness, one bound on contest size, batch verification -------------------------


def _zero_pad(ballot: EncryptedBallot, secrets: BallotSecrets, ci: int, si: int) -> EncryptedBallot:
    """Re-encrypt one selection with r = 0 under valid proofs (selection and contest)."""
    spec = CTX3.contests[ci]
    sec = secrets.contests[ci].selections[si]
    ct = encrypt(K, sec.plaintext, Scalar(0))
    ctx = ("ballot-selection", H, ballot.ballot_nonce, spec.contest_id, sec.selection_id)
    proof = prove_membership(K, ct, sec.plaintext, Scalar(0), (0, 1), ctx)
    out = _replace_selection(ballot, ci, si, EncryptedSelection(sec.selection_id, ct, proof))
    c2 = out.contests[ci]
    total = sum((x.randomness for j, x in enumerate(secrets.contests[ci].selections) if j != si), Scalar(0))
    chosen = sum(x.plaintext for x in secrets.contests[ci].selections)
    contest_ctx = ("ballot-contest", H, ballot.ballot_nonce, spec.contest_id)
    proof = prove_membership(K, c2.sum_ciphertext(), chosen, total, spec.allowed_sums, contest_ctx)
    contests = list(out.contests)
    contests[ci] = dataclasses.replace(c2, proof=proof)
    return dataclasses.replace(out, contests=tuple(contests))


def test_zero_randomness_refused_by_verification(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    """r = 0 makes the pad the identity and B = m·G the vote in the clear. Its proofs are valid, so only the
    explicit §9.5 check refuses it (before: only the server's intake did, and the verifier counted it)."""
    ballot, secrets = ballot3
    bad = _zero_pad(ballot, secrets, 1, 1)
    assert bad.contests[1].selections[1].ciphertext.a == IDENTITY
    with pytest.raises(BallotError) as info:
        verify_ballot(CTX3, bad)
    assert (info.value.check, info.value.subject) == ("selection-randomness", "council/s1")
    with pytest.raises(BatchError) as batch:
        verify_ballots(CTX3, [ballot, bad])
    assert [(i, e.check) for i, e in batch.value.failures] == [(1, "selection-randomness")]
    revealed = reveal(bad, secrets)
    with pytest.raises(BallotError, match="selection-randomness"):
        verify_revealed(CTX3, bad, revealed)


def test_one_bound_for_contest_size() -> None:
    """§8.1 and §9.1 state one rule: a contest's allowed sums {min..max} ⊆ {0..n} fit a proof's cap."""
    assert MAX_SELECTIONS + 1 == MAX_ALLOWED
    wide = ContestSpec.up_to("wide", [f"s{i}" for i in range(MAX_SELECTIONS)], MAX_SELECTIONS)
    assert len(wide.allowed_sums) == MAX_ALLOWED


def _tamper_response(ballot: EncryptedBallot, ci: int, si: int) -> EncryptedBallot:
    sel = ballot.contests[ci].selections[si]
    p = sel.proof
    bad = dataclasses.replace(p, responses=(p.responses[0] + 1, *p.responses[1:]))
    return _replace_selection(ballot, ci, si, dataclasses.replace(sel, proof=bad))


@settings(max_examples=8, deadline=None)
@given(st.sets(st.integers(0, 7), max_size=3), st.integers(0, 2**32))
def test_batch_reports_exactly_the_bad_ballots(bad_at: set[int], seed: int) -> None:
    """Batch verification (one random combination, bisected) refuses exactly the ballots that single
    verification refuses, each with the same check and subject."""
    rng = random.Random(seed)
    ballots = [encrypt_ballot(CTX1, {"mayor": [rng.choice("abcde")]}, rng=rng)[0] for _ in range(8)]
    for i in bad_at:
        ballots[i] = _tamper_response(ballots[i], 0, rng.randrange(5))
    if not bad_at:
        verify_ballots(CTX1, ballots)
        return
    with pytest.raises(BatchError) as info:
        verify_ballots(CTX1, ballots)
    assert [i for i, _ in info.value.failures] == sorted(bad_at)
    for i, err in info.value.failures:
        with pytest.raises(ProofError) as single:
            verify_ballot(CTX1, ballots[i])
        assert (
            (err.check, err.subject)
            == (single.value.check, single.value.subject)
            == (
                "selection-proof",
                err.subject,
            )
        )


def test_batch_names_checks_before_the_equations(ballot3: tuple[EncryptedBallot, BallotSecrets]) -> None:
    ballot, _ = ballot3
    other_election = dataclasses.replace(ballot, election_hash=bytes(32))
    with pytest.raises(BatchError) as info:
        verify_ballots(CTX3, [ballot, ballot, other_election])
    assert [(i, e.check) for i, e in info.value.failures] == [(2, "election-hash")]
    verify_ballots(CTX3, [])


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_canonical_bytes_are_rfc8785(data: st.DataObject) -> None:
    """The ballot's canonical JSON (json.dumps on values that are ids, hex and small ints) is byte for byte
    what an RFC 8785 implementation gives."""
    import rfc8785

    specs = [
        data.draw(contest_specs(contest_id=f"c{i}.{data.draw(st.sampled_from('aZ_-'))}")) for i in range(2)
    ]
    ctx = ElectionContext(H, K, tuple(specs))  # type: ignore[arg-type]
    choices = {c.contest_id: data.draw(choices_for(c)) for c in ctx.contests}
    ballot, _ = encrypt_ballot(ctx, choices, rng=random.Random(data.draw(st.integers())))
    assert ballot.canonical_bytes() == rfc8785.dumps(ballot.to_dict())


def _reference_encrypt(
    ctx: ElectionContext, choices: dict[str, list[str]], rng: random.Random
) -> tuple[EncryptedBallot, BallotSecrets]:
    """§9.3 with the generic operations (point operators, :func:`encrypt`, :func:`prove_membership`), drawing
    in the documented order: the nonce, then per selection r, u, c, w, then per contest u and each (c, w)."""
    nonce = rng.randbytes(32)
    contests, secrets = [], []
    for spec in ctx.contests:
        sels, sel_secrets, total_r = [], [], Scalar(0)
        for sid in spec.selection_ids:
            m = 1 if sid in choices[spec.contest_id] else 0
            r = Scalar.random_nonzero(rng)
            ct = encrypt(ctx.public_key, m, r)
            context = selection_context(ctx.base_hash, nonce, spec.contest_id, sid)
            proof = prove_membership(ctx.public_key, ct, m, r, ZERO_ONE, context, rng=rng)
            sels.append(EncryptedSelection(sid, ct, proof))
            sel_secrets.append(SelectionSecret(sid, m, r))
            total_r = total_r + r
        contest_ct = sum_ciphertexts(s.ciphertext for s in sels)
        context = contest_context(ctx.base_hash, nonce, spec.contest_id)
        n = len(choices[spec.contest_id])
        proof = prove_membership(ctx.public_key, contest_ct, n, total_r, spec.allowed_sums, context, rng=rng)
        contests.append(EncryptedContest(spec.contest_id, tuple(sels), proof))
        secrets.append(ContestSecrets(spec.contest_id, tuple(sel_secrets)))
    return EncryptedBallot(ctx.base_hash, nonce, tuple(contests)), BallotSecrets(tuple(secrets))


@given(st.data())
@settings(max_examples=10, deadline=None)
def test_encrypt_ballot_agrees_with_the_generic_path(data: st.DataObject) -> None:
    """The encryption's encoding-level kernel (no point objects or checks until the proof's own) gives
    byte for byte the ballot and secrets of the generic operations from the same random stream."""
    specs = [data.draw(contest_specs(contest_id=f"c{i}")) for i in range(2)]
    ctx = ElectionContext(H, K, tuple(specs))  # type: ignore[arg-type]
    choices = {c.contest_id: data.draw(choices_for(c)) for c in ctx.contests}
    seed = data.draw(st.integers())
    ballot, secrets = encrypt_ballot(ctx, choices, rng=random.Random(seed))
    ref_ballot, ref_secrets = _reference_encrypt(ctx, choices, random.Random(seed))
    assert ballot.to_dict() == ref_ballot.to_dict()
    assert secrets.to_dict() == ref_secrets.to_dict()
    assert (ballot, secrets) == (ref_ballot, ref_secrets)


@given(st.data())
@settings(max_examples=10, deadline=None)
def test_production_draws_read_the_csprng_once_and_use_every_value(data: st.DataObject) -> None:
    """Without an injected rng a ballot reads the OS CSPRNG once: the nonce and each r from the first part,
    each proof's u, c_j, w_j from the precomputed values, all of which are used (none missing, none left)."""
    import crypto._ballot_encrypt as be

    specs = [data.draw(contest_specs(contest_id=f"c{i}")) for i in range(2)]
    ctx = ElectionContext(H, K, tuple(specs))  # type: ignore[arg-type]
    choices = {c.contest_id: data.draw(choices_for(c)) for c in ctx.contests}
    reads: list[int] = []
    sources: list[Any] = []
    real_token_bytes, real_prefetch = be._secrets.token_bytes, be._prefetch

    def token_bytes(n: int) -> bytes:
        reads.append(n)
        return real_token_bytes(n)

    def prefetch(ctx: ElectionContext, nonce: bool) -> Any:
        sources.append(real_prefetch(ctx, nonce))
        return sources[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(be._secrets, "token_bytes", token_bytes)
        mp.setattr(be, "_prefetch", prefetch)
        ballot, _ = encrypt_ballot(ctx, choices)
    verify_ballot(ctx, ballot)
    assert len(reads) == 1
    (src,) = sources
    assert src._pos == len(src._buf)
    with pytest.raises(StopIteration):
        src.value()


@given(base_hashes, base_hashes, st.data())
@settings(max_examples=20, deadline=None)
def test_proof_heads_are_the_contexts_transcript_heads(
    base: bytes, nonce: bytes, data: st.DataObject
) -> None:
    """The encryption's precomputed transcript heads are the ones the proof contexts give."""
    spec = data.draw(contest_specs(contest_id="c.1"))
    heads, contest_head = proof_heads(base, nonce, spec.contest_id, spec.selection_ids)
    assert heads == [
        context_head(selection_context(base, nonce, spec.contest_id, sid)) for sid in spec.selection_ids
    ]
    assert contest_head == context_head(contest_context(base, nonce, spec.contest_id))
