"""The election's in-process mutation lock: a reader-writer lock (the process half of
:meth:`ServiceCore.appending <voting.service._core.ServiceCore.appending>` and
:meth:`ServiceCore.casting <voting.service._core.ServiceCore.casting>`).

*Exclusive* (every lifecycle step, kiosk command, spoil, evidence export, reconciliation) is re-entrant in
its thread; *shared* (a ballot cast, serialised per voter by the intake's own lock) admits any number of
holders at once but none beside an exclusive holder. A waiting exclusive holder blocks new shared ones, so a
close is never starved by a stream of casts. A thread holding it exclusive may take it shared (a no-op).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ElectionLock"]


class ElectionLock:
    """Reader-writer lock, writer-preferring, re-entrant for the writer."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._depth = 0
        self._waiting = 0

    @property
    def depth(self) -> int:
        """How deeply the calling thread holds it exclusive (0: not at all)."""
        return self._depth if self._writer == threading.get_ident() else 0

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
            else:
                self._waiting += 1
                try:
                    while self._writer is not None or self._readers:
                        self._cond.wait()
                finally:
                    self._waiting -= 1
                self._writer, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._writer = None
                    self._cond.notify_all()

    @contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:  # already exclusive in this thread
                nested = True
            else:
                nested = False
                while self._writer is not None or self._waiting:
                    self._cond.wait()
                self._readers += 1
        try:
            yield
        finally:
            if not nested:
                with self._cond:
                    self._readers -= 1
                    if self._readers == 0:
                        self._cond.notify_all()
