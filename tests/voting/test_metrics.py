"""``GET /metrics`` (issue 15, operations): the counters move with real casts, spoils and refusals over real
HTTP; the latency histogram is labelled by route template; the exposition holds no request data; the
endpoint needs its bearer token outside development."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _serve_util import kiosk_cast
from _service_util import ADMIN_TOKEN, error_code, start_election_on
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from voting._errors import ConfigurationError
from voting._settings import Settings
from voting.app import create_app
from voting.service import ElectionService
from voting.testing import DemoElection, JpkiTestCa, make_residents, tsukuba_manifest

pytestmark = pytest.mark.xdist_group("metrics")

CHOICE = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": ["proj-1"]}
TOKEN = "metrics-scrape-token-" + "m" * 32
TOKEN_HASH = hashlib.sha256(TOKEN.encode()).hexdigest()
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}
JSON = "application/json"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def election(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Iterator[Any]:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(4, ca, now)
    manifest = tsukuba_manifest(now, small=True, trustees=3, threshold=2)
    with start_election_on(
        module_database_url, tmp_path_factory.mktemp("metrics"), residents, ca, manifest
    ) as e:
        # the demo runs the "test" environment (JPKI test cards), where /metrics needs its token as in
        # production (production itself: test_production_needs_the_metrics_token)
        e.app.state.settings = e.app.state.settings.with_(metrics_token_hash=TOKEN_HASH)
        yield e


def _scrape(e: DemoElection) -> tuple[str, Samples]:
    r = e.http.get("/metrics", headers=SCRAPE)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text, _samples(r.text)


def test_a_cast_a_kiosk_cast_a_spoil_and_refusals_move_the_counters(
    election: DemoElection, caplog: pytest.LogCaptureFixture
) -> None:
    e = election
    caplog.set_level(logging.DEBUG)
    _, before = _scrape(e)
    api, pin = e.enrol_kiosk("metrics-hall-1")
    api.open(1, pin)
    with e.client() as c:
        receipt = c.cast_jpki(e.residents[0].card, CHOICE)
        kiosk_cast(api, c, e.residents[1].card, CHOICE)
        c.challenge(c.prepare(CHOICE))
    _, mid = _scrape(e)
    # refusals: a route's (an unknown tracking code), the body limit's middleware (before any route runs)
    missing = "ab" * 32  # a ballot hash that was never cast
    assert error_code(e.http.get(f"/api/v1/voter/ballots/{missing}"), 404) == "ballot.not_found"
    big = e.http.post(
        "/api/v1/voter/challenge", content=b"{" + b" " * 2048 + b"}", headers={"content-type": JSON}
    )
    assert error_code(big, 413) == "request.too_large"
    e.http.get(f"/api/v1/voter/ballots/{receipt.tracking_code}").raise_for_status()

    text, after = _scrape(e)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("tvote_ballots_cast_total", channel="internet", method="jpki") == 1
    assert moved("tvote_ballots_cast_total", channel="kiosk", method="jpki") == 1
    assert moved("tvote_ballots_spoiled_total") == 1
    assert moved("tvote_refusals_total", code="ballot.not_found") == 1
    assert moved("tvote_refusals_total", code="request.too_large") == 1
    # the ledger's gauges are read at the scrape
    assert _value(after, "tvote_ledger_entries") == e.ledger_size()
    assert 0 <= _value(after, "tvote_checkpoint_age_seconds") < 3600
    # latency by route template and method: the cast, the receipt lookups (one template for every code)
    receipt_route = {"method": "GET", "route": "/api/v1/voter/ballots/{tracking_code}"}
    lookups = _value(after, "tvote_request_duration_seconds_count", **receipt_route)
    assert lookups - _value(mid, "tvote_request_duration_seconds_count", **receipt_route) == 2
    assert moved("tvote_request_duration_seconds_count", method="POST", route="/api/v1/voter/ballots") == 1
    assert moved("tvote_request_duration_seconds_count", method="POST", route="/api/v1/kiosk/ballots") == 1
    # no request data in the exposition: no tracking code, no client address, no raw path
    assert receipt.tracking_code not in text and missing not in text
    assert "127.0.0.1" not in text and "metrics-hall-1" not in text
    routes = {dict(labels).get("route") for _, labels in after} - {None}
    templates = e.app.state.metrics.templates
    assert routes <= templates | {"unmatched"}, routes - templates
    # the templates are the paths the API publishes (and the booth's, /healthz, /metrics)
    assert set(e.http.get("/openapi.json").json()["paths"]) <= templates
    assert {"/", "/static/{name}", "/healthz", "/metrics"} <= templates
    # nor in what the server logged meanwhile (no access log: docs/operator-guide.md, "Metrics")
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]  # the test's client
    assert not [r for r in server if r.name == "uvicorn.access"]
    logged = "\n".join(r.getMessage() for r in server)
    for secret in ("127.0.0.1", receipt.tracking_code, missing, "/api/v1/voter/ballots/"):
        assert secret not in logged, secret
    codes = {dict(labels)["code"] for name, labels in after if name == "tvote_refusals_total"}
    assert all(re.fullmatch(r"[a-z][a-z0-9_.+-]*", c) for c in codes), codes


def test_an_unknown_path_and_method_are_not_labels(election: DemoElection) -> None:
    e = election
    path = "/no/such/page-" + "q" * 12
    assert error_code(e.http.get(path), 404) == "not_found"
    e.http.request("BREW", "/api/v1/election")
    text, samples = _scrape(e)
    assert "q" * 12 not in text and "BREW" not in text
    assert _value(samples, "tvote_request_duration_seconds_count", method="GET", route="unmatched") >= 1
    assert _value(samples, "tvote_request_duration_seconds_count", method="other", route="/api/v1/election")


def test_the_scrape_needs_the_metrics_token_over_http(election: DemoElection) -> None:
    e = election
    assert error_code(e.http.get("/metrics"), 401) == "auth.required"
    assert error_code(e.http.get("/metrics", headers={"Authorization": "Basic " + TOKEN}), 401) == (
        "auth.required"
    )
    wrong_token = {"Authorization": "Bearer wrong"}
    assert error_code(e.http.get("/metrics", headers=wrong_token), 401) == "auth.invalid"
    # the hash itself is not the token, nor is the admin token
    for wrong in (TOKEN_HASH, ADMIN_TOKEN, e.admin_token):
        r = e.http.get("/metrics", headers={"Authorization": f"Bearer {wrong}"})
        assert error_code(r, 401) == "auth.invalid"
    assert e.http.get("/metrics", headers=SCRAPE).status_code == 200


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    settings = Settings(environment="test", data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN)
    service = ElectionService.from_settings(settings)
    app = create_app(settings, service=service)
    try:
        with TestClient(app) as client:
            yield client, app
    finally:
        service.close()


def test_without_a_token_hash_metrics_are_off_outside_development(app_client: tuple[TestClient, Any]) -> None:
    client, app = app_client
    base = app.state.settings
    for environment in ("production", "test"):
        app.state.settings = base.with_(environment=environment)
        r = client.get("/metrics", headers=SCRAPE)
        assert error_code(r, 403) == "metrics.disabled"
    # development (loopback only): open, and without an election no ledger gauges yet
    app.state.settings = base.with_(environment="development")
    r = client.get("/metrics")
    assert r.status_code == 200 and "tvote_refusals_total" in r.text
    assert "tvote_ledger_entries" not in r.text
    # a configured hash is required in development too
    app.state.settings = base.with_(environment="development", metrics_token_hash=TOKEN_HASH)
    assert error_code(client.get("/metrics"), 401) == "auth.required"
    assert client.get("/metrics", headers=SCRAPE).status_code == 200


def test_production_needs_the_metrics_token(app_client: tuple[TestClient, Any]) -> None:
    client, app = app_client
    # what production serves (its start-up checks are tested elsewhere): the protection follows the settings
    app.state.settings = app.state.settings.with_(environment="production", metrics_token_hash=TOKEN_HASH)
    assert error_code(client.get("/metrics"), 401) == "auth.required"
    assert error_code(client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40}), 401) == (
        "auth.invalid"
    )
    assert error_code(client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}), 401) == (
        "auth.invalid"
    )
    r = client.get("/metrics", headers=SCRAPE)
    assert r.status_code == 200 and "tvote_refusals_total" in r.text
    assert _value(_samples(r.text), "tvote_refusals_total", code="auth.invalid") == 2


def test_the_metrics_token_hash_setting_is_validated(tmp_path: Path) -> None:
    base = {"data_dir": tmp_path, "admin_token": ADMIN_TOKEN}
    for bad in ("", "abc", TOKEN, TOKEN_HASH[:-1] + "g"):
        with pytest.raises(ConfigurationError) as info:
            Settings(metrics_token_hash=bad, **base)
        assert info.value.code == "config.metrics_token_hash"
    assert Settings(metrics_token_hash=TOKEN_HASH.upper(), **base).metrics_token_hash == TOKEN_HASH
    env = {"TVOTE_METRICS_TOKEN_HASH": TOKEN_HASH, "TVOTE_ADMIN_TOKEN": ADMIN_TOKEN}
    assert Settings.from_env(env, data_dir=tmp_path).metrics_token_hash == TOKEN_HASH


def test_the_exposition_parses_and_every_family_is_documented(election: DemoElection) -> None:
    text, _ = _scrape(election)
    families = {f.name for f in text_string_to_metric_families(text)}
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operator-guide.md").read_text(encoding="utf-8")
    section = guide[guide.index("## Metrics") :]
    for name in families - {f for f in families if f.endswith("_created")}:  # prometheus-client's own
        assert name.startswith("tvote_") and f"`{name}" in section, name


def test_a_server_error_is_counted_as_internal_error(app_client: tuple[TestClient, Any]) -> None:
    _, app = app_client
    app.state.settings = app.state.settings.with_(metrics_token_hash=TOKEN_HASH)

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a bug")

    c = TestClient(app, raise_server_exceptions=False)  # the fixture's client runs the lifespan
    assert error_code(c.get("/boom"), 500) == "internal.error"
    samples = _samples(c.get("/metrics", headers=SCRAPE).text)
    assert _value(samples, "tvote_refusals_total", code="internal.error") == 1
    # a route added after the app was built has no template: it is "unmatched", never its path
    assert _value(samples, "tvote_request_duration_seconds_count", method="GET", route="unmatched") == 1


def test_a_storage_failure_leaves_out_the_ledger_gauges_not_the_scrape(
    app_client: tuple[TestClient, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, app = app_client
    app.state.settings = app.state.settings.with_(metrics_token_hash=TOKEN_HASH)

    def storage_down() -> bool:
        raise OSError("disk I/O error")

    monkeypatch.setattr(app.state.service, "has_election", storage_down)
    assert error_code(client.get("/metrics"), 401) == "auth.required"
    r = client.get("/metrics", headers=SCRAPE)
    assert r.status_code == 200 and "tvote_ledger_entries" not in r.text
    assert _value(_samples(r.text), "tvote_refusals_total", code="auth.required") == 1
