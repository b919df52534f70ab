"""One submitted ballot checked by the native engine in one decoding (``BallotEngine.check_ballot``, the
intake's ``_parse_ballot``) is exactly as strict as the reference, ``EncryptedBallot.from_dict`` then
``verify_ballot``:

* Hypothesis over valid demo ballots mutated anywhere (a point's or a scalar's hex changed, made
  non-canonical, the identity, truncated, upper-case, a scalar >= L; a key dropped, added or not a string;
  a value of the wrong type, a ``str``/``dict``/``list`` subclass, a tuple, a read-only mapping; a list
  emptied, shortened, reordered or repeated; a part taken from another ballot; the version changed): both
  accept (with the same record, key order and types included, and the same ballot hash) or both refuse with
  the same error (type, message, check and subject); at the intake, the same ``_Ballot`` or the same
  refusal (code and message) with either engine;
* a valid ballot is decoded once: no point goes through libsodium's validation, no Python ballot is built,
  and the record shares no dict or list with the submission.

Skipped without the extension, except under ``TVOTE_REQUIRE_ALL=1`` (CI).
"""

from __future__ import annotations

import copy
import json
import random
import types
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import voting.service._intake_checks as intake_checks
from crypto import (
    CheckedBallot,
    ContestSpec,
    CryptoError,
    ElectionContext,
    EncryptedBallot,
    InvalidEncoding,
    Point,
    Scalar,
    encrypt_ballot,
    verify_ballot,
)
from crypto._native import NativeEngine, PythonEngine
from voting._errors import RejectedSubmission

L = 2**252 + 27742317777372353535851937790883648493
VEC = Path(__file__).resolve().parents[2] / "tests" / "vectors"

#: the demo election's shape (``voting.testing.tsukuba_manifest(small=True)``): one of three, yes/no, up to
#: two of four
CTX = ElectionContext(
    bytes(range(32)),
    Scalar(987654321) * Point.from_hex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76"),
    (
        ContestSpec("mayor", ("cand-1", "cand-2", "cand-3"), 0, 1),
        ContestSpec("referendum", ("yes", "no"), 0, 1),
        ContestSpec("subsidy", ("proj-1", "proj-2", "proj-3", "proj-4"), 0, 2),
    ),
)


@cache
def pool() -> tuple[dict[str, Any], ...]:
    """Valid ballots to mutate (encrypting is the slow part: done once)."""
    rng = random.Random("check-ballot")
    out = []
    for _ in range(4):
        choices = {
            c.contest_id: rng.sample(list(c.selection_ids), rng.randint(c.min_selections, c.max_selections))
            for c in CTX.contests
        }
        out.append(encrypt_ballot(CTX, choices)[0].to_dict())
    return tuple(out)


@cache
def bad_points() -> tuple[str, ...]:
    data = json.loads((VEC / "group.json").read_text(encoding="utf-8"))
    return tuple(p["hex"] for p in data["points"]["invalid"] if len(p["hex"]) == 64)


# --- the reference and the outcomes compared --------------------------------------------------------------


def reference(ctx: ElectionContext, d: Any) -> CheckedBallot:
    """What the intake did before: decode strictly, verify, take the record and hash of the Python ballot."""
    ballot = EncryptedBallot.from_dict(d)
    verify_ballot(ctx, ballot)
    return CheckedBallot(ballot.to_dict(), ballot.ballot_hash())


def frozen(x: Any) -> Any:
    """``x`` with every type and every key order kept (what ``==`` between dicts ignores)."""
    if isinstance(x, Mapping):
        return (type(x).__name__, tuple((frozen(k), frozen(v)) for k, v in x.items()))
    if isinstance(x, list | tuple):
        return (type(x).__name__, tuple(frozen(v) for v in x))
    return (type(x).__name__, x)


def outcome(check: Callable[[], CheckedBallot]) -> tuple[Any, ...]:
    try:
        c = check()
    except (CryptoError, ValueError, TypeError) as e:
        return ("refused", type(e), str(e), getattr(e, "check", None), getattr(e, "subject", None))
    return ("accepted", frozen(c.record), c.ballot_hash)


def intake_outcome(engine: Any, d: Any) -> tuple[Any, ...]:
    """The intake's ``_parse_ballot`` of ``d`` with ``engine`` as the ballot engine."""
    checks = intake_checks.IntakeChecks(election=None)
    checks._ctx = CTX
    with pytest.MonkeyPatch.context() as m:
        m.setattr(intake_checks, "select_engine", lambda name: engine)
        try:
            b = checks._parse_ballot(d)
        except RejectedSubmission as e:
            return ("refused", e.code, e.message)
    return ("accepted", b.hash, b.hex, b.tracking_code, frozen(b.record), b.unique)


