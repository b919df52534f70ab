"""FastAPI dependencies shared by every router (thin routes: all logic lives in the services).

* :data:`SessionDep` — a SQLModel :class:`~sqlmodel.Session` on the service's engine (closed afterwards).
* :data:`ElectionServiceDep` — the app's :class:`~voting.service.ElectionService` (owns the ledger).
* :data:`AdminDep` — requires ``Authorization: Bearer <admin token>`` (constant-time comparison).
* :data:`TrusteeDep` — requires ``Authorization: Bearer <trustee token>``; the token is issued once, at
  registration, and only its SHA-256 is stored. Resolves to the trustee's index.
* :data:`RateLimitDep` — the per-address ceiling of the voter routes: a token bucket (in memory, per
  process) per client address (``Settings.rate_limit_per_address``, generous: many voters share one address
  behind a mobile carrier's NAT or at a polling place); ``429 rate_limited``. The address is the TCP peer,
  or what a trusted reverse proxy reports (:mod:`voting._client_address`); IPv6 clients count per /64. The
  key is a salted hash, kept only in memory and never logged or stored.
* :data:`SessionLimitDep` — the per-session / per-credential bucket (``Settings.rate_limit_per_minute``): a
  callable ``limit(kind, value)`` the route calls with what identifies the voting session or credential
  (the card certificate, the digital-ID login ``state``, the ballot, the tracking code) before any work;
  ``429 session.rate_limited``.
* :data:`SpoilLimitDep` — a second, slower bucket per client address for the anonymous Benaloh-challenge
  route (``Settings.spoil_rate_per_hour``, ``spoil_burst``): ``429 spoil.rate_limited`` with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from ._client_address import address_key
from ._errors import RateLimited, Unauthenticated
from ._settings import Settings

if TYPE_CHECKING:
    from .service import ElectionService

__all__ = [
    "AdminDep",
    "AdminPrincipal",
    "ElectionServiceDep",
    "RateLimitDep",
    "RateLimiter",
    "SessionDep",
    "SessionLimit",
    "SessionLimitDep",
    "SettingsDep",
    "SpoilLimitDep",
    "TrusteeDep",
    "TrusteePrincipal",
    "get_service",
    "get_session",
    "hash_token",
]

_admin_bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken", description="Commission admin token")
_trustee_bearer = HTTPBearer(
    auto_error=False, scheme_name="TrusteeToken", description="Per-trustee token issued at registration"
)


def hash_token(token: str) -> str:
    """SHA-256 (hex) of a bearer token: what the database stores instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def get_settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


def get_service(request: Request) -> ElectionService:
    svc: ElectionService = request.app.state.service
    return svc


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.service.engine, expire_on_commit=False) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
ElectionServiceDep = Annotated["ElectionService", Depends(get_service)]
SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    """The caller proved knowledge of the commission's admin token."""


@dataclass(frozen=True, slots=True)
class TrusteePrincipal:
    index: int


def require_admin(
    settings: SettingsDep,
    cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
) -> AdminPrincipal:
    if cred is None or cred.scheme.lower() != "bearer":
        raise Unauthenticated("auth.required", "this endpoint requires the admin bearer token")
    token = settings.admin_token
    if token is None or not hmac.compare_digest(cred.credentials.encode(), token.encode()):
        raise Unauthenticated("auth.invalid", "the admin token is not valid")
    return AdminPrincipal()


def require_trustee(
    service: ElectionServiceDep,
    cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_trustee_bearer)],
) -> TrusteePrincipal:
    if cred is None or cred.scheme.lower() != "bearer":
        raise Unauthenticated("auth.required", "this endpoint requires a trustee bearer token")
    index = service.trustee_for_token(cred.credentials)
    if index is None:
        raise Unauthenticated("auth.invalid", "the trustee token is not valid")
    return TrusteePrincipal(index)


AdminDep = Annotated[AdminPrincipal, Depends(require_admin)]
TrusteeDep = Annotated[TrusteePrincipal, Depends(require_trustee)]


class RateLimiter:
    """Token bucket per client key: ``per_minute`` requests (per ``window`` seconds if given), refilled
    continuously, at most ``burst`` at once (default: the whole allowance). Thread-safe.

    ``clock`` is injectable for tests. Keys are opaque strings (:meth:`key`: a salted hash of the client's
    address or of a session/credential value). A refusal raises :class:`RateLimited` with ``code`` and
    ``retry_after``: the seconds until one request is allowed.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        burst: int | None = None,
        window: float = 60.0,
        code: str = "rate_limited",
    ):
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self.rate = per_minute / window
        self.capacity = float(burst if burst is not None else per_minute)
        self.code = code
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}
        self._salt = secrets.token_bytes(16)

    def key(self, kind: str, value: str | bytes) -> str:
        """An opaque bucket key for ``value`` (a salted hash: the value itself is never kept)."""
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        return hashlib.sha256(self._salt + kind.encode() + b"\x00" + raw).hexdigest()[:32]

    def client_key(self, request: Request) -> str:
        """The bucket of the request's client address (IPv6: its /64; ``_client_address.address_key``)."""
        return self.key("address", address_key(request.client.host if request.client else None))

    def check(self, key: str, cost: float = 1.0) -> None:
        """Take ``cost`` tokens from ``key``'s bucket or raise :class:`RateLimited`."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < cost:
                self._buckets[key] = (tokens, now)
                wait = max(1, math.ceil((cost - tokens) / self.rate))
                raise RateLimited(self.code, f"too many requests; try again in {wait} s", retry_after=wait)
            self._buckets[key] = (tokens - cost, now)
            if len(self._buckets) > 100_000:  # bound memory: forget full buckets
                self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.capacity}


def rate_limit(request: Request) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.check(limiter.client_key(request))


def spoil_limit(request: Request) -> None:
    limiter: RateLimiter = request.app.state.spoil_limiter
    limiter.check(limiter.client_key(request))


class SessionLimit:
    """``limit(kind, value)``: take one token from the bucket of a voting session or credential."""

    __slots__ = ("_limiter",)

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    def __call__(self, kind: str, value: str | bytes) -> None:
        self._limiter.check(self._limiter.key(kind, value))


def session_limit(request: Request) -> SessionLimit:
    return SessionLimit(request.app.state.session_limiter)


RateLimitDep = Annotated[None, Depends(rate_limit)]
SpoilLimitDep = Annotated[None, Depends(spoil_limit)]
SessionLimitDep = Annotated[SessionLimit, Depends(session_limit)]
