"""Voter routes (``/api/v1/voter/*``): challenge, cast, digital-ID start, signing-app (My Number card on the
phone) start and status, spoil (Benaloh), receipts.

Thin: each route parses its body, calls :class:`voting.service.IntakeService` (built from the settings by
``app.state.intake_provider``, see :mod:`voting._intake_config`) and
returns a response model. Every route first takes a token from its client address's generous ceiling
(:data:`voting._deps.RateLimitDep`), then from the bucket of its voting session or credential
(:data:`voting._deps.SessionLimitDep`: the card certificate, the digital-ID login ``state``, the signing-app
transaction, the ballot, the tracking code), and only then builds the intake; the anonymous spoil route
also from its slower per-address bucket (:data:`voting._deps.SpoilLimitDep`). Every error is a 4xx
``{"error": {"code", "message"}}`` (codes: ``docs/voting.md``); the signing app failing is 503/502.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from ledger.record import MAX_ENTRY_BYTES
from voting.auth import JpkiSubmission
from voting.auth._face import LiveCapture

from .._deps import AdminDep, ElectionServiceDep, RateLimitDep, SessionLimitDep, SpoilLimitDep
from .._errors import InvalidRequest
from ..receipt import Receipt
from ..service import IntakeService

__all__ = ["BODY_LIMITS", "MAX_BALLOT_BYTES", "MAX_FACE_IMAGE_BYTES", "MAX_LIVENESS_BYTES", "router"]

router = APIRouter(prefix="/voter", tags=["voter"])

_HEX = r"^(?:[0-9a-f]{2})*$"
_HEX64 = r"^[0-9a-f]{64}$"

# The field limits below and the per-route body limits (``BODY_LIMITS``, enforced by
# ``voting._limits.BodySizeLimit`` before the body is parsed) come from the same constants.
#: a ballot becomes one ledger entry, so it is never larger than one (as sent, before canonicalisation)
MAX_BALLOT_BYTES: Final[int] = MAX_ENTRY_BYTES
#: a live face capture (JPEG/PNG/WebP; a phone's front camera at 1080p is about 300 kB), sent as hex
MAX_FACE_IMAGE_BYTES: Final[int] = 512 * 1024
#: the face-match engine's liveness evidence, sent as hex
MAX_LIVENESS_BYTES: Final[int] = 256 * 1024
_MAX_CERT_BYTES: Final[int] = 8 * 1024  # a JPKI certificate (about 1.5 kB)
_MAX_INTERMEDIATES: Final[int] = 4
_MAX_SIGNATURE_BYTES: Final[int] = 1024  # RSA-2048: 256 bytes
_MAX_OIDC_CODE: Final[int] = 2_048
_MAX_URI: Final[int] = 2_048
_FRAMING: Final[int] = 4 * 1024  # field names, quotes, whitespace


def get_intake(request: Request) -> IntakeService:
    """The app's intake, built once from its settings by ``app.state.intake_provider`` (``election.none``
    before the election exists). The one way an intake is made; a test that needs another one overrides this
    dependency with a callable of no arguments (``app.dependency_overrides[get_intake]``)."""
    override = request.app.dependency_overrides.get(get_intake)
    if override is not None:  # the routes that call this late, after their session limits, honour it too
        replaced: IntakeService = override()
        return replaced
    built: IntakeService = request.app.state.intake_provider.get()
    return built


IntakeDep = Annotated[IntakeService, Depends(get_intake)]


def _certificate_key(auth: JpkiAuthIn) -> bytes:
    """The session-limit key of a card: the SHA-256 of its certificate (DER)."""
    return hashlib.sha256(bytes.fromhex(auth.certificate)).digest()


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JpkiAuthIn(_In):
    method: Literal["jpki"]
    certificate: str = Field(
        pattern=_HEX, min_length=2, max_length=2 * _MAX_CERT_BYTES, description="DER, hex"
    )
    intermediates: list[Annotated[str, Field(pattern=_HEX, max_length=2 * _MAX_CERT_BYTES)]] = Field(
        default_factory=list, max_length=_MAX_INTERMEDIATES
    )
    signature: str = Field(
        pattern=_HEX, min_length=2, max_length=2 * _MAX_SIGNATURE_BYTES, description="PKCS#1 v1.5, hex"
    )
    challenge: str = Field(pattern=_HEX64, description="the server challenge the signature covers")

    def submission(self) -> JpkiSubmission:
        return JpkiSubmission(
            bytes.fromhex(self.certificate),
            bytes.fromhex(self.signature),
            tuple(bytes.fromhex(i) for i in self.intermediates),
        )


class FaceIn(_In):
    media_type: Literal["image/jpeg", "image/png", "image/webp"] = "image/jpeg"
    image: str = Field(
        pattern=_HEX, min_length=2, max_length=2 * MAX_FACE_IMAGE_BYTES, description="live capture, hex"
    )
    liveness_evidence: str = Field(
        default="", pattern=_HEX, max_length=2 * MAX_LIVENESS_BYTES, description="hex"
    )

    def capture(self) -> LiveCapture:
        return LiveCapture(bytes.fromhex(self.image), self.media_type, bytes.fromhex(self.liveness_evidence))


class OidcAuthIn(_In):
    method: Literal["oidc+face"]
    state: str = Field(min_length=16, max_length=128)
    code: str = Field(min_length=1, max_length=_MAX_OIDC_CODE)
    face: FaceIn = Field(description="the live capture handed to the face-match engine (never stored)")


_TRANSACTION = r"^[A-Za-z0-9_-]{43}$"


class DappAuthIn(_In):
    method: Literal["jpki-app"]
    transaction: str = Field(pattern=_TRANSACTION, description="from POST /voter/jpki-app/start")


class CastIn(_In):
    ballot: dict[str, Any]
    auth: Annotated[JpkiAuthIn | OidcAuthIn | DappAuthIn, Field(discriminator="method")]


class SpoilIn(_In):
    ballot: dict[str, Any]
    revealed: dict[str, Any]


class DappStartIn(_In):
    ballot_hash: str = Field(pattern=_HEX64, description="the hash of the encrypted ballot to sign for")
    challenge: str = Field(pattern=_HEX64, description="a one-time challenge from POST /voter/challenge")


class OidcStartIn(_In):
    ballot_hash: str = Field(pattern=_HEX64)
    redirect_uri: str | None = Field(default=None, max_length=_MAX_URI)


_JPKI_AUTH_BYTES: Final[int] = (
    2 * _MAX_CERT_BYTES * (1 + _MAX_INTERMEDIATES) + 2 * _MAX_SIGNATURE_BYTES + 64 + _FRAMING
)
_OIDC_AUTH_BYTES: Final[int] = (
    128 + _MAX_OIDC_CODE + 2 * MAX_FACE_IMAGE_BYTES + 2 * MAX_LIVENESS_BYTES + _FRAMING
)

#: the largest body each route can accept, path relative to ``/api/v1``: a body over it can never pass the
#: route's own validation, so it is refused (413) before it is read
BODY_LIMITS: Final[dict[tuple[str, str], int]] = {
    ("POST", "/voter/challenge"): 1024,  # no body (a client may send ``{}``)
    ("POST", "/voter/oidc/start"): 64 + _MAX_URI + _FRAMING,
    ("POST", "/voter/jpki-app/start"): 2 * 64 + _FRAMING,
    ("POST", "/voter/ballots"): MAX_BALLOT_BYTES + max(_JPKI_AUTH_BYTES, _OIDC_AUTH_BYTES),
    ("POST", "/voter/spoil"): 2 * MAX_BALLOT_BYTES,  # the ballot and its opening
}


class ChallengeOut(_Out):
    challenge: str
    expires_at: str


class DappStartOut(_Out):
    transaction: str = Field(description="the handle to poll and to cast with (one-time)")
    app_url: str = Field(
        description="opens the Digital Authentication App (a link on the phone, a QR code on a PC)"
    )
    expires_at: str


class DappStatusOut(_Out):
    transaction: str
    status: Literal["pending", "approved", "refused", "expired", "used"]


class OidcStartOut(_Out):
    authorization_url: str
    state: str


class ReceiptOut(_Out):
    kind: Literal["cast", "spoiled"]
    election_id: str
    ballot_hash: str
    tracking_code: str
    leaf_index: int
    entry_hash: str
    checkpoint: str | None = Field(
        description="signed checkpoint (C2SP signed note) of a tree holding the entry; null while the "
        "receipt is pending (checkpoints on a schedule: fetch it again after the next checkpoint)"
    )
    inclusion_proof: list[str] | None = Field(
        description="RFC 9162 inclusion proof of the entry in the checkpoint's tree; null while pending"
    )
    channel: str | None = None
    seq: int | None = None

    @classmethod
    def of(cls, r: Receipt) -> ReceiptOut:
        return cls(**r.to_dict())


@router.post("/challenge", response_model=ChallengeOut, summary="A one-time challenge for a card signature")
def post_challenge(_rl: RateLimitDep, intake: IntakeDep) -> ChallengeOut:
    c = intake.issue_challenge()
    return ChallengeOut(challenge=c.challenge.hex(), expires_at=c.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"))


@router.post("/oidc/start", response_model=OidcStartOut, summary="Start a digital-ID login bound to a ballot")
def post_oidc_start(
    body: OidcStartIn, request: Request, _rl: RateLimitDep, limit: SessionLimitDep
) -> OidcStartOut:
    limit("ballot", body.ballot_hash)
    start = get_intake(request).begin_oidc(bytes.fromhex(body.ballot_hash), redirect_uri=body.redirect_uri)
    return OidcStartOut(authorization_url=start.authorization_url, state=start.state)


@router.post(
    "/jpki-app/start",
    response_model=DappStartOut,
    summary="Start signing this ballot with the My Number card on the phone (Digital Authentication App)",
)
def post_dapp_start(
    body: DappStartIn, request: Request, _rl: RateLimitDep, limit: SessionLimitDep
) -> DappStartOut:
    limit("ballot", body.ballot_hash)
    start = get_intake(request).start_dapp(bytes.fromhex(body.ballot_hash), bytes.fromhex(body.challenge))
    return DappStartOut(
        transaction=start.transaction,
        app_url=start.app_url,
        expires_at=start.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


@router.get(
    "/jpki-app/{transaction}",
    response_model=DappStatusOut,
    summary="Where a signing transaction stands (pending, approved, refused, expired, used)",
)
def get_dapp_status(
    transaction: str, request: Request, _rl: RateLimitDep, limit: SessionLimitDep
) -> DappStatusOut:
    if not re.fullmatch(_TRANSACTION, transaction):
        raise InvalidRequest("dapp.format", "not a signing-transaction handle")
    limit("jpki-app", transaction)
    return DappStatusOut(transaction=transaction, status=get_intake(request).dapp_status(transaction))


@router.post(
    "/ballots",
    response_model=ReceiptOut,
    summary="Cast an encrypted ballot (JPKI, My Number card on the phone, or digital ID)",
)
def post_ballot(body: CastIn, request: Request, _rl: RateLimitDep, limit: SessionLimitDep) -> ReceiptOut:
    if isinstance(body.auth, JpkiAuthIn):
        limit("jpki", _certificate_key(body.auth))
    elif isinstance(body.auth, DappAuthIn):
        limit("jpki-app", body.auth.transaction)
    else:
        limit("oidc", body.auth.state)
    intake = get_intake(request)
    if isinstance(body.auth, JpkiAuthIn):
        r = intake.cast_jpki(body.ballot, body.auth.submission(), bytes.fromhex(body.auth.challenge))
    elif isinstance(body.auth, DappAuthIn):
        r = intake.cast_dapp(body.ballot, body.auth.transaction)
    else:
        r = intake.cast_oidc(
            body.ballot, state=body.auth.state, code=body.auth.code, live=body.auth.face.capture()
        )
    request.app.state.metrics.cast("internet", body.auth.method)
    return ReceiptOut.of(r)


@router.post("/spoil", response_model=ReceiptOut, summary="Challenge (spoil) a ballot: publish its opening")
def post_spoil(
    body: SpoilIn, request: Request, _rl: RateLimitDep, _spoil: SpoilLimitDep, limit: SessionLimitDep
) -> ReceiptOut:
    """Anonymous by design (a challenge must not identify the voter), so bounded instead: a per-address rate
    limit (``spoil.rate_limited``, 429 with ``Retry-After``), a per-election cap (``spoil.cap_reached``); the
    ballot session is the ballot's nonce."""
    limit("ballot", str(body.ballot.get("ballot_nonce", "")))
    receipt = ReceiptOut.of(get_intake(request).spoil(body.ballot, body.revealed))
    request.app.state.metrics.spoils.inc()
    return receipt


