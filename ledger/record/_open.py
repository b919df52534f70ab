"""The one reader of the election record: a directory, or an archive of one (tar, any compression, or zip).

:func:`open_record` finds the record directory; an archive is unpacked, member by member, into a private
temporary directory (removed on :meth:`OpenedRecord.close`) under one set of rules (docs/record.md §1):

1. at most :data:`MAX_MEMBERS` members, each a regular file or a directory: no symbolic or hard links, no
   devices, FIFOs or sparse files;
2. every name relative, in POSIX form, without ``..``, ``.``, empty parts, backslashes or NUL (a leading
   ``./`` is read as nothing);
3. the record's files (``record.json``, ``checkpoints.jsonl``, ``entries.jsonl``, optionally
   ``result.pdf``; nothing else, each once) either at the top level or in one top-level directory (written
   as ``tvote-record/``; any one name is read);
4. each file within its bound (:data:`MAX_FILE_BYTES`), counted as it is copied, whatever its header says.

A directory must hold the three files (others are not looked at). :func:`read_record` opens a record with
it and parses ``record.json`` and ``checkpoints.jsonl``; the entries stay on disk and are streamed
(one line at a time, memory does not grow with the number of entries). Everything here raises
:class:`~ledger.InvalidEncoding`.
"""

from __future__ import annotations

import io
import shutil
import stat
import tarfile
import tempfile
import weakref
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Final

from .._errors import InvalidEncoding, RecordError
from ._entry import Entry
from ._format import (
    CHECKPOINTS_FILE,
    ENTRIES_FILE,
    EXTRA_FILES,
    MAX_HEADER_BYTES,
    RECORD_FILE,
    RECORD_FILES,
    RESULT_FILE,
    CheckpointRecord,
    RecordHeader,
    parse_checkpoints,
    parse_header,
)

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_MEMBERS",
    "READ_LIMIT",
    "OpenedRecord",
    "Record",
    "open_record",
    "read_record",
]

#: the most bytes :meth:`Record.entry_lines` reads as one line: a longer line comes in pieces of this size,
#: the first without its newline (so it is not an entry, and the check stops there)
READ_LIMIT: Final[int] = 2 * (1 << 20)

#: the most members an archive may have (the record's files and one directory)
MAX_MEMBERS: Final[int] = 16
#: each file's bound, unpacked: the entries are the election's size (a million ballots of a few KiB each)
MAX_FILE_BYTES: Final[dict[str, int]] = {
    RECORD_FILE: MAX_HEADER_BYTES,
    CHECKPOINTS_FILE: 1 << 30,
    ENTRIES_FILE: 1 << 40,
    RESULT_FILE: 64 << 20,
}
_CHUNK: Final[int] = 1 << 20
_ALLOWED: Final[frozenset[str]] = frozenset(RECORD_FILES + EXTRA_FILES)


class OpenedRecord:
    """A record directory: the one given, or the private copy unpacked from an archive (removed on
    :meth:`close`, or when the object is collected)."""

    def __init__(self, directory: Path, *, origin: Path, temporary: Path | None = None) -> None:
        self.directory = directory
        self.origin = origin
        self._cleanup = (
            weakref.finalize(self, shutil.rmtree, temporary, ignore_errors=True) if temporary else None
        )

    @property
    def unpacked(self) -> bool:
        """Whether the directory is a temporary copy unpacked from an archive."""
        return self._cleanup is not None

    def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> OpenedRecord:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _member_name(name: str, archive: Path) -> tuple[str, ...]:
    parts = tuple(name.removesuffix("/").split("/"))
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or PurePosixPath(name).is_absolute()
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise InvalidEncoding(f"unsafe path in record archive {archive.name}: {name!r}")
    return parts


