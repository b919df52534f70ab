"""``tvote admin restore``: a backup (:mod:`voting._backup`, which describes the format and what a backup
holds) back into the configured database, checked and reconciled.

Refuses a database that holds an election unless ``force`` (and says which one), an SQLite database that a
running server holds (the ledger's sequencer lock), and a data directory without the ledger's key or with a
key of another log; restores (SQLite: the online backup API into the configured file; PostgreSQL:
``pg_restore --clean --if-exists --single-transaction``); checks the restored ledger (it loads, has the size
the backup names, every checkpoint verifies under the data directory's key, the stored tree matches its
entries) and reconciles the private state with it (:meth:`voting.service.ElectionService.reconcile`,
``full``), before the server is started again.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.files import write_atomic

from ._backup import (
    _LEDGER_KEY,
    _PGDUMP,
    _RESULT,
    _SQLITE,
    BackupError,
    BackupInfo,
    _describe_db,
    _info,
    _kind,
    _libpq,
    _member,
    _open,
    _pg_connect,
    _pg_tool,
    _run,
    _sqlite_path,
)
from ._db import make_private_dir, normalise_database_url
from ._settings import Settings

__all__ = ["RestoreOutcome", "restore"]


@dataclass(frozen=True, slots=True)
class RestoreOutcome:
    """What :func:`restore` did: the backup's description and the reconciliation report."""

    info: BackupInfo
    replaced: str | None  # the election the target held before (with ``force``), if any
    reconcile: dict[str, Any] | None


def _extract(tar: tarfile.TarFile, name: str, dest: Path) -> Path:
    src = tar.extractfile(_member(tar, name))
    assert src is not None
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(src, out)
    return dest


def restore(settings: Settings, archive: Path, *, force: bool = False) -> RestoreOutcome:
    """Restore ``archive`` into the configured database (and ``result.pdf`` into the data directory), check
    the restored ledger and reconcile; the server must be stopped (module doc)."""
    archive = Path(archive)
    kind = _kind(settings)
    with _open(archive) as tar, tempfile.TemporaryDirectory(prefix="tvote-restore-") as tmp:
        info = _info(tar)
        if info.database != kind:
            raise BackupError(
                "restore.database",
                f"this is a {info.database} backup; the server is configured for {kind} "
                "(restore it into the kind of database it was taken from)",
            )
        signer = _ledger_key(settings, info)
        replaced = _check_target(settings, kind, info, force)
        if kind == "sqlite":
            _restore_sqlite(settings, _extract(tar, _SQLITE, Path(tmp) / _SQLITE))
        else:
            _restore_postgres(settings, _extract(tar, _PGDUMP, Path(tmp) / _PGDUMP))
        make_private_dir(settings.data_dir)
        pdf = settings.data_dir / _RESULT
        if _RESULT in info.files:
            write_atomic(pdf, _extract(tar, _RESULT, Path(tmp) / _RESULT).read_bytes())
        elif pdf.exists():
            pdf.unlink()  # the restored ledger does not declare a result yet
    _check_ledger(settings, info, signer)
    return RestoreOutcome(info, replaced, _reconcile(settings) if info.election_id is not None else None)


def _ledger_key(settings: Settings, info: BackupInfo) -> Any:
    """The data directory's ledger key, which must be there before the election's ledger is restored."""
    from ledger.record import LogSigner

    if info.election_id is None:
        return None
    path = settings.data_dir / _LEDGER_KEY
    if not path.exists():
        raise BackupError(
            "restore.ledger_key",
            f"put the ledger's key {_LEDGER_KEY} (from your key backup; it is never in a backup) into "
            f"{settings.data_dir} first: without it the server would sign with a new key that the manifest "
            "does not pin",
        )
    signer = LogSigner.from_skey(path.read_text(encoding="ascii"))
    origin = settings.log_origin or f"tvote/{info.election_id}"
    if signer.name != origin:
        raise BackupError(
            "restore.ledger_key",
            f"{path} is the key of the log {signer.name!r}, not of this backup's election "
            f"{info.election_id!r}",
        )
    return signer


def _check_target(settings: Settings, kind: str, info: BackupInfo, force: bool) -> str | None:
    """Refuse a target that holds an election (unless ``force``) or that a running server holds."""
    if kind == "sqlite":
        path = _sqlite_path(settings)
        if not path.exists():
            return None
        _refuse_running_sqlite(path)
        conn = sqlite3.connect(path, timeout=30)
        try:
            (current, _, _), size = _describe_db(conn.cursor(), "sqlite")
        finally:
            conn.close()
    else:
        with _pg_connect(settings) as pg:
            (current, _, _), size = _describe_db(pg.cursor(), "postgresql")
    if current is None and size == 0:
        return None
    if not force:
        what = f"election {current}" if current is not None else f"{size} ledger entries"
        raise BackupError(
            "restore.not_empty",
            f"the database already holds {what}; the backup holds "
            f"{info.election_id or 'no election'}. Restore into an empty database, or give --force to "
            "replace it",
        )
    return current


def _refuse_running_sqlite(path: Path) -> None:
    """A running server holds the ledger's sequencer lock (``<database>.sequencer.lock``, an exclusive
    ``flock``, :mod:`ledger.log`): restoring under it would corrupt its state."""
    import fcntl

    lock = Path(f"{path}.sequencer.lock")
    if not lock.exists():
        return
    with open(lock, "ab") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                "restore.server_running", "a server is running on this database: stop it before restoring"
            ) from None
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _restore_sqlite(settings: Settings, staged: Path) -> None:
    src = sqlite3.connect(staged)
    try:
        ok = src.execute("PRAGMA integrity_check").fetchone()
        if ok is None or ok[0] != "ok":
            raise BackupError("restore.corrupt", "the backup's SQLite database fails its integrity check")
        path = _sqlite_path(settings)
        make_private_dir(path.parent)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        dst = sqlite3.connect(path, timeout=30)
        try:
            src.backup(dst)  # replaces the target's pages, through its own journal (WAL included)
            dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            dst.close()
    finally:
        src.close()


def _restore_postgres(settings: Settings, staged: Path) -> None:
    uri, env = _libpq(settings)
    _run(
        [
            _pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            uri,
            str(staged),
        ],
        env,
        "pg_restore",
    )


def _check_ledger(settings: Settings, info: BackupInfo, signer: Any) -> None:
    """The restored ledger loads (its tree matches its entries), has the backup's size, and its latest
    checkpoint is signed by the data directory's key."""
    from ledger import Ledger, LedgerConfig, LedgerError, NotFound

    if signer is None:
        return
    ledger = Ledger(normalise_database_url(settings.effective_database_url), LedgerConfig(signer=signer))
    try:
        if ledger.size != info.ledger_size:
            raise BackupError(
                "restore.ledger",
                f"the restored ledger holds {ledger.size} entries; the backup names {info.ledger_size}",
            )
        try:
            ledger.latest_checkpoint()
        except NotFound:
            pass
        except LedgerError as e:
            raise BackupError(
                "restore.ledger_key",
                f"the restored checkpoints do not verify under {_LEDGER_KEY} in the data directory: "
                f"{e.operator_message}",
            ) from None
        try:
            ledger.check()
        except LedgerError as e:
            raise BackupError(
                "restore.ledger", f"the restored ledger fails its check: {e.operator_message}"
            ) from None
    finally:
        ledger.close()


def _reconcile(settings: Settings) -> dict[str, Any]:
    from .service import ElectionService

    service = ElectionService.from_settings(settings)
    try:
        return service.reconcile(full=True).to_dict()
    finally:
        service.close()
