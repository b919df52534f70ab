"""The kiosk's local web service (FastAPI, served on loopback by ``tvote-kiosk serve``): the kiosk page,
a read-only pass-through of the election data the booth libraries read, and the local kiosk API
(``docs/kiosk.md``, "The local API").

Protection: the service listens on loopback only; every request must come from a loopback address with a
``Host`` of this service (``127.0.0.1:<port>``, ``localhost:<port>``, ``[::1]:<port>``: a DNS-rebinding
page has another ``Host``); every ``POST`` must carry an ``Origin`` of this service and a JSON body (a page
of another origin cannot post to it, not even a "simple" form post); the voter's calls carry the voter
session handed out by ``unlock`` (one voter, forgotten after the cast or the idle reset). Errors are
``{"error": {"code", "message", "message_ja", "message_en", ...}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Final

import httpx
from fastapi import Body, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ._errors import KioskError
from ._service import KioskService

__all__ = ["WEB_ROOT", "create_app"]

#: the kiosk page and its assets, built by web/build.mjs (kiosk/web/pages/kiosk.html, kiosk/web/static/)
WEB_ROOT: Final[Path] = Path(__file__).resolve().parent / "web"
PASS_THROUGH: Final[tuple[str, ...]] = (
    "/api/v1/election",
    "/api/v1/election/manifest",
    "/api/v1/election/joint-key",
)
CSP: Final[str] = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; worker-src 'self'; font-src 'self'; manifest-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS: Final[tuple[tuple[str, str], ...]] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), usb=(), serial=(), hid=()"),
)
_PIN = Annotated[str, Field(min_length=1, max_length=64)]
_TOKEN = Annotated[str, Field(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PinBody(_Strict):
    pin: _PIN


class VoterBody(_Strict):
    voter_session: _TOKEN


class LockBody(_Strict):
    voter_session: _TOKEN | None = None
    pin: _PIN | None = None


class CastBody(_Strict):
    voter_session: _TOKEN
    ballot: dict[str, Any]
    card_pin: Annotated[str, Field(min_length=1, max_length=64)]


def _error(e: KioskError) -> JSONResponse:
    return JSONResponse(e.to_body(), status_code=e.status, headers={"cache-control": "no-store"})


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(
    service: KioskService,
    *,
    port: int,
    server_get: Callable[[str], httpx.Response],
    web_root: Path = WEB_ROOT,
    tick_seconds: float = 1.0,
) -> FastAPI:
    """The kiosk's app for ``service`` served on ``port`` (the allowed ``Host`` and ``Origin`` values name
    it). ``server_get(path)`` fetches a read-only path from the election server (the pass-through)."""
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
    origins = {f"http://{h}" for h in hosts}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.refresh)

        async def idle_reset() -> None:
            while True:
                await asyncio.sleep(tick_seconds)
                await run_in_threadpool(service.tick)

        task = asyncio.create_task(idle_reset())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="tvote kiosk", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        client = request.client.host if request.client else None
        origin = request.headers.get("origin")
        bad = (
            not _is_loopback(client)
            or request.headers.get("host") not in hosts
            or (origin is not None and origin not in origins)
            or (request.method not in ("GET", "HEAD") and origin is None)
            or (
                request.method == "POST"
                and request.headers.get("content-type", "").split(";")[0].strip() != "application/json"
            )
        )
        response = _error(KioskError("kiosk.forbidden")) if bad else await call_next(request)
        for k, v in HEADERS:
            response.headers.setdefault(k, v)
        return response

    @app.exception_handler(KioskError)
    async def kiosk_error(_: Request, e: KioskError) -> JSONResponse:
        return _error(e)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, e: RequestValidationError) -> JSONResponse:
        fields = sorted({".".join(str(p) for p in err.get("loc", ())[1:]) for err in e.errors()})
        return _error(KioskError("kiosk.request", fields=fields))

    # ---------------------------------------------------------------------------- the kiosk's local API

    def call(fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> Awaitable[dict[str, Any]]:
        return run_in_threadpool(fn, *args, **kwargs)  # the card and the server calls block

    @app.get("/kiosk/api/state")
    async def state() -> JSONResponse:
        return JSONResponse(await run_in_threadpool(service.snapshot), headers={"cache-control": "no-store"})

    @app.post("/kiosk/api/open")
    async def open_polls(body: Annotated[PinBody, Body()]) -> dict[str, Any]:
        return await call(service.open, body.pin)

    @app.post("/kiosk/api/close")
    async def close_polls(body: Annotated[PinBody, Body()]) -> dict[str, Any]:
        return await call(service.close, body.pin)

    @app.post("/kiosk/api/unlock")
    async def unlock(body: Annotated[PinBody, Body()]) -> dict[str, Any]:
        return await call(service.unlock, body.pin)

    @app.post("/kiosk/api/lock")
    async def lock(body: Annotated[LockBody, Body()]) -> dict[str, Any]:
        if (body.voter_session is None) == (body.pin is None):
            raise KioskError("kiosk.request", fields=["voter_session|pin"])
        return await call(service.lock, voter_session=body.voter_session, pin=body.pin)

    @app.post("/kiosk/api/card")
    async def card(body: Annotated[VoterBody, Body()]) -> dict[str, Any]:
        return await call(service.card, body.voter_session)

    @app.post("/kiosk/api/cast")
    async def cast(body: Annotated[CastBody, Body()]) -> dict[str, Any]:
        return await call(service.cast, body.voter_session, body.ballot, body.card_pin)

    @app.post("/kiosk/api/recheck")
    async def recheck(body: Annotated[LockBody, Body()]) -> dict[str, Any]:
        if (body.voter_session is None) == (body.pin is None):
            raise KioskError("kiosk.request", fields=["voter_session|pin"])
        return await call(service.recheck, voter_session=body.voter_session, pin=body.pin)

    # ------------------------------------------------------------- election data for the booth libraries

    def passthrough(path: str) -> None:
        async def get() -> Response:
            try:
                r = await run_in_threadpool(server_get, path)
            except httpx.TransportError:
                return _error(KioskError("kiosk.offline"))
            if r.headers.get("content-type", "").split(";")[0] != "application/json":
                return _error(KioskError("kiosk.server", detail=f"{path} did not answer JSON"))
            return Response(r.content, status_code=r.status_code, media_type="application/json")

        app.add_api_route(path, get, methods=["GET"], include_in_schema=False)

    for path in PASS_THROUGH:
        passthrough(path)

    # ---------------------------------------------------------------------------------- the kiosk page

    page = web_root / "pages" / "kiosk.html"

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        if not page.is_file():
            return _error(
                KioskError(
                    "kiosk.state",
                    status=404,
                    message_en="The kiosk page is not built.",
                    message_ja="投票端末の画面がありません。",
                )
            )
        return FileResponse(page, media_type="text/html", headers={"cache-control": "no-store"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:  # no icon: an empty answer rather than a 404 in the console
        return Response(status_code=204)

    static = web_root / "static"
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    return app
