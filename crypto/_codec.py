"""Strict decoding helpers shared by every ``from_dict``/``from_hex`` in :mod:`crypto` (private).

One definition of "lowercase hex of exactly n bytes" and of "an object with exactly these keys", so
that every decoder of outside data refuses the same things the same way (:class:`InvalidEncoding`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from ._errors import InvalidEncoding

__all__ = ["exact_keys", "fixed_hex"]

_LOWER_HEX: Final[re.Pattern[str]] = re.compile(r"[0-9a-f]*")
_LOWER_HEX_MATCH: Final = _LOWER_HEX.fullmatch


def fixed_hex(text: object, n: int, what: str) -> bytes:
    """Decode exactly ``2·n`` lowercase hex digits (no whitespace, no prefix) to ``n`` bytes."""
    if type(text) is not str or len(text) != 2 * n or not _LOWER_HEX_MATCH(text):
        raise InvalidEncoding(f"a {what} is {2 * n} lowercase hex digits")
    return bytes.fromhex(text)


def exact_keys(d: Any, keys: set[str], what: str) -> Mapping[str, Any]:
    """``d`` itself if it is a JSON object with exactly ``keys``; :class:`InvalidEncoding` otherwise."""
    if not isinstance(d, Mapping) or set(d) != keys:
        raise InvalidEncoding(f"{what} is an object with exactly the keys {sorted(keys)}")
    return d
