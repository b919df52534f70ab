"""HTTP API of the ledger: public read endpoints + cosignature submission, and a standalone app factory.

Mount ``router`` in any FastAPI app whose ``app.state.ledger`` is a :class:`ledger.Ledger`, or whose
``app.state.service`` has a ``ledger`` (the election server), and call :func:`add_service_error_handlers`
on the app. Endpoints (all JSON; hashes and signatures lowercase hex)::

    GET  /ledger/checkpoint                               newest signed checkpoint (+ cosignatures)
    GET  /ledger/checkpoint/{size}                        the checkpoint of that size
    GET  /ledger/entries?start=&stop=                     at most 1000 canonical entries
    GET  /ledger/proof/inclusion?index=&tree_size=        RFC 9162 inclusion proof
    GET  /ledger/proof/consistency?old_size=&new_size=    RFC 9162 consistency proof
    GET  /ledger/witnesses                                log key, witness keys + PoPs, quorum
    POST /ledger/cosignature  {witness, size, signature}  a witness's BLS cosignature (rate-limited)

:func:`create_app` adds, for the standalone ledger server (``tvote ledger serve``), the admin-only
(``Authorization: Bearer <token>``) ``POST /ledger/append`` ``{"type": ..., "payload": {...}}`` and
``POST /ledger/checkpoint``.

Every error, of the election server and of the standalone ledger server alike, has the one shape of
``docs/api.md``: ``{"error": {"code": "ledger.not_found", "message": "..."}}`` (codes: :func:`error_code`;
``request.invalid`` 422 for a path or query number that is not an integer from 0 to 2^53 - 1, so
``/ledger/checkpoint/99999999999999999999999`` is a 422 and never reaches the database).

``POST /ledger/cosignature`` costs the server a BLS verification (about half a second of CPU in py_ecc), so
it admits only what could be a new cosignature, cheapest check first: the body's shape and lengths
(``request.invalid`` 422, ``ledger.encoding`` 400); one token of the caller's bucket (per client address,
:data:`COSIGN_PER_CLIENT_PER_MINUTE`, ``cosign.rate_limited`` 429); a configured witness
(``ledger.witness_unknown`` 403); an issued checkpoint (``ledger.not_found`` 404); not stored already (the
same bytes again: 200, the checkpoint unchanged; other bytes: ``ledger.cosignature_conflict`` 409); then
one token of the server-wide bucket (:data:`COSIGN_GLOBAL_PER_MINUTE`, ``cosign.busy`` 429), and only then
the BLS verification (``ledger.verification`` 422 when it fails), in a worker process (:class:`CosignPool`),
not under the serving process's GIL.
"""

from __future__ import annotations

import hmac
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ledger import (
    CosignatureConflict,
    InvalidEncoding,
    InvalidEntry,
    Ledger,
    LedgerError,
    NotFound,
    StorageError,
    StoredCheckpoint,
    UnknownWitness,
    VerificationError,
)
from ledger.record import MAX_ENTRY_BYTES, MAX_SAFE_INTEGER, parse_json

from ._deps import RateLimiter
from ._errors import ServiceUnavailable, Unauthenticated, install_error_handlers
from ._limits import BodySizeLimit

__all__ = [
    "BODY_LIMITS",
    "COSIGN_GLOBAL_PER_MINUTE",
    "COSIGN_PER_CLIENT_PER_MINUTE",
    "CheckpointOut",
    "CosignLimits",
    "CosignPool",
    "add_error_handlers",
    "add_service_error_handlers",
    "checkpoint_out",
    "create_app",
    "error_code",
    "router",
]

_T = TypeVar("_T")

MAX_ENTRIES_PER_PAGE = 1000
#: the largest body of each public ledger route (a cosignature is three short fields)
BODY_LIMITS: dict[tuple[str, str], int] = {("POST", "/ledger/cosignature"): 1024}

#: a tree size or leaf index: the ledger's integers are JSON-safe (``ledger.record.MAX_SAFE_INTEGER``)
Size = Annotated[int, Query(ge=0, le=MAX_SAFE_INTEGER)]
PositiveSize = Annotated[int, Query(ge=1, le=MAX_SAFE_INTEGER)]


def get_ledger(request: Request) -> Ledger:
    """The app's ledger: ``app.state.ledger`` (the standalone ledger server) or else the ledger of the
    election service ``app.state.service`` (the election server: opened once the election exists; before
    that the service answers ``election.none``)."""
    led = getattr(request.app.state, "ledger", None)
    if led is None:
        service = getattr(request.app.state, "service", None)
        if service is not None:
            served: Ledger = service.ledger  # the service's ledger (or a wrapper of it in tests)
            return served
    if not isinstance(led, Ledger):
        raise ServiceUnavailable("ledger.unconfigured", "this server has no ledger configured")
    return led


LedgerDep = Annotated[Ledger, Depends(get_ledger)]


class CosignaturesOut(BaseModel):
    signers: list[str]
    aggregate: str


class CheckpointOut(BaseModel):
    size: int
    root: str
    note: str
    issued_at: int
    witnessed: bool
    cosignatures: CosignaturesOut | None


