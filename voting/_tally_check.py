"""Before a trustee decrypts: establish, from the public ledger alone, what it is asked to decrypt.

A trustee never decrypts what the server calls "the tally" on its word. :func:`check_tally` (run by
:meth:`voting.clients.trustee.Trustee.decrypt` before any partial decryption is computed):

1. fetches the checkpoint to rely on: the newest one the witness quorum cosigned
   (``GET /ledger/checkpoint/witnessed``; trustees decrypt one after another and each partial decryption
   is a new entry, so the newest checkpoint is usually not cosigned yet), or the newest one
   (``GET /ledger/checkpoint``) when none is (refused below unless the manifest names no witnesses); and
   every entry it covers
   (``GET /ledger/entries``, pages of at most 1000), and writes them as an election record
   (``docs/record.md``: ``record.json``, ``checkpoints.jsonl`` with that one checkpoint,
   ``entries.jsonl``) in a private temporary directory;
2. runs the public verifier on it (:func:`verifier.verify_record`, ``partial=True``: the record may stop
   before the result), with the base hash this trustee's key was generated for pinned, and the log key
   pinned when the trustee was given one. So every check of ``docs/verifier.md`` that applies before the
   result holds, the same code as an auditor's: the hash chain and the Merkle root of the entries equal
   the checkpoint's (V1-V3), the checkpoint's Ed25519 signature (V4), the cosignatures of the witnesses
   *named in the manifest* reaching its quorum (V5), the manifest taken from entry 0 and its base hash
   (V7), the key ceremony (V9-V11), every ballot's proofs and binding (V12-V16), the counted set
   re-derived by the re-vote rule (V17) and ``tally.encrypted`` equal to the sum of the counted ballots
   (V18);
3. requires a ``tally.encrypted`` entry under that checkpoint, this trustee's own commitments in its
   ``trustee.registered`` entry, and its public share in ``election.joint-key``; and the server's
   ``GET /election/tally`` answer equal to that entry.

Only then does the caller decrypt, and it decrypts the ciphertexts of the ledger entry (not of any API
answer). Anything else raises :class:`TallyRefused` with a stable ``code`` (:data:`REFUSAL_CODES`) and
nothing is submitted. Cost: that of the verifier (linear in the ledger; each ballot's proofs are
verified, because a ballot the verifier would refuse, e.g. a re-randomised copy of another voter's
ballot, must not be decrypted inside a sum; ``workers`` spreads the ballots over processes).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from crypto import JointKey, TrusteeCommitments, TrusteeKey
from ledger import LedgerError
from ledger.events import EventType
from ledger.record import (
    CheckpointRecord,
    CosignatureBundle,
    LogKey,
    RecordHeader,
    RecordWriter,
    WitnessKey,
    WitnessPolicy,
    from_hex,
)
from verifier import Options, Report, VerifierError, verify_record

from .clients._http import read_error
from .clients.trustee import ApiError, TrusteeStateError

__all__ = ["REFUSAL_CODES", "CheckedTally", "TallyRefused", "check_tally"]

#: every reason a trustee refuses to decrypt, by stable code (docs/protocol-trustees.md)
REFUSAL_CODES: Final[dict[str, str]] = {
    "tally.checkpoint_signature": "the checkpoint's signature does not verify under the log key",
    "tally.unwitnessed": "the checkpoint lacks the manifest's witness quorum of valid cosignatures",
    "tally.ledger_mismatch": "the served entries do not match the signed checkpoint (altered or forked)",
    "tally.other_election": "the ledger's manifest is not the one this trustee's key belongs to",
    "tally.not_on_ledger": "no tally.encrypted entry is included under the checkpoint",
    "tally.counting_rule": "the counted set is not the one the re-vote rule derives from the ledger",
    "tally.not_the_sum": "tally.encrypted is not the sum of the counted ballots",
    "tally.record_invalid": "the ledger fails another check of the public verifier",
    "tally.key_mismatch": "this trustee's key is not the one the ledger's key ceremony produced",
    "tally.served_differs": "the server's /election/tally differs from the tally.encrypted entry",
    "tally.malformed": "the server's ledger answer is malformed",
}

#: verifier check step -> refusal code; the first failing step in this order names the refusal
_BY_STEP: Final[tuple[tuple[int, str], ...]] = (
    (4, "tally.checkpoint_signature"),
    (5, "tally.unwitnessed"),
    (1, "tally.ledger_mismatch"),
    (2, "tally.ledger_mismatch"),
    (3, "tally.ledger_mismatch"),
    (6, "tally.ledger_mismatch"),
    (7, "tally.other_election"),
    (17, "tally.counting_rule"),
    (18, "tally.not_the_sum"),
)
_PAGE: Final[int] = 1000


class TallyRefused(TrusteeStateError):
    """The trustee refuses to decrypt: ``code`` is one of :data:`REFUSAL_CODES`, ``message`` its sentence
    there followed by ``detail``; ``failures`` lists the verifier's failed checks (operator messages) when
    the refusal comes from them."""

    def __init__(self, code: str, detail: str, failures: tuple[str, ...] = ()) -> None:
        if code not in REFUSAL_CODES:  # pragma: no cover - a programming error
            raise ValueError(f"unregistered refusal code {code!r}")
        self.detail, self.failures = detail, failures
        super().__init__(code, f"{REFUSAL_CODES[code]}: {detail}")


@dataclass(frozen=True, slots=True)
class CheckedTally:
    """What the checks established: the checkpoint relied on and the ``tally.encrypted`` payload under it."""

    checkpoint_size: int
    checkpoint_note: str
    tally_index: int
    tally: dict[str, Any]
    witnessed_by: tuple[str, ...]


def _get(http: httpx.Client, path: str, params: Mapping[str, int] | None = None) -> Any:
    r = http.get("/api/v1" + path, params=params)
    if r.status_code >= 400:
        code, message, _ = read_error(r)
        raise ApiError(r.status_code, code, message)
    try:
        return r.json()
    except ValueError:
        raise TallyRefused("tally.malformed", f"GET {path} did not answer JSON") from None


def _malformed(what: str) -> TallyRefused:
    return TallyRefused("tally.malformed", what)


def _header(witnesses: Any, log_key: str | None, size: int) -> RecordHeader:
    """``record.json``: the pinned log key if given (else the server's) and the served witness policy; the
    verifier's V5 then requires that policy to be the manifest's."""
    if not isinstance(witnesses, dict):
        raise _malformed("GET /ledger/witnesses is not an object")
    try:
        key = LogKey.from_vkey(log_key if log_key is not None else witnesses["log_key"])
        raw = witnesses["witnesses"]
        if not isinstance(raw, list):
            raise TypeError("witnesses is not a list")
        policy = WitnessPolicy(tuple(WitnessKey.from_json(w) for w in raw), witnesses["quorum"])
    except (KeyError, TypeError, LedgerError) as e:
        raise _malformed(f"GET /ledger/witnesses: {e}") from None
    return RecordHeader(key, policy, size, 1)


def _relied_checkpoint(http: httpx.Client, served_policy: Any) -> Any:
    """The newest witnessed checkpoint if the served policy has a quorum and one exists, else the newest.
    Whatever is served is then held to the manifest by the verifier (V4, V5): a server that calls an
    uncosigned checkpoint witnessed, or serves a policy other than the manifest's, is refused there."""
    quorum = served_policy.get("quorum") if isinstance(served_policy, dict) else None
    if isinstance(quorum, int) and not isinstance(quorum, bool) and quorum >= 1:
        try:
            return _get(http, "/ledger/checkpoint/witnessed")
        except ApiError as e:
            if e.status != 404:
                raise
    return _get(http, "/ledger/checkpoint")


def _checkpoint(cp: Any) -> CheckpointRecord:
    if not isinstance(cp, dict):
        raise _malformed("GET /ledger/checkpoint is not an object")
    try:
        cos = cp["cosignatures"]
        bundle = None if cos is None else CosignatureBundle.from_json(cos)
        size, issued = cp["size"], cp["issued_at"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (size, issued)):
            raise TypeError("size and issued_at are non-negative integers")
        if not isinstance(cp["note"], str):
            raise TypeError("note is text")
        return CheckpointRecord(size, from_hex(cp["root"], 32, "root"), cp["note"], issued, None, (), bundle)
    except (KeyError, TypeError, LedgerError) as e:
        raise _malformed(f"GET /ledger/checkpoint: {e}") from None


@dataclass
class _Seen:
    """The few non-ballot entries the trustee needs after the verifier has passed the record."""

    tally: tuple[int, dict[str, Any]] | None = None
    joint_key: dict[str, Any] | None = None
    registered: dict[int, Any] = field(default_factory=dict)


def _download(http: httpx.Client, size: int, writer: RecordWriter) -> _Seen:
    """Add entries ``[0, size)`` to the record ``writer``, as served (the verifier judges them)."""
    seen = _Seen()
    start = 0
    while start < size:
        stop = min(size, start + _PAGE)
        got = _get(http, "/ledger/entries", {"start": start, "stop": stop})
        items = got.get("entries") if isinstance(got, dict) else None
        if not isinstance(items, list) or not items:
            raise TallyRefused(
                "tally.ledger_mismatch",
                f"the server serves no entries from {start} although its checkpoint covers {size}",
            )
        for item in items:
            if (
                not isinstance(item, dict)
                or item.get("index") != start
                or not isinstance(item.get("entry"), str)
            ):
                raise TallyRefused(
                    "tally.ledger_mismatch", f"the server's entries answer is not entry {start}"
                )
            text: str = item["entry"]
            if "\n" in text:
                raise TallyRefused("tally.ledger_mismatch", f"the server's entry {start} is not one line")
            writer.add_entry(text.encode("utf-8"))
            if '"type":"ballot.' not in text:  # ballots are the verifier's alone
                _note(seen, start, text)
            start += 1
            if start == stop:
                break
    return seen


def _note(seen: _Seen, index: int, text: str) -> None:
    try:
        obj = json.loads(text)
        etype, payload = obj["type"], obj["payload"]
    except (ValueError, KeyError, TypeError):
        return  # the verifier names a malformed entry (V1)
    if not isinstance(payload, dict):
        return
    if etype == EventType.TALLY_ENCRYPTED and seen.tally is None:
        seen.tally = (index, payload)
    elif etype == EventType.JOINT_KEY:
        seen.joint_key = payload
    elif etype == EventType.TRUSTEE_REGISTERED and isinstance(trustee := payload.get("trustee"), int):
        seen.registered.setdefault(trustee, payload.get("commitments"))


def _refusal(report: Report) -> TallyRefused:
    failed = set(report.failed_steps())
    code = next((c for step, c in _BY_STEP if step in failed), "tally.record_invalid")
    msgs = tuple(f.operator_message for f in report.failures)
    first = msgs[0] if msgs else "the verifier reports a failed check"
    for f in report.failures:  # the message of the check that named the refusal
        if any(c == code and step == f.step for step, c in _BY_STEP):
            first = f.operator_message
            break
    more = f" (and {len(msgs) - 1} more failed check(s))" if len(msgs) > 1 else ""
    return TallyRefused(code, f"{first}{more}", msgs)


def _check_key(key: TrusteeKey, commitments: TrusteeCommitments, seen: _Seen) -> None:
    """This trustee's commitments in its ``trustee.registered`` entry, its public share in the joint key."""
    mine, p = seen.registered.get(key.trustee), seen.joint_key
    try:
        if mine is None or TrusteeCommitments.from_dict(mine) != commitments:
            why = f"the ledger's trustee.registered entry of trustee {key.trustee} is not this trustee's"
        elif p is None:
            why = "the ledger has no election.joint-key entry"
        else:
            names = ("base_hash", "threshold", "qualified", "joint_key", "public_shares")
            jk = JointKey.from_dict({k: p.get(k) for k in names})
            if key.trustee in jk.qualified and jk.public_share(key.trustee) == key.public_share:
                return
            why = f"trustee {key.trustee}'s public share in election.joint-key is not this key's"
    except (ValueError, TypeError, KeyError) as e:  # crypto's InvalidEncoding is a ValueError
        why = f"the ledger's ceremony entries do not decode: {e}"
    raise TallyRefused("tally.key_mismatch", why)


def check_tally(
    http: httpx.Client,
    *,
    key: TrusteeKey,
    commitments: TrusteeCommitments,
    log_key: str | None = None,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> CheckedTally:
    """Establish the tally to decrypt from the public ledger (module docstring); raise :class:`TallyRefused`
    unless every check holds. ``key`` and ``commitments`` are this trustee's; ``log_key`` a pinned log
    verifier key (C2SP vkey) obtained out of band, if any."""
    served_policy = _get(http, "/ledger/witnesses")
    cp = _checkpoint(_relied_checkpoint(http, served_policy))
    header = _header(served_policy, log_key, cp.size)
    tmp = Path(tempfile.mkdtemp(prefix="tvote-trustee-check-"))
    try:
        with RecordWriter(tmp) as writer:
            seen = _download(http, cp.size, writer)
            writer.seal(header, [cp])
        # a manifest without witnesses (development) is held to what it says: V5 still compares the served
        # witness policy with the manifest's, so quorum 0 cannot be claimed for a witnessed election
        opts = Options(
            workers=workers,
            partial=True,
            base_hash=key.base_hash.hex(),
            log_key=log_key,
            unsafe_allow_unwitnessed=header.policy.quorum == 0,
        )
        try:
            report = verify_record(tmp, opts, progress=progress)
        except VerifierError as e:  # RecordUnreadable
            raise TallyRefused("tally.ledger_mismatch", f"the served ledger cannot be read: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not report.ok:
        raise _refusal(report)
    if seen.tally is None:
        raise TallyRefused(
            "tally.not_on_ledger",
            f"checkpoint of size {cp.size}; once the tally is computed, the commission issues a checkpoint "
            "covering it (tvote admin checkpoint) and the witnesses cosign it",
        )
    _check_key(key, commitments, seen)
    index, payload = seen.tally
    served = _get(http, "/election/tally")
    if not isinstance(served, dict) or any(
        served.get(k) != payload.get(k) for k in ("election_id", "base_hash", "ciphertexts", "counted_root")
    ):
        raise TallyRefused(
            "tally.served_differs",
            f"ledger entry {index}; the server contradicts its own ledger",
        )
    signers = cp.cosignatures.signers if cp.cosignatures is not None else ()
    return CheckedTally(cp.size, cp.note, index, payload, signers)
