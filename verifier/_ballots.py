"""Per-ballot checks V12 (each cast ballot's roll inclusion proof), V13, V14, V16 and V31 (each kiosk
ballot's kiosk signature), run in batches by a worker (local process or Dask worker).

The cast ballots of a batch are checked first, all together, by the selected ballot engine
(``crypto.select_engine``: the native batch check when ``BallotContext.engine`` is ``"native"``, else the
reference); each ballot the engine refuses is then decoded and verified the strict way, which names what is
wrong, so the failures reported do not depend on the engine.

:func:`verify_batch` is a pure function of picklable inputs (the :class:`BallotContext`, a list of
``(ledger index, raw entry line)`` and the enrolled key of each kiosk ballot of the batch, which the
main pass resolved from the kiosk entries before it) and returns a :class:`BatchResult`: the failures it
found and the homomorphic sum of the cast ballots of the batch (hex, so results are small and need no
validation on the way back). The main process adds the batch sums into the running tally.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from crypto import (
    BallotEngine,
    BallotError,
    Ciphertext,
    ContestSpec,
    CryptoError,
    ElectionContext,
    EncryptedBallot,
    InvalidEncoding,
    JointKey,
    RevealedBallot,
    select_engine,
    tracking_code_from_hash,
    verify_ballot,
    verify_revealed,
)
from ledger import InvalidEncoding as LedgerInvalidEncoding
from ledger import ProofError as LedgerProofError
from ledger.events import BOUND_KEYS, EventType
from ledger.merkle import inclusion_proof_size, leaf_hash, verify_inclusion

from ._kiosk import ballot_signature_ok, kiosk_ref
from ._manifest import ElectionInfo
from ._privacy import scan_entry
from ._source import load_json

__all__ = [
    "BallotContext",
    "BatchResult",
    "RollCommitment",
    "ballot_ciphertexts",
    "ciphertext_sums",
    "verify_batch",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]*")
_BINDING: Final[frozenset[str]] = BOUND_KEYS
CAST_KEYS: Final[frozenset[str]] = (
    frozenset(
        {"ballot", "ballot_hash", "tracking_code", "voter_alias", "roll_proof", "channel", "auth", "seq"}
    )
    | _BINDING
)
#: a kiosk ballot's payload: an internet ballot's and ``kiosk`` (docs/events.md row 10)
KIOSK_CAST_KEYS: Final[frozenset[str]] = CAST_KEYS | {"kiosk"}
ROLL_PROOF_KEYS: Final[frozenset[str]] = frozenset({"index", "path"})
SPOILED_KEYS: Final[frozenset[str]] = (
    frozenset({"ballot", "ballot_hash", "tracking_code", "revealed"}) | _BINDING
)


@dataclass(frozen=True, slots=True)
class RollCommitment:
    """The published roll commitment's ``size`` and ``root`` (checked well formed by the main pass)."""

    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class BallotContext:
    election: ElectionContext
    auth_methods: tuple[str, ...]
    #: ``None`` if no well-formed roll commitment precedes the ballots: then no cast ballot passes V12
    roll: RollCommitment | None = None
    #: the ballot engine the workers use (``"python"`` or ``"native"``, resolved by the main process)
    engine: str = "python"
    #: the manifest's election id (with ``election.base_hash``: the binding a worker checks of each ballot)
    election_id: str = ""

    @classmethod
    def create(
        cls,
        info: ElectionInfo,
        joint_key: JointKey,
        roll: RollCommitment | None = None,
        engine: str = "python",
    ) -> BallotContext:
        specs = tuple(ContestSpec(c.id, c.selections, c.min, c.max) for c in info.contests)
        ctx = ElectionContext(info.base_hash, joint_key.public_key, specs)
        return cls(ctx, info.auth_methods, roll, engine, info.election_id)


@dataclass
class BatchResult:
    failures: list[dict[str, Any]] = field(default_factory=list)
    sums: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    ballots: int = 0
    #: the ledger index of every ballot whose ciphertexts are in ``sums``
    summed: list[int] = field(default_factory=list)


def _f(out: BatchResult, step: int, check: str, message: str, i: int) -> None:
    out.failures.append({"step": step, "check": check, "message": message, "entry": i})


def ballot_ciphertexts(line: bytes) -> dict[tuple[str, str], Ciphertext]:
    b = EncryptedBallot.from_dict(load_json(line)["payload"]["ballot"])
    return {(c.contest_id, s.selection_id): s.ciphertext for c in b.contests for s in c.selections}


