"""``tvote serve`` configuration and wiring: settings fail closed, intake built from settings, the ledger
routes through the service, no 5xx from the voter routes of an unconfigured server, the CRL directory,
and the append discipline (no write lock held across a ledger append; a failed record stops mutations)."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sqlite3
import stat
import subprocess
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from _serve_util import (
    Cli,
    enrol_kiosk,
    free_port,
    jpki_files,
    kiosk_cast,
    server_env,
    stop_server,
    wait_until_serving,
)
from _service_util import ADMIN, ADMIN_TOKEN, CLOSE_EARLY, OPEN_EARLY, error_code, manifest_dict, running_app
from cryptography.hazmat.primitives import serialization

from voting._commission_key import ensure_test_commission_signer
from voting._db import make_engine
from voting._errors import ConfigurationError, ServiceUnavailable
from voting._intake_config import CrlDirectoryChecker, IntakeConfig
from voting._manifest import parse_manifest
from voting._settings import Settings
from voting._startup import CHECKS, StartupCheck, StartupCheckFailed, prepare, run_checks
from voting.app import create_app
from voting.auth import RevocationError, UnsafeNoRevocationCheck, certificate_fingerprint
from voting.clients.kiosk import KioskKey
from voting.clients.voter import VoterClient
from voting.service import ElectionService, open_ledger
from voting.testing import (
    JpkiTestCa,
    LoopbackServer,
    RsaKeyPool,
    demo_settings,
    make_residents,
    roll_csv,
    run_decryption,
    run_key_ceremony,
    start_election,
    tsukuba_manifest,
)

LONG = "x" * 40


def ok2(r: Any) -> Any:
    assert 200 <= r.status_code < 300, r.text
    return r.json()


def _ca_files(tmp_path: Path, now: dt.datetime) -> tuple[JpkiTestCa, Path, Path]:
    ca = JpkiTestCa.generate(now)
    anchors, crls = tmp_path / "anchors", tmp_path / "crls"
    anchors.mkdir()
    crls.mkdir()
    (anchors / "root.pem").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    crl = ca.build_crl([], now - dt.timedelta(hours=1), now + dt.timedelta(days=1))
    (crls / "a.crl").write_bytes(crl.public_bytes(serialization.Encoding.DER))
    return ca, anchors, crls


# ------------------------------------------------------------------------------------------- settings


def test_settings_refuse_unsafe_choices_outside_development(tmp_path):
    base: dict[str, Any] = {"data_dir": tmp_path, "admin_token": LONG}
    with pytest.raises(ConfigurationError) as e:
        Settings(environment="production", jpki_revocation="unsafe-none", **base)
    assert e.value.code == "config.unsafe"
    with pytest.raises(ConfigurationError) as e:
        Settings(environment="production", jpki_test_policy=True, **base)
    assert e.value.code == "config.unsafe"
    with pytest.raises(ConfigurationError) as e:  # JPKI without revocation data: fail closed
        Settings(environment="test", jpki_trust_anchors=tmp_path, **base)
    assert e.value.code == "config.jpki_crl"
    with pytest.raises(ConfigurationError) as e:
        Settings(environment="test", oidc_issuer="https://id.example", **base)
    assert e.value.code == "config.oidc"
    oidc = {
        "oidc_client_id": "c",
        "oidc_client_secret": "s" * 20,
        "oidc_redirect_uri": "https://v.example/cb",
        "oidc_acr_values": ("urn:example:acr:high",),
        "oidc_trust_frameworks": ("jp_example",),
    }
    with pytest.raises(ConfigurationError) as e:
        Settings(environment="production", oidc_issuer="http://id.example", **oidc, **base)
    assert e.value.code == "config.oidc_issuer"
    Settings(environment="production", oidc_issuer="https://id.example", **oidc, **base)
    # digital ID without a minimum acr or without an accepted trust framework: refused (fail closed)
    for missing in ("oidc_acr_values", "oidc_trust_frameworks"):
        partial = {k: v for k, v in oidc.items() if k != missing}
        with pytest.raises(ConfigurationError) as e:
            Settings(environment="test", oidc_issuer="https://id.example", **partial, **base)
        assert e.value.code == "config.oidc_assurance", missing
    scoped = {k: v for k, v in oidc.items() if k != "oidc_trust_frameworks"}
    with pytest.raises(ConfigurationError) as e:  # the verified scope must be named
        Settings(
            environment="test",
            oidc_issuer="https://id.example",
            oidc_claims_source="verified_scope",
            **scoped,
            **base,
        )
    assert e.value.code == "config.oidc_assurance"
    Settings(
        environment="test",
        oidc_issuer="https://id.example",
        oidc_claims_source="verified_scope",
        oidc_verified_scope="jp_verified",
        **scoped,
        **base,
    )
    with pytest.raises(ConfigurationError) as e:
        Settings(environment="test", face_matcher_url="http://127.0.0.1:1/match", **base)
    assert e.value.code == "config.face"
    # there is no kiosk token at all: a kiosk is enrolled with its own key (docs/kiosk.md)
    assert not any("kiosk" in f for f in Settings.__dataclass_fields__)


def test_settings_from_toml_file_env_wins_and_secret_files(tmp_path):
    secret = tmp_path / "oidc.secret"
    secret.write_text("s" * 24 + "\n")
    cfg = tmp_path / "tvote.toml"
    cfg.write_text(
        f'environment = "test"\nadmin_token = "{LONG}"\nrate_limit = 7\n'
        'oidc_issuer = "https://id.example"\noidc_client_id = "tvote"\n'
        f'oidc_client_secret_file = "{secret}"\noidc_redirect_uri = "https://vote.example/cb"\n'
        'oidc_acr_values = ["urn:example:acr:substantial", "urn:example:acr:high"]\n'
        'oidc_trust_frameworks = ["jp_example"]\n'
    )
    s = Settings.from_env({"TVOTE_CONFIG": str(cfg), "TVOTE_RATE_LIMIT": "9"}, data_dir=tmp_path)
    assert s.rate_limit_per_minute == 9
    old = tmp_path / "old.toml"  # the shared kiosk token of earlier versions is gone, never silently ignored
    old.write_text(f'environment = "test"\nadmin_token = "{LONG}"\nkiosk_token_hashes = ["{"ab" * 32}"]\n')
    with pytest.raises(ConfigurationError) as e:
        Settings.from_env({"TVOTE_CONFIG": str(old)}, data_dir=tmp_path)
    assert e.value.code == "config.file" and "enrol each kiosk" in e.value.message
    assert s.oidc_client_secret == "s" * 24 and "s" * 24 not in repr(s)
    provider = s.oidc_provider()
    assert provider is not None and provider.trust_frameworks == ("jp_example",)
    assert provider.acr_values == ("urn:example:acr:substantial", "urn:example:acr:high")
    cfg.write_text('environment = "test"\nadmin_tokn = "typo"\n')
    with pytest.raises(ConfigurationError) as e:
        Settings.from_env({"TVOTE_CONFIG": str(cfg)})
    assert e.value.code == "config.file"


def test_roll_key_file_keys_the_election_and_must_match_on_restart(tmp_path):
    key = secrets.token_bytes(32)
    kf = tmp_path / "roll.key"
    kf.write_text(key.hex())
    s = Settings(environment="test", data_dir=tmp_path / "d", admin_token=ADMIN_TOKEN, roll_key_file=kf)
    service = ElectionService.from_settings(s)
    try:
        service.create_election(manifest_dict(3, 2))
        assert service.roll_key == key
        other = tmp_path / "other.key"
        other.write_text(secrets.token_bytes(32).hex())
        with pytest.raises(ConfigurationError) as e:
            create_app(s.with_(roll_key_file=other), service=service)
        assert e.value.code == "config.roll_key"
        kf.write_text("00" * 32)
        with pytest.raises(ConfigurationError):
            s.roll_key()
    finally:
        service.close()


def test_intake_config_loads_files_and_refuses_bad_ones(tmp_path):
    now = dt.datetime.now(dt.UTC)
    _ca, anchors, crls = _ca_files(tmp_path, now)
    s = Settings(environment="test", data_dir=tmp_path, admin_token=LONG, jpki_trust_anchors=anchors,
                 jpki_crl_dir=crls, jpki_test_policy=True)  # fmt: skip
    cfg = IntakeConfig.from_settings(s)
    assert len(cfg.trust_anchors) == 1 and isinstance(cfg.revocation, CrlDirectoryChecker)
    with pytest.raises(ConfigurationError) as e:
        IntakeConfig.from_settings(s.with_(jpki_trust_anchors=tmp_path / "missing"))
    assert e.value.code == "config.jpki_trust_anchors"
    (crls / "a.crl").write_bytes(b"not a crl")
    with pytest.raises(ConfigurationError) as e:
        IntakeConfig.from_settings(s)
    assert e.value.code == "config.jpki_crl"
    with pytest.warns(RuntimeWarning, match="UnsafeNoRevocationCheck"):
        unsafe = IntakeConfig.from_settings(s.with_(jpki_crl_dir=None, jpki_revocation="unsafe-none"))
    assert isinstance(unsafe.revocation, UnsafeNoRevocationCheck)


def test_crl_directory_is_reread_when_it_changes_and_fails_closed(tmp_path):
    now = dt.datetime.now(dt.UTC)
    ca, _anchors, crls = _ca_files(tmp_path, now)
    card = ca.issue_card(make_residents(1, ca, now, pool=RsaKeyPool(1))[0].person, now)
    t = [0.0]
    checker = CrlDirectoryChecker(crls, min_interval=1.0, clock=lambda: t[0])
    checker.check(card.certificate, ca.certificate, now)  # listed nowhere: good
    revoking = ca.build_crl([card.certificate.serial_number], now - dt.timedelta(minutes=30),
                            now + dt.timedelta(days=1))  # fmt: skip
    (crls / ".new").write_bytes(revoking.public_bytes(serialization.Encoding.PEM))
    (crls / ".new").rename(crls / "b.crl")  # the operator drops in a newer CRL
    checker.check(card.certificate, ca.certificate, now)  # not re-read before min_interval
    t[0] = 2.0
    with pytest.raises(RevocationError) as e:
        checker.check(card.certificate, ca.certificate, now)
    assert e.value.code == "jpki.revoked"
    (crls / "b.crl").write_bytes(b"garbage")
    t[0] = 4.0
    with pytest.raises(RevocationError) as e:
        checker.check(card.certificate, ca.certificate, now)
    assert e.value.code == "jpki.revocation_unavailable"
    for f in crls.iterdir():
        f.unlink()
    with pytest.raises(ConfigurationError):
        CrlDirectoryChecker(crls)


# ------------------------------------------------------------------ an unconfigured server, ledger routes


def _tomorrow(now: dt.datetime) -> str:
    """A voting period that begins tomorrow: the server's period keeper leaves the opening to the test."""
    return (now + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_unconfigured_server_answers_4xx_never_5xx(tmp_path):
    with running_app(tmp_path) as (client, _service):
        # before the election exists: voter and ledger routes say so
        assert error_code(client.post("/api/v1/voter/challenge"), 404) == "election.none"
        assert error_code(client.get("/api/v1/ledger/checkpoint"), 404) == "election.none"
        assert error_code(client.post("/api/v1/voter/oidc/start", json={"ballot_hash": "00" * 32}), 404) == (
            "election.none"
        )
        now = dt.datetime.now(dt.UTC)
        manifest = tsukuba_manifest(now, trustees=3, threshold=2, small=True)
        manifest["voting_period"]["opens"] = _tomorrow(now)  # opened by the test, with a reason
        invitations = ok2(client.post("/api/v1/admin/election", json=manifest, headers=ADMIN))
        roll = roll_csv(make_residents(2, JpkiTestCa.generate(now), now, pool=RsaKeyPool(2)))
        ok2(client.put("/api/v1/admin/roll", content=roll, headers={**ADMIN, "Content-Type": "text/csv"}))
        ok2(client.post("/api/v1/admin/roll/publish", headers=ADMIN))
        codes = {int(i): c for i, c in invitations["invitations"].items()}
        run_key_ceremony(client, codes, admin_token=ADMIN_TOKEN)
        ok2(client.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY))
        for body in ({"ballot_hash": "ab" * 32}, {"ballot_hash": "ab" * 32, "redirect_uri": "https://x/cb"}):
            r = client.post("/api/v1/voter/oidc/start", json=body)
            assert error_code(r, 403) == "auth.unavailable"
        jpki = {"method": "jpki", "certificate": "30", "signature": "00", "challenge": "00" * 32}
        r = client.post("/api/v1/voter/ballots", json={"ballot": {}, "auth": jpki})
        assert 400 <= r.status_code < 500 and error_code(r, r.status_code)
        oidc = {"method": "oidc+face", "state": "s" * 20, "code": "c", "face": {"image": "00"}}
        r = client.post("/api/v1/voter/ballots", json={"ballot": {}, "auth": oidc})
        assert 400 <= r.status_code < 500 and error_code(r, r.status_code)
        r = client.post("/api/v1/kiosk/ballots", json={"ballot": {}, "auth": jpki},
                        headers={"Authorization": "Bearer whatever"})  # fmt: skip
        assert error_code(r, 401) == "kiosk.required"  # a bearer token is no kiosk
        # kiosks cast with My Number cards: no kiosk is enrolled on a server without JPKI
        enrol = {"kiosk_id": "hall-1", "public_key": KioskKey.generate().public_key_hex, "polling_place": "x"}
        assert error_code(client.post("/api/v1/admin/kiosks", json=enrol, headers=ADMIN), 409) == "kiosk.jpki"


