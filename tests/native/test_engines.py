"""The native engine (``tvote_native``, native/) against the reference (crypto/): same verdicts, same names.

* the known-answer vectors (``tests/vectors/ballots.json``, ``batch.json``) through both engines;
* Hypothesis properties: random valid batches and batches with tampered ballots (a mauled response, a
  changed challenge, swapped commitments, a non-canonical point, a set top bit, the identity as a pad,
  a decoding error, a reordered contest, another election's hash), with the bad ballot anywhere in the
  batch, give the same verdict per ballot (check, subject, and the disjunctive cause) in both engines,
  and the same valid flags, ballot hashes and homomorphic sums;
* the tally's sum of ballots already verified (``sum_ballots``): random batches in random chunks give the
  same sums in both engines; a ballot that does not decode strictly or is of another election or shape is
  refused by both with the same error (type, message and position); a ballot whose only fault is a proof
  is summed by both (the sum checks no proof).

Skipped when the extension is not installed, except under ``TVOTE_REQUIRE_ALL=1`` (CI), where that fails.
"""

from __future__ import annotations

import copy
import json
import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto import (
    BatchError,
    ContestSpec,
    CryptoError,
    ElectionContext,
    EncryptedBallot,
    Point,
    Scalar,
    encrypt_ballot,
    native_available,
    select_engine,
    tally_ciphertexts,
)
from crypto._native import NativeEngine, PythonEngine

VEC = Path(__file__).resolve().parents[2] / "tests" / "vectors"
L = 2**252 + 27742317777372353535851937790883648493


REFERENCE = PythonEngine()


