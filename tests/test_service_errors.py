"""Every refusal is a 4xx `{"error": {"code", "message"}}`, ledger unchanged; settings fail closed.

The HTTP tests run on SQLite and on a real PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import pytest
from _service_util import ADMIN, create_election, error_code, manifest_dict, ok, running_app

from voting._deps import RateLimiter
from voting._errors import ConfigurationError, RateLimited
from voting._settings import DEFAULT_ADMIN_TOKEN, Settings


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
    assert e.value.code == "config.default_secret"
    with pytest.raises(ConfigurationError):
        Settings(environment="test", data_dir=tmp_path, admin_token="short")
    with pytest.raises(ConfigurationError):
        Settings.from_env({"TVOTE_ENVIRONMENT": "production", "TVOTE_ADMIN_TOKEN": DEFAULT_ADMIN_TOKEN})
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