def test_ledger_routes_work_in_the_election_server(tmp_path):
    with running_app(tmp_path) as (client, service):
        ok2(client.post("/api/v1/admin/election", json=manifest_dict(3, 2), headers=ADMIN))
        assert error_code(client.get("/api/v1/ledger/checkpoint"), 404) == "ledger.not_found"
        entries = ok2(client.get("/api/v1/ledger/entries", params={"start": 0, "stop": 10}))["entries"]
        assert len(entries) == 1 and entries[0]["index"] == 0
        service.ledger.checkpoint()
        cp = ok2(client.get("/api/v1/ledger/checkpoint"))
        assert cp["size"] == 1 and cp["note"].startswith("tvote/")
        assert ok2(client.get("/api/v1/ledger/checkpoint/1"))["root"] == cp["root"]
        proof = ok2(client.get("/api/v1/ledger/proof/inclusion", params={"index": 0, "tree_size": 1}))
        assert proof["leaf_hash"] == entries[0]["hash"] and proof["proof"] == []
        assert ok2(client.get("/api/v1/ledger/witnesses"))["log_key"] == service.ledger.log_key.vkey
        # refusals are 4xx with a code
        assert error_code(client.get("/api/v1/ledger/checkpoint/7"), 404) == "ledger.not_found"
        r = client.get("/api/v1/ledger/proof/inclusion", params={"index": 5, "tree_size": 1})
        assert 400 <= r.status_code < 500 and error_code(r, r.status_code).startswith("ledger.")
        r = client.get("/api/v1/ledger/proof/consistency", params={"old_size": 3, "new_size": 1})
        assert 400 <= r.status_code < 500 and error_code(r, r.status_code).startswith("ledger.")
        r = client.get("/api/v1/ledger/entries", params={"start": -1, "stop": 1})
        assert error_code(r, 422) == "request.invalid"