# --- mutations ----------------------------------------------------------------------------------------------


class Str(str):
    pass


class Dict(dict[Any, Any]):
    pass


class List(list[Any]):
    pass


class ReadOnly(Mapping[str, Any]):
    """A mapping that is not a dict (the reference decodes any Mapping)."""

    def __init__(self, d: Mapping[str, Any]) -> None:
        self._d = dict(d)

    def __getitem__(self, k: str) -> Any:
        return self._d[k]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


def paths(x: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a ballot's dict form, the root included."""
    yield at
    if isinstance(x, dict):
        for k, v in x.items():
            yield from paths(v, (*at, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from paths(v, (*at, i))


def get(x: Any, at: tuple[Any, ...]) -> Any:
    for k in at:
        x = x[k]
    return x


def scalar_plus_l(h: str) -> str:
    v = int.from_bytes(bytes.fromhex(h), "little") + L
    return v.to_bytes(32, "little").hex() if v < 2**256 else "ff" * 32


def mutate_str(s: str, how: str, r: random.Random) -> Any:
    i = r.randrange(max(len(s), 1))
    if how == "hex-digit":  # another lowercase hex digit: another point or scalar, or none
        return s[:i] + r.choice([c for c in "0123456789abcdef" if s[i : i + 1] != c]) + s[i + 1 :]
    if how == "upper":
        return s.upper() if s.upper() != s else "AB" + s[2:]
    if how == "truncate":
        return s[:-2]
    if how == "extend":
        return s + "00"
    if how == "identity":
        return "00" * 32
    if how == "bad-point":
        return r.choice(bad_points())
    if how == "scalar-plus-l":
        return scalar_plus_l(s) if len(s) == 64 and all(c in "0123456789abcdef" for c in s) else s
    if how == "top-bit":
        raw = bytearray(bytes.fromhex(s)) if len(s) == 64 else bytearray(32)
        raw[31] |= 0x80
        return raw.hex()
    if how == "non-ascii":
        return s[:i] + "é" + s[i + 1 :]
    if how == "str-subclass":
        return Str(s)
    if how == "other-id":  # an id of the manifest elsewhere, or none of it
        return r.choice(["mayor", "subsidy", "cand-1", "cand-3", "yes", "no", "proj-2", "zz"])
    return s


STR_HOWS = (
    "hex-digit",
    "upper",
    "truncate",
    "extend",
    "identity",
    "bad-point",
    "scalar-plus-l",
    "top-bit",
    "non-ascii",
    "str-subclass",
    "other-id",
)
ANY_HOWS = ("int", "none", "float", "bool", "wrap-in-list", "empty-dict", "from-other-ballot")
DICT_HOWS = ("drop-key", "extra-key", "non-string-key", "key-subclass", "dict-subclass", "read-only")
LIST_HOWS = ("drop-last", "repeat-first", "empty", "reverse", "tuple", "list-subclass", "append-copy")


def mutate(d: dict[str, Any], at: tuple[Any, ...], how: str, other: dict[str, Any], r: random.Random) -> Any:
    """``d`` with the value at ``at`` changed ``how``; returns the new root."""
    root: Any = {"": d}
    at = ("", *at)
    parent, key = get(root, at[:-1]), at[-1]
    v = parent[key]
    if how == "int":
        new: Any = 2 if isinstance(v, str) else 0
    elif how == "none":
        new = None
    elif how == "float":
        new = 2.0
    elif how == "bool":
        new = True
    elif how == "wrap-in-list":
        new = [v]
    elif how == "empty-dict":
        new = {}
    elif how == "from-other-ballot":  # the same place of another valid ballot (a proof, a ciphertext, ...)
        try:
            new = copy.deepcopy(get(other, at[1:]))
        except (KeyError, IndexError, TypeError):
            new = v
    elif isinstance(v, str):
        new = mutate_str(v, how, r)
    elif isinstance(v, dict):
        keys = list(v)
        new = dict(v)
        if how == "drop-key" and keys:
            del new[r.choice(keys)]
        elif how == "extra-key":
            new["extra"] = "00"
        elif how == "non-string-key" and keys:
            k = r.choice(keys)
            new = {(1 if x == k else x): y for x, y in v.items()}
        elif how == "key-subclass" and keys:
            k = r.choice(keys)
            new = {(Str(x) if x == k else x): y for x, y in v.items()}
        elif how == "dict-subclass":
            new = Dict(v)
        elif how == "read-only":
            new = ReadOnly(v)
    elif isinstance(v, list):
        new = list(v)
        if how == "drop-last" and new:
            new.pop()
        elif how == "repeat-first" and new:
            new[-1] = copy.deepcopy(new[0])
        elif how == "empty":
            new = []
        elif how == "reverse":
            new.reverse()
        elif how == "tuple":
            new = tuple(v)
        elif how == "list-subclass":
            new = List(v)
        elif how == "append-copy" and new:
            new.append(copy.deepcopy(new[-1]))
    elif isinstance(v, int) and how == "extend":  # the version
        new = v + 1
    else:
        new = v
    parent[key] = new
    return root[""]


@st.composite
def mutated_ballots(draw: st.DrawFn) -> Any:
    ballots = pool()
    i = draw(st.integers(0, len(ballots) - 1))
    d = copy.deepcopy(ballots[i])
    other = ballots[(i + 1) % len(ballots)]
    r = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(0, 2))):
        places = list(paths(d)) if isinstance(d, dict) else [()]
        # a kind of place first (most places are strings: a string, an object, a list or anything)
        kind = draw(st.sampled_from((str, dict, list, object)))
        at = draw(st.sampled_from([p for p in places if isinstance(get(d, p), kind)] or places))
        target = get(d, at)
        hows = ANY_HOWS + (
            STR_HOWS
            if isinstance(target, str)
            else DICT_HOWS
            if isinstance(target, dict)
            else LIST_HOWS
            if isinstance(target, list)
            else ("extend",)
        )
        d = mutate(d, at, draw(st.sampled_from(hows)), other, r)
    return d


def _proof_from_other_ballot() -> Any:
    d, other = copy.deepcopy(pool()[0]), pool()[1]
    d["contests"][2]["selections"][1]["proof"] = copy.deepcopy(other["contests"][2]["selections"][1]["proof"])
    return d


def _scalar_too_big() -> Any:
    d = copy.deepcopy(pool()[0])
    proof = d["contests"][0]["proof"]
    proof["challenges"][0] = scalar_plus_l(proof["challenges"][0])
    return d


# --- the properties -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_engine() -> PythonEngine:
    return PythonEngine()


def plain_tree(x: Any, seen: set[int]) -> bool:
    """``x`` is made of exact dicts (string keys), lists, strings and ints, none of them reached twice."""
    if type(x) in (str, int):
        return True
    if type(x) not in (dict, list) or id(x) in seen:
        return False
    seen.add(id(x))
    if type(x) is dict:
        return all(type(k) is str and plain_tree(v, seen) for k, v in x.items())
    return all(plain_tree(v, seen) for v in x)


@pytest.fixture(scope="module")
def watched(native: NativeEngine) -> NativeEngine:
    """The native engine, given only plain trees (what its conversion reads in time linear in their size)."""
    m = native._m

    def verify_ballots(election: Any, ballots: list[Any], mask: Any = None) -> Any:
        assert all(plain_tree(b, set()) for b in ballots)
        return m.verify_ballots(election, ballots, mask)

    return NativeEngine(types.SimpleNamespace(Election=m.Election, verify_ballots=verify_ballots))  # type: ignore[arg-type]


def _shared(width: int, depth: int) -> Any:
    """A list of ``width**depth`` paths to one string, in ``width * depth`` objects."""
    x: Any = "00"
    for _ in range(depth):
        x = [x] * width
    return x


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=mutated_ballots())
@example(d=_proof_from_other_ballot())
@example(d=_scalar_too_big())
@example(d={**pool()[0], 7: "x"})
@example(d={**pool()[0], "version": 2**70})
@example(d=Dict(pool()[0]))
@example(d=ReadOnly(pool()[0]))
def test_check_ballot_is_the_reference(watched: NativeEngine, reference_engine: PythonEngine, d: Any) -> None:
    native = watched
    want = outcome(lambda: reference(CTX, d))
    assert outcome(lambda: native.check_ballot(CTX, d)) == want
    assert outcome(lambda: reference_engine.check_ballot(CTX, d)) == want
    # the intake: the same ballot, or the same refusal (code and message), with either engine
    assert intake_outcome(native, d) == intake_outcome(reference_engine, d)


