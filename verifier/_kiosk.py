"""V30 kiosk.enrolment and V31 kiosk.ballots: the polling-place kiosks (``docs/events.md``, "Polling-place
kiosks").

The checks are the verifier's own: they share the event names with the service through ``ledger.events``,
the transcript hash with everyone through ``crypto.tagged_sha256`` and Ed25519 with libsodium through PyNaCl
(RFC 8032 verification as libsodium does it), nothing else. Where each part runs:

* ``kiosk.enrolled``, ``kiosk.revoked``, ``kiosk.opened``, ``kiosk.closed``: handlers of the main pass
  (:data:`EVENTS`), which keep each kiosk's state (:class:`verifier._state.Kiosk`: its key, its revocation,
  its sessions and the ballots of the open one) and verify the few opened/closed signatures themselves;
* a kiosk ballot: the main pass checks, at its entry, that the kiosk it names is enrolled and not revoked and
  that the session it names is open, and counts it for that session (:func:`kiosk_ballot`); it hands the
  kiosk's enrolled key to the worker that verifies the ballot, which verifies the kiosk's signature beside
  the ballot's proofs (:func:`ballot_signature_ok`, called by :mod:`verifier._ballots`). The form of
  ``ballot.cast.kiosk`` (present exactly on kiosk ballots, exactly its three keys) is V1's and V14's.

Their positions in the lifecycle (enrolment after the manifest and before ``voting.closed``, an opening while
voting is open, none advancing the phase) are V8's (:func:`verifier._phases.check_order`). A record without
any kiosk entry or kiosk ballot reports V30 and V31 n/a.
"""

from __future__ import annotations

import re
from typing import Any, Final, NoReturn

import nacl.exceptions
from nacl.bindings import crypto_core_ed25519_is_valid_point
from nacl.signing import VerifyKey

from crypto import tagged_sha256
from ledger.events import EventType
from ledger.record import TextRuleError, check_display_text

from ._checks import fail
from ._lang import text
from ._manifest import parse_time
from ._report import Report
from ._state import BOUND, HEX64, Event, Kiosk, State

__all__ = [
    "EVENTS",
    "ballot_digest",
    "ballot_signature_ok",
    "closed_digest",
    "kiosk_ballot",
    "kiosk_ref",
    "kiosks_done",
    "opened_digest",
]

#: a kiosk id (docs/events.md row 11c)
KIOSK_ID: Final[re.Pattern[str]] = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_HEX128: Final[re.Pattern[str]] = re.compile(r"[0-9a-f]{128}")
#: the longest polling place and revocation reason (code points), as the server enforces them
MAX_PLACE: Final[int] = 200
MAX_REASON: Final[int] = 500
#: ``ballot.cast.kiosk``
REF_KEYS: Final[frozenset[str]] = frozenset({"kiosk_id", "session", "signature"})
_ENROLLED_KEYS: Final[frozenset[str]] = BOUND | {"kiosk_id", "public_key", "polling_place"}
_REVOKED_KEYS: Final[frozenset[str]] = BOUND | {"kiosk_id", "reason"}
_OPENED_KEYS: Final[frozenset[str]] = BOUND | {"kiosk_id", "session", "opened_at", "kiosk_signature"}
_CLOSED_KEYS: Final[frozenset[str]] = BOUND | {
    "kiosk_id",
    "session",
    "closed_at",
    "ballots_cast",
    "kiosk_count",
    "kiosk_signature",
}
_U64: Final[int] = 2**64
E = EventType


# ---------------------------------------------------------------------------------------- the signed digests
def opened_digest(base_hash: bytes, kiosk_id: str, session: int, opened_at: str) -> bytes:
    """What ``kiosk.opened.kiosk_signature`` signs (docs/events.md, "Polling-place kiosks")."""
    return tagged_sha256("kiosk-opened", base_hash, kiosk_id, session, opened_at)