# ---------------------------------------------------------------------------- the append discipline


class WriteLockProbe:
    """Wraps the real ledger; before each append, checks that nobody holds the SQLite write lock (a fresh
    connection must get ``BEGIN IMMEDIATE`` at once). A service holding a write transaction across the
    append would make the ledger's own write wait for the busy timeout and fail."""

    def __init__(self, ledger: Any, db: Path) -> None:
        self._ledger = ledger
        self._db = db
        self.appends = 0
        self.held: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    def _probe(self, what: str) -> None:
        con = sqlite3.connect(self._db, timeout=0, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("ROLLBACK")
        except sqlite3.OperationalError:
            self.held.append(what)
        finally:
            con.close()
        self.appends += 1

    def append(self, type_: str, payload: Any) -> Any:
        self._probe(type_)
        return self._ledger.append(type_, payload)

    def append_many(self, items: Any) -> Any:
        self._probe(",".join(t for t, _ in items))
        return self._ledger.append_many(items)


def test_no_write_lock_is_held_across_any_ledger_append(tmp_path):
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(3, ca, now, pool=RsaKeyPool(3))
    settings, intake = demo_settings(tmp_path, ca, now, admin_token=ADMIN_TOKEN, checkpoint_interval=0)
    manifest = tsukuba_manifest(now, trustees=3, threshold=2, small=True)
    manifest["voting_period"]["opens"] = _tomorrow(now)  # opened by the test, with a reason
    probe = WriteLockProbe(open_ledger(settings, parse_manifest(manifest)), tmp_path / "tvote.sqlite3")
    service = ElectionService(make_engine(settings.effective_database_url), probe, settings=settings)
    app = create_app(settings, service=service, intake=intake)
    choice = {"mayor": ["cand-1"], "referendum": ["no"], "subsidy": ["proj-2"]}
    with LoopbackServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        created = ok2(http.post("/api/v1/admin/election", json=manifest, headers=ADMIN))
        csv = {**ADMIN, "Content-Type": "text/csv"}
        ok2(http.put("/api/v1/admin/roll", content=roll_csv(residents), headers=csv))
        ok2(http.post("/api/v1/admin/roll/publish", headers=ADMIN))
        trustees = run_key_ceremony(http, {int(i): c for i, c in created["invitations"].items()},
                                    admin_token=ADMIN_TOKEN)  # fmt: skip
        kiosk, pin = enrol_kiosk(http, ADMIN_TOKEN, open_session=False)
        ok2(http.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY))
        kiosk.open(1, pin)
        with VoterClient(server.url) as v:
            v.challenge(choice)
            v.cast_jpki(residents[0].card, choice)
            v.cast_jpki(residents[0].card, choice)  # re-vote
            kiosk_cast(kiosk, v, residents[1].card, choice)
        kiosk.close(1, 1, pin)
        ok2(
            http.post(f"/api/v1/admin/kiosks/{kiosk.kiosk_id}/revoke", headers=ADMIN, json={"reason": "test"})
        )
        ok2(http.post("/api/v1/admin/close", headers=ADMIN, json=CLOSE_EARLY))
        ok2(http.post("/api/v1/admin/tally", headers=ADMIN))
        run_decryption(http, [trustees[1], trustees[2]])
        result = ok2(http.post("/api/v1/admin/result", headers=ADMIN))
        ok2(http.post("/api/v1/admin/declaration", headers=ADMIN))
    assert result["results"]["mayor"]["cand-1"] == 2
    assert probe.appends >= 15 and probe.held == []
    service.close()


