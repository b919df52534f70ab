"""Polling-place kiosk routes (``/api/v1/kiosk/*``, every request signed by an enrolled kiosk's key) and the
commission's kiosk routes (``/api/v1/admin/kiosks…``, admin token). ``docs/kiosk.md``, "The server's kiosk
API", is the spec.

Thin: after the per-address ceiling (:data:`voting._deps.RateLimitDep`), :data:`KioskDep` checks the
request's three headers against the exact body bytes
(:meth:`voting.service.ElectionService.authenticate_kiosk`; ``kiosk.required`` / ``unknown`` /
``revoked`` / ``signature`` / ``clock`` / ``replay``) before the body is parsed or anything else is looked
at, then each route is one service call. Bodies are bounded before they are read (:data:`BODY_LIMITS`).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from .._deps import AdminDep, ElectionServiceDep, RateLimitDep, SessionLimitDep
from .._kiosk_db import KioskRow
from .._kiosk_sign import HEADER_ID, HEADER_SIGNATURE, HEADER_TIME
from .voter import _JPKI_AUTH_BYTES, MAX_BALLOT_BYTES, IntakeDep, JpkiAuthIn, ReceiptOut, _certificate_key

__all__ = ["BODY_LIMITS", "admin_router", "router"]

router = APIRouter(prefix="/kiosk", tags=["kiosk"])
admin_router = APIRouter(prefix="/admin/kiosks", tags=["admin"])

_HEX128 = r"^[0-9a-f]{128}$"
_PIN = r"^[0-9]{8}$"
_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
_KIOSK_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
_U64 = 2**63 - 1
_SMALL: Final[int] = 4 * 1024

#: the largest body of each kiosk route, path relative to ``/api/v1`` (``voting._limits.BodySizeLimit``)
BODY_LIMITS: Final[dict[tuple[str, str], int]] = {
    ("POST", "/kiosk/open"): _SMALL,
    ("POST", "/kiosk/close"): _SMALL,
    ("POST", "/kiosk/ballots"): MAX_BALLOT_BYTES + _JPKI_AUTH_BYTES + _SMALL,
    ("POST", "/admin/kiosks"): _SMALL,
}


async def authenticate(request: Request, service: ElectionServiceDep) -> KioskRow:
    """The enrolled, unrevoked kiosk that signed this request (its body read exactly as sent)."""
    body = await request.body()
    h = request.headers
    row: KioskRow = await anyio.to_thread.run_sync(
        lambda: service.authenticate_kiosk(
            h.get(HEADER_ID),
            h.get(HEADER_TIME),
            h.get(HEADER_SIGNATURE),
            request.method,
            request.url.path,
            body,
        )
    )
    return row


KioskDep = Annotated[KioskRow, Depends(authenticate)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenIn(_In):
    session: int = Field(ge=1, le=_U64)
    opened_at: str = Field(max_length=64, description="RFC 3339 UTC to the second (the kiosk's clock)")
    poll_worker_pin: str = Field(max_length=64)
    kiosk_signature: str = Field(pattern=_HEX128)


class CloseIn(_In):
    session: int = Field(ge=1, le=_U64)
    closed_at: str = Field(max_length=64, description="RFC 3339 UTC to the second (the kiosk's clock)")
    kiosk_count: int = Field(ge=0, le=_U64, description="the kiosk's own count of its session's ballots")
    poll_worker_pin: str = Field(max_length=64)
    kiosk_signature: str = Field(pattern=_HEX128)


class KioskCastIn(_In):
    ballot: dict[str, Any]
    auth: JpkiAuthIn
    session: int = Field(ge=1, le=_U64)
    kiosk_signature: str = Field(pattern=_HEX128)


class StatusOut(_Out):
    kiosk_id: str
    polling_place: str
    election_id: str
    base_hash: str
    state: str
    session: int
    ballots_cast: int


class ReportOut(_Out):
    ledger_index: int
    entry_hash: str
    entry: dict[str, Any]


@router.get("/status", response_model=StatusOut, summary="This kiosk: its polling place, session, count")
def get_status(_rl: RateLimitDep, kiosk: KioskDep, service: ElectionServiceDep) -> StatusOut:
    return StatusOut(**service.kiosk_status(kiosk.kiosk_id))


@router.post("/open", response_model=ReportOut, summary="Open the kiosk's next session (kiosk.opened)")
def post_open(_rl: RateLimitDep, kiosk: KioskDep, body: OpenIn, service: ElectionServiceDep) -> ReportOut:
    out = service.open_kiosk(
        kiosk.kiosk_id, body.session, body.opened_at, body.poll_worker_pin, body.kiosk_signature
    )
    return ReportOut(**out)


@router.post("/close", response_model=ReportOut, summary="Close the kiosk's open session (kiosk.closed)")
def post_close(_rl: RateLimitDep, kiosk: KioskDep, body: CloseIn, service: ElectionServiceDep) -> ReportOut:
    out = service.close_kiosk(
        kiosk.kiosk_id,
        body.session,
        body.closed_at,
        body.kiosk_count,
        body.poll_worker_pin,
        body.kiosk_signature,
    )
    return ReportOut(**out)


@router.post(
    "/ballots",
    response_model=ReceiptOut,
    summary="Cast a ballot at this kiosk (My Number card; overrides the voter's internet ballots)",
)
def post_ballot(
    request: Request,
    _rl: RateLimitDep,
    kiosk: KioskDep,
    body: KioskCastIn,
    intake: IntakeDep,
    limit: SessionLimitDep,
) -> ReceiptOut:
    limit("jpki", _certificate_key(body.auth))
    r = intake.cast_kiosk(
        kiosk.kiosk_id,
        body.ballot,
        body.auth.submission(),
        bytes.fromhex(body.auth.challenge),
        session=body.session,
        kiosk_signature=body.kiosk_signature,
    )
    request.app.state.metrics.cast("kiosk", body.auth.method)
    return ReceiptOut.of(r)


# ------------------------------------------------------------------------------------------ the commission


class EnrolIn(_In):
    kiosk_id: str = Field(pattern=_KIOSK_ID)
    public_key: str = Field(min_length=64, max_length=64, description="the kiosk's Ed25519 key, 64 hex")
    polling_place: str = Field(min_length=1, max_length=1024)


class EnrolledOut(_Out):
    kiosk_id: str
    ledger_index: int
    fingerprint: str
    poll_worker_pin: str = Field(description="the poll workers' PIN (8 digits): shown once, never stored")


class RevokeIn(_In):
    reason: str = Field(min_length=1, max_length=2048)


class RevokedOut(_Out):
    kiosk_id: str
    ledger_index: int


class PinOut(_Out):
    kiosk_id: str
    poll_worker_pin: str


@admin_router.post("", response_model=EnrolledOut, status_code=201, summary="Enrol a kiosk (kiosk.enrolled)")
def enrol(_: AdminDep, service: ElectionServiceDep, body: EnrolIn) -> EnrolledOut:
    e = service.enrol_kiosk(body.kiosk_id, body.public_key, body.polling_place)
    return EnrolledOut(
        kiosk_id=e.kiosk_id,
        ledger_index=e.ledger_index,
        fingerprint=e.fingerprint,
        poll_worker_pin=e.poll_worker_pin,
    )


@admin_router.post("/{kiosk_id}/revoke", response_model=RevokedOut, summary="Revoke a kiosk (kiosk.revoked)")
def revoke(kiosk_id: str, _: AdminDep, service: ElectionServiceDep, body: RevokeIn) -> RevokedOut:
    return RevokedOut(kiosk_id=kiosk_id, ledger_index=service.revoke_kiosk(kiosk_id, body.reason))


@admin_router.post(
    "/{kiosk_id}/poll-worker-pin",
    response_model=PinOut,
    summary="A new poll-worker PIN for a kiosk (clears a lock; not on the ledger)",
)
def new_pin(kiosk_id: str, _: AdminDep, service: ElectionServiceDep) -> PinOut:
    return PinOut(kiosk_id=kiosk_id, poll_worker_pin=service.new_poll_worker_pin(kiosk_id))


@admin_router.get("", summary="The enrolled kiosks (no PIN, no key material but the public key)")
def list_kiosks(_: AdminDep, service: ElectionServiceDep) -> dict[str, Any]:
    return {"kiosks": service.kiosks()}
