"""Schema migrations (Alembic, ``voting/_migrations``; docs/operator-guide.md "Database migrations").

* A database of the last release without migrations (27ac27b: no kiosk tables, no ``alembic_version``)
  holding an election with ledger entries and ballots is upgraded when the service starts: the kiosk tables
  exist, ``alembic_version`` is the head, and every row of every table (the ledger's entries and tree, the
  election's private state) is kept byte for byte; the ledger's root is unchanged and reconciliation finds
  nothing to repair.
* The schema the migrations build equals the one the code declares (``SQLModel.metadata``), whether from an
  empty database (``upgrade head``) or a fresh start-up (``create_all`` + ``stamp head``): a schema change
  without a migration fails here.
* A database stamped with a revision this code does not know (written by a newer release) is refused.

On SQLite and on a real PostgreSQL (``database_url``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from _service_util import ADMIN, ADMIN_TOKEN, OPEN_EARLY
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from ledger import Ledger, LedgerConfig
from ledger.record import LogSigner
from voting import _migrate
from voting._db import create_tables, make_engine
from voting.app import create_app
from voting.clients.voter import VoterClient
from voting.service import ElectionService
from voting.testing import (
    JpkiTestCa,
    LoopbackServer,
    RsaKeyPool,
    demo_settings,
    make_residents,
    roll_csv,
    run_key_ceremony,
    tsukuba_manifest,
)

CHOICE = {"mayor": ["cand-1"], "referendum": ["no"], "subsidy": ["proj-2"]}
NEW_TABLES = {"kiosk", "kiosk_ballot"}  # revision 0002


def head() -> str:
    h = ScriptDirectory.from_config(_migrate.alembic_config()).get_current_head()
    assert h is not None
    return h


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def snapshot(engine: Engine, names: set[str]) -> dict[str, tuple[int, str]]:
    """Per table: the row count and a hash of its rows (sorted, so independent of scan order)."""
    out = {}
    with engine.connect() as c:
        for name in sorted(names):
            rows = sorted(repr(tuple(r)) for r in c.execute(text(f'SELECT * FROM "{name}"')))
            out[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return out


def version(engine: Engine) -> list[str]:
    with engine.connect() as c:
        return [r[0] for r in c.execute(text("SELECT version_num FROM alembic_version"))]


def schema_diff(engine: Engine) -> list[Any]:
    with engine.connect() as c:
        diff: list[Any] = list(compare_metadata(MigrationContext.configure(c), SQLModel.metadata))
    return diff + key_order_diff(engine)


def key_order_diff(engine: Engine) -> list[tuple[str, list[str], list[str]]]:
    """Alembic's comparison skips primary keys: each table's key columns in the database's order against the
    models' order (on PostgreSQL: migration 0004 leaves an existing SQLite database's keys as they were)."""
    if engine.dialect.name != "postgresql":
        return []
    inspector = inspect(engine)
    diff = []
    for table in SQLModel.metadata.sorted_tables:
        if inspector.has_table(table.name):
            found = list(inspector.get_pk_constraint(table.name)["constrained_columns"])
            declared = [c.name for c in table.primary_key.columns]
            if found != declared:
                diff.append((table.name, found, declared))
    return diff


def election_with_ballots(tmp_path: Path, database_url: str | None) -> tuple[Any, dict[str, Any]]:
    """Today's service: an election with a published roll, keys, opened, and two ballots cast."""
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(2, ca, now, pool=RsaKeyPool(2))
    settings, intake = demo_settings(
        tmp_path, ca, now, admin_token=ADMIN_TOKEN, database_url=database_url, checkpoint_interval=0
    )
    service = ElectionService.from_settings(settings)
    manifest = tsukuba_manifest(now, trustees=3, threshold=2, small=True)
    manifest["voting_period"]["opens"] = (now + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        app = create_app(settings, service=service, intake=intake)
        with LoopbackServer(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
            created = http.post("/api/v1/admin/election", json=manifest, headers=ADMIN).json()
            csv = {**ADMIN, "Content-Type": "text/csv"}
            assert http.put("/api/v1/admin/roll", content=roll_csv(residents), headers=csv).status_code == 200
            assert http.post("/api/v1/admin/roll/publish", headers=ADMIN).status_code == 200
            invitations = {int(i): c for i, c in created["invitations"].items()}
            run_key_ceremony(http, invitations, admin_token=ADMIN_TOKEN)
            assert http.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY).status_code == 200
            with VoterClient(srv.url) as v:
                for r in residents:
                    v.cast_jpki(r.card, CHOICE)
        size = service.ledger.size
        facts = {"size": size, "root": service.ledger.root(size)}
    finally:
        service.close()
    return settings, facts


def test_a_database_of_the_release_before_migrations_is_upgraded_and_keeps_every_entry(
    tmp_path: Path, database_url: str | None
) -> None:
    settings, facts = election_with_ballots(tmp_path, database_url)
    assert facts["size"] > 5
    # make it the previous release's database: no kiosk tables, no indexes of 0003, the index 0004 drops,
    # no alembic_version
    engine = make_engine(settings.effective_database_url)
    try:
        with engine.begin() as c:
            for name in ("kiosk_ballot", "kiosk", "alembic_version"):
                c.execute(text(f'DROP TABLE "{name}"'))
            for index in ("ix_intake_unique_value_ballot", "ix_intake_evidence_status"):
                c.execute(text(f'DROP INDEX "{index}"'))
            for table in ("intake_auth_evidence", "intake_ballot"):  # the indexes 0004 drops
                c.execute(text(f"CREATE INDEX ix_{table}_election_id ON {table} (election_id)"))
        old_tables = tables(engine)
        assert not old_tables & (NEW_TABLES | {"alembic_version"}) and "ledger_entry" in old_tables
        before = snapshot(engine, old_tables)
        assert before["ledger_entry"][0] == facts["size"]
    finally:
        engine.dispose()

    service = ElectionService.from_settings(settings)  # start-up migrates
    try:
        assert tables(service.engine) == old_tables | NEW_TABLES | {"alembic_version"}
        assert version(service.engine) == [head()]
        assert snapshot(service.engine, old_tables) == before  # every row kept, byte for byte
        assert service.ledger.size == facts["size"]
        assert service.ledger.root(facts["size"]) == facts["root"]
        assert schema_diff(service.engine) == []
        report = service.reconcile(full=True)  # the private state still matches the ledger entry by entry
        assert (report.ledger_size, report.repaired, report.problems) == (facts["size"], (), ())
    finally:
        service.close()


def test_the_migrations_build_the_schema_the_code_declares(tmp_path: Path, database_url: str | None) -> None:
    """``alembic upgrade head`` from nothing, and a fresh start-up, both give exactly ``SQLModel.metadata``:
    a schema change without a migration fails this test."""
    url = database_url or f"sqlite:///{tmp_path / 'migrated.db'}"
    engine = make_engine(url)
    try:
        with engine.begin() as c:
            command.upgrade(_migrate.alembic_config(c), "head")
        assert version(engine) == [head()]
        assert schema_diff(engine) == []
        with engine.begin() as c:  # and back to nothing
            command.downgrade(_migrate.alembic_config(c), "base")
        assert tables(engine) <= {"alembic_version"}
    finally:
        engine.dispose()

    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        create_tables(fresh)
        assert version(fresh) == [head()]
        assert schema_diff(fresh) == []
    finally:
        fresh.dispose()


def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'newer.db'}")
    try:
        create_tables(engine)
        with engine.begin() as c:
            c.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        engine.dispose()
        engine = make_engine(f"sqlite:///{tmp_path / 'newer.db'}")  # a new engine: a new start-up
        with pytest.raises(_migrate.SchemaError, match=r"database.schema_newer: .*9999.*newer release"):
            create_tables(engine)
    finally:
        engine.dispose()


