"""What every PostgreSQL connection of the two engines shares (``ledger.log.tune_postgres``).

* A statement marked ``UNPREPARED`` is never prepared on the server, however often it runs: its plan is made
  for the table as it is at each execution. Prepared, PostgreSQL may keep one generic plan made while the
  table was nearly empty: the intake's uniqueness lookup, planned at an election's first casts, kept
  scanning the whole table as it grew (seen with auto_explain in the intake benchmark).
* Out-of-line values are compressed with lz4 where the server has it (PostgreSQL 14 and later).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.engine import Engine

from ledger.log import UNPREPARED
from ledger.log._store import make_engine as ledger_engine
from voting._db import make_engine as voting_engine

pytestmark = pytest.mark.postgres

_TABLE = """CREATE TABLE uv (value varchar NOT NULL, election_id varchar NOT NULL, kind varchar NOT NULL,
    ledger_index integer NOT NULL, PRIMARY KEY (value, election_id, kind))"""
_LOOKUP = text("SELECT kind, value, ledger_index FROM uv WHERE election_id = :e AND value IN :values")

_MAKERS = pytest.mark.parametrize("make", [ledger_engine, voting_engine], ids=["ledger", "service"])


def _lookup(unprepared: bool) -> TextClause:
    stmt = _LOOKUP.bindparams(bindparam("values", expanding=True))
    return stmt.execution_options(**{UNPREPARED: True}) if unprepared else stmt


def _values(n: int) -> list[str]:
    return [os.urandom(32).hex() for _ in range(n)]


@_MAKERS
def test_a_statement_marked_unprepared_is_planned_at_every_execution(
    postgres_url: str, make: Callable[[str], Engine]
) -> None:
    engine = make(postgres_url)
    try:
        with engine.connect() as c:
            c.execute(text("DROP TABLE IF EXISTS uv"))
            c.execute(text(_TABLE))
            c.commit()
            rows = [{"v": v} for v in _values(40)]
            c.execute(text("INSERT INTO uv VALUES (:v, 'e', 'pad', 1)"), rows)  # a nearly empty table
            c.commit()
            for unprepared in (False, True):
                for _ in range(8):  # psycopg prepares a statement after its 5th execution on a connection
                    c.execute(_lookup(unprepared), {"e": "e", "values": _values(16)}).all()
                c.commit()
            mine = text("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
            prepared = [str(q) for (q,) in c.execute(mine) if "FROM uv" in str(q)]
            assert len(prepared) == 1, prepared  # the unmarked one only
            # marked, it still answers correctly, and on a grown table it is planned for the table it finds
            more = [{"v": v} for v in _values(30000)]
            c.execute(text("INSERT INTO uv VALUES (:v, 'e', 'pad', 1)"), more)
            c.commit()
            wanted = [more[7]["v"], more[29999]["v"], *_values(14)]
            got = c.execute(_lookup(True), {"e": "e", "values": wanted}).all()
            assert sorted(v for _k, v, _i in got) == sorted(wanted[:2])
    finally:
        engine.dispose()


@_MAKERS
def test_out_of_line_values_are_compressed_with_lz4(postgres_url: str, make: Callable[[str], Engine]) -> None:
    engine = make(postgres_url)
    try:
        with engine.connect() as c:
            version = int(c.execute(text("SHOW server_version_num")).scalar_one())
            if version < 140000:
                pytest.skip("PostgreSQL before 14 has one compression method")
            assert c.execute(text("SHOW default_toast_compression")).scalar_one() == "lz4"
            c.execute(text("CREATE TABLE IF NOT EXISTS big (id integer PRIMARY KEY, body text NOT NULL)"))
            c.execute(text("DELETE FROM big"))
            body = os.urandom(16000).hex()  # 32 kB of hex: compressible, stored out of line
            c.execute(text("INSERT INTO big VALUES (1, :b)"), {"b": body})
            c.commit()
            method = c.execute(text("SELECT pg_column_compression(body) FROM big")).scalar_one()
            assert method == "lz4"
            assert c.execute(text("SELECT body FROM big")).scalar_one() == body
    finally:
        engine.dispose()