def test_an_append_whose_record_fails_stops_further_mutations(tmp_path):
    with running_app(tmp_path) as (client, service):
        ok2(client.post("/api/v1/admin/election", json=manifest_dict(3, 2), headers=ADMIN))
        size = service.ledger.size
        with pytest.raises(OSError), service.appending():  # e.g. the disk filled after the append
            service.append_entry("voting.closed", {"election_id": service.election_id})
            raise OSError("disk full")
        assert service.ledger.size == size + 1  # the ledger is the truth ...
        with pytest.raises(ServiceUnavailable):  # ... and the stale private state is not acted upon
            service.publish_roll()
        r = client.post("/api/v1/admin/roll/publish", headers=ADMIN)
        assert error_code(r, 503) == "service.diverged"
        assert service.ledger.size == size + 1
        # a failure before any append changes nothing
    with running_app(tmp_path / "b") as (client, service):
        ok2(client.post("/api/v1/admin/election", json=manifest_dict(3, 2), headers=ADMIN))
        with pytest.raises(OSError), service.appending():
            raise OSError("refused before appending")
        assert error_code(client.post("/api/v1/admin/roll/publish", headers=ADMIN), 409) == "roll.missing"


def test_unsafe_revocation_warns(tmp_path):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        UnsafeNoRevocationCheck()
    assert any("NOT checked" in str(x.message) for x in w)


