"""What one cast asks of PostgreSQL (issue 15: round trips, not only CPU, bound the intake's rate).

A JPKI cast's checks before its locks only read: they run in read sessions in autocommit (no BEGIN, no
ROLLBACK), all of steps 3 to 5 and the roll proof in one of them; step 6 keeps its transactions, takes
both its locks in one statement and checks the phase it read under them; its record after the append is
one statement in autocommit. A regression that opens a
session per check again, or reads in a transaction, or reads what it already holds, fails here.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from _service_util import start_election_on
from sqlalchemy import event
from sqlmodel import Session, select

from voting._intake_db import IntakeBallot, VoterState
from voting.testing import JpkiTestCa, make_residents, tsukuba_manifest

pytestmark = pytest.mark.postgres

CHOICE = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": ["proj-1"]}


def test_a_casts_checks_before_its_locks_read_in_autocommit_in_two_checkouts(
    tmp_path: Path, postgres_url: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(2, ca, now)
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    with start_election_on(postgres_url, tmp_path, residents, ca, manifest) as e:
        engine = e.service.engine
        with e.client() as c:
            c.cast_jpki(residents[0].card, CHOICE)  # warm: the roll commitment and the manifest are cached
        seen: list[tuple[int, str, str | None]] = []  # (thread, what, isolation level), checkouts too

        @event.listens_for(engine, "checkout")
        def _checkout(*_a: Any) -> None:
            seen.append((threading.get_ident(), "checkout", None))

        @event.listens_for(engine, "before_cursor_execute")
        def _statement(conn: Any, _cur: Any, sql: str, *_a: Any) -> None:
            level = conn.get_execution_options().get("isolation_level")
            seen.append((threading.get_ident(), " ".join(sql.split()[:2]), level))
            if sql.startswith("SELECT pg_advisory_xact_lock("):
                lockers.append(conn)

        lockers: list[Any] = []
        ends: list[tuple[Any, str]] = []

        @event.listens_for(engine, "commit")
        def _commit(conn: Any) -> None:
            ends.append((conn, "commit"))

        @event.listens_for(engine, "rollback")
        def _rollback(conn: Any) -> None:
            ends.append((conn, "rollback"))

        with e.client() as c:
            assert c.cast_jpki(residents[1].card, CHOICE).seq == 1
        # the cast's request thread (the one that locks), from its phase check (the booth's own requests for
        # the election and a challenge, and the server's keepers, run before it or on other threads)
        thread = next(t for t, what, _ in seen if what.startswith("SELECT pg_advisory_xact_lock("))
        mine = [(what, level) for t, what, level in seen if t == thread]
        lock = next(i for i, (what, _) in enumerate(mine) if what.startswith("SELECT pg_advisory_xact_lock("))
        phase = max(i for i, w in enumerate(mine[:lock]) if w == ("SELECT tv_election.phase,", "AUTOCOMMIT"))
        assert mine[phase - 1][0] == "checkout"
        # ... to its record (after it, the thread may serve the client's next request: not this cast's)
        record = next(i for i, (what, _) in enumerate(mine) if i > lock and what == "WITH voter")
        cast = mine[phase - 1 : record + 1]
        lock -= phase - 1
        before = cast[: lock - 1]  # up to the lock connection's checkout
        assert [w for w, _ in before].count(
            "checkout"
        ) == 2  # the phase; then steps 3 to 5 and the roll proof
        reads = [(w, level) for w, level in before if w != "checkout"]
        assert all(w.startswith("SELECT") and level == "AUTOCOMMIT" for w, level in reads), reads
        assert {w for w, _ in reads} >= {"SELECT intake_unique_value.kind,", "SELECT tv_roll_node.level,"}
        # the roll alias's lookup gave its leaf index too: the roll proof reads only the tree's nodes
        assert [w for w, _ in reads].count("SELECT tv_roll_entry.alias,") == 1
        assert "SELECT tv_roll_entry.leaf_index" not in [w for w, _ in reads]
        assert [w for w, _ in cast].count("checkout") == 5, " | ".join(
            w for w, _ in cast
        )  # + the lock, the pending commit, the record
        # the uniqueness rules read the ballot's values once (its hash is one of them), not its ballot row
        assert "SELECT intake_ballot.kind" not in [w for w, _ in cast]
        # ... before the locks; under them the values' primary key decides as they are reserved (no read)
        assert [w for w, _ in cast].count("SELECT intake_unique_value.kind,") == 1
        after = [w for w, _ in cast[lock:]]
        assert "SELECT intake_unique_value.kind," not in after
        assert sum(w.startswith("SELECT pg_advisory") for w in after) == 1  # both locks in one statement
        # the phase is read once under the locks (with ledger_synced, on the lock's connection): step 6
        # checks it from there, not by a read of its own
        assert after.count("SELECT tv_election.phase,") == 1
        # under the locks the voter is read in one statement: its pending evidence, this evidence used, its
        # state
        assert after.count("SELECT (SELECT") == 1
        assert not any(
            w in after
            for w in ("SELECT intake_auth_evidence.evidence_hash", "SELECT intake_voter_state.seq,")
        )
        # the pending commit (a JPKI internet cast no voter rule refuses) is ONE statement: the challenge
        # taken (checked before the locks too), then the values reserved and the evidence pending, then COMMIT
        i = after.index("WITH taken")
        assert after[i - 1 : i + 1] == ["SELECT (SELECT", "WITH taken"]
        assert not any(
            w.startswith(("UPDATE intake_challenge", "INSERT INTO", "SELECT intake_challenge")) for w in after
        )
        # the locks' transaction (it only locked and read) ends in a COMMIT: psycopg forgets the statements it
        # prepared on a connection at every ROLLBACK, and the pooled connection's next reads would pay again
        assert len(lockers) == 1 and [end for conn, end in ends if conn is lockers[0]] == ["commit"]
        # the record after the append is ONE statement in autocommit (its own transaction: no BEGIN, no
        # COMMIT): the voter's state inserted (a first ballot) or updated, evidence final, ledger_synced,
        # the reserved values' index, the ballot row
        after_levels = cast[lock:]
        assert [level for w, level in after_levels if w == "WITH voter"] == ["AUTOCOMMIT"]
        separate = (
            "INSERT INTO intake_voter_state",
            "UPDATE intake_voter_state",
            "INSERT INTO intake_ballot",
        )
        assert not any(w in after for w in separate)
        seen.clear()
        with e.client() as c:  # the same voter again: its state is updated by the same statement
            assert c.cast_jpki(residents[1].card, CHOICE).seq == 2
        assert [w for _t, w, _l in seen].count("WITH voter") == 1
        with Session(engine) as s:
            states = s.exec(select(VoterState)).all()
            assert sorted(v.seq for v in states) == [1, 2] and all(v.kiosk_index is None for v in states)
            ballots = s.exec(select(IntakeBallot).where(IntakeBallot.seq == 2)).all()
            assert [(b.kind, b.channel) for b in ballots] == [("cast", "internet")]
        assert e.service.reconcile(full=True).problems == ()


def test_the_election_rows_reads_run_in_autocommit(tmp_path: Path, postgres_url: str) -> None:
    """``has_election`` (the period and checkpoint keepers ask it every tick) and ``election()`` are one read
    each: no transaction around them (no BEGIN and ROLLBACK round trips, and no ROLLBACK that makes psycopg
    drop the connection's prepared statements)."""
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(1, ca, now)
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    with start_election_on(postgres_url, tmp_path, residents, ca, manifest) as e:
        seen: list[tuple[str, str | None]] = []

        @event.listens_for(e.service.engine, "before_cursor_execute")
        def _statement(conn: Any, _cur: Any, sql: str, *_a: Any) -> None:
            if threading.get_ident() == me:
                seen.append((" ".join(sql.split()[:2]), conn.get_execution_options().get("isolation_level")))

        me = threading.get_ident()
        assert e.service.has_election()
        assert e.service.election().election_id == e.service.election_id
        assert seen == [("SELECT tv_election.election_id,", "AUTOCOMMIT")] * 2


def test_a_cast_whose_record_meets_a_dead_pooled_connection_is_recorded_on_a_fresh_one(
    tmp_path: Path, postgres_url: str
) -> None:
    """Pooled connections are pinged only after sitting idle: one the database dropped meanwhile (a restart,
    an idle timeout) fails at its first statement. A cast's record, after its entry is on the ledger, runs
    once more on a fresh connection then, so the voter gets a receipt and the service does not diverge."""
    from sqlalchemy import create_engine, text

    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(1, ca, now)
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    killer = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    killed: list[int] = []
    try:
        with start_election_on(postgres_url, tmp_path, residents, ca, manifest) as e:

            @event.listens_for(e.service.engine, "before_cursor_execute")
            def _drop_the_records_connection(conn: Any, _cur: Any, sql: str, *_a: Any) -> None:
                if not killed and sql.startswith(  # the record: one statement on PostgreSQL
                    ("WITH voter", "INSERT INTO intake_voter_state", "UPDATE intake_voter_state")
                ):
                    pid = conn.connection.dbapi_connection.info.backend_pid
                    with killer.connect() as k:
                        k.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                    killed.append(pid)

            with e.client() as c:
                first = c.cast_jpki(residents[0].card, CHOICE)
            assert first.seq == 1 and len(killed) == 1  # its record's first connection was dropped
            with e.client() as c:  # recorded: the voter's next ballot is seq 2, the service took it
                assert c.cast_jpki(residents[0].card, CHOICE).seq == 2
            report = e.service.reconcile()
            assert report.repaired == () and report.problems == ()  # nothing left to repair
    finally:
        killer.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_warm_casts_statements_are_all_taken_from_the_statement_cache(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    """Compiling a statement costs SQLAlchemy more CPU than running it once compiled: a cast after the first
    compiles nothing. (The ballot's unique values went in a Core multi-row ``insert().values([...])``, which
    has no cache key: it was compiled again at every cast.)"""
    from sqlalchemy.engine.interfaces import CacheStats

    url = None if backend == "sqlite" else str(request.getfixturevalue("postgres_url"))
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(3, ca, now)
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    with start_election_on(url, tmp_path, residents, ca, manifest) as e:
        with e.client() as c:  # warm: each statement of a first cast and of a re-vote is compiled once (and
            for r in (*residents, residents[0]):  # each roll proof's shape)
                c.cast_jpki(r.card, CHOICE)
        seen: list[tuple[str, CacheStats]] = []

        @event.listens_for(e.service.engine, "after_cursor_execute")
        def _statement(_c: Any, _cur: Any, sql: str, _p: Any, ctx: Any, _m: bool) -> None:
            if ctx.compiled is not None:  # not a driver-level statement (the advisory locks)
                seen.append((" ".join(sql.split()[:4]), ctx.cache_hit))

        with e.client() as c:
            assert c.cast_jpki(residents[1].card, CHOICE).seq == 2
        # the values reserved: their own INSERT (SQLite) or inside the pending commit's one statement
        assert any(sql.startswith(("INSERT INTO intake_unique_value", "WITH taken")) for sql, _ in seen)
        assert [(sql, hit.name) for sql, hit in seen if hit is not CacheStats.CACHE_HIT] == []
