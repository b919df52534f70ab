"""Every refusal is a 4xx `{"error": {"code", "message"}}`, ledger unchanged; settings fail closed.

The HTTP tests run on SQLite and on a real PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import pytest
from _service_util import ADMIN, create_election, error_code, manifest_dict, ok, running_app

from voting._deps import RateLimiter
from voting._errors import ConfigurationError, RateLimited
from voting._settings import Settings


def test_admin_auth_phase_and_validation_errors(tmp_path, database_url):
    with running_app(tmp_path, database_url) as (client, service):
        assert error_code(client.get("/api/v1/election"), 404) == "election.none"
        m = manifest_dict()
        assert error_code(client.post("/api/v1/admin/election", json=m), 401) == "auth.required"
        r = client.post("/api/v1/admin/election", json=m, headers={"Authorization": "Bearer wrong"})
        assert error_code(r, 401) == "auth.invalid"
        bad = {**m, "trustees": {"n": 2, "threshold": 3}}
        r = client.post("/api/v1/admin/election", json=bad, headers=ADMIN)
        assert error_code(r, 422) == "manifest.invalid"
        assert r.json()["error"]["details"][0]["loc"] == "trustees"
        create_election(client)
        size = service.ledger.size
        assert (
            error_code(client.post("/api/v1/admin/election", json=m, headers=ADMIN), 409) == "election.exists"
        )
        assert error_code(client.post("/api/v1/admin/open", headers=ADMIN), 409) == "election.no_joint_key"
        assert error_code(client.post("/api/v1/admin/close", headers=ADMIN), 409) == "election.phase"
        assert error_code(client.post("/api/v1/admin/tally", headers=ADMIN), 409) == "election.phase"
        assert error_code(client.post("/api/v1/admin/roll/publish", headers=ADMIN), 409) == "roll.committed"
        roll = b"resident_id,my_number\nR-1,123456789012\n"
        r = client.put("/api/v1/admin/roll", content=roll, headers={**ADMIN, "Content-Type": "text/csv"})
        assert error_code(r, 409) == "roll.committed"
        assert error_code(client.get("/api/v1/election/joint-key"), 409) == "election.no_joint_key"
        r = client.post("/api/v1/trustee/register", json={"invitation": "1-x"})
        assert error_code(r, 422) == "request.invalid"
        assert error_code(client.get("/api/v1/nothing-here"), 404) == "not_found"
        assert service.ledger.size == size
        # the OpenAPI document is served
        assert "/api/v1/admin/election" in ok(client.get("/openapi.json"))["paths"]


def test_roll_with_my_number_is_refused_over_http(tmp_path, database_url):
    with running_app(tmp_path, database_url) as (client, service):
        ok(client.post("/api/v1/admin/election", json=manifest_dict(), headers=ADMIN), 201)
        roll = b"resident_id,name,birth_date,address\nR-1,A,2000-01-01,1234-5678-9012\n"
        r = client.put("/api/v1/admin/roll", content=roll, headers={**ADMIN, "Content-Type": "text/csv"})
        assert error_code(r, 422) == "roll.my_number"
        assert "1234" not in r.text
        assert error_code(client.post("/api/v1/admin/roll/publish", headers=ADMIN), 409) == "roll.missing"
        assert service.ledger.size == 1


def test_settings_fail_closed(tmp_path):
    with pytest.raises(ConfigurationError) as e:
        Settings(environment="production", data_dir=tmp_path)
    assert e.value.code == "config.admin_token"
    with pytest.raises(ConfigurationError):
        Settings(environment="test", data_dir=tmp_path, admin_token="short")
    with pytest.raises(ConfigurationError):
        Settings.from_env({"TVOTE_ENVIRONMENT": "production", "TVOTE_ADMIN_TOKEN": "changethis"})
    s = Settings.from_env(
        {"TVOTE_ENVIRONMENT": "production", "TVOTE_ADMIN_TOKEN": "z" * 40}, data_dir=tmp_path
    )
    assert s.effective_database_url.startswith("sqlite:///") and s.environment == "production"
    assert "z" * 40 not in repr(s)


def test_rate_limiter_refills():
    now = [0.0]
    rl = RateLimiter(60, clock=lambda: now[0], burst=2)
    rl.check("k")
    rl.check("k")
    with pytest.raises(RateLimited):
        rl.check("k")
    rl.check("other")
    now[0] += 1.0  # one token per second
    rl.check("k")
    with pytest.raises(RateLimited):
        rl.check("k")


def test_spoil_bounds_are_settings_and_fail_closed(tmp_path):
    s = Settings.from_env(
        {
            "TVOTE_SPOIL_RATE_PER_HOUR": "30",
            "TVOTE_SPOIL_BURST": "4",
            "TVOTE_MAX_SPOILED_BALLOTS": "9",
            "TVOTE_ENVIRONMENT": "development",
        },
        data_dir=tmp_path,
    )
    assert (s.spoil_rate_per_hour, s.spoil_burst, s.max_spoiled_ballots) == (30, 4, 9)
    d = Settings(environment="development", data_dir=tmp_path)
    assert (d.spoil_rate_per_hour, d.spoil_burst, d.max_spoiled_ballots) == (600, 60, 50_000)
    for name in ("TVOTE_SPOIL_RATE_PER_HOUR", "TVOTE_SPOIL_BURST", "TVOTE_MAX_SPOILED_BALLOTS"):
        for bad in ("0", "-1", "many"):
            with pytest.raises(ConfigurationError) as e:
                Settings.from_env({name: bad, "TVOTE_ENVIRONMENT": "development"}, data_dir=tmp_path)
            assert e.value.code.startswith("config.") and e.value.code != "config.admin_token"


def test_rate_limiter_says_when_to_retry():
    now = [0.0]
    rl = RateLimiter(60, clock=lambda: now[0], burst=2, window=3600.0, code="spoil.rate_limited")
    rl.check("k")
    rl.check("k")
    with pytest.raises(RateLimited) as e:
        rl.check("k")
    assert e.value.code == "spoil.rate_limited" and e.value.retry_after == 60  # one token per minute
    now[0] += 30.0
    with pytest.raises(RateLimited) as e:
        rl.check("k")
    assert e.value.retry_after == 30
    now[0] += 30.0
    rl.check("k")
    rl.check("other")  # per key


def test_new_error_codes_are_documented():
    """Issue 9's codes are registered in the API documentation (docs/voting.md, docs/api.md)."""
    from pathlib import Path

    from voting.service._intake_checks import DUPLICATE_CODES

    docs = Path(__file__).resolve().parents[2] / "docs"
    voting_md, api_md = (docs / "voting.md").read_text(), (docs / "api.md").read_text()
    for code in (
        *DUPLICATE_CODES.values(),
        "ballot.repeated_ciphertext",
        "spoil.cap_reached",
        "spoil.rate_limited",
        "request.too_deep",
    ):
        assert f"`{code}`" in voting_md, code
        assert f"`{code}`" in api_md or code == "ballot.repeated_ciphertext", code