class _Layout:
    """Rule 3: the record's files, at the top level or in one directory, each once."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.top: str | None = None
        self.files: set[str] = set()
        self.count = 0

    def member(self, name: str, *, is_dir: bool) -> tuple[str, ...]:
        """The member's path parts; raise unless the layout allows it (``()`` for the archive's root)."""
        self.count += 1
        if self.count > MAX_MEMBERS:
            raise InvalidEncoding(f"record archive {self.archive.name} has more than {MAX_MEMBERS} members")
        if is_dir and name in (".", "./"):  # ``tar -C record .`` names the root
            return ()
        parts = _member_name(name.removeprefix("./"), self.archive)
        if is_dir:
            if len(parts) != 1:
                raise InvalidEncoding(f"unexpected directory {name!r} in record archive {self.archive.name}")
            return parts
        top, base = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[-1])
        if len(parts) > 2 or base not in _ALLOWED or base in self.files or (self.files and top != self.top):
            raise InvalidEncoding(f"unexpected member {name!r} in record archive {self.archive.name}")
        self.top = top
        self.files.add(base)
        return parts


def _copy(src: IO[bytes], dst: Path, name: str, archive: Path) -> None:
    limit, written = MAX_FILE_BYTES[name], 0
    with dst.open("xb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > limit:
                raise InvalidEncoding(f"{name} in record archive {archive.name} exceeds {limit} bytes")
            out.write(chunk)


def _unpack_tar(archive: Path, tmp: Path) -> _Layout:
    layout = _Layout(archive)
    with tarfile.open(archive, "r:*") as tar:
        for m in tar:
            if not (m.isdir() or (m.isreg() and m.type != tarfile.GNUTYPE_SPARSE)):
                raise InvalidEncoding(f"record archive member {m.name!r} is not a regular file or directory")
            parts = layout.member(m.name, is_dir=m.isdir())
            if m.isdir():
                continue
            if len(parts) == 2:
                (tmp / parts[0]).mkdir(exist_ok=True)
            src = tar.extractfile(m)
            assert src is not None  # a regular file
            _copy(src, tmp.joinpath(*parts), parts[-1], archive)
    return layout


def _unpack_zip(archive: Path, tmp: Path) -> _Layout:
    layout = _Layout(archive)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR) or info.flag_bits & 0x1:
                raise InvalidEncoding(
                    f"record archive member {info.filename!r} is not a regular file or directory"
                )
            parts = layout.member(info.filename, is_dir=info.is_dir())
            if info.is_dir():
                continue
            if len(parts) == 2:
                (tmp / parts[0]).mkdir(exist_ok=True)
            with zf.open(info) as src:
                _copy(src, tmp.joinpath(*parts), parts[-1], archive)
    return layout


def open_record(path: str | Path) -> OpenedRecord:
    """Open a record directory or archive (the rules above); raise :class:`InvalidEncoding`."""
    p = Path(path)
    if p.is_dir():
        missing = [nm for nm in sorted(RECORD_FILES) if not (p / nm).is_file()]
        if missing:
            raise InvalidEncoding(f"record directory lacks {', '.join(missing)}")
        return OpenedRecord(p, origin=p)
    if not p.is_file():
        raise InvalidEncoding(f"no record at {p}")
    tmp = Path(tempfile.mkdtemp(prefix="tvote-record-"))
    opened = OpenedRecord(tmp, origin=p, temporary=tmp)  # removes tmp whatever happens below
    try:
        if tarfile.is_tarfile(p):
            layout = _unpack_tar(p, tmp)
        elif zipfile.is_zipfile(p):
            layout = _unpack_zip(p, tmp)
        else:
            raise InvalidEncoding(f"{p.name} is not a record directory, tar or zip archive")
        missing = [nm for nm in sorted(RECORD_FILES) if nm not in layout.files]
        if missing:
            raise InvalidEncoding(f"record archive {p.name} lacks {', '.join(missing)}")
    except InvalidEncoding:
        opened.close()
        raise
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, RuntimeError, ValueError) as e:
        opened.close()
        raise InvalidEncoding(f"not a readable record archive: {e}") from None
    opened.directory = tmp / layout.top if layout.top is not None else tmp
    return opened


@dataclass(frozen=True, slots=True)
class Record:
    """A parsed record: header, checkpoints, and the entry lines (read lazily, from disk)."""

    header: RecordHeader
    checkpoints: tuple[CheckpointRecord, ...]
    _entries: Path | bytes = field(repr=False)
    _opened: OpenedRecord | None = field(default=None, repr=False, compare=False)

    def entry_lines(self) -> Iterator[bytes]:
        """Each entry's canonical bytes followed by ``\\n``, in order (streamed: one line at a time)."""
        if isinstance(self._entries, Path):
            try:
                src = self._entries.open("rb")
            except OSError as e:
                raise RecordError("record-format", f"cannot read {ENTRIES_FILE}: {e.strerror}") from None
            with src:
                yield from _lines(src)
        else:
            yield from _lines(io.BytesIO(self._entries))

    def entries(self) -> Iterator[Entry]:
        for i, line in enumerate(self.entry_lines()):
            try:
                yield Entry.from_bytes(line.removesuffix(b"\n"))
            except InvalidEncoding as e:
                raise RecordError("entry-format", str(e), index=i) from e


def _lines(src: IO[bytes]) -> Iterator[bytes]:
    while True:
        line = src.readline(READ_LIMIT)
        if not line:
            return
        yield line


def _read(path: Path, limit: int) -> bytes:
    buf = bytearray()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            buf += chunk
            if len(buf) > limit:
                raise InvalidEncoding(f"{path.name} too large")
    return bytes(buf)


def read_record(path: str | Path) -> Record:
    """Open a record directory or archive (:func:`open_record`); parse record.json and checkpoints.jsonl.

    An archive's unpacked copy lives as long as the returned :class:`Record`."""
    opened = open_record(path)
    d = opened.directory
    try:
        header = parse_header(_read(d / RECORD_FILE, MAX_HEADER_BYTES))
        checkpoints = parse_checkpoints(_read(d / CHECKPOINTS_FILE, MAX_FILE_BYTES[CHECKPOINTS_FILE]))
    except OSError as e:
        opened.close()
        raise InvalidEncoding(f"cannot read the record: {e.strerror}") from None
    except InvalidEncoding:
        opened.close()
        raise
    return Record(header, checkpoints, d / ENTRIES_FILE, opened if opened.unpacked else None)
