"""Opening an election record: a directory, or an archive of one (``.tar``, ``.tar.gz``/``.tgz``, ``.zip``).

The record is opened by the record format's one reader, ``ledger.record.open_record``: an archive is
unpacked into a private temporary directory under its rules (regular files and directories only: no links,
no devices; no absolute paths, no ``..``; only the record's files, each within its size bound), so the rest
of the verifier, and ``ledger.record``, always read a directory. Reading failures raise
:class:`~verifier._errors.RecordUnreadable` (exit code 2).

Every JSON text the verifier reads from the record (or a receipt) is bounded before it is decoded
(:func:`load_json`: ``ledger.record.check_json_bounds``, size and nesting), and no line is read into
memory beyond the entry size limit: a hostile record gets INVALID (V1), never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from ledger.record import ENTRIES_FILE, MAX_ENTRY_BYTES, InvalidEncoding, OpenedRecord, check_json_bounds
from ledger.record import open_record as open_record_files

from ._errors import RecordUnreadable

__all__ = ["ENTRIES_FILE", "RecordSource", "load_json", "open_record"]

#: a line is read up to this many bytes (then skipped to its end): one byte over the entry size limit, so a
#: longer line is still seen as too long
_MAX_LINE: Final[int] = MAX_ENTRY_BYTES + 1


def load_json(raw: bytes | str, *, max_bytes: int = MAX_ENTRY_BYTES) -> Any:
    """Decode JSON from the record after bounding its size and nesting (``ledger.record.check_json_bounds``);
    raises ``ValueError`` (``ledger.record.InvalidEntry`` or ``json.JSONDecodeError``) for bad input. Lenient
    about what the structure check (V1, ``ledger.record``) refuses anyway: duplicate keys, floats."""
    check_json_bounds(raw, max_bytes=max_bytes)
    return json.loads(raw)


class RecordSource:
    """A record directory (possibly unpacked from an archive, then removed on :meth:`close`)."""

    def __init__(self, directory: Path, *, origin: Path, opened: OpenedRecord | None = None) -> None:
        self.directory = directory
        self.origin = origin
        self._opened = opened

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
            while True:
                raw = f.readline(_MAX_LINE)
                if not raw:
                    return
                pos += len(raw)
                if not raw.endswith(b"\n"):  # an over-long line: yield its head (too long: V1), skip the rest
                    while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
                        pos += len(rest)
                    pos += len(rest)
                yield pos, raw.rstrip(b"\n")

    def read_line(self, start: int, end: int) -> bytes:
        """The line :meth:`lines` yields for the bytes ``start`` to ``end`` (its end offset)."""
        try:
            with self.entries_path.open("rb") as f:
                f.seek(start)
                raw = f.read(min(end - start, _MAX_LINE))
        except OSError as e:
            raise RecordUnreadable(f"cannot read {ENTRIES_FILE}: {e.strerror}", path=str(self.origin)) from e
        return raw.rstrip(b"\n")

    def find(self, name: str) -> Path | None:
        """A file of the record by name (``result.pdf``), looked up in the record directory, then beside it
        (``tvote demo --out DIR`` writes ``DIR/record`` and ``DIR/result.pdf``)."""
        for d in (self.directory, self.origin.parent):
            p = d / name
            if p.is_file():
                return p
        return None

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()

    def __enter__(self) -> RecordSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_record(path: str | Path) -> RecordSource:
    """Open a record directory or archive; raise :class:`RecordUnreadable` if it is neither."""
    p = Path(path)
    if p.is_dir() and not (p / ENTRIES_FILE).is_file():
        raise RecordUnreadable(f"no {ENTRIES_FILE} in the record directory", path=str(p))
    if not p.exists():
        raise RecordUnreadable("no such record directory or archive", path=str(p))
    try:
        opened = open_record_files(p)
    except InvalidEncoding as e:
        raise RecordUnreadable(str(e), path=str(p)) from e
    return RecordSource(opened.directory, origin=p, opened=opened)