def test_http_error_codes_are_documented():
    """Issue 10's codes are in the API documentation."""
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    api_md, voting_md = (docs / "api.md").read_text(), (docs / "voting.md").read_text()
    for code in ("request.timeout", "session.rate_limited", "internal.error", "request.too_large"):
        assert f"`{code}`" in api_md, code
    for code in ("request.timeout", "session.rate_limited"):
        assert f"`{code}`" in voting_md, code


def test_trusted_proxies_fail_closed(tmp_path):
    for bad in (["10.0.0.1/8"], ["proxy.example"], ["10.0.0.300"], ["*"]):
        with pytest.raises(ConfigurationError) as e:
            Settings(environment="development", data_dir=tmp_path, trusted_proxies=tuple(bad))
        assert e.value.code == "config.trusted_proxies", bad
    with pytest.raises(ConfigurationError) as e:
        Settings(environment="development", data_dir=tmp_path, proxy_header="x-real-ip")
    assert e.value.code == "config.proxy_header"
    for name in ("TVOTE_RATE_LIMIT_PER_ADDRESS", "TVOTE_BODY_TIMEOUT"):
        for bad in ("0", "-1", "soon"):
            with pytest.raises(ConfigurationError) as e:
                Settings.from_env({"TVOTE_ENVIRONMENT": "development", name: bad}, data_dir=tmp_path)
            assert name.lower().removeprefix("tvote_") in e.value.code, (name, bad, e.value.code)
    s = Settings.from_env(
        {
            "TVOTE_ENVIRONMENT": "development",
            "TVOTE_TRUSTED_PROXIES": "10.0.0.5, 192.0.2.0/24 2001:db8::/48",
            "TVOTE_PROXY_HEADER": "forwarded",
        },
        data_dir=tmp_path,
    )
    assert s.trusted_proxies == ("10.0.0.5", "192.0.2.0/24", "2001:db8::/48")
    assert (
        s.proxies.header == "forwarded" and s.proxies.trusts("192.0.2.9") and not s.proxies.trusts("10.0.0.6")
    )
    d = Settings(environment="development", data_dir=tmp_path)
    assert d.trusted_proxies == () and not d.proxies.trusts("127.0.0.1")


