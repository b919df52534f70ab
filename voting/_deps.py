"""FastAPI dependencies shared by every router (thin routes: all logic lives in the services).

* :data:`SessionDep` — a SQLModel :class:`~sqlmodel.Session` on the service's engine (closed afterwards).
* :data:`ElectionServiceDep` — the app's :class:`~voting._election.ElectionService` (owns the ledger).
* :data:`AdminDep` — requires ``Authorization: Bearer <admin token>`` (constant-time comparison).
* :data:`TrusteeDep` — requires ``Authorization: Bearer <trustee token>``; the token is issued once, at
  registration, and only its SHA-256 is stored. Resolves to the trustee's index.
* :data:`RateLimitDep` — a per-client token bucket (in memory, per process) for the voter routes. The client
  key is a salted hash of the peer address, kept only in memory and never logged or stored.
* :data:`SpoilLimitDep` — a second, slower bucket per client for the anonymous Benaloh-challenge route
  (``Settings.spoil_rate_per_hour``, ``spoil_burst``): ``429 spoil.rate_limited`` with ``Retry-After``.
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

from ._errors import RateLimited, Unauthenticated
from ._settings import Settings

if TYPE_CHECKING:
    from ._election import ElectionService

__all__ = [
    "AdminDep",
    "AdminPrincipal",
    "ElectionServiceDep",
    "RateLimitDep",
    "RateLimiter",
    "SessionDep",
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

    ``clock`` is injectable for tests. Keys are opaque strings (a salted hash of the peer address). A refusal
    raises :class:`RateLimited` with ``code`` and ``retry_after``: the seconds until one request is allowed.
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

    def client_key(self, request: Request) -> str:
        host = request.client.host if request.client else "unknown"
        return hashlib.sha256(self._salt + host.encode()).hexdigest()[:32]

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


RateLimitDep = Annotated[None, Depends(rate_limit)]
SpoilLimitDep = Annotated[None, Depends(spoil_limit)]