def ciphertext_sums(lines: list[bytes]) -> dict[tuple[str, str], tuple[str, str]]:
    """V18's part of the ballots that do not count, as a job for a worker: the sum per selection of the
    ciphertexts of the ballots of ``lines`` (hex), leaving out a ballot that does not decode (V13 reports
    it): what subtracting each ballot's ciphertexts from the running sum in turn would subtract."""
    acc: dict[tuple[str, str], Ciphertext] = {}
    for line in lines:
        try:
            cts = ballot_ciphertexts(line)
        except (CryptoError, KeyError, TypeError, ValueError):
            continue
        for key, ct in cts.items():
            have = acc.get(key)
            acc[key] = ct if have is None else have + ct
    return {key: (ct.a.hex(), ct.b.hex()) for key, ct in acc.items()}


def _check_auth(out: BatchResult, ctx: BallotContext, p: dict[str, Any], i: int) -> None:
    # V14 ballot.binding: "every cast ballot names a voter alias, an allowed channel and authentication
    # method, and its own authentication-evidence hash."
    alias = p.get("voter_alias")
    if not isinstance(alias, str) or not _HEX64.fullmatch(alias):
        _f(out, 14, "ballot.binding", "voter_alias is not 64 lowercase hex digits", i)
    if p.get("channel") not in ("internet", "kiosk"):
        _f(out, 14, "ballot.binding", f"unknown channel {p.get('channel')!r}", i)
    seq = p.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        _f(out, 14, "ballot.binding", "seq is a positive integer", i)
    auth = p.get("auth")
    if not isinstance(auth, dict):
        _f(out, 14, "ballot.binding", "no auth object", i)
        return
    method = auth.get("method")
    if method not in ctx.auth_methods:
        _f(out, 14, "ballot.binding", f"authentication method {method!r} is not allowed by the manifest", i)
    ev = auth.get("evidence_hash")
    if not isinstance(ev, str) or not _HEX64.fullmatch(ev):
        _f(out, 14, "ballot.binding", "evidence_hash is not 64 lowercase hex digits", i)
    expected = {"method", "evidence_hash"} | ({"face"} if method == "oidc+face" else set())
    if set(auth) != expected:
        _f(out, 14, "ballot.binding", f"auth has keys {sorted(auth)}, expected {sorted(expected)}", i)
    if method == "oidc+face":
        face = auth.get("face")
        if (
            not isinstance(face, dict)
            or face.get("decision") is not True
            or not isinstance(face.get("engine"), str)
            or set(face) != {"decision", "engine"}
        ):
            _f(out, 14, "ballot.binding", "oidc+face ballot without a positive face-match decision", i)


#: a cast ballot's roll proof, well formed: ``(voter alias, leaf index, path)`` as bytes (the path's hashes
#: concatenated), or why it is not (the V12 message)
_RollClaim = tuple[bytes, int, bytes] | str


def _roll_claim(ctx: BallotContext, p: dict[str, Any]) -> _RollClaim:
    # V12 roll.commitment: "every ballot.cast entry carries roll_proof = {index, path}, the RFC 9162 inclusion
    # proof of the leaf SHA-256(0x00 || voter alias) at leaf `index` of the roll commitment's tree (root and
    # size as published): index an integer in [0, size), path exactly as long as RFC 9162 makes it for
    # (index, size), every hash 64 lowercase hex digits."
    roll = ctx.roll
    if roll is None:
        return "no well-formed roll commitment precedes this ballot: its voter cannot be shown on the roll"
    rp = p.get("roll_proof")
    if not isinstance(rp, dict) or set(rp) != ROLL_PROOF_KEYS:
        got = sorted(rp) if isinstance(rp, dict) else type(rp).__name__
        return f"roll_proof is missing or not exactly {{index, path}} (got {got})"
    index, path = rp["index"], rp["path"]
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < roll.size:
        return f"roll_proof index {index!r} is not an integer in [0, {roll.size})"
    want = inclusion_proof_size(index, roll.size)
    if not isinstance(path, list) or len(path) != want:
        n = len(path) if isinstance(path, list) else type(path).__name__
        return f"roll_proof path has {n} hashes, RFC 9162 needs {want} for leaf {index} of {roll.size}"
    # every hash a str of 64 lowercase hex digits: checked for the whole path at once (in C), joined once
    joined = "".join(path) if set(map(type, path)) <= {str} and set(map(len, path)) <= {64} else None
    if joined is None or not _HEX.fullmatch(joined):
        return "roll_proof path holds a value that is not 64 lowercase hex digits"
    alias = p.get("voter_alias")
    if not isinstance(alias, str) or not _HEX64.fullmatch(alias):
        return "voter_alias is not 64 lowercase hex digits, so it cannot be a leaf of the roll"
    return bytes.fromhex(alias), index, bytes.fromhex(joined)


