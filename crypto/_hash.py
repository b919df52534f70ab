"""Domain-separated, length-prefixed transcript hashing (Fiat–Shamir challenges).

``challenge(purpose, *items)`` is SHA-512 over::

    u32be(len(d)) || d || u32be(len(e_1)) || e_1 || ... || u32be(len(e_n)) || e_n

where ``d = b"tvote/1/" + purpose`` (ASCII) and each ``e_i`` is the encoding of one item:
a :class:`Point` or :class:`Scalar` is its 32 bytes, ``bytes`` are themselves, a ``str`` is its UTF-8,
an ``int`` is 8 bytes unsigned big-endian. The 64-byte digest is reduced mod L with libsodium's
``crypto_core_ed25519_scalar_reduce``. Because every item is length-prefixed and the purpose names the
statement's layout, two different statements never share a transcript.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final, TypeAlias

from nacl.bindings import crypto_core_ed25519_scalar_reduce

from ._group import Point, Scalar

__all__ = ["PROTOCOL_VERSION", "TranscriptItem", "challenge", "encode_transcript", "tagged_sha256"]

PROTOCOL_VERSION: Final[str] = "1"
_PREFIX: Final[bytes] = b"tvote/" + PROTOCOL_VERSION.encode() + b"/"

TranscriptItem: TypeAlias = Point | Scalar | bytes | str | int


def _encode_item(x: TranscriptItem) -> bytes:
    if isinstance(x, Point | Scalar):
        return x.to_bytes()
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode("utf-8")
    if isinstance(x, int) and not isinstance(x, bool):
        if not 0 <= x < 2**64:
            raise ValueError("transcript integers are unsigned 64-bit")
        return x.to_bytes(8, "big")
    raise TypeError(f"cannot put {type(x).__name__} in a transcript")


def encode_transcript(purpose: str, items: Iterable[TranscriptItem]) -> bytes:
    """The exact bytes hashed for ``purpose`` and ``items`` (exposed for known-answer vectors)."""
    d = _PREFIX + purpose.encode("ascii")
    parts = [len(d).to_bytes(4, "big"), d]
    for x in items:
        e = _encode_item(x)
        parts.append(len(e).to_bytes(4, "big"))
        parts.append(e)
    return b"".join(parts)


def challenge(purpose: str, *items: TranscriptItem) -> Scalar:
    """SHA-512 of the domain-separated transcript, reduced mod L."""
    digest = hashlib.sha512(encode_transcript(purpose, items)).digest()
    return Scalar.from_bytes(crypto_core_ed25519_scalar_reduce(digest))


def tagged_sha256(purpose: str, *items: TranscriptItem) -> bytes:
    """SHA-256 over the same transcript encoding (base hashes, ballot hashes, aliases)."""
    return hashlib.sha256(encode_transcript(purpose, items)).digest()
