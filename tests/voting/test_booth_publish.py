"""The booth's digest goes on the ledger before voting opens (``booth.published``, issue 13), the API
compares it with what the server serves now, and Check my ballot counts the ballots looked up (a count only).

Attacks: publishing twice, publishing after voting opened, an asset changed (added, removed) after
publication, a digest the commission did not review; the counter keeps nothing that identifies a ballot.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _booth_util import real_server, write_web_root
from _service_util import (
    ADMIN,
    ADMIN_TOKEN,
    OPEN_EARLY,
    cast_directly,
    cosign,
    create_election,
    error_code,
    ok,
    roll_aliases,
)
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from ledger.events import EventType
from verifier._engine import Options, verify_record
from voting._booth import booth_digest, served_assets
from voting._db import BallotCheckRow, BoothRow, ElectionRow
from voting._settings import Settings
from voting.app import create_app
from voting.service import ElectionService
from voting.testing import run_key_ceremony

CHOICES = {"mayor": ["cand-1"], "projects": [], "referendum": ["yes"]}


@contextmanager
def _app(
    tmp: Path, web: Path, database_url: str | None = None, **kw: Any
) -> Iterator[tuple[TestClient, ElectionService]]:
    settings = Settings(
        environment="test",
        data_dir=tmp / "data",
        admin_token=ADMIN_TOKEN,
        database_url=database_url,
        web_root=web,
        **kw,
    )
    service = ElectionService.from_settings(settings)
    try:
        with TestClient(create_app(settings, service=service)) as client:
            yield client, service
    finally:
        service.close()


@pytest.fixture()
def web(tmp_path: Path) -> Path:
    return write_web_root(tmp_path / "web")


def _keyed(client: TestClient) -> None:
    """An election with its roll committed and its joint key published (voting not open)."""
    invitations = create_election(client, n=3, t=2)
    run_key_ceremony(client, invitations, admin_token=ADMIN_TOKEN)


def _entries(service: ElectionService) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.payload) for e in service.ledger.entries(0, service.ledger.size)]


def test_publish_then_open(tmp_path: Path, web: Path, database_url: str | None) -> None:
    with _app(tmp_path, web, database_url) as (client, service):
        _keyed(client)
        served = served_assets(web)
        booth = ok(client.get("/api/v1/election/booth"))
        assert booth["published"] is None and booth["matches"] is None and booth["checked_ballots"] == 0
        assert booth["served"] == served.to_dict()
        index = ok(client.post("/api/v1/admin/booth/publish", headers=ADMIN))["ledger_index"]
        etype, payload = _entries(service)[index]
        assert etype == EventType.BOOTH_PUBLISHED
        assert set(payload) == {"election_id", "base_hash", "assets", "digest"}
        assert payload["assets"] == [a.to_dict() for a in served.assets]
        assert payload["digest"] == served.digest
        assert payload["digest"] == booth_digest(served.assets)
        assert [a["path"] for a in payload["assets"]][:3] == ["/", "/check", "/static/assets.json"]
        booth = ok(client.get("/api/v1/election/booth"))
        assert booth["matches"] is True
        assert booth["published"] == {**served.to_dict(), "ledger_index": index}

        # publishing twice is refused, and changes nothing
        size = service.ledger.size
        assert error_code(client.post("/api/v1/admin/booth/publish", headers=ADMIN), 409) == "booth.published"
        assert service.ledger.size == size

        # opening voting does not publish it again
        opened = ok(client.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY))["ledger_index"]
        assert opened == size and [t for t, _ in _entries(service)].count(EventType.BOOTH_PUBLISHED) == 1


def test_opening_voting_publishes_the_booth_first(tmp_path: Path, web: Path, database_url: Any) -> None:
    with _app(tmp_path, web, database_url) as (client, service):
        _keyed(client)
        size = service.ledger.size
        opened = ok(client.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY))["ledger_index"]
        entries = _entries(service)
        assert opened == size + 1 and len(entries) == size + 2
        assert entries[size][0] == EventType.BOOTH_PUBLISHED and entries[opened][0] == EventType.VOTING_OPENED
        assert entries[size][1]["digest"] == served_assets(web).digest
        booth = ok(client.get("/api/v1/election/booth"))
        assert booth["published"]["ledger_index"] == size and booth["matches"] is True

        # after voting opened: refused, nothing appended
        r = client.post("/api/v1/admin/booth/publish", headers=ADMIN)
        assert error_code(r, 409) == "election.phase" and service.ledger.size == size + 2

        # the verifier (on the record so far) finds the booth before voting.opened and states its digest
        cosign(client, service)
        service.export(tmp_path / "record")
        report = verify_record(tmp_path / "record", Options(partial=True))
        assert [f.operator_message for f in report.failures] == [] and report.statuses[29] == "pass"
        digest = entries[size][1]["digest"]
        assert report.booth_digest == digest and report.booth_entry == size
        assert report.to_dict()["booth"] == {"digest": digest, "entry": size}


def test_a_changed_booth_shows_in_the_api(tmp_path: Path, web: Path) -> None:
    with _app(tmp_path, web) as (client, _):
        _keyed(client)
        ok(client.post("/api/v1/admin/booth/publish", headers=ADMIN))
        published = ok(client.get("/api/v1/election/booth"))["published"]
        script = web / "static" / "booth-IJKLMNOP.js"
        script.write_bytes(script.read_bytes() + b"sendChoicesElsewhere();\n")
        booth = ok(client.get("/api/v1/election/booth"))
        assert booth["matches"] is False and booth["published"] == published
        assert booth["served"]["digest"] == served_assets(web).digest != published["digest"]
        changed = {a["path"]: a for a in booth["served"]["assets"]}["/static/booth-IJKLMNOP.js"]
        assert changed["sha256"] == hashlib.sha256(script.read_bytes()).hexdigest()
        # an added file changes the digest too; removing both changes back
        script.write_bytes(script.read_bytes().removesuffix(b"sendChoicesElsewhere();\n"))
        assert ok(client.get("/api/v1/election/booth"))["matches"] is True
        (web / "static" / "extra.js").write_bytes(b"1;\n")
        assert ok(client.get("/api/v1/election/booth"))["matches"] is False
        (web / "static" / "extra.js").unlink()
        (web / "pages" / "oidc-callback.html").unlink()
        assert ok(client.get("/api/v1/election/booth"))["matches"] is False


def test_the_commission_can_pin_the_digest_it_reviewed(tmp_path: Path, web: Path) -> None:
    with _app(tmp_path, web) as (client, service):
        _keyed(client)
        size = service.ledger.size
        wrong = {"expected_digest": "ab" * 32}
        r = client.post("/api/v1/admin/booth/publish", headers=ADMIN, json=wrong)
        assert error_code(r, 409) == "booth.digest_mismatch" and service.ledger.size == size
        for bad in ("AB" * 32, "ab" * 31, "zz" * 32):
            r = client.post("/api/v1/admin/booth/publish", headers=ADMIN, json={"expected_digest": bad})
            assert error_code(r, 422) == "request.invalid" and service.ledger.size == size
        assert error_code(client.post("/api/v1/admin/booth/publish"), 401) == "auth.required"
        right = {"expected_digest": served_assets(web).digest}
        r = client.post("/api/v1/admin/booth/publish", headers=ADMIN, json=right)
        assert ok(r)["ledger_index"] == size


def test_an_empty_booth_is_published_as_such(tmp_path: Path) -> None:
    """A server that serves no booth (an API-only deployment) says so on the ledger: an empty list."""
    empty = tmp_path / "empty"
    empty.mkdir()
    with _app(tmp_path, empty) as (client, service):
        _keyed(client)
        index = ok(client.post("/api/v1/admin/booth/publish", headers=ADMIN))["ledger_index"]
        payload = _entries(service)[index][1]
        assert payload["assets"] == [] and payload["digest"] == booth_digest(())


def test_the_booth_is_replayed_from_the_ledger(tmp_path: Path, web: Path) -> None:
    with _app(tmp_path, web) as (client, service):
        _keyed(client)
        index = ok(client.post("/api/v1/admin/booth/publish", headers=ADMIN))["ledger_index"]
        with Session(service.engine) as s:  # the private row lost (a crash after the append)
            s.delete(s.get(BoothRow, service.election_id))
            row = s.exec(select(ElectionRow)).one()
            row.ledger_synced = index
            s.add(row)
            s.commit()
        assert service.published_booth() is None
        report = service.reconcile()
        assert (index, EventType.BOOTH_PUBLISHED) in report.repaired
        booth = service.published_booth()
        assert booth is not None and booth.ledger_index == index and booth.digest == served_assets(web).digest
        assert service.reconcile(full=True).repaired == ()  # idempotent
        assert error_code(client.post("/api/v1/admin/booth/publish", headers=ADMIN), 409) == "booth.published"


def test_check_my_ballot_counts_distinct_cast_ballots(tmp_path: Path, web: Path, database_url: Any) -> None:
    rng = random.Random(13)
    with _app(tmp_path, web, database_url) as (client, service):
        _keyed(client)
        ok(client.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY))
        a, b = roll_aliases(service)[:2]
        hashes = [cast_directly(service, alias, "internet", CHOICES, 1, rng) for alias in (a, b)]
        service.reconcile()  # the intake's private rows of the directly appended ballots
        codes = [p["tracking_code"] for t, p in _entries(service) if t == EventType.BALLOT_CAST]

        def count() -> int:
            return int(ok(client.get("/api/v1/election/booth"))["checked_ballots"])

        assert count() == 0
        assert ok(client.get(f"/api/v1/voter/ballots/{codes[0]}"))["kind"] == "cast"
        assert count() == 0  # a receipt fetched by the booth is not a check
        receipt = ok(client.get(f"/api/v1/voter/check/{codes[0]}"))
        assert receipt["ballot_hash"] == hashes[0] and receipt["tracking_code"] == codes[0]
        assert count() == 1
        ok(client.get(f"/api/v1/voter/check/{codes[0]}"))
        ok(client.get(f"/api/v1/voter/check/{hashes[0]}"))  # the same ballot by its hash
        assert count() == 1
        ok(client.get(f"/api/v1/voter/check/{codes[1]}"))
        assert count() == 2
        # an unknown or malformed code is not counted
        assert error_code(client.get("/api/v1/voter/check/" + "0" * 64), 404) == "ballot.not_found"
        assert error_code(client.get("/api/v1/voter/check/not-a-code"), 400) == "tracking_code.format"
        assert error_code(client.get("/api/v1/voter/check/" + "x" * 200), 400) == "tracking_code.format"
        assert count() == 2

        # nothing kept identifies the ballots: no ballot hash, tracking code, time or address
        with Session(service.engine) as s:
            rows = s.exec(select(BallotCheckRow)).all()
        assert len(rows) == 2 and set(BallotCheckRow.model_fields) == {"election_id", "ballot_key"}
        kept = {r.ballot_key for r in rows}
        assert not kept & {*hashes, *codes}
        assert not kept & {hashlib.sha256(bytes.fromhex(h)).hexdigest() for h in hashes}
        key = tmp_path / "data" / "booth-checks.key"
        assert key.stat().st_mode & 0o777 == 0o600


def test_the_booth_route_is_rate_limited(tmp_path: Path, web: Path) -> None:
    with _app(tmp_path, web, rate_limit_per_address=3) as (client, _):
        _keyed(client)
        for _ in range(3):
            ok(client.get("/api/v1/election/booth"))
        r = client.get("/api/v1/election/booth")
        assert error_code(r, 429) == "rate_limited" and int(r.headers["retry-after"]) >= 1


def test_the_commission_publishes_the_booth_with_the_cli(tmp_path: Path, web: Path, monkeypatch: Any) -> None:
    import httpx
    from _service_util import EXAMPLE_ROLL, manifest_dict
    from typer.testing import CliRunner

    from voting.cli import app as cli

    settings = Settings(environment="test", data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN, web_root=web)
    monkeypatch.setenv("TVOTE_ADMIN_TOKEN", ADMIN_TOKEN)
    with real_server(settings) as port:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url) as http:
            ok(http.post("/api/v1/admin/election", json=manifest_dict(3, 2), headers=ADMIN), 201)
            headers = {**ADMIN, "Content-Type": "text/csv"}
            ok(http.put("/api/v1/admin/roll", content=EXAMPLE_ROLL.read_bytes(), headers=headers))
        run = CliRunner().invoke
        wrong = run(cli, ["admin", "publish-booth", "--server", url, "--expect", "ab" * 32])
        assert wrong.exit_code == 1 and "booth.digest_mismatch" in wrong.output
        digest = served_assets(web).digest
        done = run(cli, ["admin", "publish-booth", "--server", url, "--expect", digest.upper()])
        assert done.exit_code == 0, done.output
        assert f"digest {digest} ({len(served_assets(web).assets)} files)" in done.output
        again = run(cli, ["admin", "publish-booth", "--server", url])
        assert again.exit_code == 1 and "booth.published" in again.output