def _reference_inclusion(roll: RollCommitment, claim: tuple[bytes, int, bytes]) -> str | None:
    """The V12 message of a well-formed claim by ``ledger.merkle.verify_inclusion`` (the reference), or
    None if the alias is shown on the roll."""
    alias, index, raw = claim
    nodes = [raw[j : j + 32] for j in range(0, len(raw), 32)]
    try:
        verify_inclusion(leaf_hash(alias), index, roll.size, nodes, roll.root)
    except (LedgerProofError, LedgerInvalidEncoding) as e:
        return f"the voter alias is not shown to be on the committed roll (inclusion proof: {e})"
    return None


def _roll_verdicts(
    ctx: BallotContext, engine: BallotEngine, entries: list[tuple[int, Any]]
) -> dict[int, str | None]:
    """V12 of every cast ballot among ``entries`` (``(ledger index, decoded entry)``) whose payload is an
    object: its message, or None if it holds. The well-formed proofs of the batch are checked together by
    the engine (RFC 9162 in Rust for the native one, :meth:`crypto.BallotEngine.verify_inclusions`), each
    one it refuses again by the reference, whose message is reported: the report does not depend on the
    engine."""
    out: dict[int, str | None] = {}
    claims: list[tuple[int, tuple[bytes, int, bytes]]] = []
    for i, entry in entries:
        if not isinstance(entry, dict) or entry.get("type") != EventType.BALLOT_CAST:
            continue
        p = entry.get("payload")
        if not isinstance(p, dict):
            continue
        try:
            claim = _roll_claim(ctx, p)
        except _ENTRY_ERRORS:  # pragma: no cover - reported by _check_roll_proof, which raises it again
            continue
        if isinstance(claim, str):
            out[i] = claim
        else:
            claims.append((i, claim))
    roll = ctx.roll
    if not claims or roll is None:
        return out
    verdicts = engine.verify_inclusions(roll.root, roll.size, [c for _, c in claims])
    for n, (i, claim) in enumerate(claims):
        if verdicts is None or verdicts[n] is not None:
            out[i] = _reference_inclusion(roll, claim)
            if verdicts is not None and out[i] is None:  # pragma: no cover - an engine bug
                raise AssertionError(f"engines disagree on the roll proof of entry {i}: {verdicts[n]}")
        else:
            out[i] = None
    return out


def _check_roll_proof(
    out: BatchResult, ctx: BallotContext, p: dict[str, Any], i: int, verdicts: Mapping[int, str | None]
) -> None:
    """V12 of one cast ballot: its verdict from :func:`_roll_verdicts`, or (for an entry it did not see)
    the reference's."""
    if i in verdicts:
        message = verdicts[i]
    else:
        claim = _roll_claim(ctx, p)
        if isinstance(claim, str):
            message = claim
        else:
            assert ctx.roll is not None  # a claim is well formed only under a roll commitment
            message = _reference_inclusion(ctx.roll, claim)
    if message is not None:
        _f(out, 12, "roll.commitment", message, i)


def _check_kiosk(out: BatchResult, ctx: BallotContext, p: dict[str, Any], i: int, key: bytes | None) -> None:
    # V14 ballot.binding: "a kiosk ballot names its kiosk, kiosk exactly {kiosk_id, session, signature}, and
    # an internet ballot none"
    if p.get("channel") != "kiosk":
        if "kiosk" in p:
            _f(out, 14, "ballot.binding", "an internet ballot names a kiosk", i)
        return
    ref = kiosk_ref(p.get("kiosk"))
    if ref is None:
        _f(
            out,
            14,
            "ballot.binding",
            "a kiosk ballot's kiosk is missing or not exactly {kiosk_id (a kiosk id), session (>= 1), "
            "signature (128 lowercase hex)}",
            i,
        )
        return
    bh = p.get("ballot_hash")
    if key is None or not isinstance(bh, str) or not _HEX64.fullmatch(bh):
        return  # an unknown kiosk is the main pass's V31 failure; a malformed ballot_hash is V14's
    # V31 kiosk.ballots: "... and its signature verifies under that kiosk's enrolled key"
    kid, session, sig = ref
    if not ballot_signature_ok(ctx.election.base_hash, key, kid, session, bytes.fromhex(bh), sig):
        why = f"the kiosk signature does not verify under kiosk {kid}'s enrolled key"
        _f(out, 31, "kiosk.ballots", why, i)