class EntryOut(BaseModel):
    index: int
    hash: str
    entry: str


class EntriesOut(BaseModel):
    entries: list[EntryOut]


class InclusionOut(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str
    proof: list[str]


class ConsistencyOut(BaseModel):
    old_size: int
    new_size: int
    proof: list[str]


class CosignatureIn(BaseModel):
    witness: str = Field(max_length=64)
    size: int = Field(ge=0, le=MAX_SAFE_INTEGER)
    signature: str = Field(max_length=192)


class AppendedOut(BaseModel):
    index: int
    entry_hash: str


def checkpoint_out(cp: StoredCheckpoint) -> CheckpointOut:
    cos = None
    if cp.cosignatures is not None:
        cos = CosignaturesOut(
            signers=list(cp.cosignatures.signers), aggregate=cp.cosignatures.aggregate.hex()
        )
    return CheckpointOut(
        size=cp.size,
        root=cp.root.hex(),
        note=cp.signed.note,
        issued_at=cp.issued_at,
        witnessed=cp.witnessed,
        cosignatures=cos,
    )


router = APIRouter(prefix="/ledger", tags=["ledger"])


@router.get("/checkpoint")
def latest_checkpoint(led: LedgerDep) -> CheckpointOut:
    return checkpoint_out(led.latest_checkpoint())


@router.get("/checkpoint/witnessed")
def latest_witnessed_checkpoint(led: LedgerDep) -> CheckpointOut:
    """The newest checkpoint cosigned by the manifest's witness quorum (404 ``ledger.not_found`` if none)."""
    return checkpoint_out(led.latest_witnessed_checkpoint())


@router.get("/checkpoint/{size}")
def checkpoint_at(led: LedgerDep, size: Annotated[int, Path(ge=0, le=MAX_SAFE_INTEGER)]) -> CheckpointOut:
    return checkpoint_out(led.checkpoint_at(size))


@router.get("/entries")
def entries(led: LedgerDep, start: Size, stop: Size) -> EntriesOut:
    stop = min(stop, start + MAX_ENTRIES_PER_PAGE)
    return EntriesOut(
        entries=[
            EntryOut(index=e.index, hash=e.hash.hex(), entry=e.canonical.decode())
            for e in led.entries(start, stop)
        ]
    )


@router.get("/proof/inclusion")
def inclusion(led: LedgerDep, index: Size, tree_size: PositiveSize) -> InclusionOut:
    p = led.inclusion_proof(index, tree_size)
    return InclusionOut(
        index=p.index, tree_size=p.tree_size, leaf_hash=p.leaf_hash.hex(), proof=[h.hex() for h in p.proof]
    )


@router.get("/proof/consistency")
def consistency(led: LedgerDep, old_size: Size, new_size: Size) -> ConsistencyOut:
    p = led.consistency_proof(old_size, new_size)
    return ConsistencyOut(old_size=p.old_size, new_size=p.new_size, proof=[h.hex() for h in p.proof])


@router.get("/witnesses")
def witness_policy(led: LedgerDep) -> dict[str, Any]:
    return {"log_key": led.log_key.vkey, "origin": led.log_key.name, **led.config.policy.to_json()}


#: cosignature submissions per client address per minute (every submission counts; a witness sends one per
#: new checkpoint, and the demo's three witnesses share one address)
COSIGN_PER_CLIENT_PER_MINUTE: Final[int] = 30
#: cosignatures the whole server verifies per minute (each ~0.5 s of CPU): about a quarter of one core at most
COSIGN_GLOBAL_PER_MINUTE: Final[int] = 30


@dataclass(frozen=True, slots=True)
class CosignLimits:
    """The two buckets of ``POST /ledger/cosignature``: per client address (every submission) and server-wide
    (only submissions that reach the BLS verification). Set ``app.state.cosign_limits`` to change them."""

    per_client: RateLimiter
    server: RateLimiter

    @classmethod
    def default(cls) -> CosignLimits:
        return cls(
            RateLimiter(COSIGN_PER_CLIENT_PER_MINUTE, code="cosign.rate_limited"),
            RateLimiter(COSIGN_GLOBAL_PER_MINUTE, code="cosign.busy"),
        )


class CosignPool:
    """Where ``POST /ledger/cosignature`` runs its BLS verifications (py_ecc, about 0.35 s of CPU each): a
    worker process, not the serving one, whose GIL its other requests keep meanwhile (the request's thread
    waits for the answer without holding it). One worker, started on the first verification (``spawn``: no
    copy of the server's threads and connections): the server-wide bucket admits 30 verifications a minute,
    a quarter of one core at most. A worker that died is replaced, and the verification asked again, once.
    Set ``app.state.cosign_pool`` to change it; :meth:`close` stops the worker (the app's shutdown)."""

    def __init__(self, workers: int = 1) -> None:
        self._workers = workers
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                ctx = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=ctx)
            return self._pool

    def run(self, call: Callable[[Executor], _T]) -> _T:
        """``call(executor)``; again on a fresh worker if the worker died meanwhile."""
        pool = self._executor()
        try:
            return call(pool)
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False)
            return call(self._executor())

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


