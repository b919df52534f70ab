"""Request and response models shared by the routers. Response models list their fields explicitly, so a
private column (roll key, token hashes, match keys) cannot leak through a route."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AppendedOut",
    "BoothAssetOut",
    "BoothOut",
    "BoothPublishIn",
    "BoothPublishedOut",
    "BoothServedOut",
    "CeremonyOut",
    "ElectionCreatedOut",
    "ElectionOut",
    "ExtendIn",
    "OverrideIn",
    "PartialOut",
    "RegisterIn",
    "RegisterOut",
    "RollOut",
]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppendedOut(_Out):
    ledger_index: int


class ElectionOut(_Out):
    election_id: str
    name: dict[str, str]
    base_hash: str
    phase: str
    threshold: int
    trustees: int
    voting_period: dict[str, str]
    roll_committed: bool
    roll_size: int | None
    joint_key: str | None
    opened_at: str | None
    closed_at: str | None
    #: when voting closes: ``voting_period.closes``, or the end set by the last ``voting.extended``
    voting_closes: str


class BoothAssetOut(_Out):
    """One served file: its address, SHA-256 (hex) and size in bytes."""

    path: str
    sha256: str
    bytes: int


class BoothServedOut(_Out):
    digest: str
    assets: list[BoothAssetOut]


class BoothPublishedOut(BoothServedOut):
    ledger_index: int


class BoothOut(_Out):
    """``GET /election/booth``: the booth as published on the ledger (``None`` before ``booth.published``),
    what this server serves now, whether the two digests agree, and how many cast ballots were checked."""

    published: BoothPublishedOut | None
    served: BoothServedOut
    #: ``None`` before the booth is published
    matches: bool | None
    #: distinct cast ballots looked up with Check my ballot (``GET /voter/check/{tracking_code}``)
    checked_ballots: int


class BoothPublishIn(BaseModel):
    """Body of ``POST /admin/booth/publish`` (optional): the digest the commission reviewed; the server
    refuses to publish anything else (``booth.digest_mismatch``)."""

    model_config = ConfigDict(extra="forbid")
    expected_digest: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class OverrideIn(BaseModel):
    """Body of ``POST /admin/open`` and ``/admin/close`` (optional): opening before the voting period or
    closing before its end needs a reason, published in the entry."""

    model_config = ConfigDict(extra="forbid")
    override_reason: str | None = Field(default=None, max_length=2000)


class ExtendIn(BaseModel):
    """Body of ``POST /admin/extend``: the new end of voting (RFC 3339 with a time zone) and why."""

    model_config = ConfigDict(extra="forbid")
    closes: str = Field(max_length=40)
    reason: str = Field(max_length=2000)


class ElectionCreatedOut(_Out):
    election_id: str
    base_hash: str
    ledger_index: int
    invitations: dict[str, str] = Field(description="one-time trustee registration codes, shown only once")


class RollOut(_Out):
    size: int
    root: str
    alias_scheme: str
    published: bool
    ledger_index: int | None = None


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    invitation: str = Field(min_length=3, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    commitments: dict[str, Any]
    #: ``{"public_key", "signature"}`` by the trustee's enrolment key, when the manifest pins enrolment keys
    enrolment: dict[str, str] | None = None


class RegisterOut(_Out):
    trustee: int
    token: str = Field(description="the per-trustee bearer token; shown once, only its hash is stored")
    ledger_index: int | None = None


class CeremonyOut(_Out):
    threshold: int
    n: int
    trustees: list[dict[str, Any]]
    complaints: list[dict[str, Any]]
    joint_key: dict[str, Any] | None


class PartialOut(_Out):
    trustee: int
    accepted: bool
    ledger_index: int
    reason: str | None = None
