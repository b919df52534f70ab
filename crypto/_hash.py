"""Domain-separated, length-prefixed transcript hashing (Fiat–Shamir challenges).

``challenge(purpose, *items)`` is SHA-512 over::

    u32be(len(d)) || d || u32be(len(e_1)) || e_1 || ... || u32be(len(e_n)) || e_n

where ``d = b"tvote/2/" + purpose`` (ASCII) and each ``e_i`` is the encoding of one item:
a :class:`Point` or :class:`Scalar` is its 32 bytes, ``bytes`` are themselves, a ``str`` is its UTF-8,
an ``int`` is 8 bytes unsigned big-endian. The 64-byte digest, read as a little-endian integer, is
reduced mod L (what libsodium's ``crypto_core_ristretto255_scalar_reduce`` computes). Because every
item is length-prefixed and the purpose names the statement's layout, two different statements never
share a transcript.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final, TypeAlias

from ._group import L, Point, Scalar

__all__ = [
    "PROTOCOL_VERSION",
    "TranscriptItem",
    "challenge",
    "challenge_value",
    "encode_items",
    "encode_transcript",
    "tagged_sha256",
]

PROTOCOL_VERSION: Final[str] = "2"
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


_LEN32: Final[bytes] = (32).to_bytes(4, "big")
_LEN8: Final[bytes] = (8).to_bytes(4, "big")


def encode_transcript(purpose: str, items: Iterable[TranscriptItem]) -> bytes:
    """The exact bytes hashed for ``purpose`` and ``items`` (exposed for known-answer vectors)."""
    d = _PREFIX + purpose.encode("ascii")
    parts = [len(d).to_bytes(4, "big"), d]
    _append_items(parts, items)
    return b"".join(parts)


def encode_items(items: Iterable[TranscriptItem]) -> bytes:
    """The encoding of ``items`` alone, without the purpose: a transcript is its purpose's encoding followed
    by its items' (so ``encode_transcript(p, xs + ys) == encode_transcript(p, xs) + encode_items(ys)``),
    which lets a prover encode the parts of a statement it repeats once."""
    parts: list[bytes] = []
    _append_items(parts, items)
    return b"".join(parts)


def _append_items(parts: list[bytes], items: Iterable[TranscriptItem]) -> None:
    append = parts.append
    for x in items:
        t = type(x)
        if t is Point or t is Scalar:  # the common case (points, scalars: always 32 bytes)
            append(_LEN32)
            append(x.to_bytes())  # type: ignore[union-attr]
        elif type(x) is int and 0 <= x < 2**64:  # a u64 (counts, allowed values)
            append(_LEN8)
            append(x.to_bytes(8, "big"))
        elif type(x) is bytes:  # hashes, nonces
            append(len(x).to_bytes(4, "big"))
            append(x)
        elif type(x) is str:  # labels, ids
            e = x.encode("utf-8")
            append(len(e).to_bytes(4, "big"))
            append(e)
        else:
            e = _encode_item(x)
            append(len(e).to_bytes(4, "big"))
            append(e)


def challenge(purpose: str, *items: TranscriptItem) -> Scalar:
    """SHA-512 of the domain-separated transcript, reduced mod L."""
    digest = hashlib.sha512(encode_transcript(purpose, items)).digest()
    return Scalar._reduced(int.from_bytes(digest, "little"))


def challenge_value(transcript: bytes) -> int:
    """The value of :func:`challenge` for a transcript already encoded (by :func:`encode_transcript` and
    :func:`encode_items`): SHA-512, read little-endian, reduced mod L."""
    return int.from_bytes(hashlib.sha512(transcript).digest(), "little") % L


def tagged_sha256(purpose: str, *items: TranscriptItem) -> bytes:
    """SHA-256 over the same transcript encoding (base hashes, ballot hashes, aliases)."""
    return hashlib.sha256(encode_transcript(purpose, items)).digest()