def closed_digest(base_hash: bytes, kiosk_id: str, session: int, closed_at: str, kiosk_count: int) -> bytes:
    """What ``kiosk.closed.kiosk_signature`` signs."""
    return tagged_sha256("kiosk-closed", base_hash, kiosk_id, session, closed_at, kiosk_count)


def ballot_digest(base_hash: bytes, kiosk_id: str, session: int, ballot_hash: bytes) -> bytes:
    """What ``ballot.cast.kiosk.signature`` signs."""
    return tagged_sha256("kiosk-ballot", base_hash, kiosk_id, session, ballot_hash)


def _signature_ok(public_key: bytes, digest: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s Ed25519 signature of ``digest`` (libsodium verifies)."""
    try:
        VerifyKey(public_key).verify(digest, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


# ---------------------------------------------------------------------------------------------- the values
def _id_ok(v: Any) -> bool:
    return isinstance(v, str) and KIOSK_ID.fullmatch(v) is not None


def _session_ok(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v < _U64


def _count_ok(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _U64


def _signature(v: Any) -> bytes | None:
    return bytes.fromhex(v) if isinstance(v, str) and _HEX128.fullmatch(v) else None


def kiosk_ref(obj: Any) -> tuple[str, int, bytes] | None:
    """``ballot.cast.kiosk`` as ``(kiosk_id, session, signature)``, or None unless it is exactly
    ``{kiosk_id, session (>= 1), signature (128 lowercase hex)}``."""
    if not isinstance(obj, dict) or set(obj) != REF_KEYS:
        return None
    kid, session, sig = obj["kiosk_id"], obj["session"], _signature(obj["signature"])
    if not _id_ok(kid) or not _session_ok(session) or sig is None:
        return None
    return kid, session, sig


def ballot_signature_ok(
    base_hash: bytes, public_key: bytes, kiosk_id: str, session: int, ballot_hash: bytes, signature: bytes
) -> bool:
    """V31 kiosk.ballots: "... and its signature verifies under that kiosk's enrolled key" (the worker's
    part, over the published ``ballot_hash``, which V14 recomputes from the ballot)."""
    return _signature_ok(public_key, ballot_digest(base_hash, kiosk_id, session, ballot_hash), signature)


# ----------------------------------------------------------------------------------------- the kiosk entries
def _bad(i: int, message: str) -> NoReturn:
    fail("kiosk.enrolment", message, entry=i)


def _text(value: Any, max_chars: int, what: str, i: int) -> None:
    try:
        check_display_text(value, max_chars=max_chars)
    except TextRuleError as e:
        _bad(i, f"{what} {e}")


def _base_hash(st: State) -> bytes:
    assert st.info is not None
    return st.info.base_hash


def kiosk_enrolled(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    # V30 kiosk.enrolment: "kiosk.enrolled is exactly {kiosk_id, public_key, polling_place}: kiosk_id a kiosk
    # id, public_key a valid Ed25519 point, polling_place the manifest text rule (at most 200 code points);
    # a kiosk_id and a public_key are each enrolled once"
    st.kiosk_seen = True
    if set(p) != _ENROLLED_KEYS:
        _bad(i, "kiosk.enrolled is exactly {kiosk_id, public_key, polling_place}")
    kid, key = p["kiosk_id"], p["public_key"]
    if not _id_ok(kid):
        _bad(i, f"kiosk_id is not a kiosk id ({KIOSK_ID.pattern})")
    if (
        not isinstance(key, str)
        or not HEX64.fullmatch(key)
        or not crypto_core_ed25519_is_valid_point(bytes.fromhex(key))
    ):
        _bad(i, f"kiosk {kid}: public_key is not an Ed25519 public key (64 lowercase hex, a valid point)")
    _text(p["polling_place"], MAX_PLACE, f"kiosk {kid}: polling_place", i)
    earlier = st.kiosks.get(kid)
    if earlier is not None:
        _bad(i, f"kiosk {kid} is already enrolled (entry {earlier.entry}): a replacement is a new kiosk")
    other = st.kiosk_keys.get(key)
    if other is not None:
        first = st.kiosks[other].entry
        _bad(i, f"kiosk {kid}: its public key is already enrolled, for kiosk {other} (entry {first})")
    st.kiosks[kid] = Kiosk(i, bytes.fromhex(key))
    st.kiosk_keys[key] = kid


def kiosk_revoked(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    # V30 kiosk.enrolment: "kiosk.revoked is exactly {kiosk_id, reason} and names a kiosk enrolled at an
    # earlier entry, once"
    st.kiosk_seen = True
    if set(p) != _REVOKED_KEYS or not _id_ok(p["kiosk_id"]):
        _bad(i, "kiosk.revoked is exactly {kiosk_id (a kiosk id), reason}")
    kid = p["kiosk_id"]
    _text(p["reason"], MAX_REASON, f"kiosk {kid}: the reason", i)
    k = st.kiosks.get(kid)
    if k is None:
        _bad(i, f"kiosk.revoked names kiosk {kid}, which no earlier kiosk.enrolled enrols")
    if k.revoked is not None:
        _bad(i, f"kiosk {kid} is already revoked (entry {k.revoked})")
    k.revoked = i


def _acting_kiosk(st: State, i: int, etype: str, kid: str) -> Kiosk:
    """The kiosk an opening or closing names: enrolled at an earlier entry and not revoked at this one."""
    k = st.kiosks.get(kid)
    if k is None:
        _bad(i, f"{etype} names kiosk {kid}, which no earlier kiosk.enrolled enrols")
    if k.revoked is not None:
        _bad(i, f"{etype} names kiosk {kid}, revoked at entry {k.revoked}")
    return k


def kiosk_opened(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    # V30 kiosk.enrolment: "sessions 1, 2, ... in ledger order, kiosk.opened and kiosk.closed alternating,
    # each by a kiosk enrolled earlier and not revoked at that entry; kiosk_signature verifies over
    # tagged_sha256("kiosk-opened", base_hash, kiosk_id, u64(session), opened_at)"
    st.kiosk_seen = True
    bad = (
        "kiosk.opened is exactly {kiosk_id, session (>= 1), opened_at (UTC time to the second), "
        "kiosk_signature (128 lowercase hex)}"
    )
    if set(p) != _OPENED_KEYS:
        _bad(i, bad)
    kid, session, at = p["kiosk_id"], p["session"], p["opened_at"]
    sig = _signature(p["kiosk_signature"])
    if not _id_ok(kid) or not _session_ok(session) or parse_time(at) is None or sig is None:
        _bad(i, bad)
    k = _acting_kiosk(st, i, etype, kid)
    problems = []
    if k.open_entry is not None:
        problems.append(f"its session {k.session} is still open (entry {k.open_entry})")
    elif session != k.session + 1:
        problems.append(f"session {session} is not its next session ({k.session + 1})")
    if not _signature_ok(k.public_key, opened_digest(_base_hash(st), kid, session, at), sig):
        problems.append("kiosk_signature does not verify under the kiosk's enrolled key")
    # the kiosk's state follows the entry, so that one wrong entry is reported once, not at every later one
    k.session, k.open_entry, k.ballots = session, i, 0
    if problems:
        _bad(i, f"kiosk {kid} opens session {session}: " + "; ".join(problems))


def kiosk_closed(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    # V30 kiosk.enrolment: "kiosk.closed closes the open session of a kiosk not revoked at that entry;
    # ballots_cast is the number of kiosk ballots of that kiosk and session before it; kiosk_signature
    # verifies over tagged_sha256("kiosk-closed", base_hash, kiosk_id, u64(session), closed_at,
    # u64(kiosk_count)); a kiosk_count other than ballots_cast is reported, not an error"
    st.kiosk_seen = True
    bad = (
        "kiosk.closed is exactly {kiosk_id, session (>= 1), closed_at (UTC time to the second), "
        "ballots_cast (>= 0), kiosk_count (>= 0), kiosk_signature (128 lowercase hex)}"
    )
    if set(p) != _CLOSED_KEYS:
        _bad(i, bad)
    kid, session, at = p["kiosk_id"], p["session"], p["closed_at"]
    cast, counted = p["ballots_cast"], p["kiosk_count"]
    sig = _signature(p["kiosk_signature"])
    if (
        not _id_ok(kid)
        or not _session_ok(session)
        or parse_time(at) is None
        or not _count_ok(cast)
        or not _count_ok(counted)
        or sig is None
    ):
        _bad(i, bad)
    k = _acting_kiosk(st, i, etype, kid)
    problems = []
    if k.open_entry is None:
        problems.append(f"it has no open session (its last is {k.session})")
    elif session != k.session:
        problems.append(f"its open session is {k.session} (entry {k.open_entry})")
    elif cast != k.ballots:
        problems.append(
            f"ballots_cast is {cast}, but the ledger holds {k.ballots} ballots of this kiosk and session "
            "before this entry"
        )
    digest = closed_digest(_base_hash(st), kid, session, at, counted)
    if not _signature_ok(k.public_key, digest, sig):
        problems.append("kiosk_signature does not verify under the kiosk's enrolled key")
    if counted != cast:
        report.notes.append(
            f"V30 kiosk.enrolment: kiosk {kid} closed session {session} at entry {i} having counted "
            f"{counted} ballots itself, the ledger {cast} (not an error: an acknowledgement lost on the "
            "network, docs/kiosk.md)"
        )
    k.open_entry, k.ballots = None, 0
    if problems:
        _bad(i, f"kiosk {kid} closes session {session}: " + "; ".join(problems))


# ------------------------------------------------------------------------------------------ the kiosk ballots
def kiosk_ballot(report: Report, st: State, i: int, p: dict[str, Any]) -> bytes | None:
    """V31 kiosk.ballots, the main pass's part for the ``ballot.cast`` at entry ``i``: "every kiosk ballot
    names a kiosk enrolled at an earlier entry, not revoked at this one, whose session it names is open at
    this entry". Counts the ballot for its session (``kiosk.closed.ballots_cast``). Returns the kiosk's
    enrolled key, whose signature the worker verifies, or None (not a kiosk ballot; an unknown kiosk; a
    ``kiosk`` object that is not well formed, which is V1's and V14's)."""
    if "kiosk" in p or p.get("channel") == "kiosk":
        st.kiosk_seen = True
    if p.get("channel") != "kiosk":
        return None
    ref = kiosk_ref(p.get("kiosk"))
    if ref is None:
        return None
    kid, session, _ = ref
    k = st.kiosks.get(kid)
    if k is None:
        why = f"the ballot names kiosk {kid}, which no earlier kiosk.enrolled enrols"
        fail("kiosk.ballots", why, entry=i)
    if k.revoked is not None:
        why = f"kiosk {kid} was revoked at entry {k.revoked}, before this ballot"
        report.fail("kiosk.ballots", why, entry=i)
    elif k.open_entry is None or session != k.session:
        now = f"its open session is {k.session}" if k.open_entry is not None else "it has no open session"
        report.fail(
            "kiosk.ballots", f"session {session} of kiosk {kid} is not open at this entry ({now})", entry=i
        )
    else:
        k.ballots += 1
    return k.public_key


def kiosks_done(report: Report, st: State) -> None:
    """V30 and V31 pass (unless they failed), or are n/a in a record without any kiosk entry or ballot."""
    for check in ("kiosk.enrolment", "kiosk.ballots"):
        if st.kiosk_seen:
            report.passed(check)
        else:
            report.not_applicable(check, text("why.no-kiosk"))


EVENTS: Final[dict[str, Event]] = {
    E.KIOSK_ENROLLED: Event("kiosk.enrolment", kiosk_enrolled),
    E.KIOSK_REVOKED: Event("kiosk.enrolment", kiosk_revoked),
    E.KIOSK_OPENED: Event("kiosk.enrolment", kiosk_opened),
    E.KIOSK_CLOSED: Event("kiosk.enrolment", kiosk_closed),
}
