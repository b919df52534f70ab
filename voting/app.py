"""The FastAPI application factory: ``create_app(settings) -> FastAPI``.

Routers (one per resource, all thin):

* ``/api/v1/election``, ``…/manifest``, ``…/joint-key``, ``…/ceremony``, ``…/tally``, ``…/result``:
  public (``voting.api.public``)
* ``/api/v1/admin/*``: the commission, admin bearer token (``voting.api.admin``)
* ``/api/v1/trustee/*``: trustees, registration code then per-trustee token (``voting.api.trustee``)
* ``/api/v1/ledger/*``: the public ledger (``voting._ledger_api``)
* ``/api/v1/voter/*``: ballot intake (``voting.api.voter``)
* ``/api/v1/kiosk/*``: polling-place kiosks, each request signed by an enrolled kiosk's key, and
  ``/api/v1/admin/kiosks…``: their enrolment (``voting.api.kiosk``)
* ``/``, ``/vote``, ``/vote/oidc-callback``, ``/check``, ``/kiosk``, ``/static/*``: the residents' booth
  (``voting.api.booth``, files from ``Settings.effective_web_root``)
* ``/metrics``: Prometheus metrics, a bearer token outside development (``voting._metrics``)

Every response, errors included, carries the security headers of :mod:`voting._headers` (a strict
Content-Security-Policy and the rest): :class:`_App` wraps them around the whole middleware stack.

The app holds one :class:`~voting.service.ElectionService` (``app.state.service``), which owns the engine
and the :class:`ledger.Ledger` (the ledger routes resolve it through the service, so they work as soon as
the election exists), and one :class:`~voting._intake_config.IntakeProvider` (``app.state.intake_provider``)
that builds ballot intake from the settings. The OpenAPI schema is served at ``/openapi.json``; the
interactive pages (``/docs``, ``/redoc``) are off in every environment: they load their scripts from a
CDN, which the booth's Content-Security-Policy (rightly) refuses (``docs/api.md``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from ._client_address import ClientAddressMiddleware
from ._deps import RateLimiter
from ._errors import install_error_handlers
from ._headers import SecurityHeaders
from ._limits import BodySizeLimit
from ._metrics import Metrics, MetricsMiddleware, add_metrics_route
from ._settings import Settings

__all__ = ["create_app", "create_worker_app"]


class _App(FastAPI):
    """The FastAPI app with :class:`voting._headers.SecurityHeaders` outside its whole middleware stack, so
    that even the server-error handler's ``500`` (outermost in Starlette) carries the security headers, and
    :class:`voting._metrics.MetricsMiddleware` outside that, so that it sees every answer."""

    def build_middleware_stack(self) -> Any:
        production = self.state.settings.environment == "production"
        inner = SecurityHeaders(super().build_middleware_stack(), production=production)
        # outside everything: it times every request and counts every error answer, the 500s included
        return MetricsMiddleware(inner, self.state.metrics)


API_PREFIX = "/api/v1"
_log = logging.getLogger("tvote.reconcile")
_period_log = logging.getLogger("tvote.period")


def create_app(
    settings: Settings | None = None,
    *,
    service: Any | None = None,
    intake: Any | None = None,
    period_poll_seconds: float = 1.0,
    startup_checks: bool = True,
) -> FastAPI:
    """Build the app. ``service`` may be given (tests, the demo); by default it is built from ``settings``.

    While the app runs (its lifespan), the *period keeper* calls ``service.enforce_period()`` at start and
    then every ``period_poll_seconds``: voting opens when the manifest's period opens (once the key
    ceremony and the roll commitment are done) and closes at its end, by the service's injected clock.

    ``intake`` is a :class:`voting._intake_config.IntakeConfig`; by default it is loaded from ``settings``
    (trust anchors, CRLs, digital-ID provider, face-match engine), so a misconfigured
    server refuses to start (:class:`~voting._errors.ConfigurationError`). The ledger routes read the
    service's ledger; the voter routes an :class:`voting._intake_config.IntakeProvider`.

    Before the database is opened it prepares the data directory (:func:`voting._startup.prepare`) and
    runs every start-up check; once the service is open, the per-election checks if the election exists.
    Any failure raises :class:`voting._startup.StartupCheckFailed` listing every problem.
    ``startup_checks=False`` skips the checks (a worker of ``tvote serve --workers N``, whose parent ran
    them on the same settings); the reconciliation runs in any case (under the election's lock: safe beside
    running servers, ``ElectionService.reconcile``).
    """
    from ._intake_config import IntakeConfig, IntakeProvider
    from ._ledger_api import CosignPool, add_service_error_handlers
    from ._startup import prepare, raise_for, run_checks
    from .service import ElectionService

    settings = prepare(settings or Settings.from_env()).settings
    if startup_checks:
        raise_for(run_checks(settings))
    if intake is None:
        intake = IntakeConfig.from_settings(settings)
    if service is None:
        service = ElectionService.from_settings(settings)
    _check_roll_key(settings, service)
    if startup_checks and service.has_election():
        raise_for(run_checks(settings, service.manifest))
    reconcile_on_start(service)
    if not period_poll_seconds > 0:
        raise ValueError("period_poll_seconds must be positive")

    @asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(keep_period(service, period_poll_seconds))]
        if settings.checkpoint_interval > 0:
            tasks.append(
                asyncio.create_task(
                    keep_checkpoints(service, settings.checkpoint_interval, settings.checkpoint_max_entries)
                )
            )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
            pool = getattr(running.state, "cosign_pool", None)
            if isinstance(pool, CosignPool):  # the cosignatures' worker process, if one was started
                await asyncio.to_thread(pool.close)

    app = _App(
        lifespan=lifespan,
        title="tvote election service",
        version="1",
        description="End-to-end verifiable internet voting: election lifecycle, trustees, ballots, ledger.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.service = service
    app.state.engine = service.engine
    # voter routes: a generous ceiling per client address, a tighter bucket per session or credential
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_address)
    app.state.session_limiter = RateLimiter(settings.rate_limit_per_minute, code="session.rate_limited")
    app.state.spoil_limiter = RateLimiter(
        settings.spoil_rate_per_hour, burst=settings.spoil_burst, window=3600.0, code="spoil.rate_limited"
    )
    app.state.intake_provider = IntakeProvider(intake, service)
    app.state.metrics = Metrics(service)
    install_error_handlers(app)
    add_service_error_handlers(app)
    from . import _ledger_api
    from .api import admin, booth, kiosk, public, trustee, voter

    per_route = voter.BODY_LIMITS | kiosk.BODY_LIMITS | _ledger_api.BODY_LIMITS
    route_limits = {(method, API_PREFIX + path): n for (method, path), n in per_route.items()}
    app.add_middleware(
        BodySizeLimit,
        default=settings.max_request_bytes,
        admin=settings.max_admin_request_bytes,
        admin_prefix=f"{API_PREFIX}/admin/",
        routes=route_limits,
        timeout=float(settings.body_timeout),
    )
    # outermost: everything inside sees the client address a trusted proxy reports, or the TCP peer
    app.add_middleware(ClientAddressMiddleware, proxies=settings.proxies)

    # the voter routes first: a request is matched against the routes in this order, and ballots are the
    # busiest (no two routers share a path, so the order changes no answer)
    app.include_router(voter.router, prefix=API_PREFIX)
    app.include_router(public.router, prefix=API_PREFIX)
    app.include_router(admin.router, prefix=API_PREFIX)
    app.include_router(trustee.router, prefix=API_PREFIX)
    app.include_router(_ledger_api.router, prefix=API_PREFIX)
    app.include_router(kiosk.router, prefix=API_PREFIX)
    app.include_router(kiosk.admin_router, prefix=API_PREFIX)
    app.include_router(booth.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    add_metrics_route(app, app.state.metrics)
    # the latency histogram's route label: the template of each route (never the requested path)
    api_routers = (public, admin, trustee, _ledger_api, voter, kiosk)
    app.state.metrics.name_routes(
        [(API_PREFIX, r) for m in api_routers for r in m.router.routes]
        + [(API_PREFIX, r) for r in kiosk.admin_router.routes]
        + [("", r) for r in booth.router.routes]
        + [("", r) for r in app.router.routes]
    )

    return app


def create_worker_app() -> FastAPI:
    """The app of one worker process of ``tvote serve --workers N`` (uvicorn's factory, imported by name in
    each worker): the settings from the ``TVOTE_*`` environment the parent prepared
    (:func:`voting._cli_serve.worker_environment`), the start-up checks skipped (the parent ran them)."""
    import os

    if os.environ.get("TVOTE_WORKER") != "1":
        from ._errors import ConfigurationError

        raise ConfigurationError("config.workers", "create_worker_app runs only in a worker of tvote serve")
    return create_app(Settings.from_env(), startup_checks=False)


async def keep_period(service: Any, poll_seconds: float) -> None:
    """The period keeper: ``service.enforce_period()`` now and every ``poll_seconds``, in a worker thread
    (it takes the election's mutation lock and appends). A refusal (e.g. ``service.diverged``) is logged
    once per distinct reason and retried; the loop ends only when cancelled."""
    import anyio.to_thread

    from ._errors import ServiceError

    last_problem: str | None = None
    while True:
        problem: str | None
        try:
            done = await anyio.to_thread.run_sync(service.enforce_period)
        except ServiceError as e:
            problem = f"{e.code}: {e.message}"
        except Exception as e:  # the keeper must outlive a storage hiccup; it retries
            problem = f"{type(e).__name__} (see the storage)"
        else:
            problem = None
            if done is not None:
                _period_log.warning("voting %s on schedule (voting period of the manifest)", done)
        if problem is not None and problem != last_problem:
            _period_log.error("the voting period could not be enforced, retrying: %s", problem)
        last_problem = problem
        await asyncio.sleep(poll_seconds)


async def keep_checkpoints(service: Any, interval: int, max_entries: int, tick: float = 0.5) -> None:
    """The checkpoint keeper: every ``tick`` seconds, sign a checkpoint if entries are uncovered and either
    ``interval`` seconds have passed since the keeper's last one (monotonic time) or ``max_entries`` entries
    are uncovered. Receipts issued in between are pending and get their proof against this checkpoint, so
    ballots share checkpoint times instead of each getting its own. A failure is logged once per distinct
    reason and retried; the loop ends only when cancelled."""
    import anyio.to_thread

    last = time.monotonic()

    def due() -> None:
        nonlocal last
        if not service.has_election():
            return
        led = service.ledger
        n = led.uncovered()
        if n and (n >= max_entries or time.monotonic() - last >= interval):
            led.checkpoint()
            last = time.monotonic()

    last_problem: str | None = None
    while True:
        problem: str | None = None
        try:
            await anyio.to_thread.run_sync(due)
        except Exception as e:  # the keeper must outlive a storage hiccup; it retries
            problem = f"{type(e).__name__} (see the storage)"
        if problem is not None and problem != last_problem:
            _period_log.error("a scheduled checkpoint could not be issued, retrying: %s", problem)
        last_problem = problem
        await asyncio.sleep(min(tick, float(interval)))


def reconcile_on_start(service: Any) -> None:
    """Bring the private state up to the ledger before serving (``ElectionService.reconcile``).

    Other servers may be serving the same PostgreSQL database: the reconciliation runs under the election's
    mutation lock (no cast of theirs is between its two commits then) and, there, keeps pending evidence
    younger than :data:`voting.service.ORPHAN_MIN_AGE` (should a holder have lost its database session).

    What was repaired is logged (counts and entry types only, no personal data). If reconciliation fails the
    server still starts and answers reads, but refuses every change with ``service.diverged`` (503) and the
    reason, until an operator fixes the cause and runs ``tvote admin reconcile``.
    """
    from ._errors import ServiceError
    from .service import ORPHAN_MIN_AGE

    shared = service.engine.dialect.name != "sqlite"
    try:
        report = service.reconcile(orphan_min_age=ORPHAN_MIN_AGE if shared else None)
    except ServiceError as e:
        _log.error("reconciliation failed; changes are refused until it succeeds: %s", e)
        return
    if report.repaired or report.orphans_removed or report.problems:
        kinds = sorted({t for _, t in report.repaired})
        _log.warning(
            "reconciled with the ledger: %d entries recorded (%s), %d orphan rows removed, %d problems",
            len(report.repaired),
            ", ".join(kinds) or "none",
            report.orphans_removed,
            len(report.problems),
        )
        for p in report.problems:
            _log.warning("reconciliation problem: %s", p)


def _check_roll_key(settings: Settings, service: Any) -> None:
    """A configured roll key must be the key of the election this server already runs (if any)."""
    key = settings.roll_key()
    if key is not None and service.has_election() and service.roll_key != key:
        from ._errors import ConfigurationError

        raise ConfigurationError(
            "config.roll_key", "TVOTE_ROLL_KEY_FILE holds another key than the running election's roll key"
        )
