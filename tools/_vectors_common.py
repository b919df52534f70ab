"""Shared by the known-answer vector generators: the portable random stream and typed transcript items.

Both are specified in docs/protocol.md, Appendix A, so that another implementation (the browser booth on
@noble/curves) can regenerate every vector, including every random draw, byte for byte.
"""

from __future__ import annotations

import hashlib

from crypto.hazmat import Point, Scalar, TranscriptItem

__all__ = ["Recorder", "ShakeStream", "item_from_json", "item_to_json"]


class ShakeStream:
    """The deterministic byte stream ``SHAKE-256(seed || "/" || label)``, read front to back: each
    ``randbytes(n)`` returns the next ``n`` bytes. A random scalar is a 64-byte read, little-endian, mod L
    (``Scalar.random``); a non-zero one redraws while zero. Tests and vectors only, never production."""

    def __init__(self, seed: bytes, label: str) -> None:
        self._input = seed + b"/" + label.encode()
        self._pos = 0

    def randbytes(self, n: int, /) -> bytes:
        out = hashlib.shake_256(self._input).digest(self._pos + n)[self._pos :]
        self._pos += n
        return out


class Recorder:
    """Passes a stream through and keeps the scalar made of each 64-byte read (to publish the nonces)."""

    def __init__(self, inner: ShakeStream) -> None:
        self.inner = inner
        self.scalars: list[Scalar] = []

    def randbytes(self, n: int, /) -> bytes:
        b = self.inner.randbytes(n)
        if n == 64:
            self.scalars.append(Scalar(int.from_bytes(b, "little")))
        return b


def item_to_json(x: TranscriptItem) -> dict[str, str]:
    """One typed transcript item: ``{"type": "point"|"scalar"|"bytes"|"str"|"u64", "value": ...}``; a u64
    is a decimal string (JavaScript numbers are exact only below 2^53)."""
    if isinstance(x, Point):
        return {"type": "point", "value": x.hex()}
    if isinstance(x, Scalar):
        return {"type": "scalar", "value": x.hex()}
    if isinstance(x, bytes):
        return {"type": "bytes", "value": x.hex()}
    if isinstance(x, str):
        return {"type": "str", "value": x}
    if isinstance(x, int) and not isinstance(x, bool):
        return {"type": "u64", "value": str(x)}
    raise TypeError(f"not a transcript item: {type(x).__name__}")


def item_from_json(d: dict[str, str]) -> TranscriptItem:
    t, v = d["type"], d["value"]
    if t == "point":
        return Point.from_hex(v)
    if t == "scalar":
        return Scalar.from_hex(v)
    if t == "bytes":
        return bytes.fromhex(v)
    if t == "str":
        return v
    if t == "u64":
        return int(v)
    raise ValueError(f"unknown transcript item type {t}")
