"""HAZMAT: bounded discrete logarithm base ``G`` (tally decoding), by baby-step giant-step.

``discrete_log(M, bound)`` returns the unique ``m`` in ``[0, bound]`` with ``m·G == M`` or raises
:class:`~crypto._errors.DecodingError`. It is variable-time in ``m``: only use it on values that are
public once decoded (decrypted tallies, test plaintexts), never on secrets.

Algorithm (normative description in ``docs/protocol.md``, "Decoding tallies"):

* the baby-step table maps the encodings of ``j·G`` for ``j`` in ``[0, s)`` to ``j``, where the step
  ``s = 2^k`` is the smallest power of two with ``s·s > bound`` (at least 64). Tables are built once
  per ``k`` and cached, so every bound of the same size class shares one table;
* giant steps walk ``M, M - s·G, M - 2s·G, …`` for ``i`` in ``[0, bound // s]`` and look each point
  up in the table; a hit at ``(i, j)`` gives ``m = i·s + j``.

All point arithmetic is libsodium's ``crypto_core_ristretto255_add/sub`` on encodings (the identity
``00…00`` is a legitimate input and output there). For a bound of 10 million the table has 4096
entries and a decode needs at most 2442 point subtractions.
"""

from __future__ import annotations

import threading
from typing import Final

from . import _sodium as _na
from ._errors import DecodingError
from ._group import IDENTITY, G, Point

__all__ = ["MAX_BOUND", "discrete_log"]

#: Largest accepted bound (the table for it has 2^20 entries, about 100 MB of Python objects).
MAX_BOUND: Final[int] = 2**40 - 1
_MIN_LOG_STEP: Final[int] = 6

_add = _na.add
_sub = _na.sub

_lock = threading.Lock()
_tables: dict[int, tuple[dict[bytes, int], bytes]] = {}


def _step_log(bound: int) -> int:
    k = _MIN_LOG_STEP
    while (1 << k) * (1 << k) <= bound:
        k += 1
    return k


def _table(k: int) -> tuple[dict[bytes, int], bytes]:
    """Baby steps ``{enc(j·G): j for j < 2^k}`` and the giant stride ``enc(2^k·G)``; built once."""
    with _lock:
        cached = _tables.get(k)
        if cached is not None:
            return cached
        size = 1 << k
        table: dict[bytes, int] = {}
        cur = IDENTITY.to_bytes()
        g = G.to_bytes()
        for j in range(size):
            table[cur] = j
            cur = _add(cur, g)
        result = (table, cur)  # cur == enc(size·G) after the loop
        _tables[k] = result
        return result


def discrete_log(point: Point, bound: int) -> int:
    """The ``m`` in ``[0, bound]`` with ``m·G == point``; :class:`DecodingError` if there is none."""
    if not isinstance(point, Point):
        raise TypeError("discrete_log takes a Point")
    if not isinstance(bound, int) or isinstance(bound, bool) or not 0 <= bound <= MAX_BOUND:
        raise ValueError(f"bound must be an int in [0, {MAX_BOUND}]")
    if point.is_identity:
        return 0
    k = _step_log(bound)
    table, stride = _table(k)
    cur = point.to_bytes()
    for i in range((bound >> k) + 1):
        j = table.get(cur)
        if j is not None:
            m = (i << k) + j
            if m <= bound:
                return m
            break
        cur = _sub(cur, stride)
    raise DecodingError(f"no m in [0, {bound}] with m·G equal to the given point")
