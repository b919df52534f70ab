"""The polling-place kiosk's client: its own key, and every request to the server signed with it.

::

    key = KioskKey.generate()                 # Ed25519 (PyNaCl SigningKey)
    key.save(state_dir / "kiosk-key")         # the 32-byte seed, mode 0600
    print(key.public_key_hex, key.fingerprint)  # what the commission enrols (`tvote admin kiosk enrol`)

    api = KioskApi(httpx.Client(base_url="https://vote.example.jp"), key, "tsukuba-city-hall-1")
    api.open(1, poll_worker_pin)              # kiosk.opened: the zero report
    ch = api.challenge()
    receipt = api.cast(ballot, card_submission, ch, session=1)
    api.close(1, kiosk_count, poll_worker_pin)

Every request carries ``Tvote-Kiosk-Id``, ``Tvote-Kiosk-Time`` (milliseconds, strictly increasing per
client; a :class:`KioskApi` sends its signed requests one at a time, so it may be shared by threads) and
``Tvote-Kiosk-Signature`` over the request (``docs/kiosk.md``, "The server's kiosk API"); the opening,
the closing and each ballot are also signed as the record keeps them (``docs/events.md``, "Polling-place
kiosks"). The election's base hash, which every signature covers, comes from
``GET /api/v1/election`` (read once).

Errors: every refusal by the server is a :class:`KioskApiError` (``status``, ``code``, ``message``,
``details``, e.g. ``{"tries_left": 3}``); no answer at all (``httpx.TransportError`` and its subclasses)
propagates unchanged, so the kiosk can tell "refused" from "not known whether it arrived".

Nothing here imports the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from nacl.signing import SigningKey

from crypto import EncryptedBallot
from ledger.files import write_atomic

from .._kiosk_sign import (
    HEADER_ID,
    HEADER_SIGNATURE,
    HEADER_TIME,
    KIOSK_ID_RE,
    ballot_digest,
    closed_digest,
    format_time,
    opened_digest,
    request_digest,
)

if TYPE_CHECKING:  # the server's authentication package is not loaded by a client
    from voting.auth import JpkiSubmission

__all__ = ["KioskApi", "KioskApiError", "KioskKey"]

_API = "/api/v1"
_SEED_BYTES = 32


class KioskApiError(Exception):
    """The server refused a kiosk request: ``status`` (HTTP), ``code`` (``kiosk.*`` or the intake's code),
    ``message`` and ``details`` (a dict; e.g. ``tries_left`` after a wrong poll-worker PIN). Also raised,
    with ``status`` 0, for a bad key file or an answer that is not the documented shape."""

    def __init__(
        self, status: int, code: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(f"{code}: {message}")


class KioskKey:
    """The kiosk's Ed25519 key pair (PyNaCl). Only the 32-byte seed is stored."""

    __slots__ = ("_sk",)

    def __init__(self, signing_key: SigningKey) -> None:
        self._sk = signing_key

    @classmethod
    def generate(cls) -> KioskKey:
        return cls(SigningKey.generate())

    @classmethod
    def load(cls, path: str | Path) -> KioskKey:
        """Read a seed written by :meth:`save`: exactly 32 bytes, not readable by group or others."""
        p = Path(path)
        try:
            st = p.stat()
            raw = p.read_bytes()
        except OSError as e:
            raise KioskApiError(0, "kiosk.key_file", f"cannot read the kiosk key {p}: {e.strerror}") from e
        if os.name == "posix" and st.st_mode & 0o077:
            raise KioskApiError(0, "kiosk.key_file", f"the kiosk key {p} is readable by others (chmod 600)")
        if len(raw) != _SEED_BYTES:
            raise KioskApiError(
                0, "kiosk.key_file", f"the kiosk key {p} is not a 32-byte Ed25519 seed ({len(raw)} bytes)"
            )
        return cls(SigningKey(raw))

    def save(self, path: str | Path) -> None:
        """Write the seed (mode 0600, atomically; an existing file is never replaced)."""
        write_atomic(Path(path), bytes(self._sk), mode=0o600, overwrite=False)

    @property
    def public_key(self) -> bytes:
        return bytes(self._sk.verify_key)

    @property
    def public_key_hex(self) -> str:
        """64 hex: what ``tvote admin kiosk enrol --public-key`` takes."""
        return self.public_key.hex()

    @property
    def fingerprint(self) -> str:
        """The first 16 bytes of SHA-256(public key) in groups of 4 hex digits, to read out at enrolment."""
        h = hashlib.sha256(self.public_key).hexdigest()[:32]
        return " ".join(h[i : i + 4] for i in range(0, 32, 4))

    def sign(self, digest: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``digest``."""
        return bytes(self._sk.sign(digest).signature)


class KioskApi:
    """Signed requests of one enrolled kiosk to the election server (``http.base_url`` = the server root)."""

    def __init__(self, http: httpx.Client, key: KioskKey, kiosk_id: str) -> None:
        if not KIOSK_ID_RE.fullmatch(kiosk_id):
            raise ValueError("a kiosk id is 1-63 lowercase letters, digits and '-', not starting with '-'")
        self.http = http
        self.key = key
        self.kiosk_id = kiosk_id
        self._base_hash: bytes | None = None
        self._lock = threading.Lock()
        self._last_ms = 0

    # ------------------------------------------------------------------------------------------ plumbing

    @property
    def base_hash(self) -> bytes:
        """The election's base hash (``GET /api/v1/election``, read once)."""
        if self._base_hash is None:
            r = self.http.get(f"{_API}/election")
            data = self._answer(r)
            try:
                bh = bytes.fromhex(str(data["base_hash"]))
            except (KeyError, ValueError, TypeError) as e:
                raise KioskApiError(r.status_code, "kiosk.answer", "the election has no base hash") from e
            if len(bh) != 32:
                raise KioskApiError(r.status_code, "kiosk.answer", "the election's base hash is not 32 bytes")
            self._base_hash = bh
        return self._base_hash

    def _now_ms(self) -> int:
        """The kiosk's clock in milliseconds, strictly increasing across this client's requests (called with
        the lock held)."""
        self._last_ms = max(time.time_ns() // 1_000_000, self._last_ms + 1)
        return self._last_ms

    @staticmethod
    def _answer(r: httpx.Response) -> Any:
        if r.status_code >= 400:
            code, message = f"http.{r.status_code}", r.text[:200]
            details: dict[str, Any] = {}
            try:
                err = r.json()["error"]
                code, message = str(err["code"]), str(err["message"])
                d = err.get("details")
                details = d if isinstance(d, dict) else ({"problems": d} if d is not None else {})
            except (ValueError, KeyError, TypeError):
                pass
            raise KioskApiError(r.status_code, code, message, details)
        try:
            return r.json()
        except ValueError as e:
            raise KioskApiError(r.status_code, "kiosk.answer", "the server's answer is not JSON") from e

    def _signed(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """Send one signed kiosk request (``path`` below ``/api/v1``) and return its JSON answer."""
        base_hash = self.base_hash
        full = _API + path
        content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode("utf-8")
        # one signed request at a time: the server refuses a time that is not later than the last one it
        # accepted from this kiosk, so two requests overtaking each other would refuse the later-signed one
        with self._lock:
            t = self._now_ms()
            sig = self.key.sign(request_digest(base_hash, self.kiosk_id, t, method, full, content))
            headers = {HEADER_ID: self.kiosk_id, HEADER_TIME: str(t), HEADER_SIGNATURE: sig.hex()}
            if body is not None:
                headers["Content-Type"] = "application/json"
            r = self.http.request(method, full, content=content, headers=headers)
        return self._answer(r)

    # -------------------------------------------------------------------------------------------- calls

    def status(self) -> dict[str, Any]:
        """``{kiosk_id, polling_place, election_id, base_hash, state, session, ballots_cast}``."""
        out: dict[str, Any] = self._signed("GET", "/kiosk/status")
        return out

    def open(self, session: int, poll_worker_pin: str, *, opened_at: str | None = None) -> dict[str, Any]:
        """Open ``session`` (the next one): ``{ledger_index, entry_hash, entry}`` of ``kiosk.opened``."""
        at = opened_at if opened_at is not None else format_time_now()
        sig = self.key.sign(opened_digest(self.base_hash, self.kiosk_id, session, at))
        body = {
            "session": session,
            "opened_at": at,
            "poll_worker_pin": poll_worker_pin,
            "kiosk_signature": sig.hex(),
        }
        out: dict[str, Any] = self._signed("POST", "/kiosk/open", body)
        return out

    def close(
        self, session: int, kiosk_count: int, poll_worker_pin: str, *, closed_at: str | None = None
    ) -> dict[str, Any]:
        """Close the open ``session``; ``kiosk_count`` is the kiosk's own count of its ballots."""
        at = closed_at if closed_at is not None else format_time_now()
        sig = self.key.sign(closed_digest(self.base_hash, self.kiosk_id, session, at, kiosk_count))
        body = {
            "session": session,
            "closed_at": at,
            "kiosk_count": kiosk_count,
            "poll_worker_pin": poll_worker_pin,
            "kiosk_signature": sig.hex(),
        }
        out: dict[str, Any] = self._signed("POST", "/kiosk/close", body)
        return out

    def challenge(self) -> bytes:
        """A one-time server challenge for the card's signature (``POST /api/v1/voter/challenge``)."""
        data = self._answer(self.http.post(f"{_API}/voter/challenge"))
        try:
            ch = bytes.fromhex(str(data["challenge"]))
        except (KeyError, ValueError, TypeError) as e:
            raise KioskApiError(200, "kiosk.answer", "the challenge is not hex") from e
        if len(ch) != 32:
            raise KioskApiError(200, "kiosk.answer", "the challenge is not 32 bytes")
        return ch

    def cast(
        self, ballot: Mapping[str, Any], submission: JpkiSubmission, challenge: bytes, session: int
    ) -> dict[str, Any]:
        """Cast ``ballot`` (an encrypted ballot's dict) signed by the voter's card (``submission`` over the
        base hash, the ballot hash and ``challenge``) at this kiosk in ``session``; the receipt JSON."""
        try:
            ballot_hash = EncryptedBallot.from_dict(dict(ballot)).ballot_hash()
        except Exception as e:  # a ballot that does not decode is the caller's bug: refuse before signing
            raise KioskApiError(0, "ballot.encoding", f"the ballot does not decode: {e}") from e
        sig = self.key.sign(ballot_digest(self.base_hash, self.kiosk_id, session, ballot_hash))
        body = {
            "ballot": dict(ballot),
            "auth": submission.auth_body(challenge),
            "session": session,
            "kiosk_signature": sig.hex(),
        }
        out: dict[str, Any] = self._signed("POST", "/kiosk/ballots", body)
        return out

    def lookup(self, tracking_code: str) -> dict[str, Any] | None:
        """The ballot's receipt (``GET /api/v1/voter/ballots/{code}``), or ``None`` if it is not there."""
        r = self.http.get(f"{_API}/voter/ballots/{tracking_code}")
        if r.status_code == 404:
            try:
                found = r.json()["error"]["code"] != "ballot.not_found"
            except (ValueError, KeyError, TypeError):
                found = True  # not the server's "no such ballot": an error of another kind
            if not found:
                return None
        out: dict[str, Any] = self._answer(r)
        return out


def format_time_now() -> str:
    """The kiosk's clock now, RFC 3339 UTC to the second (what ``opened_at`` / ``closed_at`` carry)."""
    import datetime as dt

    return format_time(dt.datetime.now(dt.UTC))