def test_valid_ballots_are_accepted_with_the_reference_record(native: NativeEngine) -> None:
    for d in pool():
        got = native.check_ballot(CTX, json.loads(json.dumps(d)))
        want = reference(CTX, d)
        assert frozen(got.record) == frozen(want.record) == frozen(d)
        assert got.ballot_hash == want.ballot_hash == EncryptedBallot.from_dict(d).ballot_hash()


@pytest.mark.parametrize("odd", [None, 1, "x", [], [("version", 2)], {}, {"version": 2}])
def test_odd_submissions_are_refused_alike(
    native: NativeEngine, reference_engine: PythonEngine, odd: Any
) -> None:
    want = outcome(lambda: reference(CTX, odd))
    assert want[0] == "refused"
    assert outcome(lambda: native.check_ballot(CTX, odd)) == want
    got = intake_outcome(native, odd)
    assert got == intake_outcome(reference_engine, odd)
    assert got[1] == "ballot.encoding"


def test_a_valid_ballot_is_decoded_once(native: NativeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The native engine's acceptance needs no Python decoding: no point through libsodium, no ballot
    object; the record is a new object (the submission's dicts and lists are not kept)."""
    import crypto._group as group

    d = json.loads(json.dumps(pool()[2]))
    decoded: list[str] = []
    real = group.Point.from_hex.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Point], text: str) -> Point:
        decoded.append(text)
        return real(cls, text)  # type: ignore[no-any-return]

    monkeypatch.setattr(group.Point, "from_hex", classmethod(counting))
    checked = native.check_ballot(CTX, d)
    assert decoded == []
    assert PythonEngine().check_ballot(CTX, d) == checked
    points = [p for c in d["contests"] for p in c["proof"]["commitments"]] + [
        p
        for c in d["contests"]
        for s in c["selections"]
        for p in [s["ciphertext"]["a"], s["ciphertext"]["b"], *s["proof"]["commitments"]]
    ]
    assert sorted(decoded) == sorted(points)  # the reference validates every point: the counter works

    def containers(x: Any) -> Iterator[int]:
        if isinstance(x, dict | list):
            yield id(x)
            for v in x.values() if isinstance(x, dict) else x:
                yield from containers(v)

    assert not set(containers(checked.record)) & set(containers(d))
    d["contests"][0]["selections"][0]["ciphertext"]["a"] = "00" * 32  # the submission changed afterwards
    assert checked.record == pool()[2]


