"""Trustee routes. Registration takes the one-time code; everything else the per-trustee bearer token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from .._deps import ElectionServiceDep, TrusteeDep
from ._models import AppendedOut, PartialOut, RegisterIn, RegisterOut

__all__ = ["router"]

router = APIRouter(prefix="/trustee", tags=["trustee"])


class SharesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shares: list[dict[str, Any]] = Field(max_length=255)


class ComplaintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    complaint: dict[str, Any]


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: dict[str, Any]


class PartialsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partials: dict[str, dict[str, dict[str, Any]]]


@router.post(
    "/register", response_model=RegisterOut, status_code=201, summary="Register with a one-time code"
)
def register(body: RegisterIn, service: ElectionServiceDep) -> RegisterOut:
    index, token = service.register_trustee(body.invitation, body.name, body.commitments, body.enrolment)
    return RegisterOut(trustee=index, token=token)


@router.get("/me", summary="Who the token belongs to")
def me(trustee: TrusteeDep) -> dict[str, int]:
    return {"trustee": trustee.index}


@router.post("/shares", response_model=AppendedOut, summary="Deal encrypted shares to the other trustees")
def deal(body: SharesIn, trustee: TrusteeDep, service: ElectionServiceDep) -> AppendedOut:
    return AppendedOut(ledger_index=service.submit_shares(trustee.index, body.shares))


@router.get("/shares", summary="The encrypted shares addressed to me")
def my_shares(trustee: TrusteeDep, service: ElectionServiceDep) -> dict[str, Any]:
    return {"shares": service.shares_for(trustee.index)}


@router.post("/complaints", response_model=AppendedOut, summary="Publicly complain about a bad share")
def complain(body: ComplaintIn, trustee: TrusteeDep, service: ElectionServiceDep) -> AppendedOut:
    return AppendedOut(ledger_index=service.submit_complaint(trustee.index, body.complaint))


@router.get("/complaints", summary="Complaints against me")
def complaints(trustee: TrusteeDep, service: ElectionServiceDep) -> dict[str, Any]:
    return {"complaints": service.complaints_against(trustee.index)}


@router.post("/answers", response_model=AppendedOut, summary="Answer a complaint by revealing the share")
def answer(body: AnswerIn, trustee: TrusteeDep, service: ElectionServiceDep) -> AppendedOut:
    return AppendedOut(ledger_index=service.submit_answer(trustee.index, body.answer))


@router.post("/partials", response_model=PartialOut, summary="Submit partial decryptions of the tally")
def partials(body: PartialsIn, trustee: TrusteeDep, service: ElectionServiceDep) -> PartialOut:
    o = service.submit_partials(trustee.index, body.partials)
    return PartialOut(trustee=o.trustee, accepted=o.accepted, ledger_index=o.ledger_index, reason=o.reason)
