"""Backup and restore (``tvote admin backup`` / ``restore``: voting/_backup.py, voting/_restore.py), on
SQLite (the online backup API) and PostgreSQL (``pg_dump`` / ``pg_restore``), through the real command line.

An election is open behind a real HTTP server with ballots cast; the backup is taken while it runs; one
more ballot is cast after it (a restore is point-in-time: that ballot is gone). The backup is restored into
a fresh data directory and database holding only the ledger's key (the operator's key backup), and
reconciled; the restored ledger is the one backed up, entry for entry, the exported record is byte for byte
the one exported before the backup, and the server serves the restored election again. The refusals: a
database that holds an election (without ``--force``), a data directory without the ledger's key, a key of
another log, a file that is not a backup.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
from _service_util import ADMIN_TOKEN, start_election_on
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger.record import LogSigner
from voting._settings import Settings
from voting.app import create_app
from voting.cli import app as cli
from voting.service import ElectionService
from voting.testing import JpkiTestCa, RsaKeyPool, make_residents, tsukuba_manifest

CHOICE = {"mayor": ["cand-1"], "referendum": ["no"], "subsidy": ["proj-2"]}
LEDGER_KEY = "ledger-signing.key"


def tvote(data_dir: Path, database_url: str | None, *args: str) -> Any:
    """``tvote`` in-process, configured like the server (``TVOTE_DATA_DIR``, ``TVOTE_DATABASE_URL``)."""
    env = {
        "TVOTE_ENVIRONMENT": "test",
        "TVOTE_ADMIN_TOKEN": ADMIN_TOKEN,
        "TVOTE_DATA_DIR": str(data_dir),
        "TVOTE_DATABASE_URL": database_url or "",
        "TVOTE_CONFIG": "",
    }
    return CliRunner().invoke(cli, list(args), env=env)


def entries(service: ElectionService) -> list[bytes]:
    led = service.ledger
    return [e.canonical for e in led.entries(0, led.size)]


def fresh_database(url: str | None, request: pytest.FixtureRequest) -> str | None:
    """A new, empty database of the same kind: another PostgreSQL database, or (``None``) the SQLite file of
    the new data directory."""
    if url is None:
        return None
    server = request.getfixturevalue("postgres_server")
    return str(server.create_database())


def test_backup_restore_reconcile(
    tmp_path: Path, database_url: str | None, request: pytest.FixtureRequest
) -> None:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(3, ca, now, pool=RsaKeyPool(3))
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    backup = tmp_path / "backup.tvbak"
    with start_election_on(
        database_url, tmp_path / "live", residents, ca, manifest, checkpoint_interval=0
    ) as e:
        live = e.service.settings
        with e.client() as c:
            kept = [c.complete_receipt(c.cast_jpki(r.card, CHOICE), timeout=20) for r in residents[:2]]
        record = e.service.export_archive_bytes()  # covers every entry with a checkpoint
        before = entries(e.service)
        cp = e.service.ledger.latest_checkpoint()
        assert cp.size == len(before)

        out = tvote(live.data_dir, live.database_url, "admin", "backup", "--out", str(backup))  # live
        assert out.exit_code == 0, out.output
        assert (
            f"election {e.service.election_id}" in out.output
            and f"{len(before)} ledger entries" in out.output
        )
        assert LEDGER_KEY in out.output  # the operator is told what is not in it
        assert backup.stat().st_mode & 0o777 == 0o600
        out = tvote(live.data_dir, live.database_url, "admin", "backup", "--out", str(backup))
        assert out.exit_code == 1 and "backup.exists" in out.output, out.output  # never overwritten

        with e.client() as c:  # after the backup: lost by the restore
            lost = c.complete_receipt(c.cast_jpki(residents[2].card, CHOICE), timeout=20)
        assert e.ledger_size() > len(before)
        # never under a running server: SQLite sees its sequencer lock; PostgreSQL holds an election
        out = tvote(live.data_dir, live.database_url, "admin", "restore", str(backup))
        assert out.exit_code == 1, out.output
        assert ("restore.server_running" if database_url is None else "restore.not_empty") in out.output
        live_key = (live.data_dir / LEDGER_KEY).read_bytes()

    with tarfile.open(backup) as tar:
        assert tar.getnames()[0] == "tvote-backup.json"
        names = set(tar.getnames())
        info = json.loads(tar.extractfile("tvote-backup.json").read())  # type: ignore[union-attr]
    assert not names & {LEDGER_KEY, "booth-checks.key"}  # secrets are never in a backup
    assert info["election_id"] == e.service.election_id and info["ledger_size"] == len(before)
    assert info["database"] == ("sqlite" if database_url is None else "postgresql")

    # a fresh place: only the ledger's key, from the operator's key backup
    data = tmp_path / "restored"
    data.mkdir(mode=0o700)
    target = fresh_database(database_url, request)
    out = tvote(data, target, "admin", "restore", str(backup))
    assert out.exit_code == 1 and "restore.ledger_key" in out.output, out.output
    (data / LEDGER_KEY).write_bytes(live_key)
    os.chmod(data / LEDGER_KEY, 0o600)

    out = tvote(data, target, "admin", "restore", str(backup))
    assert out.exit_code == 0, out.output
    assert f"election {info['election_id']}" in out.output
    report = json.loads(out.output[out.output.index("{") :])
    assert report["problems"] == [] and report["ledger_size"] == len(before)

    # a second restore over the restored election is refused without --force, and says what it holds
    out = tvote(data, target, "admin", "restore", str(backup))
    assert out.exit_code == 1 and "restore.not_empty" in out.output, out.output
    assert info["election_id"] in out.output
    out = tvote(data, target, "admin", "restore", "--force", str(backup))
    assert out.exit_code == 0 and f"replaced election {info['election_id']}" in out.output, out.output

    settings = Settings(environment="test", data_dir=data, admin_token=ADMIN_TOKEN, database_url=target)
    service = ElectionService.from_settings(settings)
    try:
        assert entries(service) == before  # entry for entry
        assert service.ledger.latest_checkpoint().signed.note == cp.signed.note  # the same checkpoints
        assert service.export_archive_bytes() == record  # byte for byte
        with TestClient(create_app(settings, service=service)) as client:  # serves again
            assert client.get("/api/v1/election").json()["phase"] == "voting"
            for r in kept:
                assert client.get(f"/api/v1/voter/ballots/{r.tracking_code}").status_code == 200
            assert client.get(f"/api/v1/voter/ballots/{lost.tracking_code}").status_code == 404
    finally:
        service.close()


def test_restore_refuses_another_log_key_and_non_backups(tmp_path: Path) -> None:
    """SQLite only (the checks run before the database is touched): a key of another log, and a file that is
    not a backup, are refused with their codes."""
    from voting._backup import BackupInfo

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / LEDGER_KEY).write_text(LogSigner.generate("tvote/another-election").skey + "\n")
    info = BackupInfo(
        "sqlite", "tsukuba-2027", "00" * 32, "voting", 3, "2026-01-01T00:00:00Z", ("database.sqlite3",)
    )
    backup = tmp_path / "b.tvbak"
    with tarfile.open(backup, "w") as tar:
        raw = json.dumps(info.to_dict()).encode()
        ti = tarfile.TarInfo("tvote-backup.json")
        ti.size = len(raw)
        import io

        tar.addfile(ti, io.BytesIO(raw))
        db = tmp_path / "database.sqlite3"
        db.write_bytes(b"")
        tar.add(db, arcname="database.sqlite3")
    out = tvote(data, None, "admin", "restore", str(backup))
    assert out.exit_code == 1 and "restore.ledger_key" in out.output and "another-election" in out.output

    junk = tmp_path / "junk.tvbak"
    shutil.copyfile(Path(__file__), junk)
    out = tvote(data, None, "admin", "restore", str(junk))
    assert out.exit_code == 1 and "restore.not_a_backup" in out.output, out.output


def test_missing_postgresql_tools_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``pg_dump`` on PATH or under /usr/lib/postgresql the backup says what to install (before it
    connects to anything)."""
    import voting._backup

    monkeypatch.setattr(voting._backup, "PG_INSTALL_ROOT", tmp_path / "no-postgresql")
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tvote(
        tmp_path / "data",
        "postgresql://tvote@127.0.0.1:1/tvote",
        "admin",
        "backup",
        "--out",
        str(tmp_path / "b"),
    )
    assert out.exit_code == 1, out.output
    assert "backup.pg_tools" in out.output and "pg_dump is not installed" in out.output
    assert not (tmp_path / "b").exists()