_limits_lock = threading.Lock()


def _cosign_pool(request: Request) -> CosignPool:
    state = request.app.state
    with _limits_lock:
        pool = getattr(state, "cosign_pool", None)
        if not isinstance(pool, CosignPool):
            pool = state.cosign_pool = CosignPool()
    return pool


def _cosign_limits(request: Request) -> CosignLimits:
    state = request.app.state
    with _limits_lock:
        limits = getattr(state, "cosign_limits", None)
        if not isinstance(limits, CosignLimits):
            limits = state.cosign_limits = CosignLimits.default()
    return limits


@router.post("/cosignature")
def cosignature(led: LedgerDep, body: CosignatureIn, request: Request) -> CheckpointOut:
    from ledger.record import from_hex

    limits = _cosign_limits(request)
    sig = from_hex(body.signature, 96, "signature")
    limits.per_client.check(limits.per_client.client_key(request))

    def admit() -> None:  # the ledger calls this after its cheap checks, right before the BLS verification
        limits.server.check("all")

    def add(executor: Executor) -> Any:
        return led.add_cosignature(body.witness, body.size, sig, admit=admit, executor=executor)

    return checkpoint_out(_cosign_pool(request).run(add))


def _status(e: LedgerError) -> int:
    if isinstance(e, UnknownWitness):
        return 403
    if isinstance(e, CosignatureConflict):
        return 409
    if isinstance(e, NotFound):
        return 404
    if isinstance(e, InvalidEntry | InvalidEncoding):
        return 400
    if isinstance(e, VerificationError):
        return 422
    if isinstance(e, StorageError):
        return 503
    return 500


_CODES: dict[type[LedgerError], str] = {
    UnknownWitness: "ledger.witness_unknown",
    CosignatureConflict: "ledger.cosignature_conflict",
    NotFound: "ledger.not_found",
    InvalidEntry: "ledger.invalid",
    InvalidEncoding: "ledger.encoding",
    VerificationError: "ledger.verification",
    StorageError: "ledger.storage",
}


def error_code(e: LedgerError) -> str:
    """The stable machine-readable code of a ledger error in the election server's error format."""
    for cls in type(e).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return "ledger.error"


def add_service_error_handlers(app: FastAPI) -> None:
    """Map the ledger's exception tree to the election server's ``{"error": {"code", "message"}}`` body
    (``ledger.not_found`` 404, ``ledger.invalid``/``ledger.encoding`` 400, ``ledger.witness_unknown`` 403,
    ``ledger.cosignature_conflict`` 409, ``ledger.verification`` 422, ``ledger.storage`` 503)."""

    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LedgerError)
        code = error_code(exc)
        return JSONResponse(
            {"error": {"code": code, "message": exc.operator_message}}, status_code=_status(exc)
        )

    app.add_exception_handler(LedgerError, handler)


def add_error_handlers(app: FastAPI) -> None:
    """Every error of an app serving the ledger in the one shape of ``docs/api.md``: the ledger's exception
    tree (:func:`add_service_error_handlers`), request validation (``request.invalid`` 422), HTTP errors
    (``not_found``, ...) and the service's own errors (``voting._errors.install_error_handlers``)."""
    install_error_handlers(app)
    add_service_error_handlers(app)


def create_app(led: Ledger, admin_token: str) -> FastAPI:
    """Standalone ledger server: public router + admin-only append and checkpoint endpoints."""
    if not isinstance(admin_token, str) or len(admin_token) < 16:
        raise ValueError("the admin token must be at least 16 characters")
    app = FastAPI(title="tvote ledger")
    app.state.ledger = led
    add_error_handlers(app)
    # one entry (at most MAX_ENTRY_BYTES canonical) plus its JSON framing; cosignatures are tiny
    limit = 2 * MAX_ENTRY_BYTES
    app.add_middleware(BodySizeLimit, default=limit, admin=limit, admin_prefix="/ledger/", routes=BODY_LIMITS)
    app.include_router(router)

    def require_admin(authorization: Annotated[str | None, Header()] = None) -> None:
        want = f"Bearer {admin_token}".encode()
        if authorization is None:
            raise Unauthenticated("auth.required", "this endpoint requires the admin bearer token")
        if not hmac.compare_digest(authorization.encode(), want):
            raise Unauthenticated("auth.invalid", "the admin token is not valid")

    admin = APIRouter(prefix="/ledger", dependencies=[Depends(require_admin)], tags=["ledger-admin"])

    @admin.post("/append")
    async def append(request: Request, led: LedgerDep) -> AppendedOut:
        raw = await request.body()
        obj = parse_json(raw)
        if not isinstance(obj, dict) or set(obj) != {"type", "payload"}:
            raise InvalidEntry('body must be {"type": <event type>, "payload": <object>}')
        got = await run_in_threadpool(led.append, obj["type"], obj["payload"])
        return AppendedOut(index=got.index, entry_hash=got.entry_hash.hex())

    @admin.post("/checkpoint")
    def issue_checkpoint(led: LedgerDep) -> CheckpointOut:
        return checkpoint_out(led.checkpoint())

    app.include_router(admin)
    return app