def _decode_and_verify(
    out: BatchResult, ctx: BallotContext, etype: str, p: dict[str, Any], i: int
) -> EncryptedBallot | None:
    """V13 (and V14's election binding, V16) the strict way; the decoded ballot, or None if it does not
    decode."""
    try:
        ballot = EncryptedBallot.from_dict(p["ballot"])
    except (InvalidEncoding, ValueError, TypeError) as e:
        _f(out, 13, "ballot.proofs", f"ballot does not decode: {e}", i)
        return None
    # V16 ballot.spoiled: "Every spoiled ballot's revealed plaintexts and randomness re-encrypt exactly to
    # the published ciphertexts, and the plaintexts are a valid choice." verify_revealed verifies the
    # ballot itself first (V13/V14), so a spoiled ballot whose opening decodes is verified once, there.
    revealed: RevealedBallot | None = None
    if etype != EventType.BALLOT_CAST:
        try:
            revealed = RevealedBallot.from_dict(p.get("revealed"))
        except (ValueError, TypeError) as e:  # InvalidEncoding is a ValueError
            _f(out, 16, "ballot.spoiled", f"revealed ballot does not decode: {e}", i)
    try:
        if revealed is None:
            verify_ballot(ctx.election, ballot)
        else:
            verify_revealed(ctx.election, ballot, revealed)
    except BallotError as e:
        if e.check.startswith("revealed"):
            _f(out, 16, "ballot.spoiled", e.operator_message, i)
        elif e.check == "election-hash":
            _f(out, 14, "ballot.binding", "the ballot is bound to another election's base hash", i)
        else:
            _f(out, 13, "ballot.proofs", e.operator_message, i)
    except CryptoError as e:
        _f(out, 13, "ballot.proofs", e.operator_message, i)
    return ballot


def _entry_checks(
    out: BatchResult,
    ctx: BallotContext,
    i: int,
    line: bytes,
    entry: Any,
    kiosk_key: bytes | None,
    roll: Mapping[int, str | None],
    screened: Collection[bytes] | None,
) -> dict[str, Any]:
    """Everything of a ballot entry that does not depend on its ballot: V23, the payload's keys, V12 and the
    kiosk binding of a cast ballot. Returns the payload. ``screened``: the engine's V23 text screen of
    ``line``, if it made one."""
    etype, p = entry["type"], entry["payload"]
    # V23 record.privacy for this entry (the main process leaves ballot entries to the workers)
    for where, problem in scan_entry(etype, line, p, screened):
        _f(out, 23, "record.privacy", f"{problem} at {where}", i)
    if etype == EventType.BALLOT_CAST:
        keys = KIOSK_CAST_KEYS if p.get("channel") == "kiosk" else CAST_KEYS
    else:
        keys = SPOILED_KEYS
    if set(p) != keys:
        _f(out, 1, "record.format", f"{etype} payload keys {sorted(p)} differ from {sorted(keys)}", i)
    if etype == EventType.BALLOT_CAST:  # before the ballot is decoded: membership does not depend on it
        _check_roll_proof(out, ctx, p, i, roll)
        _check_kiosk(out, ctx, p, i, kiosk_key)
    return p  # type: ignore[no-any-return]