# ---------------------------------------------------- production by default: the REAL `tvote serve` starting


def _refused_start(*args: str, env: dict[str, str], timeout: float = 90) -> str:
    """Run the real ``tvote serve`` expecting it to refuse to start: exit status 2, nothing served.
    Returns its stderr. A server that starts instead is stopped and the test fails."""
    p = Cli(server_env(**env)).start("serve", "--port", str(free_port()), *args)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_server(p)
        pytest.fail("tvote serve started instead of refusing to")
    assert p.returncode == 2, (p.returncode, out, err)
    assert "serving on" not in out and "Uvicorn running" not in err, (out, err)
    assert "Traceback" not in err, err
    return err


def _production_env(tmp_path: Path, now: dt.datetime) -> dict[str, str]:
    """A complete production configuration: admin token, JPKI anchor + fresh CRL, the commission's key set
    in a 0700 data directory. The anchor is a test CA, so it is pinned explicitly (production refuses any
    anchor that is not pinned; the default pins are the J-LIS signing roots)."""
    ca = JpkiTestCa.generate(now)
    anchors, crls = jpki_files(tmp_path, ca, now)
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o700)
    ensure_test_commission_signer(Settings(environment="test", data_dir=data, admin_token=LONG))  # "issued"
    return {
        "TVOTE_ENVIRONMENT": "production",
        "TVOTE_ADMIN_TOKEN": secrets.token_urlsafe(32),
        "TVOTE_DATA_DIR": str(data),
        "TVOTE_JPKI_TRUST_ANCHORS": str(anchors),
        "TVOTE_JPKI_CRL_DIR": str(crls),
        "TVOTE_JPKI_ANCHOR_PINS": certificate_fingerprint(ca.certificate),
    }


