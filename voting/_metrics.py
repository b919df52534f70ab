"""Prometheus metrics of the election server: ``GET /metrics`` (``prometheus-client`` exposition text).

What is measured (``docs/operator-guide.md``, "Metrics"):

* ``tvote_ballots_cast_total{channel, method}``: ballots acknowledged (a receipt was answered), by channel
  (``internet``, ``kiosk``) and authentication method (``jpki``, ``jpki-app``, ``oidc+face``);
* ``tvote_ballots_spoiled_total``: challenged (spoiled) ballots acknowledged;
* ``tvote_refusals_total{code}``: every error answer (status 4xx/5xx in the documented
  ``{"error": {"code": …}}`` shape) by its ``code``, wherever it was made (route, error handler, body-limit
  middleware, the 500 handler);
* ``tvote_request_duration_seconds{method, route}``: request latency by route *template*
  (``/api/v1/voter/ballots/{tracking_code}``, never the requested path; ``unmatched`` when no route
  matched) and HTTP method;
* ``tvote_ledger_entries`` and ``tvote_checkpoint_age_seconds``: read from the ledger at each scrape (left
  out before the election exists, before the first checkpoint, or when the storage cannot be read).

No label ever holds request data: a route is a template of the app's own routes (``unmatched`` otherwise),
a method one of the HTTP methods the app knows (``other`` otherwise), a code the shape of the server's own
error codes (``other`` otherwise). Nothing here logs.

Counters are per process (``tvote serve`` runs one); each app has its own registry, so two apps in one
process (the tests) do not share counts.

Protection: outside ``development`` the endpoint needs ``Authorization: Bearer <token>`` whose SHA-256 is
``TVOTE_METRICS_TOKEN_HASH``; with no hash configured it answers ``403 metrics.disabled``. In development
(loopback only) it is open unless a hash is configured.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._errors import Forbidden, Unauthenticated

__all__ = ["Metrics", "MetricsMiddleware", "add_metrics_route", "token_hash_matches"]

#: the shape of the server's error codes (``election.phase``, ``crypto.ballot_proof``, ``http.405``, …)
_CODE: Final[re.Pattern[str]] = re.compile(r"[a-z][a-z0-9_.+-]{0,63}")
_METHODS: Final[frozenset[str]] = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: casts with a face match or a slow card check take seconds; the tail is what an operator watches
_BUCKETS: Final[tuple[float, ...]] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: error bodies are small; a larger one is not read for its code
_MAX_ERROR_BODY: Final[int] = 64 * 1024


def token_hash_matches(token: str, expected_hex: str) -> bool:
    """Whether SHA-256(``token``) is ``expected_hex`` (64 lower-case hex), in constant time."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    return hmac.compare_digest(digest, expected_hex)


