"""Atomic, durable file writes: the one helper for keys, state and output files.

A reader of ``path`` sees the old content or the new content, never a torn mix, even after a crash or a
failure half-way through the write::

    1. create a temporary file in the same directory (O_CREAT | O_EXCL | O_NOFOLLOW) with its final
       permission bits before the first byte is written: exactly ``mode`` whatever the umask, or, without
       ``mode``, what ``open(path, "w")`` would give (0o666 less the umask),
    2. write the data and fsync the file,
    3. os.replace it onto ``path`` (or, with ``overwrite=False``, hard-link it there, which fails if
       ``path`` exists, so an existing file is never replaced),
    4. fsync the directory, so that the rename itself survives a crash.

On any failure before step 3 the temporary file is removed and ``path`` is left as it was. A secret
(``mode=0o600``) is never readable by others, not even briefly. Replacing ``path`` replaces a symbolic link
there, never the file it points to.

This lives in ``ledger`` because it is the lowest package that does I/O (``crypto`` is pure) and needs it
itself (the witness's key and state, the record export); ``voting`` and ``verifier`` import it from here.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_writer", "write_atomic"]

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@contextmanager
def atomic_writer(path: str | Path, *, mode: int | None = None, overwrite: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write; on leaving the block it becomes ``path`` atomically and durably.

    ``mode``: the new file's exact permission bits (0o600 for a secret), or ``None`` for 0o666 less the
    umask. If the block raises, ``path`` keeps its old content and the temporary file is removed. With
    ``overwrite=False`` an existing ``path`` raises :class:`FileExistsError` (checked atomically when the
    file is put in place)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    # created with at most ``mode`` (the umask can only take bits away), then set to exactly ``mode``
    fd = os.open(tmp, _CREATE, 0o666 if mode is None else mode)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            yield f
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # FileExistsError if target exists: never replaced
            os.unlink(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def write_atomic(
    path: str | Path, data: bytes | str, *, mode: int | None = None, overwrite: bool = True
) -> None:
    """Write ``data`` (``str`` as UTF-8) to ``path`` atomically and durably (see :func:`atomic_writer`)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_writer(path, mode=mode, overwrite=overwrite) as f:
        f.write(raw)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