def test_serve_without_settings_is_production_and_needs_an_admin_token(tmp_path):
    """Regression: with no settings `tvote serve` ran as development with the admin token `changethis`."""
    err = _refused_start("--data-dir", str(tmp_path / "d"), env={})
    assert "config.admin_token" in err and "production environment" in err
    for token in ("changethis", "x" * 12):  # well known, short: refused
        err = _refused_start(env={"TVOTE_ADMIN_TOKEN": token, "TVOTE_DATA_DIR": str(tmp_path / "d")})
        assert "config.default_secret" in err or "at least 32 characters" in err


def test_development_must_be_asked_for_and_binds_loopback_only(tmp_path):
    err = _refused_start("--host", "0.0.0.0", env={"TVOTE_ENVIRONMENT": "development"})
    assert "config.bind" in err and "loopback only" in err and "0.0.0.0" in err
    err = _refused_start("--dev", "--host", "192.0.2.10", "--data-dir", str(tmp_path / "d"), env={})
    assert "config.bind" in err
    assert not (tmp_path / "d").exists()  # refused before anything was created


def test_development_draws_random_tokens_into_private_files(tmp_path):
    """No well-known tokens in development: `changethis` is refused, the drawn token (0600 file) works."""
    data, port = tmp_path / "d", free_port()
    server = Cli(server_env()).start("serve", "--dev", "--port", str(port), "--data-dir", str(data))
    try:
        wait_until_serving(server, f"http://127.0.0.1:{port}")
        admin_file = data / "dev-admin-token"
        assert stat.S_IMODE(admin_file.stat().st_mode) == 0o600
        assert not (data / "dev-kiosk-token").exists()  # kiosks are enrolled, there is no kiosk token
        token = admin_file.read_text().strip()
        assert len(token) >= 32 and token != "changethis"
        url = f"http://127.0.0.1:{port}/api/v1/admin/open"
        for guess in ("changethis", "changethis-kiosk"):
            r = httpx.post(url, headers={"Authorization": f"Bearer {guess}"})
            assert error_code(r, 401) == "auth.invalid"
        r = httpx.post(url, headers={"Authorization": f"Bearer {token}"})
        assert error_code(r, 404) == "election.none"  # authenticated: there is no election yet
        # the TEST commission key was generated at start-up, not at `admin publish`
        assert (data / "commission-signer.key").exists()
    finally:
        stop_server(server)
    # a second start draws fresh tokens (nothing well known survives in a file someone may have copied)
    s = prepare(Settings(environment="development", data_dir=data)).settings
    assert s.admin_token != token and s.admin_token == (data / "dev-admin-token").read_text().strip()