def test_a_native_refusal_is_the_reference_error_with_its_code(native: NativeEngine) -> None:
    """A mauled response: refused by the native engine, reported with the reference's error."""
    d = copy.deepcopy(pool()[1])
    proof = d["contests"][1]["selections"][0]["proof"]
    proof["responses"][0] = (Scalar.from_hex(proof["responses"][0]) + Scalar(1)).hex()
    got = intake_outcome(native, d)
    assert got[:2] == ("refused", "ballot.selection-proof")
    assert got == intake_outcome(PythonEngine(), d)


def test_a_shared_value_is_not_walked(watched: NativeEngine, reference_engine: PythonEngine) -> None:
    """A value reached by 64**16 paths (possible in-process only: JSON makes trees) where a string belongs
    is refused at once, as the reference refuses it; the native engine is not given it."""
    for place in ("ballot_nonce", "commitment"):  # (not an id: the reference's message shows its repr)
        d = copy.deepcopy(pool()[0])
        if place == "ballot_nonce":
            d["ballot_nonce"] = _shared(64, 16)
        else:
            d["contests"][2]["selections"][0]["proof"]["commitments"][1] = _shared(64, 16)
        want = outcome(lambda: reference(CTX, d))
        assert want[:2] == ("refused", InvalidEncoding)
        assert outcome(lambda: watched.check_ballot(CTX, d)) == want
        assert intake_outcome(watched, d) == intake_outcome(reference_engine, d)


def test_a_mapping_proxy_is_decoded_by_the_reference(native: NativeEngine) -> None:
    """A mapping the native engine does not read (not an exact dict) still gets the reference's answer."""
    d = types.MappingProxyType(copy.deepcopy(pool()[3]))
    assert outcome(lambda: native.check_ballot(CTX, d)) == outcome(lambda: reference(CTX, d))
    assert outcome(lambda: native.check_ballot(CTX, d))[0] == "accepted"