def load(name: str) -> dict[str, Any]:
    return json.loads((VEC / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@cache
def vector_election() -> ElectionContext:
    e = load("ballots.json")["election"]
    specs = tuple(
        ContestSpec(c["contest_id"], tuple(c["selection_ids"]), c["min"], c["max"]) for c in e["contests"]
    )
    return ElectionContext(bytes.fromhex(e["base_hash"]), Point.from_hex(e["public_key"]), specs)


# --- engine selection -----------------------------------------------------------------------------------


def test_selection(native: NativeEngine) -> None:
    assert select_engine("auto") is native
    assert select_engine("python").name == "python"
    with pytest.raises(ValueError, match="unknown engine"):
        select_engine("fast")


def test_missing_extension_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the module, auto falls back to the reference and native raises with the install hint."""
    import sys

    from crypto import EngineUnavailable
    from crypto import _native as mod

    monkeypatch.setitem(sys.modules, "tvote_native", None)  # `import tvote_native` raises ImportError
    mod._module.cache_clear()
    try:
        assert not native_available()
        assert select_engine("auto").name == "python"
        with pytest.raises(EngineUnavailable, match="make native"):
            select_engine("native")
    finally:
        monkeypatch.undo()
        mod._module.cache_clear()


# --- known-answer vectors through both engines ----------------------------------------------------------


def test_ballot_vectors_both_engines(native: NativeEngine) -> None:
    data = load("ballots.json")
    ctx = vector_election()
    valid = [c["ballot"] for c in data["ballots"]]
    invalid = [c["ballot"] for c in data["invalid"]]
    encoding = [c["ballot"] for c in data["invalid_encoding"]]
    batch = valid + invalid + encoding
    want = (
        [None] * len(valid)
        + [(c["check"], c.get("subject")) for c in data["invalid"]]
        + [("invalid-encoding", None)] * len(encoding)
    )
    for engine in (REFERENCE, native):
        got = [None if v is None else v[:2] for v in engine.verdicts(ctx, batch)]
        assert got == want, engine.name
    # the reference and the native engine also agree on the cause (the disjunctive check)
    assert REFERENCE.verdicts(ctx, batch) == native.verdicts(ctx, batch)
    check = native.check_dicts(ctx, batch)
    assert check.valid == [v is None for v in want]
    assert check.ballot_hashes[: len(valid)] == [bytes.fromhex(c["ballot_hash"]) for c in data["ballots"]]


def test_batch_vectors_both_engines(native: NativeEngine) -> None:
    import tvote_native

    data = load("batch.json")
    ctx = vector_election()
    election = native._elections(ctx)
    for batch in data["batches"]:
        want = [None] * len(batch["ballots"])
        for f in batch["failures"]:
            want[f["index"]] = (f["check"], f.get("subject"))
        for engine in (REFERENCE, native):
            got = [None if v is None else v[:2] for v in engine.verdicts(ctx, batch["ballots"])]
            assert got == want, (engine.name, batch["name"])
        assert tvote_native.equation_counts(election, batch["ballots"]) == batch["equations_per_ballot"]
        weights = [int(w).to_bytes(16, "little") for w in batch["weights"]]
        assert tvote_native.combined_point(election, batch["ballots"], weights).hex() == batch["combined"]
        with pytest.raises(ValueError, match="weights"):
            tvote_native.combined_point(election, batch["ballots"], weights[:-1])


def test_verify_ballots_raises_the_reference_errors(native: NativeEngine) -> None:
    data = load("batch.json")
    ctx = vector_election()
    ballots = [EncryptedBallot.from_dict(d) for d in data["batches"][1]["ballots"]]
    errors = []
    for engine in (REFERENCE, native):
        with pytest.raises(BatchError) as e:
            engine.verify_ballots(ctx, ballots)
        errors.append([(i, type(err), str(err)) for i, err in e.value.failures])
    assert errors[0] == errors[1] == [(2, errors[0][0][1], errors[0][0][2])]
    native.verify_ballots(ctx, [EncryptedBallot.from_dict(d) for d in data["batches"][0]["ballots"]])


# --- properties: random and tampered batches ------------------------------------------------------------

ONE_OF_FIVE = ElectionContext(
    bytes(range(32)),
    Scalar(123456789) * Point.from_hex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76"),
    (ContestSpec("mayor", ("a", "b", "c", "d", "e"), 0, 1), ContestSpec("council", ("x", "y", "z"), 1, 2)),
)


@cache
def pool(which: str) -> tuple[ElectionContext, tuple[dict[str, Any], ...]]:
    """Valid ballots to draw from (encrypting is the slow part: done once)."""
    ctx = vector_election() if which == "vectors" else ONE_OF_FIVE
    rng = random.Random(which)
    out = []
    for _ in range(6):
        choices = {}
        for c in ctx.contests:
            k = rng.randint(c.min_selections, c.max_selections)
            choices[c.contest_id] = rng.sample(list(c.selection_ids), k)
        b, _ = encrypt_ballot(ctx, choices)
        out.append(b.to_dict())
    return ctx, tuple(out)


def _proofs(d: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for c in d["contests"]:
        out.extend(s["proof"] for s in c["selections"])
        out.append(c["proof"])
    return out


def _selections(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for c in d["contests"] for s in c["selections"]]


def _scalar_hex(v: int) -> str:
    return (v % L).to_bytes(32, "little").hex()


TAMPERS = (
    "maul-response",
    "maul-challenge",
    "swap-commitments",
    "commitment-from-other-proof",
    "identity-commitment",
    "identity-pad",
    "non-canonical-point",
    "top-bit-point",
    "non-canonical-scalar",
    "uppercase-hex",
    "drop-response",
    "swap-contests",
    "other-election",
    "swap-ciphertexts",
    "version-string",
)


def tamper(d: dict[str, Any], how: str, r: random.Random) -> dict[str, Any]:
    d = copy.deepcopy(d)
    proofs = _proofs(d)
    proof = r.choice(proofs)
    sel = r.choice(_selections(d))
    if how == "maul-response":
        i = r.randrange(len(proof["responses"]))
        proof["responses"][i] = _scalar_hex(
            int.from_bytes(bytes.fromhex(proof["responses"][i]), "little") + 1
        )
    elif how == "maul-challenge":
        i = r.randrange(len(proof["challenges"]))
        proof["challenges"][i] = _scalar_hex(r.randrange(L))
    elif how == "swap-commitments":
        i, j = r.sample(range(len(proof["commitments"])), 2)
        cs = proof["commitments"]
        cs[i], cs[j] = cs[j], cs[i]
    elif how == "commitment-from-other-proof":
        other = r.choice(proofs)
        i = r.randrange(len(proof["commitments"]))
        proof["commitments"][i] = r.choice(other["commitments"])
    elif how == "identity-commitment":
        proof["commitments"][r.randrange(len(proof["commitments"]))] = "00" * 32
    elif how == "identity-pad":
        sel["ciphertext"]["a"] = "00" * 32
    elif how == "non-canonical-point":  # RFC 9496 A.2 bad encodings (group.json)
        bad = [p["hex"] for p in load("group.json")["points"]["invalid"] if len(p["hex"]) == 64]
        sel["ciphertext"][r.choice("ab")] = r.choice(bad)
    elif how == "top-bit-point":
        raw = bytearray(bytes.fromhex(proof["commitments"][0]))
        raw[31] |= 0x80
        proof["commitments"][0] = raw.hex()
    elif how == "non-canonical-scalar":
        v = int.from_bytes(bytes.fromhex(proof["responses"][0]), "little")
        proof["responses"][0] = (v + L).to_bytes(32, "little").hex() if v + L < 2**256 else "ff" * 32
    elif how == "uppercase-hex":
        d["ballot_nonce"] = (
            d["ballot_nonce"].upper() if any(c in "abcdef" for c in d["ballot_nonce"]) else "AA" * 32
        )
    elif how == "drop-response":
        proof["responses"].pop()
    elif how == "swap-contests":
        d["contests"].reverse()
    elif how == "other-election":
        d["election_hash"] = "ab" * 32
    elif how == "swap-ciphertexts":
        other = r.choice(_selections(d))
        sel["ciphertext"], other["ciphertext"] = other["ciphertext"], sel["ciphertext"]
        if sel is other:
            sel["ciphertext"] = {"a": sel["ciphertext"]["b"], "b": sel["ciphertext"]["a"]}
    elif how == "version-string":
        d["version"] = "2"
    return d


@st.composite
def batches(draw: st.DrawFn) -> tuple[ElectionContext, list[dict[str, Any]]]:
    ctx, valid = pool(draw(st.sampled_from(("one-of-five", "vectors"))))
    n = draw(st.integers(min_value=1, max_value=7))
    ballots = [copy.deepcopy(valid[draw(st.integers(0, len(valid) - 1))]) for _ in range(n)]
    r = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(0, 3))):  # bad ballots anywhere in the batch, several kinds at once
        i = draw(st.integers(0, n - 1))
        for how in draw(st.lists(st.sampled_from(TAMPERS), min_size=1, max_size=2)):
            ballots[i] = tamper(ballots[i], how, r)
    return ctx, ballots


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_same_verdicts_as_the_reference(
    native: NativeEngine, batch: tuple[ElectionContext, list[Any]]
) -> None:
    ctx, ballots = batch
    want = REFERENCE.verdicts(ctx, ballots)
    assert native.verdicts(ctx, ballots) == want
    counted = [i % 2 == 0 for i in range(len(ballots))]
    a, b = REFERENCE.check_dicts(ctx, ballots, counted), native.check_dicts(ctx, ballots, counted)
    assert a.valid == b.valid == [v is None for v in want]
    assert a.ballot_hashes == b.ballot_hashes
    assert a.sums == b.sums


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(("one-of-five", "vectors")), st.sampled_from(TAMPERS), st.integers(0, 2**32))
def test_one_tampered_ballot_in_a_valid_batch(native: NativeEngine, which: str, how: str, seed: int) -> None:
    """A single tampered ballot in the middle of 12 valid ones is the only one named, as the reference
    names it."""
    ctx, valid = pool(which)
    r = random.Random(seed)
    ballots = [valid[i % len(valid)] for i in range(12)]
    ballots[5] = tamper(ballots[5], how, r)
    want = REFERENCE.verdicts(ctx, ballots)
    got = native.verdicts(ctx, ballots)
    assert got == want
    assert all(v is None for i, v in enumerate(got) if i != 5)


def test_non_dict_inputs_are_refused_not_crashed(native: NativeEngine) -> None:
    ctx, valid = pool("one-of-five")
    odd: list[Any] = [
        None,
        1,
        "x",
        [],
        {"version": 2},
        {**valid[0], "version": True},
        {**valid[0], "version": 2.0},
    ]
    assert (
        native.verdicts(ctx, odd)
        == REFERENCE.verdicts(ctx, odd)
        == [("invalid-encoding", None, None)] * len(odd)
    )


def test_deep_or_cyclic_inputs_are_refused(native: NativeEngine) -> None:
    ctx, valid = pool("one-of-five")
    deep: Any = [0]
    for _ in range(100_000):
        deep = [deep]
    cyclic: dict[str, Any] = {**valid[0]}
    cyclic["contests"] = [cyclic]
    odd = [{**valid[0], "contests": deep}, cyclic]
    assert native.verdicts(ctx, odd) == [("invalid-encoding", None, None)] * 2


# --- the tally's sum of ballots already verified ----------------------------------------------------------

#: tampers that leave a ballot decodable, of the election and of its shape (only a proof or a pad is wrong):
#: the sum, which checks no proof, adds such a ballot; every other tamper must be refused
SUMMED_TAMPERS = frozenset(
    {
        "maul-response",
        "maul-challenge",
        "swap-commitments",
        "commitment-from-other-proof",
        "identity-commitment",
        "identity-pad",
        "swap-ciphertexts",
    }
)


def _sum_outcome(
    engine: PythonEngine | NativeEngine, ctx: ElectionContext, ballots: list[Any], chunk: int
) -> Any:
    """The engine's sum, or the error it raised as (type, message, notes)."""
    try:
        return engine.sum_ballots(ctx, iter(ballots), chunk=chunk)
    except (CryptoError, ValueError, TypeError) as e:
        return (type(e), str(e), getattr(e, "__notes__", []))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(("one-of-five", "vectors")), st.integers(0, 14), st.integers(1, 5), st.randoms())
def test_sum_of_random_batches_is_the_reference_sum(
    native: NativeEngine, which: str, n: int, chunk: int, r: random.Random
) -> None:
    ctx, valid = pool(which)
    ballots = [r.choice(valid) for _ in range(n)]
    want = tally_ciphertexts((EncryptedBallot.from_dict(d) for d in ballots), ctx=ctx)
    assert list(want) == [(c.contest_id, s) for c in ctx.contests for s in c.selection_ids]
    assert REFERENCE.sum_ballots(ctx, iter(ballots), chunk=chunk) == want
    assert native.sum_ballots(ctx, iter(ballots), chunk=chunk) == want
    # the batch check's sum of the same ballots, all counted, is the same again
    if ballots:
        assert native.check_dicts(ctx, ballots, [True] * n).sums == want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(("one-of-five", "vectors")),
    st.sampled_from(TAMPERS),
    st.integers(1, 9),
    st.integers(1, 4),
    st.integers(0, 2**32),
)
def test_sum_refuses_what_the_reference_refuses(
    native: NativeEngine, which: str, how: str, n: int, chunk: int, seed: int
) -> None:
    ctx, valid = pool(which)
    r = random.Random(seed)
    ballots = [valid[i % len(valid)] for i in range(n)]
    bad = r.randrange(n)
    ballots[bad] = tamper(ballots[bad], how, r)
    want = _sum_outcome(REFERENCE, ctx, ballots, chunk)
    assert _sum_outcome(native, ctx, ballots, chunk) == want
    if how in SUMMED_TAMPERS:
        assert isinstance(want, dict)
    else:
        assert isinstance(want, tuple), how
        assert want[2] == [f"(ballot {bad} of the tally, counted from 0)"]