def test_production_start_lists_everything_missing_before_listening(tmp_path):
    """Regression: a missing commission key was found only at `tvote admin publish`, after `tally.result`
    was on the ledger. Now the start lists every problem at once and exits 2 before binding."""
    now = dt.datetime.now(dt.UTC)
    env = _production_env(tmp_path, now)
    data = Path(env["TVOTE_DATA_DIR"])
    (data / "commission-signer.key").unlink()
    data.chmod(0o755)
    ca = JpkiTestCa.generate(now)  # the CRL directory holds only a stale CRL of another CA
    for f in Path(env["TVOTE_JPKI_CRL_DIR"]).iterdir():
        f.unlink()
    stale = ca.build_crl([], now - dt.timedelta(days=3), now - dt.timedelta(days=1))
    (Path(env["TVOTE_JPKI_CRL_DIR"]) / "old.crl").write_bytes(stale.public_bytes(serialization.Encoding.DER))
    env.update(
        TVOTE_OIDC_ISSUER="https://id.example.jp",
        TVOTE_OIDC_CLIENT_ID="tvote",
        TVOTE_OIDC_CLIENT_SECRET="s" * 24,
        TVOTE_OIDC_REDIRECT_URI="https://vote.example.jp/cb",
        TVOTE_OIDC_ACR_VALUES="urn:example:acr:ial3",
        TVOTE_OIDC_TRUST_FRAMEWORKS="jp_example_digital_id",
    )  # a complete digital-ID configuration, but no face matcher: the "oidc" check names that
    err = _refused_start(env=env)
    assert "config.startup" in err
    problems = [ln.strip()[2:] for ln in err.splitlines() if ln.strip().startswith("- ")]
    names = [p.split(":", 1)[0] for p in problems]
    assert names == ["data_dir", "commission_key", "crl_source", "oidc"], err
    assert f"chmod 700 {data.resolve()}" in err
    assert "commission-signer.key" in err
    assert not (data / "tvote.sqlite3").exists()  # nothing was opened


def test_production_refuses_an_open_data_directory_and_starts_once_fixed(tmp_path):
    now = dt.datetime.now(dt.UTC)
    env = _production_env(tmp_path, now)
    data = Path(env["TVOTE_DATA_DIR"])
    for mode in (0o750, 0o704):
        data.chmod(mode)
        err = _refused_start(env=env)
        assert f"chmod 700 {data.resolve()}" in err and "commission_key" not in err
    data.chmod(0o700)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Cli(server_env(**env)).start("serve", "--port", str(port))
    try:
        wait_until_serving(server, base)
        for name in ("tvote.sqlite3", "tvote.sqlite3-wal", "tvote.sqlite3-shm"):
            assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
        # the election must be runnable by this server before its manifest goes on the ledger: no
        # witnesses, a digital-ID method the server does not have and no pins are refused, with every reason
        admin = {"Authorization": f"Bearer {env['TVOTE_ADMIN_TOKEN']}"}
        m = manifest_dict(3, 2)
        m["witnesses"] = {"quorum": 0, "keys": []}  # the example's three witnesses removed
        r = httpx.post(f"{base}/api/v1/admin/election", json=m, headers=admin, timeout=60)
        assert error_code(r, 422) == "election.preflight"
        locs = [d["loc"][0] for d in r.json()["error"]["details"]]
        assert locs == ["auth_methods", "witnesses", "oversight", "manifest_pins"], r.text
        assert error_code(httpx.get(f"{base}/api/v1/election"), 404) == "election.none"
    finally:
        stop_server(server)


