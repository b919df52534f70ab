"""The Ledger on SQLite and on a real PostgreSQL: appends, group commit, proofs, checkpoints, bad input."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _ledger_util import Clock, log_signer, policy, witnesses

import ledger
from ledger import Ledger, LedgerConfig, merkle
from ledger.record import Entry, SignedCheckpoint


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def led(db_url: str, clock: Clock) -> Iterator[Ledger]:
    with Ledger(db_url, LedgerConfig(log_signer(), policy(2), clock=clock)) as lg:
        yield lg


def test_append_returns_index_and_hash_and_chains(led: Ledger) -> None:
    a0 = led.append("election.manifest", {"name": "test", "contests": [1, 2]})
    a1 = led.append("ballot.cast", {"tracking": "ab12"})
    assert (a0.index, a1.index) == (0, 1)
    e0, e1 = led.entries(0, 2)
    assert e0.hash == a0.entry_hash == merkle.leaf_hash(e0.canonical)
    assert e0.prev == bytes(32) and e1.prev == a0.entry_hash
    assert e1.payload == {"tracking": "ab12"} and e1.type == "ballot.cast"
    assert Entry.from_bytes(e1.canonical) == e1
    # the sequencer builds entries from the payload append checked (not checked twice): the same bytes
    assert e1.canonical == Entry.create(1, a0.entry_hash, "ballot.cast", {"tracking": "ab12"}).canonical
    with pytest.raises(ledger.InvalidEntry):  # and append still refuses what create refuses
        led.append("ballot.cast", {"n": 2**53})
    assert led.size == 2


def test_concurrent_appends_are_group_committed_without_gaps(led: Ledger) -> None:
    acks: list[ledger.Appended] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for j in range(40):
            a = led.append("ballot.cast", {"client": k, "n": j})
            with lock:
                acks.append(a)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.index for a in acks) == list(range(240)) == list(range(led.size))
    entries = led.entries(0, 240)
    assert {a.index: a.entry_hash for a in acks} == {e.index: e.hash for e in entries}
    led.checkpoint()
    led.check()


def test_a_batch_larger_than_one_insert_is_written_whole(led: Ledger, db_url: str) -> None:
    """A batch's entries and nodes go in multi-row INSERTs of at most 500 rows: a batch of 1234 entries
    (three INSERTs of entries, more of nodes) is stored whole, chained, with every tree node. On PostgreSQL
    a small batch's two INSERTs are one statement (the entries' in a ``WITH``): one round trip."""
    from sqlalchemy import event

    inserts: list[tuple[list[str], bool]] = []  # per statement: the tables it inserts into

    @event.listens_for(led._store.engine, "before_cursor_execute")
    def _seen(_c: object, _cur: object, sql: str, _p: object, _x: object, many: bool) -> None:
        if sql.startswith(("INSERT", "WITH")):
            inserts.append((re.findall(r"INSERT INTO (\w+)", sql), many))

    led.append("a", {})
    first = len(inserts)
    got = led.append_many([("b", {"i": i}) for i in range(1234)])
    assert [g.index for g in got] == list(range(1, 1235))
    assert not any(many for _tables, many in inserts)  # multi-row statements, never an executemany
    tables = [t for ts, _ in inserts for t in ts]
    assert tables.count("ledger_entry") == 1 + 3  # 1234 rows: 500 + 500 + 234
    assert tables.count("ledger_node") == 1 + 5  # then 2463 new nodes: 5 INSERTs
    postgres = led._store.shared
    assert [ts for ts, _ in inserts[:first]] == (
        [["ledger_entry", "ledger_node"]] if postgres else [["ledger_entry"], ["ledger_node"]]
    )
    assert led.size == 1235
    cp = led.checkpoint()
    for i in (0, 500, 501, 1000, 1234):
        led.inclusion_proof(i, 1235).verify(cp.root)
    led.check()  # chain, stored hashes, leaf nodes, roots from the stored nodes


def test_a_batchs_inserts_are_compiled_once_then_taken_from_the_statement_cache(led: Ledger) -> None:
    """Every append runs the batch's INSERTs; SQLAlchemy compiled a Core multi-row ``insert().values([...])``
    again at each one (such a statement has no cache key). Appends of the same shape reuse the compiled
    statement (and the rows still come back whole)."""
    from sqlalchemy import event
    from sqlalchemy.engine.interfaces import CacheStats

    for n in range(8):  # the shapes of the batches below: 1 entry, then its 1, 2, 1 or 3 new tree nodes
        led.append("a", {"n": n})
    inserts: list[tuple[str, object]] = []

    @event.listens_for(led._store.engine, "after_cursor_execute")
    def _seen(_c: object, _cur: object, sql: str, _p: object, ctx: Any, _m: bool) -> None:
        if sql.startswith(("INSERT", "WITH")):  # PostgreSQL: a batch's two INSERTs in one statement
            inserts.extend((t, ctx.cache_hit) for t in re.findall(r"INSERT INTO (\w+)", sql))

    for n in (8, 9, 10, 11):
        led.append("a", {"n": n})
    assert {t for t, _ in inserts} == {"ledger_entry", "ledger_node"}
    assert {hit for _, hit in inserts} == {CacheStats.CACHE_HIT}, [(t, h.name) for t, h in inserts]
    assert [e.payload for e in led.entries(8, 12)] == [{"n": n} for n in (8, 9, 10, 11)]
    led.check()


def test_the_known_checkpoint_size_is_the_newest_this_process_signed_or_read(
    led: Ledger, db_url: str
) -> None:
    """A lower bound of the newest stored checkpoint's size, with no storage read: another process's newer
    checkpoint counts once this process has read it."""
    assert led.known_checkpoint_size == 0
    led.append("a", {})
    led.append("a", {"n": 1})
    assert led.checkpoint().size == 2 == led.known_checkpoint_size
    if not db_url.startswith("postgresql"):
        return  # one sequencer per SQLite database
    with Ledger(db_url, led.config) as other:  # a second server process on the database
        other.append("a", {"n": 2})
        assert other.checkpoint().size == 3
    assert led.known_checkpoint_size == 2
    assert led.latest_checkpoint().size == 3 == led.known_checkpoint_size


def test_append_many_is_atomic_and_contiguous(led: Ledger) -> None:
    led.append("a", {})
    got = led.append_many([("b", {"i": i}) for i in range(5)])
    assert [g.index for g in got] == [1, 2, 3, 4, 5]
    with pytest.raises(ledger.InvalidEntry):
        led.append_many([("b", {"ok": 1}), ("b", {"bad": 1.5})])
    assert led.size == 6


def test_proofs_from_storage_match_the_list_functions_and_verify(led: Ledger) -> None:
    led.append_many([("x", {"i": i}) for i in range(37)])
    hashes = [e.hash for e in led.entries(0, 37)]
    for size in (1, 2, 5, 8, 16, 37):
        assert led.root(size) == merkle.root(hashes[:size])
        for index in {0, size // 2, size - 1}:
            p = led.inclusion_proof(index, size)
            assert list(p.proof) == merkle.inclusion_proof(index, hashes[:size])
            p.verify(merkle.root(hashes[:size]))
        for old in (0, 1, size // 3, size):
            c = led.consistency_proof(old, size)
            assert list(c.proof) == merkle.consistency_proof(old, hashes[:size])
            merkle.verify_consistency(old, size, led.root(old), led.root(size), c.proof)
    with pytest.raises(ledger.NotFound):
        led.inclusion_proof(37, 37)
    with pytest.raises(ledger.NotFound):
        led.consistency_proof(5, 38)


def test_checkpoints_are_signed_notes_with_injected_time(led: Ledger, clock: Clock) -> None:
    with pytest.raises(ledger.NotFound):
        led.latest_checkpoint()
    empty = led.checkpoint()
    assert empty.size == 0 and empty.root == merkle.EMPTY_ROOT
    led.append_many([("x", {"i": i}) for i in range(3)])
    clock.now += 60
    cp = led.checkpoint()
    assert (cp.size, cp.issued_at, cp.witnessed) == (3, clock.now, False)
    assert led.checkpoint() == cp  # nothing new: same checkpoint
    again = SignedCheckpoint.verify(cp.signed.note, led.log_key)
    assert again.checkpoint.root == led.root(3)
    assert cp.signed.note.startswith(f"{led.log_key.name}\n3\n")


def test_cosignatures_aggregate_to_a_witnessed_checkpoint(led: Ledger) -> None:
    led.append("x", {})
    cp = led.checkpoint()
    w0, w1, w2 = witnesses()
    with pytest.raises(ledger.SignatureError):
        led.add_cosignature("witness-0", cp.size, w1.cosign(cp.signed.body))  # someone else's signature
    with pytest.raises(ledger.InvalidEncoding):
        led.add_cosignature("witness-0", cp.size, b"\x00" * 95)
    with pytest.raises(ledger.SignatureError):
        led.add_cosignature("nobody", cp.size, w0.cosign(cp.signed.body))
    assert not led.add_cosignature("witness-0", cp.size, w0.cosign(cp.signed.body)).witnessed
    got = led.add_cosignature("witness-2", cp.size, w2.cosign(cp.signed.body))
    assert got.witnessed and got.cosignatures is not None
    assert got.cosignatures.signers == ("witness-0", "witness-2")
    got.cosignatures.verify(cp.signed.body, policy(2))


def test_the_newest_checkpoint_asked_again_follows_its_cosignatures_and_its_stored_row(
    led: Ledger, db_url: str
) -> None:
    """Every cast's receipt asks for the newest checkpoint: the answer is kept while its stored row and
    cosignatures are unchanged, and made again (the note verified, the cosignatures aggregated) when either
    changes, so a new cosignature shows at once and a damaged stored note is still refused."""
    import sqlalchemy as sa

    w0, w1, _ = witnesses()
    led.append("x", {})
    cp = led.checkpoint()
    first = led.latest_checkpoint()
    assert led.latest_checkpoint() is first and first.cosignatures is None  # unchanged: the kept answer
    led.add_cosignature("witness-0", cp.size, w0.cosign(cp.signed.body))
    one = led.latest_checkpoint()
    assert one.cosignatures is not None and one.cosignatures.signers == ("witness-0",) and not one.witnessed
    led.add_cosignature("witness-1", cp.size, w1.cosign(cp.signed.body))
    two = led.latest_checkpoint()
    assert two.witnessed and two.cosignatures is not None
    assert two.cosignatures.signers == ("witness-0", "witness-1")
    assert led.latest_checkpoint() is two
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:  # the stored note altered behind the ledger's back: no longer verifies
            conn.execute(
                sa.text("UPDATE ledger_checkpoint SET note = :note WHERE size = :size"),
                {"note": cp.signed.note.replace(f"\n{cp.size}\n", f"\n{cp.size + 1}\n", 1), "size": cp.size},
            )
    finally:
        engine.dispose()
    with pytest.raises(ledger.SignatureError):
        led.latest_checkpoint()


def test_the_newest_witnessed_checkpoint_is_found_behind_newer_uncosigned_ones(led: Ledger) -> None:
    w0, w1, w2 = witnesses()
    led.append("x", {})
    first = led.checkpoint()
    with pytest.raises(ledger.NotFound):
        led.latest_witnessed_checkpoint()
    led.add_cosignature("witness-0", first.size, w0.cosign(first.signed.body))
    with pytest.raises(ledger.NotFound):  # one of a quorum of two
        led.latest_witnessed_checkpoint()
    led.add_cosignature("witness-1", first.size, w1.cosign(first.signed.body))
    led.append("y", {})
    second = led.checkpoint()
    led.add_cosignature("witness-2", second.size, w2.cosign(second.signed.body))
    got = led.latest_witnessed_checkpoint()
    assert (got.size, got.witnessed, led.latest_checkpoint().size) == (first.size, True, second.size)
    led.add_cosignature("witness-0", second.size, w0.cosign(second.signed.body))
    assert led.latest_witnessed_checkpoint().size == second.size


BAD_PAYLOADS = [
    ("float", {"x": 1.5}),
    ("big-int", {"x": 2**53}),
    ("not-object", [1, 2]),
    ("non-str-key", {1: "a"}),
    ("bytes", {"x": b"raw"}),
    ("set", {"x": {1}}),
    (
        "too-deep",
        {
            "x": [
                [
                    [
                        [
                            [
                                [
                                    [
                                        [
                                            [
                                                [
                                                    [
                                                        [
                                                            [
                                                                [
                                                                    [
                                                                        [
                                                                            [
                                                                                [
                                                                                    [
                                                                                        [
                                                                                            [
                                                                                                [
                                                                                                    [
                                                                                                        [
                                                                                                            [
                                                                                                                [
                                                                                                                    [
                                                                                                                        [
                                                                                                                            [
                                                                                                                                [
                                                                                                                                    [
                                                                                                                                        [
                                                                                                                                            [
                                                                                                                                                [
                                                                                                                                                    [
                                                                                                                                                        [
                                                                                                                                                            [
                                                                                                                                                                [
                                                                                                                                                                    [
                                                                                                                                                                        [
                                                                                                                                                                            [
                                                                                                                                                                                [
                                                                                                                                                                                    [
                                                                                                                                                                                        [
                                                                                                                                                                                            [
                                                                                                                                                                                                [
                                                                                                                                                                                                    [
                                                                                                                                                                                                        [
                                                                                                                                                                                                            [
                                                                                                                                                                                                                [
                                                                                                                                                                                                                    [
                                                                                                                                                                                                                        [
                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                                                0
                                                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                ]
                                                                                                                                                                                                            ]
                                                                                                                                                                                                        ]
                                                                                                                                                                                                    ]
                                                                                                                                                                                                ]
                                                                                                                                                                                            ]
                                                                                                                                                                                        ]
                                                                                                                                                                                    ]
                                                                                                                                                                                ]
                                                                                                                                                                            ]
                                                                                                                                                                        ]
                                                                                                                                                                    ]
                                                                                                                                                                ]
                                                                                                                                                            ]
                                                                                                                                                        ]
                                                                                                                                                    ]
                                                                                                                                                ]
                                                                                                                                            ]
                                                                                                                                        ]
                                                                                                                                    ]
                                                                                                                                ]
                                                                                                                            ]
                                                                                                                        ]
                                                                                                                    ]
                                                                                                                ]
                                                                                                            ]
                                                                                                        ]
                                                                                                    ]
                                                                                                ]
                                                                                            ]
                                                                                        ]
                                                                                    ]
                                                                                ]
                                                                            ]
                                                                        ]
                                                                    ]
                                                                ]
                                                            ]
                                                        ]
                                                    ]
                                                ]
                                            ]
                                        ]
                                    ]
                                ]
                            ]
                        ]
                    ]
                ]
            ]
        },
    ),
    ("oversized", {"x": "a" * (1 << 20)}),
    ("lone-surrogate", {"x": "\ud800"}),
]


@pytest.mark.parametrize(("name", "payload"), BAD_PAYLOADS, ids=[n for n, _ in BAD_PAYLOADS])
def test_bad_payloads_are_refused_and_change_nothing(led: Ledger, name: str, payload: object) -> None:
    led.append("x", {})
    with pytest.raises(ledger.InvalidEntry):
        led.append("x", payload)  # type: ignore[arg-type]
    assert led.size == 1
    led.append("x", {"still": "fine"})
    assert led.size == 2


@pytest.mark.parametrize("etype", ["", "Ballot", "a b", "x" * 65, "-x", 7, "ballot/cast"])
def test_bad_event_types_are_refused(led: Ledger, etype: object) -> None:
    with pytest.raises(ledger.InvalidEntry):
        led.append(etype, {})  # type: ignore[arg-type]
    assert led.size == 0


@pytest.mark.parametrize(
    "raw", [b"{", b'{"a": 1, "a": 2}', b'{"a": NaN}', b'{"a": 1e3}', b"[1]", b"\xff\xfe", b'{"a": 1.0}']
)
def test_malformed_json_is_refused(led: Ledger, raw: bytes) -> None:
    with pytest.raises(ledger.InvalidEntry):
        led.append_json("x", raw)
    assert led.size == 0
    assert led.append_json("x", b'{"ok": [1, "two", null, true]}').index == 0


def test_reopen_restores_state(db_url: str) -> None:
    cfg = LedgerConfig(log_signer(), policy(2))
    with Ledger(db_url, cfg) as lg:
        lg.append_many([("x", {"i": i}) for i in range(11)])
        root = lg.root(11)
    with Ledger(db_url, cfg) as lg:
        assert lg.size == 11 and lg.checkpoint().root == root
        assert lg.append("x", {"i": 11}).index == 11
        assert lg.entries(11, 12)[0].prev == lg.entries(10, 11)[0].hash


def test_sqlite_is_wal_with_full_sync(tmp_path: Path) -> None:
    from sqlalchemy import text

    with Ledger(f"sqlite:///{tmp_path / 'l.db'}", LedgerConfig(log_signer())) as lg:
        with lg._store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    with pytest.raises(ledger.StorageError):
        Ledger("sqlite://", LedgerConfig(log_signer()))


def test_record_reading_does_not_import_storage() -> None:
    code = (
        "import sys, ledger, ledger.record, ledger.merkle\n"
        "ledger.record.check_record\n"
        "bad = [m for m in ('sqlalchemy', 'sqlmodel', 'fastapi', 'ledger.log') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_public_surface() -> None:
    import ledger.record

    assert set(ledger.__all__) >= {"Ledger", "LedgerConfig", "Appended", "LedgerError", "RecordError"}
    for name in ledger.__all__:
        assert getattr(ledger, name) is not None
    for name in ledger.record.__all__:
        assert getattr(ledger.record, name) is not None
    for fn in (
        "leaf_hash",
        "root",
        "inclusion_proof",
        "consistency_proof",
        "verify_inclusion",
        "verify_consistency",
    ):
        assert callable(getattr(merkle, fn))


def test_proof_rows_are_read_through_the_primary_key(tmp_path: Path) -> None:
    """A proof reads O(log n) rows by index lookups, never a scan of the log (SQLite query plan)."""
    with Ledger(f"sqlite:///{tmp_path / 'p.db'}", LedgerConfig(log_signer())) as lg:
        lg.append_many([("x", {"i": i}) for i in range(100)])
        keys = [k for b, e in merkle.inclusion_ranges(37, 100) for k in merkle.subtree_nodes(b, e)]
        assert len(keys) <= 2 * 7
        stmt = lg._store.node_query(keys)
        sql = str(stmt.compile(lg._store.engine, compile_kwargs={"literal_binds": True}))
        with lg._store.engine.connect() as conn:
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        assert "SCAN ledger_node" not in plan and "USING INDEX" in plan, plan


def test_one_sequencer_per_sqlite_database(tmp_path: Path, clock: Clock) -> None:
    """SQLite: a second appender on the same database file is refused with a clear error until the first
    closes; readers are never blocked, and nothing the refused appender tried is stored. (PostgreSQL lets
    every appender in: tests/ledger/test_ledger_shared.py.)"""
    db_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    cfg = LedgerConfig(log_signer(), policy(2), clock=clock)
    first = Ledger(db_url, cfg)
    second = Ledger(db_url, cfg)
    try:
        first.append("x", {"i": 0})
        with pytest.raises(ledger.StorageError, match="another sequencer"):
            second.append("x", {"i": 1})
        assert [e.payload for e in second.entries(0, 5)] == [{"i": 0}]  # reading is fine
        first.close()
        assert second.append("x", {"i": 2}).index == 1  # the lock passed on; state reloaded
        assert [e.payload["i"] for e in second.entries(0, 5)] == [0, 2]
    finally:
        first.close()
        second.close()