def test_client_address_is_read_from_the_right_and_only_from_trusted_proxies():
    from voting._client_address import TrustedProxies, address_key

    def h(name: str, value: str) -> list[tuple[bytes, bytes]]:
        return [(name.encode(), value.encode())]

    xff = TrustedProxies.parse(["10.0.0.0/8"])
    # not from a proxy: the header is the client's own claim
    assert xff.client("198.51.100.7", h("x-forwarded-for", "1.2.3.4")) == "198.51.100.7"
    # from a proxy: the right-most address that is not a proxy; what the client wrote to its left is ignored
    assert xff.client("10.0.0.1", h("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.2")) == "203.0.113.9"
    assert xff.client("10.0.0.1", h("x-forwarded-for", "[2001:db8::1]:443")) == "2001:db8::1"
    assert xff.client("10.0.0.1", h("x-forwarded-for", "203.0.113.9:5000")) == "203.0.113.9"
    assert xff.client("10.0.0.1", []) == "10.0.0.1"  # the proxy said nothing: the proxy is the client
    assert xff.client("10.0.0.1", h("forwarded", "for=1.2.3.4")) == "10.0.0.1"  # the other header: never read
    fwd = TrustedProxies.parse(["10.0.0.0/8"], "forwarded")
    value = 'for=1.2.3.4, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.3;by=10.0.0.1'
    assert fwd.client("10.0.0.1", h("forwarded", value)) == "2001:db8:cafe::17"
    assert fwd.client("10.0.0.1", h("forwarded", "for=_hidden")) == "_hidden"
    assert fwd.client("10.0.0.1", h("x-forwarded-for", "1.2.3.4")) == "10.0.0.1"
    # IPv6 clients share a bucket per /64; IPv4-mapped addresses are their IPv4 address
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1" and address_key(None) == "unknown"


def test_an_unexpected_failure_is_a_json_500_without_details(tmp_path, monkeypatch):
    """A bug (here: the database going away under the service) is still the documented error shape, and
    says nothing about the failure (no traceback, no SQL, no path)."""
    from fastapi.testclient import TestClient

    from voting.app import create_app
    from voting.service import ElectionService

    settings = Settings(environment="test", data_dir=tmp_path / "data", admin_token="a" * 40)
    service = ElectionService.from_settings(settings)
    try:
        client = TestClient(create_app(settings, service=service), raise_server_exceptions=False)
        monkeypatch.setattr(
            service, "election", lambda: (_ for _ in ()).throw(OSError(5, "disk I/O error /var"))
        )
        r = client.get("/api/v1/election")
        assert r.status_code == 500 and r.headers["content-type"].startswith("application/json")
        assert r.json() == {
            "error": {"code": "internal.error", "message": "the server failed to answer this request"}
        }
        assert r.headers["connection"] == "close"  # the server drops this connection: not to be reused
    finally:
        service.close()
