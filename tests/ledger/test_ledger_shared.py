"""Several appenders on one PostgreSQL ledger: two ``Ledger`` objects (own engines, own sequencers) in two
threads, and two processes, append concurrently; the chain, the tree and every checkpoint verify, no index
is assigned twice, and each process's reads, proofs and checkpoints see the other's appends."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import psycopg
import pytest
from _ledger_util import Clock, log_signer
from _pg import PostgresServer

from ledger import Ledger, LedgerConfig, merkle
from ledger.record import check_record

pytestmark = pytest.mark.postgres


def _config(clock: Clock | None = None) -> LedgerConfig:
    return LedgerConfig(log_signer(), clock=clock or Clock())


def _hammer(led: Ledger, who: str, n: int, acked: list[tuple[int, bytes, str, int]], batch: bool) -> None:
    for i in range(n):
        if batch and i % 5 == 0:
            for j, a in enumerate(led.append_many([("x", {"w": who, "i": i, "j": j}) for j in range(3)])):
                acked.append((a.index, a.entry_hash, who, i * 10 + j))
        else:
            a = led.append("x", {"w": who, "i": i, "j": 0})
            acked.append((a.index, a.entry_hash, who, i * 10))
        if i % 7 == 0:
            led.checkpoint()


def _check_all(url: str, acked: list[tuple[int, bytes, str, int]], tmp_path: Path) -> None:
    with Ledger(url, _config()) as led:
        size = led.size
        assert size == len(acked)
        assert sorted(a[0] for a in acked) == list(range(size))  # every index once, no gap
        by_index = {a[0]: a for a in acked}
        for e in led.entries(0, size):
            assert e.hash == by_index[e.index][1]  # each acknowledged hash is the stored entry's
        led.check()  # chain, stored hashes and nodes, every checkpoint against the nodes
        cp = led.checkpoint()
        assert cp.size == size
        for i in (0, size // 2, size - 1):
            led.inclusion_proof(i, size).verify(cp.root)
        summary = check_record(led.export(tmp_path / "rec"))
        assert summary.size == size


def test_two_ledgers_in_two_threads_share_one_postgres_ledger(postgres_url: str, tmp_path: Path) -> None:
    clock = Clock()
    a, b = Ledger(postgres_url, _config(clock)), Ledger(postgres_url, _config(clock))
    acked: list[tuple[int, bytes, str, int]] = []
    try:
        threads = [
            threading.Thread(target=_hammer, args=(led, who, 60, acked, who == "b"))
            for led, who in ((a, "a"), (b, "b"))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # each sees the other's appends: size, entries, proofs for sizes it never wrote itself
        assert a.size == b.size == len(acked)
        last = max(acked)[0]
        assert a.entry(last).hash == b.entry(last).hash
        cp = b.checkpoint()
        a.inclusion_proof(last, cp.size).verify(cp.root)
        old = min(x.size for x in (a.latest_checkpoint(), b.latest_checkpoint()))
        proof = a.consistency_proof(1, old)
        merkle.verify_consistency(1, old, a.root(1), a.root(old), list(proof.proof))
    finally:
        a.close()
        b.close()
    _check_all(postgres_url, acked, tmp_path)


def _process_main(url: str, who: str, n: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    acked: list[tuple[int, bytes, str, int]] = []
    with Ledger(url, _config()) as led:
        _hammer(led, who, n, acked, who == "q")
    out.put(acked)


@pytest.mark.slow
def test_two_processes_append_to_one_postgres_ledger(postgres_url: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_process_main, args=(postgres_url, w, 80, out)) for w in ("p", "q")]
    for p in procs:
        p.start()
    acked = [x for _ in procs for x in out.get(timeout=120)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    _check_all(postgres_url, acked, tmp_path)


def test_checkpoints_of_two_ledgers_are_one_tree_in_order(postgres_url: str, tmp_path: Path) -> None:
    """A ledger that does not know the newest appends still signs a checkpoint of the whole stored tree,
    never one that goes back in size or time; a checkpoint already stored for the size is no error."""
    late, early = Clock(1_750_000_100), Clock(1_750_000_000)  # b's clock is behind a's
    a, b = Ledger(postgres_url, _config(late)), Ledger(postgres_url, _config(early))
    try:
        a.append_many([("x", {"i": i}) for i in range(5)])
        assert b.checkpoint().size == 5  # b appended nothing, its checkpoint covers a's entries
        b.append("x", {"i": 5})
        cp = a.checkpoint()
        assert cp.size == 6 and cp.root == b.root(6)
        assert b.checkpoint().size == 6  # the same size again: the stored one, unchanged
        b.append("x", {"i": 6})
        cp7 = b.checkpoint()
        assert cp7.issued_at >= cp.issued_at  # b's clock is behind, the time still does not go back
    finally:
        a.close()
        b.close()
    with Ledger(postgres_url, _config()) as led:
        led.check()
        assert check_record(led.export(tmp_path / "rec")).size == 7


def test_known_size_is_a_lower_bound_read_from_no_storage(postgres_url: str) -> None:
    """``known_size`` (a cast's lower bound of its entry's index) never reads storage: it may lag other
    processes' appends, never exceed the stored size, and every later append lands at or beyond it."""
    a, b = Ledger(postgres_url, _config()), Ledger(postgres_url, _config())
    try:
        for i in range(3):
            a.append("x", {"i": i})
        real_tail = b._store.tail

        def no_read() -> tuple[int, bytes | None]:
            raise AssertionError("known_size read the storage")

        b._store.tail = no_read  # type: ignore[method-assign]
        assert b.known_size == 0  # b has not seen a's appends: stale, but a lower bound
        b._store.tail = real_tail  # type: ignore[method-assign]
        assert b.size == 3 and b.known_size == 3  # a read of the size refreshes it
        a.append("x", {"i": 3})
        floor = b.known_size
        assert floor == 3 <= a.size
        appended = b.append("x", {"i": 4})  # the sequencer catches up with a's append under the lock
        assert appended.index == 4 >= floor and b.known_size == 5 == a.size
    finally:
        a.close()
        b.close()


