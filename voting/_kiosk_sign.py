"""What a polling-place kiosk signs, in one place for the server (:mod:`voting.service`) and the kiosk's
client (:mod:`voting.clients.kiosk`): the request headers, the four signed digests and the formats they
carry (``docs/kiosk.md``, "The server's kiosk API"; ``docs/events.md``, "Polling-place kiosks").

Every digest is ``crypto.tagged_sha256(purpose, items…)`` (``docs/protocol.md`` §4): a ``str`` item is its
UTF-8, an ``int`` a u64, ``bytes`` themselves. Each is signed with the kiosk's Ed25519 key (RFC 8032).

It imports nothing of the server (no web framework, no database), so a kiosk device loads it freely.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Final

from crypto import tagged_sha256

__all__ = [
    "CLOCK_SKEW_SECONDS",
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIME",
    "KIOSK_ID_RE",
    "POLL_WORKER_PIN_RE",
    "RFC3339_SECOND_RE",
    "ballot_digest",
    "closed_digest",
    "format_time",
    "opened_digest",
    "parse_time",
    "request_digest",
]

HEADER_ID: Final[str] = "Tvote-Kiosk-Id"
HEADER_TIME: Final[str] = "Tvote-Kiosk-Time"
HEADER_SIGNATURE: Final[str] = "Tvote-Kiosk-Signature"
#: a request, an opening or a closing more than this far from the server's clock is refused
CLOCK_SKEW_SECONDS: Final[int] = 300
#: ``kiosk.enrolled.kiosk_id`` (docs/events.md row 11c)
KIOSK_ID_RE: Final[re.Pattern[str]] = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
#: the poll-worker PIN the server issues: 8 digits
POLL_WORKER_PIN_RE: Final[re.Pattern[str]] = re.compile(r"[0-9]{8}")
#: ``opened_at`` / ``closed_at``: RFC 3339, UTC, to the second
RFC3339_SECOND_RE: Final[re.Pattern[str]] = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"
)


def request_digest(
    base_hash: bytes, kiosk_id: str, time_ms: int, method: str, path: str, body: bytes
) -> bytes:
    """What ``Tvote-Kiosk-Signature`` signs: ``tagged_sha256("kiosk-request", base_hash, utf8(kiosk_id),
    u64(time), utf8(METHOD), utf8(path), SHA-256(body))``; ``path`` as sent, without the query."""
    return tagged_sha256(
        "kiosk-request",
        base_hash,
        kiosk_id,
        time_ms,
        method.upper(),
        path,
        hashlib.sha256(body).digest(),
    )


def opened_digest(base_hash: bytes, kiosk_id: str, session: int, opened_at: str) -> bytes:
    """``kiosk.opened.kiosk_signature`` signs this (purpose ``kiosk-opened``)."""
    return tagged_sha256("kiosk-opened", base_hash, kiosk_id, session, opened_at)


def closed_digest(base_hash: bytes, kiosk_id: str, session: int, closed_at: str, kiosk_count: int) -> bytes:
    """``kiosk.closed.kiosk_signature`` signs this (purpose ``kiosk-closed``)."""
    return tagged_sha256("kiosk-closed", base_hash, kiosk_id, session, closed_at, kiosk_count)


def ballot_digest(base_hash: bytes, kiosk_id: str, session: int, ballot_hash: bytes) -> bytes:
    """``ballot.cast.kiosk.signature`` signs this (purpose ``kiosk-ballot``)."""
    return tagged_sha256("kiosk-ballot", base_hash, kiosk_id, session, ballot_hash)


def format_time(t: dt.datetime) -> str:
    """``t`` as RFC 3339 UTC to the second (``2027-04-18T09:00:00Z``)."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> dt.datetime:
    """The instant of an RFC 3339 UTC time to the second; ``ValueError`` for any other spelling."""
    if not RFC3339_SECOND_RE.fullmatch(text):
        raise ValueError("not an RFC 3339 UTC time to the second (2027-04-18T09:00:00Z)")
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
