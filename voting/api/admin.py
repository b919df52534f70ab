"""The commission's routes (``Authorization: Bearer <admin token>``). Each is one service call."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response

from .._deps import AdminDep, ElectionServiceDep
from .._errors import InvalidRequest
from .._ledger_api import CheckpointOut, checkpoint_out
from ._models import AppendedOut, BoothPublishIn, ElectionCreatedOut, ExtendIn, OverrideIn, RollOut
from .voter import IntakeDep

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])

MAX_ROLL_BYTES = 256 * 1024 * 1024


@router.post("/election", response_model=ElectionCreatedOut, status_code=201, summary="Create the election")
def create_election(
    _: AdminDep,
    service: ElectionServiceDep,
    manifest: Annotated[dict[str, Any], Body(description="the manifest")],
) -> ElectionCreatedOut:
    created = service.create_election(manifest)
    return ElectionCreatedOut(
        election_id=created.election_id,
        base_hash=created.base_hash,
        ledger_index=created.ledger_index,
        invitations={str(i): c for i, c in created.invitations.items()},
    )


@router.put(
    "/roll",
    response_model=RollOut,
    summary="Load the voter roll (CSV body, text/csv)",
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
    },
)
async def load_roll(_: AdminDep, service: ElectionServiceDep, request: Request) -> RollOut:
    body = await request.body()
    if len(body) > MAX_ROLL_BYTES:
        raise InvalidRequest("roll.size", "the roll file is too large")
    roll = service.load_roll(body)
    c = roll.commitment()
    return RollOut(size=roll.size, root=str(c["root"]), alias_scheme=str(c["alias_scheme"]), published=False)


@router.post("/roll/publish", response_model=RollOut, summary="Publish the roll commitment")
def publish_roll(_: AdminDep, service: ElectionServiceDep) -> RollOut:
    index = service.publish_roll()
    row = service.election()
    return RollOut(
        size=row.roll_size or 0,
        root=row.roll_root or "",
        alias_scheme="hmac-sha256/1",
        published=True,
        ledger_index=index,
    )


@router.post("/key-ceremony/finalize", summary="Resolve complaints and publish the joint key")
def finalize(_: AdminDep, service: ElectionServiceDep) -> dict[str, Any]:
    return service.finalize_key_ceremony().to_dict()


@router.post(
    "/booth/publish",
    response_model=AppendedOut,
    summary="Publish the digest of the booth this server serves (before voting opens; else opening does)",
)
def publish_booth(
    _: AdminDep, service: ElectionServiceDep, body: Annotated[BoothPublishIn | None, Body()] = None
) -> AppendedOut:
    expected = (body or BoothPublishIn()).expected_digest
    return AppendedOut(ledger_index=service.publish_booth(expected_digest=expected))


@router.post("/open", response_model=AppendedOut, summary="Open voting (before the period: with a reason)")
def open_voting(
    _: AdminDep, service: ElectionServiceDep, body: Annotated[OverrideIn | None, Body()] = None
) -> AppendedOut:
    reason = (body or OverrideIn()).override_reason
    return AppendedOut(ledger_index=service.open_voting(override_reason=reason))


@router.post("/close", response_model=AppendedOut, summary="Close voting (before the end: with a reason)")
def close_voting(
    _: AdminDep, service: ElectionServiceDep, body: Annotated[OverrideIn | None, Body()] = None
) -> AppendedOut:
    reason = (body or OverrideIn()).override_reason
    return AppendedOut(ledger_index=service.close_voting(override_reason=reason))


@router.post("/extend", response_model=AppendedOut, summary="Move the end of voting later, with a reason")
def extend_voting(_: AdminDep, service: ElectionServiceDep, body: ExtendIn) -> AppendedOut:
    try:
        closes = dt.datetime.fromisoformat(body.closes.replace("Z", "+00:00"))
    except ValueError as e:
        raise InvalidRequest(
            "voting.extend_time", "closes is an RFC 3339 time such as 2027-04-25T22:00:00+09:00"
        ) from e
    return AppendedOut(ledger_index=service.extend_voting(closes, body.reason))


@router.post("/tally", summary="Compute and publish the encrypted tally of the counted ballots")
def tally(_: AdminDep, service: ElectionServiceDep) -> dict[str, Any]:
    return service.compute_tally()


@router.post("/result", summary="Combine the partial decryptions and publish the result")
def result(_: AdminDep, service: ElectionServiceDep) -> dict[str, Any]:
    return service.publish_result()


@router.post("/declaration", summary="Produce the result declaration PDF and publish its hash")
def declaration(_: AdminDep, service: ElectionServiceDep) -> dict[str, Any]:
    return service.declare_result()


@router.post("/reconcile", summary="Bring the private state up to the ledger (also done at start-up)")
def reconcile(_: AdminDep, service: ElectionServiceDep, full: bool = False) -> dict[str, Any]:
    return service.reconcile(full=full).to_dict()


@router.post(
    "/key-ceremony/invitations",
    summary="New registration codes for the trustees that have not registered (old codes stop working)",
)
def reissue_invitations(_: AdminDep, service: ElectionServiceDep) -> dict[str, Any]:
    return {"invitations": {str(i): c for i, c in service.reissue_invitations().items()}}


@router.post(
    "/checkpoint",
    response_model=CheckpointOut,
    summary="Sign a checkpoint covering every entry, for the witnesses to cosign before the export",
)
def checkpoint(_: AdminDep, service: ElectionServiceDep) -> CheckpointOut:
    return checkpoint_out(service.ledger.checkpoint())


@router.get("/export", summary="The election record as a .tar.gz archive", response_class=Response)
def export(_: AdminDep, service: ElectionServiceDep) -> Response:
    data = service.export_archive_bytes()
    return Response(
        data,
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{service.election_id}-record.tar.gz"'},
    )


@router.post(
    "/evidence/export",
    summary="The sealed authentication evidence for the observers (logged on the ledger: evidence.exported)",
)
def export_evidence(_: AdminDep, intake: IntakeDep) -> dict[str, Any]:
    return intake.export_evidence()