def test_single_reads_send_no_transaction_and_the_resume_read_keeps_its_snapshot(postgres_url: str) -> None:
    """A read of one statement (the stored tail, entries, nodes, the newest checkpoint) runs in autocommit:
    no BEGIN and no ROLLBACK round trips (READ COMMITTED gives it one snapshot either way); the several reads
    the sequencer resumes from stay one REPEATABLE READ transaction."""
    from sqlalchemy import event

    a, b = Ledger(postgres_url, _config()), Ledger(postgres_url, _config())
    levels: list[tuple[str, str | None]] = []

    @event.listens_for(b._store.engine, "before_cursor_execute")
    def _seen(conn: object, _cur: object, sql: str, *_a: object) -> None:
        levels.append((sql.split()[0], conn.get_execution_options().get("isolation_level")))  # type: ignore[attr-defined]

    try:
        for i in range(3):
            a.append("x", {"i": i})
        a.checkpoint()
        assert b.size == 3  # the tail, then the nodes of the moved tail
        assert [e.index for e in b.entries(0, 3)] == [0, 1, 2]
        assert b.latest_checkpoint().size == 3
        assert levels and all(level == "AUTOCOMMIT" for _sql, level in levels), levels
        levels.clear()
        b._load_state()
        assert levels and all(level == "REPEATABLE READ" for _sql, level in levels), levels
    finally:
        a.close()
        b.close()


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _open_at_once(urls: list[str], n: int) -> list[Exception]:
    """``n`` threads per URL, released together by one barrier, each open a ``Ledger`` (its own engine and
    connections: what a process does at start-up) on the URL; the errors they met."""
    go = threading.Barrier(n * len(urls))
    errors: list[Exception] = []

    def open_one(url: str) -> None:
        go.wait()
        try:
            Ledger(url, _config()).close()
        except Exception as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=open_one, args=(url,)) for url in urls for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.parametrize("isolation", ["read committed", "repeatable read"])
def test_ledgers_opened_at_once_on_a_fresh_database_all_open(
    postgres_server: PostgresServer, isolation: str
) -> None:
    """Regression (flaky ``test_two_processes_append_to_one_postgres_ledger``): several processes that open
    the ledger on one fresh PostgreSQL database at the same moment all create its tables at once, and
    PostgreSQL's ``CREATE TABLE`` is not safe under concurrency (a duplicate key in ``pg_type``). Six
    openers at once on each of four fresh databases: every one opens, and the tables are there. Also with
    the server's default isolation at REPEATABLE READ, where a snapshot taken before the wait for the
    schema lock would not see the tables the lock's previous holder created."""
    urls = [postgres_server.create_database() for _ in range(4)]
    for url in urls:
        with psycopg.connect(_dsn(url), autocommit=True) as conn:
            conn.execute(
                f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET default_transaction_isolation = '{isolation}'"
            )
    errors = _open_at_once(urls, 6)
    assert [repr(e.__cause__ or e) for e in errors] == []
    for url in urls:
        with Ledger(url, _config()) as led:
            assert led.size == 0
