"""The one writer of the election record (docs/record.md §1): a directory, and the archive of one.

:class:`RecordWriter` streams the entries into ``entries.jsonl`` (memory does not grow with their number),
then :meth:`RecordWriter.seal` writes the extra files, ``checkpoints.jsonl`` and, last, ``record.json``;
every file is written atomically and durably (:func:`ledger.files.atomic_writer`), so a directory with a
``record.json`` is a whole record, and a failure leaves no half-written file. :func:`seal_record` is the
same in one call. :func:`archive_record` packs a sealed directory into the deterministic ``.tar.gz``
(members under ``tvote-record/``, mtime 0, fixed order): the same record gives the same bytes.

Who writes a record: the running log's export (``Ledger.export``), the election service's download, the
trustee's pre-decryption check (from the served entries), the verifier's test fixture and the benchmark
record generator. Whether the content is *valid* is the checker's business (``check_record``); the
writer only refuses what would make the files disagree with ``record.json``'s counts.
"""

from __future__ import annotations

import gzip
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from ..files import atomic_writer, write_atomic
from ._format import (
    ARCHIVE_PREFIX,
    CHECKPOINTS_FILE,
    ENTRIES_FILE,
    EXTRA_FILES,
    RECORD_FILE,
    RECORD_FILES,
    CheckpointRecord,
    RecordHeader,
    dumps_header,
)

__all__ = ["RecordWriter", "archive_record", "seal_record"]


class RecordWriter:
    """Write one record directory: ``add_entry`` each entry in order, ``add_file`` the extras, then
    ``seal``. As a context manager, leaving the block by an exception removes the unfinished entries file.

    ``directory`` is created; it must not exist or be empty.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and any(self.directory.iterdir()):
            raise FileExistsError(f"record directory {self.directory} is not empty")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self._files: dict[str, bytes] = {}
        self._stack = ExitStack()
        self._entries: BinaryIO = self._stack.enter_context(atomic_writer(self.directory / ENTRIES_FILE))

    def add_entry(self, canonical: bytes) -> None:
        """One entry's canonical bytes (without the newline), in index order."""
        if b"\n" in canonical:
            raise ValueError("an entry is one line")
        self._entries.write(canonical + b"\n")
        self.count += 1

    def add_file(self, name: str, data: bytes) -> None:
        """An extra file of the record (:data:`EXTRA_FILES`: ``result.pdf``)."""
        if name not in EXTRA_FILES:
            raise ValueError(f"{name!r} is not a file of the record")
        self._files[name] = data

    def seal(self, header: RecordHeader, checkpoints: Sequence[CheckpointRecord]) -> Path:
        """Write the rest (``record.json`` last) and return the directory."""
        if header.entry_count != self.count or header.checkpoint_count != len(checkpoints):
            self.abort()
            raise ValueError(
                f"record.json would announce {header.entry_count} entries and {header.checkpoint_count} "
                f"checkpoints, the writer has {self.count} and {len(checkpoints)}"
            )
        self._stack.close()  # entries.jsonl in place
        for name, data in self._files.items():
            write_atomic(self.directory / name, data)
        with atomic_writer(self.directory / CHECKPOINTS_FILE) as f:
            for cp in checkpoints:
                f.write(cp.line())
        write_atomic(self.directory / RECORD_FILE, dumps_header(header))
        return self.directory

    def abort(self) -> None:
        """Drop the unfinished entries file (nothing of the record is left but the directory)."""
        try:
            self._stack.__exit__(RuntimeError, RuntimeError("record not sealed"), None)
        except RuntimeError:
            pass

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self.abort()


def seal_record(
    directory: str | Path,
    header: RecordHeader,
    checkpoints: Sequence[CheckpointRecord],
    entries: Iterable[bytes],
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write a whole record directory (see :class:`RecordWriter`): ``entries`` are canonical entry bytes."""
    with RecordWriter(directory) as w:
        for line in entries:
            w.add_entry(line)
        for name, data in (files or {}).items():
            w.add_file(name, data)
        return w.seal(header, checkpoints)


def archive_record(directory: str | Path, out: str | Path | BinaryIO) -> None:
    """Pack a sealed record directory into the record archive (docs/record.md §1), written to the path
    ``out`` atomically, or to the open binary file ``out``: a gzip of a POSIX (pax) tar holding the
    directory ``tvote-record/``, then its files in the order record.json, checkpoints.jsonl,
    entries.jsonl and any extra files, every mtime 0 (streamed: no file is held in memory)."""
    d = Path(directory)
    if isinstance(out, str | Path):
        with atomic_writer(out) as raw:
            _pack(d, raw)
    else:
        _pack(d, out)


def _pack(d: Path, raw: BinaryIO) -> None:
    names = [*RECORD_FILES, *(nm for nm in EXTRA_FILES if (d / nm).is_file())]
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        info = tarfile.TarInfo(ARCHIVE_PREFIX)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
        tar.addfile(info)
        for name in names:
            info = tarfile.TarInfo(f"{ARCHIVE_PREFIX}/{name}")
            info.size, info.mode, info.mtime = (d / name).stat().st_size, 0o644, 0
            with open(d / name, "rb") as src:
                tar.addfile(info, src)