def test_data_directory_0700_and_database_files_0600(tmp_path):
    """Regression: the data directory was created 755 and the database (roll key, evidence) 644."""
    old = os.umask(0o022)  # the usual umask: modes must not depend on it
    try:
        with running_app(tmp_path) as (client, _service):
            ok2(client.post("/api/v1/admin/election", json=manifest_dict(3, 2), headers=ADMIN))
            data = tmp_path / "data"
            assert stat.S_IMODE(data.stat().st_mode) == 0o700
            names = {f.name for f in data.iterdir()}
            assert {"tvote.sqlite3", "tvote.sqlite3-wal", "tvote.sqlite3-shm", "ledger-signing.key"} <= names
            for name in ("tvote.sqlite3", "tvote.sqlite3-wal", "tvote.sqlite3-shm", "ledger-signing.key"):
                assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    finally:
        os.umask(old)


def test_startup_checks_are_named_functions_and_a_failing_one_is_reported(tmp_path):
    s = Settings(environment="production", data_dir=tmp_path / "d", admin_token=LONG)
    prepare(s)
    assert {c.name for c in CHECKS} >= {"data_dir", "commission_key", "crl_source", "oidc", "witnesses"}

    def broken(_ctx: Any) -> list[str]:
        raise RuntimeError("boom")

    extra = (*CHECKS, StartupCheck("extra", lambda ctx: ["extra problem"]), StartupCheck("broken", broken))
    names = [p.check for p in run_checks(s, checks=extra)]
    assert names == ["commission_key", "intake", "extra", "broken"]
    with pytest.raises(StartupCheckFailed) as e:
        create_app(s)
    assert [p.check for p in e.value.problems] == ["commission_key", "intake"]


# ------------------------------------------------------------------------ `tvote admin publish` re-runnable


def test_publish_can_be_run_again_after_the_declaration_failed(tmp_path, monkeypatch):
    """Regression: `publish` appended tally.result, then failed on the commission key; every later
    `publish` stopped at `POST /result` (409), so the declaration could never be produced."""
    from typer.testing import CliRunner

    from voting.cli import app as cli

    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(2, ca, now, pool=RsaKeyPool(2))
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    choice = {"mayor": ["cand-1"], "referendum": ["no"], "subsidy": ["proj-2"]}
    with start_election(tmp_path / "data", residents, ca, manifest) as e:
        with e.client() as v:
            v.cast_jpki(residents[0].card, choice)
        e.close_early("test: closed before the end of the voting period")
        e.admin("/tally")
        run_decryption(e.http, e.trustees.values())
        key = tmp_path / "data" / "commission-signer.key"
        ensure_test_commission_signer(e.service.settings)
        good = key.read_bytes()
        key.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
        monkeypatch.setenv("TVOTE_ADMIN_TOKEN", e.admin_token)
        first = CliRunner().invoke(cli, ["admin", "publish", "--server", e.base_url])
        assert first.exit_code == 1 and "config.commission_key" in first.output, first.output
        assert e.service.phase == "decrypted"  # tally.result is on the ledger
        key.write_bytes(good)
        again = CliRunner().invoke(cli, ["admin", "publish", "--server", e.base_url])
        assert again.exit_code == 0, again.output
        assert "already on the ledger" in again.output and "pdf_sha256" in again.output
        assert e.service.phase == "declared"
        done = CliRunner().invoke(cli, ["admin", "publish", "--server", e.base_url])
        assert done.exit_code == 0 and "already published" in done.output


def test_commission_certificate_must_outlive_voting(tmp_path):
    """The declaration is signed after voting closes: a certificate expiring before then is a start-up
    problem of the election, not a surprise at `tvote admin publish`."""
    now = dt.datetime.now(dt.UTC)
    s = Settings(environment="test", data_dir=tmp_path, admin_token=LONG)
    ensure_test_commission_signer(s, now - dt.timedelta(days=729))  # its certificate ends in about a day
    assert run_checks(s, now=now) == []
    manifest = parse_manifest(tsukuba_manifest(now + dt.timedelta(days=5), small=True))
    problems = run_checks(s, manifest, now=now)
    assert [p.check for p in problems] == ["commission_key_validity"]
    assert "before voting ends" in problems[0].message
