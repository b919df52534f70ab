"""Shared by the kiosk tests (tests/voting/test_kiosk_*.py): an open election behind uvicorn on loopback
with enrolled kiosks, and hand-made signed kiosk requests (what a thief with a copied request, a stolen id
or another key would send)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from _service_util import start_election_on
from sqlmodel import Session

from voting._kiosk_db import KioskRow
from voting._kiosk_sign import HEADER_ID, HEADER_SIGNATURE, HEADER_TIME, request_digest
from voting.clients.kiosk import KioskKey
from voting.testing import DemoElection, JpkiTestCa, RsaKeyPool, make_residents, tsukuba_manifest

CHOICE = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": ["proj-1"]}


@contextmanager
def kiosk_election(tmp: Path, database_url: str | None = None, voters: int = 8) -> Iterator[DemoElection]:
    """An election open for voting (real HTTP), ``voters`` residents with test cards."""
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(voters, ca, now, pool=RsaKeyPool(voters))
    manifest = tsukuba_manifest(now, small=True, trustees=3, threshold=2)
    with start_election_on(database_url, tmp, residents, ca, manifest) as e:
        yield e


_last_ms = 0
_clock_lock = threading.Lock()


def now_ms() -> int:
    """The clock in milliseconds, strictly increasing across calls (one kiosk never repeats a time)."""
    global _last_ms
    with _clock_lock:
        _last_ms = max(time.time_ns() // 1_000_000, _last_ms + 1)
        return _last_ms


def signed_headers(
    key: KioskKey,
    kiosk_id: str,
    method: str,
    path: str,
    body: bytes,
    base_hash: bytes,
    time_ms: int | None = None,
) -> dict[str, str]:
    """The three kiosk headers, signed by ``key`` over exactly these values (``docs/kiosk.md``)."""
    t = now_ms() if time_ms is None else time_ms
    sig = key.sign(request_digest(base_hash, kiosk_id, t, method, path, body))
    return {HEADER_ID: kiosk_id, HEADER_TIME: str(t), HEADER_SIGNATURE: sig.hex()}


def send(http: httpx.Client, method: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    h = {**headers, "Content-Type": "application/json"} if body else headers
    return http.request(method, path, content=body, headers=h)


def body_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def kiosk_row(e: DemoElection, kiosk_id: str) -> KioskRow:
    with Session(e.service.engine) as s:
        row = s.get(KioskRow, (e.service.election_id, kiosk_id))
        assert row is not None
        return row


def state_of(e: DemoElection, kiosk_id: str) -> tuple[Any, ...]:
    """Everything a refusal must leave unchanged: the ledger's size and the kiosk's private row."""
    row = kiosk_row(e, kiosk_id)
    return (
        e.ledger_size(),
        row.last_request_ms,
        row.session,
        row.session_open,
        row.revoked_index,
        row.pin_failures,
        row.pin_hash,
    )


def error_of(r: httpx.Response) -> tuple[int, str]:
    body = r.json()
    assert set(body) == {"error"}, body
    return r.status_code, str(body["error"]["code"])
