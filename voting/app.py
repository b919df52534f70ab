"""The FastAPI application factory: ``create_app(settings) -> FastAPI``.

Routers (one per resource, all thin):

* ``/api/v1/election``, ``…/manifest``, ``…/joint-key``, ``…/ceremony``, ``…/tally``, ``…/result``:
  public (``voting.api.public``)
* ``/api/v1/admin/*``: the commission, admin bearer token (``voting.api.admin``)
* ``/api/v1/trustee/*``: trustees, registration code then per-trustee token (``voting.api.trustee``)
* ``/api/v1/ledger/*``: the public ledger (``voting._ledger_api``)
* ``/api/v1/voter/*``: ballot intake (``voting.api.voter``)

The app holds one :class:`~voting._election.ElectionService` (``app.state.service``), which owns the engine
and the :class:`ledger.Ledger`. OpenAPI docs are served at ``/docs``.
"""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import FastAPI

from ._deps import RateLimiter
from ._errors import install_error_handlers
from ._settings import Settings

__all__ = ["create_app"]

API_PREFIX = "/api/v1"


def _optional_router(module: str) -> Any | None:
    """A teammate's router if its module exists (a real import error inside it still surfaces)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        return None
    return getattr(mod, "router", None)


def create_app(settings: Settings | None = None, *, service: Any | None = None) -> FastAPI:
    """Build the app. ``service`` may be given (tests, the demo); by default it is built from ``settings``."""
    from ._election import ElectionService

    settings = settings or Settings.from_env()
    if service is None:
        service = ElectionService.from_settings(settings)
    app = FastAPI(
        title="tvote election service",
        version="1",
        description="End-to-end verifiable internet voting: election lifecycle, trustees, ballots, ledger.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.engine = service.engine
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    install_error_handlers(app)

    from .api import admin, public, trustee

    app.include_router(public.router, prefix=API_PREFIX)
    app.include_router(admin.router, prefix=API_PREFIX)
    app.include_router(trustee.router, prefix=API_PREFIX)
    for module in ("voting._ledger_api", "voting.api.voter"):
        r = _optional_router(module)
        if r is not None:
            app.include_router(r, prefix=API_PREFIX)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