STARTUP = """
import sys
from voting._db import create_tables, make_engine
engine = make_engine(sys.argv[1])
create_tables(engine)
engine.dispose()
"""


def test_two_processes_starting_at_once_migrate_once(tmp_path: Path, database_url: str | None) -> None:
    """Both start on a pre-migration database at the same moment: both succeed (one migrates under the lock,
    the other then finds the head), and the database is at the head with the schema of the models."""
    url = database_url or f"sqlite:///{tmp_path / 'race.db'}"
    engine = make_engine(url)
    try:
        with engine.begin() as c:  # the previous release's database
            command.upgrade(_migrate.alembic_config(c), _migrate.BASELINE)
            c.execute(text("DROP TABLE alembic_version"))
        procs = [
            subprocess.Popen([sys.executable, "-c", STARTUP, url], stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        assert version(engine) == [head()]
        assert schema_diff(engine) == []
    finally:
        engine.dispose()


def _start_up(url: str) -> None:
    engine = make_engine(url)
    try:
        create_tables(engine)
    finally:
        engine.dispose()


def _open_ledger(url: str) -> None:
    Ledger(url, LedgerConfig(LogSigner.generate("tvote.test/race", bytes(32)))).close()


@pytest.mark.parametrize("repetition", range(4))
def test_the_service_and_ledgers_starting_at_once_on_a_fresh_database_all_start(
    request: pytest.FixtureRequest, tmp_path: Path, database_backend: str, repetition: int
) -> None:
    """The service's start-up (``create_all`` + ``stamp head``) and four ``Ledger`` openings (their own
    ``create_all`` of the ledger's tables: ``tvote ledger``, a restore, another server) on one fresh database
    at the same moment, released by one barrier: every one succeeds (PostgreSQL's ``CREATE TABLE`` is not
    safe under concurrency: one schema lock serialises them all), and the schema is the models' at the
    head. Threads, each with its own engine: one Alembic run per process at a time (its ``context`` is
    global), as here."""
    if database_backend == "postgres":
        url = request.getfixturevalue("postgres_server").create_database()
    else:
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    go = threading.Barrier(5)
    errors: list[Exception] = []

    def run(start: Any) -> None:
        go.wait()
        try:
            start(url)
        except Exception as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(f,)) for f in (_start_up, *[_open_ledger] * 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [repr(e.__cause__ or e) for e in errors] == []
    engine = make_engine(url)
    try:
        assert version(engine) == [head()]
        assert schema_diff(engine) == []
    finally:
        engine.dispose()