@router.get("/ballots/{tracking_code}", response_model=ReceiptOut, summary="A fresh receipt for a ballot")
def get_ballot(tracking_code: str, request: Request, _rl: RateLimitDep, limit: SessionLimitDep) -> ReceiptOut:
    if len(tracking_code) > 80:
        raise InvalidRequest("tracking_code.format", "not a tracking code")
    limit("receipt", tracking_code)
    return ReceiptOut.of(get_intake(request).find(tracking_code))


@router.get(
    "/check/{tracking_code}",
    response_model=ReceiptOut,
    summary="Check my ballot: a fresh receipt, the lookup of a cast ballot counted (a count only)",
)
def check_ballot(
    tracking_code: str,
    request: Request,
    service: ElectionServiceDep,
    _rl: RateLimitDep,
    limit: SessionLimitDep,
) -> ReceiptOut:
    """What ``GET /ballots/{tracking_code}`` answers; a cast ballot found here is also counted once in
    ``GET /election/booth``'s ``checked_ballots`` (a keyed hash of its ballot hash, nothing else is kept)."""
    receipt = get_ballot(tracking_code, request, _rl, limit)
    if receipt.kind == "cast":
        service.record_check(receipt.ballot_hash)
    return receipt


@router.get(
    "/evidence/{evidence_hash}",
    summary="The private authentication evidence behind a published evidence hash (auditors with access)",
)
def get_evidence(evidence_hash: str, intake: IntakeDep, _admin: AdminDep) -> dict[str, Any]:
    if len(evidence_hash) != 64:
        raise InvalidRequest("evidence.format", "an evidence hash is 64 hex digits")
    return intake.evidence(evidence_hash)
