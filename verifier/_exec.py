"""Where ballot batches are verified: in this process, in a local process pool, or on a Dask cluster.

All three run the same pure function (:func:`verifier._ballots.verify_batch`) on the same inputs and
yield the results **in submission order**, so a report does not depend on the executor. At most
``max_in_flight`` batches are outstanding: memory stays bounded however long the record is (the
reader blocks on the oldest batch when the window is full).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol

__all__ = ["BatchExecutor", "DaskExecutor", "PoolExecutor", "SerialExecutor", "make_executor"]


class BatchExecutor(Protocol):
    def submit(self, fn: Callable[..., Any], *args: Any) -> Iterator[Any]:
        """Queue one call; yield the results of the calls that had to complete to make room."""
        ...

    def drain(self) -> Iterator[Any]:
        """Yield every outstanding result, oldest first."""
        ...

    def close(self) -> None: ...


class SerialExecutor:
    """Runs each batch immediately in the calling process (``--workers 1``)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Iterator[Any]:
        yield fn(*args)

    def drain(self) -> Iterator[Any]:
        return iter(())

    def close(self) -> None:
        pass


class _Windowed:
    def __init__(self, max_in_flight: int) -> None:
        self._inflight: deque[Any] = deque()
        self._max = max_in_flight

    def _start(self, fn: Callable[..., Any], *args: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _result(fut: Any) -> Any:
        return fut.result()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Iterator[Any]:
        while len(self._inflight) >= self._max:
            yield self._result(self._inflight.popleft())
        self._inflight.append(self._start(fn, *args))

    def drain(self) -> Iterator[Any]:
        while self._inflight:
            yield self._result(self._inflight.popleft())


class PoolExecutor(_Windowed):
    """``--workers N``: a pool of N local processes (``spawn``: no state inherited from the parent)."""

    def __init__(self, workers: int) -> None:
        super().__init__(max_in_flight=2 * workers + 2)
        ctx = multiprocessing.get_context("spawn")
        self._pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)

    def _start(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(_Windowed):
    """``--scheduler ADDRESS``: batches run on a Dask cluster (``dask.distributed``).

    ``client`` may be given directly (tests pass a ``Client`` of a ``LocalCluster``). The large shared
    argument (the election context) is scattered once to every worker and passed by reference.
    """

    def __init__(
        self, address: str | None = None, *, client: Any = None, max_in_flight: int | None = None
    ) -> None:
        from distributed import Client

        self._own = client is None
        self._client = client if client is not None else Client(address)  # type: ignore[no-untyped-call]
        n = max(1, sum(w.get("nthreads", 1) for w in self._client.scheduler_info()["workers"].values()))
        super().__init__(max_in_flight=max_in_flight or 2 * n + 2)
        self._scattered: dict[int, Any] = {}

    def shared(self, value: Any) -> Any:
        """Scatter ``value`` to every worker once; return the future to pass instead of the value."""
        key = id(value)
        if key not in self._scattered:
            self._scattered[key] = (value, self._client.scatter(value, broadcast=True, hash=False))
        return self._scattered[key][1]

    def _start(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._client.submit(fn, *args, pure=False)

    def close(self) -> None:
        self._scattered.clear()
        if self._own:
            self._client.close()


def make_executor(*, workers: int = 1, scheduler: str | None = None, client: Any = None) -> BatchExecutor:
    if client is not None or scheduler:
        return DaskExecutor(scheduler, client=client)
    if workers <= 1:
        return SerialExecutor()
    return PoolExecutor(workers)