def _ballot_checks(
    out: BatchResult,
    acc: dict[tuple[str, str], Ciphertext],
    ctx: BallotContext,
    i: int,
    etype: str,
    p: dict[str, Any],
    engine_hash: bytes | None,
) -> None:
    """V13, V14 and V16 of the entry's ballot. ``engine_hash`` is the ballot hash of a cast ballot the
    engine found valid (its ciphertexts are in the engine's sum); any other ballot is decoded and verified
    the strict way, which names what is wrong."""
    if "ballot" not in p:
        return
    # V13 ballot.proofs: "Every cast and spoiled ballot has exactly the manifest's contests and selections,
    # valid group elements, a valid 0/1 proof per selection and a valid [min, max] proof per contest."
    ballot: EncryptedBallot | None = None
    if engine_hash is None:
        ballot = _decode_and_verify(out, ctx, etype, p, i)
        if ballot is None:
            return
        bh = ballot.ballot_hash()
    else:
        bh = engine_hash
    # V14 ballot.binding: "ballot_hash and tracking code recompute from the encrypted ballot"
    if p.get("ballot_hash") != bh.hex():
        _f(out, 14, "ballot.binding", "ballot_hash does not recompute from the ballot", i)
    if p.get("tracking_code") != tracking_code_from_hash(bh):
        _f(out, 14, "ballot.binding", "tracking_code does not recompute from the ballot hash", i)
    if etype == EventType.BALLOT_CAST:
        _check_auth(out, ctx, p, i)
        if ballot is not None:  # a refused ballot that decodes: summed as before (its entry fails anyway)
            out.summed.append(i)
            for c in ballot.contests:
                for s in c.selections:
                    key = (c.contest_id, s.selection_id)
                    prev = acc.get(key)
                    acc[key] = s.ciphertext if prev is None else prev + s.ciphertext


def _format_failure(out: BatchResult, i: int, e: Exception) -> None:
    _f(out, 1, "record.format", f"malformed ballot entry: {type(e).__name__}: {e}", i)


_ENTRY_ERRORS: Final = (KeyError, TypeError, ValueError, AttributeError)


def verify_batch(
    ctx: BallotContext,
    items: list[tuple[int, bytes]],
    kiosk_keys: Mapping[int, bytes] | None = None,
    entries: list[Any] | None = None,
) -> BatchResult:
    """V12 (roll proofs), V13, V14, V16 and V31 (kiosk signatures) for a batch of ``ballot.cast`` /
    ``ballot.spoiled`` entries; ``kiosk_keys`` holds, by ledger index, the enrolled key of the kiosk each
    kiosk ballot names (none for a kiosk no earlier entry enrols). The cast ballots are checked together
    by the context's ballot engine first. ``entries``, if given, holds each item's line already decoded
    (:func:`verifier._slices.verify_slice` decodes it once for both its own use and this one)."""
    out = BatchResult()
    acc: dict[tuple[str, str], Ciphertext] = {}
    keys = kiosk_keys or {}
    engine: BallotEngine = select_engine(ctx.engine)
    decoded: list[tuple[int, bytes, Any]] = []
    for n, (i, line) in enumerate(items):
        out.ballots += 1
        try:
            decoded.append((i, line, load_json(line) if entries is None else entries[n]))
        except _ENTRY_ERRORS as e:
            _format_failure(out, i, e)
    roll = _roll_verdicts(ctx, engine, [(i, entry) for i, _, entry in decoded])
    screens = engine.screen_literals([line for _, line, _ in decoded])
    parsed: list[tuple[int, str, dict[str, Any]]] = []
    for n, (i, line, entry) in enumerate(decoded):
        try:
            screened = None if screens is None else screens[n]
            p = _entry_checks(out, ctx, i, line, entry, keys.get(i), roll, screened)
            parsed.append((i, entry["type"], p))
        except _ENTRY_ERRORS as e:
            _format_failure(out, i, e)
    cast = [
        (k, p["ballot"])
        for k, (_, etype, p) in enumerate(parsed)
        if etype == EventType.BALLOT_CAST and "ballot" in p
    ]
    checked = engine.check_dicts(ctx.election, [d for _, d in cast], [True] * len(cast))
    hashes: dict[int, bytes] = {}
    for (k, _), h in zip(cast, checked.ballot_hashes, strict=True):
        if h is not None:
            hashes[k] = h
            out.summed.append(parsed[k][0])
    for k, (i, etype, p) in enumerate(parsed):
        try:
            _ballot_checks(out, acc, ctx, i, etype, p, hashes.get(k))
        except _ENTRY_ERRORS as e:
            _format_failure(out, i, e)
    for key, ct in checked.sums.items():
        prev = acc.get(key)
        acc[key] = ct if prev is None else prev + ct
    out.sums = {k: (ct.a.hex(), ct.b.hex()) for k, ct in acc.items()}
    out.failures.sort(key=lambda f: int(f["entry"]))  # stable: each entry's failures in the order found
    return out
