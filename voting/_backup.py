"""Backup and restore of the server's state (``tvote admin backup`` / ``tvote admin restore``).

Run on the server machine against the configured database (``TVOTE_DATABASE_URL`` or the SQLite file in
``TVOTE_DATA_DIR``), never over HTTP. The ledger lives in the same database as the private state (its own
``ledger_*`` tables, :mod:`ledger.log`), so one consistent copy of the database holds both:

* SQLite: :meth:`sqlite3.Connection.backup` (the online backup API: a consistent copy while the server
  runs and writes);
* PostgreSQL: ``pg_dump --format=custom`` in a snapshot exported by a repeatable-read transaction, in which
  the backup's description (election, ledger size) is read too, so the description is exactly the dump's.

A backup is one uncompressed tar file (mode ``0600``): ``tvote-backup.json`` (what it holds: the election,
its base hash, phase, ledger size and root, the database kind, when it was taken), then ``database.sqlite3``
or ``database.pgdump``, then ``result.pdf`` if the result was declared (public, named by the ledger's
``result.declaration`` entry and part of the exported record). It holds **private data**: the roll key, the
roll's aliases and match keys, hashed trustee and kiosk credentials, sealed authentication evidence. Keep
it like the database itself.

Not in a backup (the operator keeps these in the key backup made when the server was set up; restore puts
them back first): ``ledger-signing.key`` (the ledger's checkpoint key, pinned in the manifest),
``booth-checks.key``, the commission's signing key and chain, the admin token and every other secret or
setting of the configuration. A restore refuses to run without the ledger's key, or with a key that did
not sign the backup's checkpoints, rather than let the server make a new one.

Restore: refuses a database that already holds an election unless ``force`` (and says which one), refuses
an SQLite database that a running server holds (the ledger's sequencer lock), restores, checks the
restored ledger (its stored tree, the size and root the backup names, the latest checkpoint's signature
under the data directory's key) and reconciles the private state with it
(:meth:`voting.service.ElectionService.reconcile`, ``full``) before the server is started again.
A restore is point-in-time: whatever was appended after the backup is gone. The restore is
:mod:`voting._restore`; this module is the format, its reader and the backup.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

from sqlalchemy.engine import make_url

from ledger.files import atomic_writer

from ._db import normalise_database_url
from ._errors import ServiceError
from ._settings import Settings

__all__ = ["BACKUP_FORMAT", "NOT_IN_BACKUP", "BackupError", "BackupInfo", "backup", "read_info"]

#: the format name in ``tvote-backup.json``
BACKUP_FORMAT: Final[str] = "tvote-backup/1"
_INFO: Final[str] = "tvote-backup.json"
_SQLITE: Final[str] = "database.sqlite3"
_PGDUMP: Final[str] = "database.pgdump"
_RESULT: Final[str] = "result.pdf"
_LEDGER_KEY: Final[str] = "ledger-signing.key"
#: kept out of every backup (module doc); the operator keeps them with the configuration
NOT_IN_BACKUP: Final[tuple[str, ...]] = (
    _LEDGER_KEY,
    "booth-checks.key",
    "commission-signer.key, commission-signer.crt, commission-chain.pem",
    "the admin token and the other secrets and settings of the configuration",
)
_MAX_INFO: Final[int] = 64 * 1024


class BackupError(ServiceError):
    """A backup could not be taken or a restore was refused (``backup.*``, ``restore.*``)."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "backup.error"


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """What a backup holds (``tvote-backup.json``)."""

    database: str  # "sqlite" | "postgresql"
    election_id: str | None
    base_hash: str | None
    phase: str | None
    ledger_size: int
    created_at: str
    files: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": BACKUP_FORMAT,
            "database": self.database,
            "election_id": self.election_id,
            "base_hash": self.base_hash,
            "phase": self.phase,
            "ledger_size": self.ledger_size,
            "created_at": self.created_at,
            "files": list(self.files),
            "not_included": list(NOT_IN_BACKUP),
        }

    @classmethod
    def from_dict(cls, d: Any) -> BackupInfo:
        try:
            if not isinstance(d, dict) or d.get("format") != BACKUP_FORMAT:
                raise ValueError("not a tvote backup (format)")
            info = cls(
                database=str(d["database"]),
                election_id=None if d["election_id"] is None else str(d["election_id"]),
                base_hash=None if d["base_hash"] is None else str(d["base_hash"]),
                phase=None if d["phase"] is None else str(d["phase"]),
                ledger_size=d["ledger_size"],
                created_at=str(d["created_at"]),
                files=tuple(str(f) for f in d["files"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise BackupError("restore.not_a_backup", f"the backup's description is invalid: {e}") from None
        if info.database not in ("sqlite", "postgresql"):
            raise BackupError("restore.not_a_backup", f"unknown database kind {info.database!r}")
        if (
            not isinstance(info.ledger_size, int)
            or isinstance(info.ledger_size, bool)
            or info.ledger_size < 0
        ):
            raise BackupError("restore.not_a_backup", "the backup's ledger size is invalid")
        if not set(info.files) <= {_SQLITE, _PGDUMP, _RESULT}:
            raise BackupError("restore.not_a_backup", "the backup names files a backup never holds")
        return info

    def describe(self) -> str:
        """One line for the operator: which election, how far its ledger goes."""
        if self.election_id is None:
            return f"{self.database} backup of a server with no election ({self.created_at})"
        return (
            f"election {self.election_id} (base hash {self.base_hash}), phase {self.phase}, "
            f"{self.ledger_size} ledger entries, {self.database} backup taken {self.created_at}"
        )


# -------------------------------------------------------------------------------------------- database


def _kind(settings: Settings) -> str:
    url = normalise_database_url(settings.effective_database_url)
    if url.startswith("sqlite"):
        return "sqlite"
    if url.startswith("postgresql"):
        return "postgresql"
    raise BackupError("backup.database", "backup supports SQLite and PostgreSQL databases only")


def _sqlite_path(settings: Settings) -> Path:
    database = make_url(normalise_database_url(settings.effective_database_url)).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError("backup.database", "the SQLite database must be a file")
    return Path(database)


def _libpq(settings: Settings) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and the environment carrying it (``PGPASSWORD``), so
    that the password never appears on a command line."""
    url = make_url(normalise_database_url(settings.effective_database_url))
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


#: where Debian and Ubuntu install each major version's server and client programs (``<version>/bin``)
PG_INSTALL_ROOT = Path("/usr/lib/postgresql")


def _pg_tool(name: str) -> str:
    """``pg_dump`` / ``pg_restore``: on ``PATH``, else the newest ``PG_INSTALL_ROOT/*/bin``."""
    found = shutil.which(name)
    if found:
        return found
    for bindir in sorted(PG_INSTALL_ROOT.glob("*/bin"), reverse=True):
        if (bindir / name).exists():
            return str(bindir / name)
    raise BackupError(
        "backup.pg_tools",
        f"{name} is not installed: install the PostgreSQL client tools of the server's major version "
        "(Debian: postgresql-client)",
    )


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603 (fixed argv)
    if out.returncode != 0:
        tail = " ".join(out.stderr.strip().splitlines()[-3:])[:500]
        raise BackupError(f"backup.{what}", f"{Path(argv[0]).name} failed (exit {out.returncode}): {tail}")


@contextmanager
def _pg_connect(settings: Settings) -> Iterator[Any]:
    """A psycopg connection to the configured PostgreSQL database; a failure is ``backup.database``."""
    import psycopg

    uri, env = _libpq(settings)
    try:
        with psycopg.connect(uri, password=env.get("PGPASSWORD"), connect_timeout=30) as conn:
            yield conn
    except psycopg.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BackupError("backup.database", f"PostgreSQL: {first}") from None


def _election_of(cur: Any) -> tuple[str | None, str | None, str | None]:
    cur.execute("SELECT election_id, base_hash, phase FROM tv_election")
    rows = cur.fetchall()
    if len(rows) > 1:
        raise BackupError("backup.database", "the database holds more than one election")
    return (str(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else (None, None, None)


def _has_table(cur: Any, kind: str, table: str) -> bool:
    if kind == "sqlite":
        cur.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,))
    else:
        cur.execute("SELECT to_regclass(%s)", (f"public.{table}",))
        return cur.fetchone()[0] is not None
    return cur.fetchone() is not None


def _describe_db(cur: Any, kind: str) -> tuple[tuple[str | None, str | None, str | None], int]:
    """The election and the ledger's entry count (the ledger's ``ledger_entry`` table, :mod:`ledger.log`)."""
    election = _election_of(cur) if _has_table(cur, kind, "tv_election") else (None, None, None)
    size = 0
    if _has_table(cur, kind, "ledger_entry"):
        cur.execute("SELECT count(*) FROM ledger_entry")
        size = int(cur.fetchone()[0])
    return election, size


# ---------------------------------------------------------------------------------------------- backup


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def backup(settings: Settings, out: Path) -> BackupInfo:
    """Write a backup of the configured database (and ``result.pdf``) to ``out`` (``0600``; refuses to
    overwrite). Safe while the server runs."""
    out = Path(out)
    if out.exists():
        raise BackupError("backup.exists", f"{out} exists; choose a new file name")
    kind = _kind(settings)
    with tempfile.TemporaryDirectory(
        prefix="tvote-backup-", dir=out.parent if out.parent.is_dir() else None
    ) as tmp:
        db_file = Path(tmp) / (_SQLITE if kind == "sqlite" else _PGDUMP)
        if kind == "sqlite":
            election, size = _backup_sqlite(settings, db_file)
        else:
            election, size = _backup_postgres(settings, db_file)
        files = [db_file.name]
        pdf = settings.data_dir / _RESULT
        if pdf.exists():
            files.append(_RESULT)
        info = BackupInfo(kind, *election, ledger_size=size, created_at=_now(), files=tuple(files))
        try:
            with (
                atomic_writer(out, mode=0o600, overwrite=False) as f,
                tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                raw = json.dumps(info.to_dict(), indent=1).encode("utf-8")
                ti = tarfile.TarInfo(_INFO)
                ti.size, ti.mode = len(raw), 0o600
                tar.addfile(ti, io.BytesIO(raw))
                tar.add(db_file, arcname=db_file.name, recursive=False)
                if _RESULT in files:
                    tar.add(pdf, arcname=_RESULT, recursive=False)
        except FileExistsError:
            raise BackupError("backup.exists", f"{out} exists; choose a new file name") from None
    return info


def _backup_sqlite(settings: Settings, dest: Path) -> tuple[tuple[str | None, str | None, str | None], int]:
    path = _sqlite_path(settings)
    if not path.exists():
        raise BackupError("backup.database", f"there is no database at {path}")
    src = sqlite3.connect(path, timeout=30)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)  # one consistent snapshot, even while the server writes
            dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
            return _describe_db(dst.cursor(), "sqlite")
        finally:
            dst.close()
    finally:
        src.close()


def _backup_postgres(settings: Settings, dest: Path) -> tuple[tuple[str | None, str | None, str | None], int]:
    uri, env = _libpq(settings)
    pg_dump = _pg_tool("pg_dump")
    import psycopg

    with _pg_connect(settings) as conn:
        # one repeatable-read transaction (psycopg begins it at the first statement): its snapshot is exported
        conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
        level = conn.execute("SHOW transaction_isolation").fetchone()
        if level is None or level[0] != "repeatable read":
            raise BackupError("backup.database", "PostgreSQL did not begin a repeatable-read transaction")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert snapshot is not None
        described = _describe_db(conn.cursor(), "postgresql")
        # the dump sees exactly this transaction's snapshot, so the description is the dump's
        _run(
            [pg_dump, "--format=custom", f"--snapshot={snapshot[0]}", "--no-owner", "--file", str(dest), uri],
            env,
            "pg_dump",
        )
        conn.rollback()
    return described


# ------------------------------------------------------------------------------------- reading a backup


def read_info(archive: Path) -> BackupInfo:
    """The description of the backup in ``archive`` (checked)."""
    with _open(archive) as tar:
        return _info(tar)


@contextmanager
def _open(archive: Path) -> Iterator[tarfile.TarFile]:
    try:
        tar = tarfile.open(archive, mode="r:")
    except tarfile.TarError as e:
        raise BackupError("restore.not_a_backup", f"{archive} is not a tvote backup: {e}") from None
    with tar:
        yield tar


def _member(tar: tarfile.TarFile, name: str) -> tarfile.TarInfo:
    try:
        m = tar.getmember(name)
    except KeyError:
        raise BackupError("restore.not_a_backup", f"the backup has no {name}") from None
    if not m.isfile():
        raise BackupError("restore.not_a_backup", f"{name} in the backup is not a regular file")
    return m


def _info(tar: tarfile.TarFile) -> BackupInfo:
    m = _member(tar, _INFO)
    if m.size > _MAX_INFO:
        raise BackupError("restore.not_a_backup", "the backup's description is too large")
    f = tar.extractfile(m)
    assert f is not None
    try:
        d = json.loads(f.read())
    except ValueError:
        raise BackupError("restore.not_a_backup", "the backup's description is not JSON") from None
    info = BackupInfo.from_dict(d)
    for name in info.files:
        _member(tar, name)
    if (_SQLITE if info.database == "sqlite" else _PGDUMP) not in info.files:
        raise BackupError("restore.not_a_backup", "the backup holds no database")
    return info