class Metrics:
    """One app's metrics: its own :class:`CollectorRegistry` with the counters, the latency histogram and a
    collector that reads the ledger of ``service`` at each scrape."""

    def __init__(self, service: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.casts = Counter(
            "tvote_ballots_cast",
            "Ballots acknowledged with a receipt, by channel and authentication method",
            ["channel", "method"],
            registry=self.registry,
        )
        self.spoils = Counter(
            "tvote_ballots_spoiled",
            "Challenged (spoiled) ballots acknowledged",
            registry=self.registry,
        )
        self.refusals = Counter(
            "tvote_refusals",
            "Error answers by their error code",
            ["code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tvote_request_duration_seconds",
            "Request latency by route template and HTTP method",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LedgerCollector(service))
        #: id(route) -> (route, template); the route is kept so that its id cannot be reused
        self._routes: dict[int, tuple[BaseRoute, str]] = {}

    def name_routes(self, routes: Iterable[tuple[str, BaseRoute]]) -> None:
        """Name each ``(prefix, route)`` by ``prefix`` + its path template (``/static/{name}``: convertors
        dropped): the only values the ``route`` label takes, besides ``unmatched``."""
        for prefix, route in routes:
            path_format = getattr(route, "path_format", None)
            if isinstance(path_format, str):
                self._routes[id(route)] = (route, prefix + path_format)

    @property
    def templates(self) -> frozenset[str]:
        """Every value of the ``route`` label but ``unmatched``."""
        return frozenset(t for _, t in self._routes.values())

    def template(self, route: object) -> str:
        named = self._routes.get(id(route))
        return named[1] if named is not None and named[0] is route else "unmatched"

    def cast(self, channel: str, method: str) -> None:
        self.casts.labels(channel=channel, method=method).inc()

    def refused(self, code: str) -> None:
        self.refusals.labels(code=code if _CODE.fullmatch(code) else "other").inc()


class _LedgerCollector(Collector):
    """``tvote_ledger_entries`` and ``tvote_checkpoint_age_seconds``, read when scraped (absent before the
    election exists, the age absent before the first checkpoint)."""

    def __init__(self, service: Any) -> None:
        self._service = service

    def describe(self) -> list[Any]:
        return []  # no fixed description: the families depend on the ledger's state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from ledger import NotFound

        # A storage failure must not fail the whole scrape (the refusal counters matter most then): the
        # gauges are left out, which ``absent(tvote_ledger_entries)`` alerts on.
        try:
            if not self._service.has_election():
                return
            ledger = self._service.ledger
            size = ledger.size
            try:
                issued_at: int | None = ledger.latest_checkpoint().issued_at
            except NotFound:
                issued_at = None
        except Exception:  # reported as the gauges' absence
            return
        yield GaugeMetricFamily("tvote_ledger_entries", "Entries in the ledger", value=size)
        if issued_at is not None:
            yield GaugeMetricFamily(
                "tvote_checkpoint_age_seconds",
                "Seconds since the newest signed checkpoint was issued",
                value=max(0.0, time.time() - issued_at),
            )


class MetricsMiddleware:
    """ASGI middleware, outermost (it sees the 500 answers too): times every HTTP request by route template
    and method, and counts every error answer by its ``code``.

    The route is the one the router chose (``scope["route"]``, set while it dispatches), named by the
    template :meth:`Metrics.name_routes` gave it; any other (no route matched, an unknown route object) is
    ``unmatched``: the requested path is never read."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        is_json = False
        body = bytearray()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, is_json
            if message["type"] == "http.response.start":
                status = int(message["status"])
                ctype = dict(message.get("headers", ())).get(b"content-type", b"")
                is_json = ctype.startswith(b"application/json")
            elif message["type"] == "http.response.body" and status >= 400 and is_json:
                if len(body) <= _MAX_ERROR_BODY:
                    body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method = scope.get("method", "")
            self.metrics.latency.labels(
                method=method if method in _METHODS else "other",
                route=self.metrics.template(scope.get("route")),
            ).observe(time.perf_counter() - start)
            if status >= 400:
                self.metrics.refused(_error_code(bytes(body)) if is_json else f"http.{status}")


def _error_code(body: bytes) -> str:
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return "other"
    return code if isinstance(code, str) else "other"


def add_metrics_route(app: FastAPI, metrics: Metrics) -> None:
    """``GET /metrics`` on ``app`` (not in the OpenAPI schema), protected as the module says."""

    @app.get("/metrics", include_in_schema=False)
    def get_metrics(request: Request) -> Response:
        settings = request.app.state.settings
        expected = settings.metrics_token_hash
        if expected is None:
            if settings.environment != "development":
                raise Forbidden(
                    "metrics.disabled",
                    "the metrics endpoint needs a token outside development: set TVOTE_METRICS_TOKEN_HASH",
                )
        else:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("auth.required", "the metrics endpoint requires its bearer token")
            if not token_hash_matches(token.strip(), expected):
                raise Unauthenticated("auth.invalid", "the metrics token is not valid")
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
