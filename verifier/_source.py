"""Opening an election record: a directory, or an archive of one (``.tar``, ``.tar.gz``/``.tgz``, ``.zip``).

An archive is unpacked into a private temporary directory with tarfile's ``data`` filter (no absolute
paths, no ``..``, no links out, no devices) so the rest of the verifier, and ``ledger.record``, always
read a directory. Reading failures raise :class:`~verifier._errors.RecordUnreadable` (exit code 2).
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Final

from ._errors import RecordUnreadable

__all__ = ["ENTRIES_FILE", "RecordSource", "open_record"]

ENTRIES_FILE: Final[str] = "entries.jsonl"


class RecordSource:
    """A record directory (possibly unpacked from an archive, then removed on :meth:`close`)."""

    def __init__(self, directory: Path, *, origin: Path, temporary: Path | None = None) -> None:
        self.directory = directory
        self.origin = origin
        self._temporary = temporary

    @property
    def entries_path(self) -> Path:
        return self.directory / ENTRIES_FILE

    def entries_size(self) -> int:
        try:
            return self.entries_path.stat().st_size
        except OSError as e:
            raise RecordUnreadable(f"cannot read {ENTRIES_FILE}: {e.strerror}", path=str(self.origin)) from e

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """``(byte offset after the line, line without newline)`` for every line of ``entries.jsonl``."""
        try:
            f = self.entries_path.open("rb")
        except OSError as e:
            raise RecordUnreadable(f"cannot open {ENTRIES_FILE}: {e.strerror}", path=str(self.origin)) from e
        with f:
            pos = 0
            for raw in f:
                pos += len(raw)
                yield pos, raw.rstrip(b"\n")

    def find(self, name: str) -> Path | None:
        """A file of the record by name (``result.pdf``), looked up in the record directory, then beside it
        (``tvote demo --out DIR`` writes ``DIR/record`` and ``DIR/result.pdf``)."""
        for d in (self.directory, self.origin.parent):
            p = d / name
            if p.is_file():
                return p
        return None

    def close(self) -> None:
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    def __enter__(self) -> RecordSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _single_root(tmp: Path) -> Path:
    """The record directory inside an unpacked archive: the top level, or its only sub-directory."""
    if (tmp / ENTRIES_FILE).is_file():
        return tmp
    subs = [p for p in tmp.iterdir() if p.is_dir()]
    if len(subs) == 1 and (subs[0] / ENTRIES_FILE).is_file():
        return subs[0]
    raise RecordUnreadable(f"the archive holds no {ENTRIES_FILE} at its top level or in one directory")


def open_record(path: str | Path) -> RecordSource:
    """Open a record directory or archive; raise :class:`RecordUnreadable` if it is neither."""
    p = Path(path)
    if p.is_dir():
        if not (p / ENTRIES_FILE).is_file():
            raise RecordUnreadable(f"no {ENTRIES_FILE} in the record directory", path=str(p))
        return RecordSource(p, origin=p)
    if not p.is_file():
        raise RecordUnreadable("no such record directory or archive", path=str(p))
    tmp = Path(tempfile.mkdtemp(prefix="tvote-record-"))
    try:
        if tarfile.is_tarfile(p):
            with tarfile.open(p) as tf:
                tf.extractall(tmp, filter="data")  # the data filter refuses unsafe members
        elif zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as zf:
                for info in zf.infolist():
                    rel = PurePosixPath(info.filename)
                    if rel.is_absolute() or ".." in rel.parts:
                        raise RecordUnreadable(f"unsafe path in archive: {info.filename!r}", path=str(p))
                zf.extractall(tmp)  # noqa: S202 - member names were checked above
        else:
            raise RecordUnreadable("not a record directory, tar or zip archive", path=str(p))
        return RecordSource(_single_root(tmp), origin=p, temporary=tmp)
    except RecordUnreadable:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RecordUnreadable(f"cannot unpack the archive: {e}", path=str(p)) from e