def test_sum_of_nothing_and_of_odd_inputs(native: NativeEngine) -> None:
    ctx, valid = pool("one-of-five")
    zero = REFERENCE.sum_ballots(ctx, [])
    assert native.sum_ballots(ctx, []) == zero == tally_ciphertexts([], ctx=ctx)
    assert {ct.to_dict()["a"] for ct in zero.values()} == {"00" * 32}
    for odd in (None, 1, "x", [], {"version": 2}, {**valid[0], "version": 2.0}):
        outcomes = [_sum_outcome(e, ctx, [valid[0], odd], 1) for e in (REFERENCE, native)]
        assert outcomes[0] == outcomes[1]
        assert outcomes[0][0].__name__ == "InvalidEncoding", outcomes
    for engine in (REFERENCE, native):
        with pytest.raises(ValueError, match="chunk"):
            engine.sum_ballots(ctx, valid, chunk=0)


def test_native_sum_refuses_a_bad_start(native: NativeEngine) -> None:
    import tvote_native

    ctx, valid = pool("one-of-five")
    election = native._elections(ctx)
    sums, refused = tvote_native.sum_ballots(election, list(valid))
    assert refused is None and sums is not None and len(sums) == 8
    again, _ = tvote_native.sum_ballots(election, [], sums)
    assert again == sums
    with pytest.raises(ValueError, match="one \\(a, b\\) pair per selection"):
        tvote_native.sum_ballots(election, [], sums[:-1])
    top_bit = (bytes(31) + b"\x80", bytes(32))
    with pytest.raises(ValueError, match="canonical"):
        tvote_native.sum_ballots(election, [], [top_bit, *sums[1:]])
