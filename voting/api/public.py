"""Public read-only routes: the election, its manifest, the joint key, the key ceremony, the booth, the
result."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from .._deps import ElectionServiceDep, RateLimitDep
from ._models import BoothAssetOut, BoothOut, BoothPublishedOut, BoothServedOut, CeremonyOut, ElectionOut

__all__ = ["router"]

router = APIRouter(prefix="/election", tags=["public"])


def _iso(t: Any) -> str | None:
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")


@router.get("", response_model=ElectionOut, summary="The election: phase, base hash, trustees, roll")
def get_election(service: ElectionServiceDep) -> ElectionOut:
    row = service.election()
    m = service.manifest
    jk = service.joint_key().public_key.hex() if row.joint_key_json else None
    return ElectionOut(
        election_id=m.election_id,
        name=m.name.model_dump(),
        base_hash=row.base_hash,
        phase=row.phase,
        threshold=m.trustees.threshold,
        trustees=m.trustees.n,
        voting_period=m.to_dict()["voting_period"],
        roll_committed=row.roll_committed,
        roll_size=row.roll_size if row.roll_committed else None,
        joint_key=jk,
        opened_at=_iso(row.opened_at),
        closed_at=_iso(row.closed_at),
        voting_closes=_iso(service.voting_window()[1]) or "",
    )


@router.get("/manifest", summary="The published manifest (as in the election.manifest entry)")
def get_manifest(service: ElectionServiceDep) -> dict[str, Any]:
    return {"manifest": service.manifest.to_dict(), "base_hash": service.base_hash.hex()}


@router.get("/joint-key", summary="The joint election key and public shares (after the key ceremony)")
def get_joint_key(service: ElectionServiceDep) -> dict[str, Any]:
    return service.joint_key().to_dict()


@router.get("/ceremony", response_model=CeremonyOut, summary="Key-ceremony state (public)")
def get_ceremony(service: ElectionServiceDep) -> CeremonyOut:
    return CeremonyOut(**service.ceremony_state())


@router.get(
    "/booth",
    response_model=BoothOut,
    summary="The booth's digest as published on the ledger and as served now; how many ballots were checked",
)
def get_booth(service: ElectionServiceDep, _rl: RateLimitDep) -> BoothOut:
    """Hashes every file the booth serves, on each call (rate-limited per client address, like the voter
    routes): ``matches`` is ``false`` as soon as a served file differs from the published list."""
    published = service.published_booth()
    served = service.served_booth()
    pub = None
    if published is not None:
        assets = [BoothAssetOut(**a) for a in json.loads(published.assets_json)]
        pub = BoothPublishedOut(digest=published.digest, assets=assets, ledger_index=published.ledger_index)
    return BoothOut(
        published=pub,
        served=BoothServedOut(
            digest=served.digest, assets=[BoothAssetOut(**a.to_dict()) for a in served.assets]
        ),
        matches=None if pub is None else pub.digest == served.digest,
        checked_ballots=service.checks_count(),
    )


@router.get("/tally", summary="The encrypted tally (after it is computed)")
def get_tally(service: ElectionServiceDep) -> dict[str, Any]:
    return service.encrypted_tally()


@router.get("/result", summary="The decrypted result (after it is published)")
def get_result(service: ElectionServiceDep) -> dict[str, Any]:
    return service.result()


@router.get("/result.pdf", summary="The signed result declaration PDF", response_class=Response)
def get_result_pdf(service: ElectionServiceDep) -> Response:
    return Response(service.result_pdf(), media_type="application/pdf")
