"""HAZMAT: scalars mod L and elements of the prime-order subgroup of edwards25519.

This is the raw group layer. It is easy to misuse (no domain separation, no proofs): use the recipes in
:mod:`crypto` (ballots, trustees) unless you are writing a new protocol step and its proof.

* :class:`Scalar`: an integer in ``[0, L)``. Encoded as 32 bytes little-endian; decoding rejects
  non-canonical values (>= L) and wrong lengths.
* :class:`Point`: an element of the order-L subgroup. Encoded as the 32-byte RFC 8032 compression.
  Decoding accepts exactly the canonical encodings of subgroup elements: ``libsodium``'s
  ``crypto_core_ed25519_is_valid_point`` (canonical, on curve, in the main subgroup, not of small order),
  plus the one canonical encoding of the identity ``01 00..00``, which libsodium refuses but which is a
  legitimate protocol value (a tally of zero votes decrypts to it). The seven other small-order points
  and every non-canonical encoding of the identity are rejected.

All group arithmetic is done by libsodium through PyNaCl; scalar arithmetic mod L uses Python integers.
Operations that libsodium refuses on the identity or the zero scalar are special-cased here, explicitly.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from typing import Final, Protocol

from nacl import bindings as _na

from ._codec import fixed_hex
from ._errors import InvalidEncoding

__all__ = ["IDENTITY", "G", "L", "Point", "RandomSource", "Scalar", "small_multiple"]

#: Order of the prime-order subgroup of edwards25519.
L: Final[int] = 2**252 + 27742317777372353535851937790883648493

_IDENTITY_BYTES: Final[bytes] = b"\x01" + bytes(31)
_BASE_BYTES: Final[bytes] = bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666")

_add = _na.crypto_core_ed25519_add
_sub = _na.crypto_core_ed25519_sub
_valid = _na.crypto_core_ed25519_is_valid_point
_mul = _na.crypto_scalarmult_ed25519_noclamp
_mul_base = _na.crypto_scalarmult_ed25519_base_noclamp


class RandomSource(Protocol):
    """A source of random bytes. Production code passes ``None`` (the OS CSPRNG is used);
    tests and known-answer vectors inject a deterministic source (``random.Random`` fits)."""

    def randbytes(self, n: int, /) -> bytes: ...  # pragma: no cover - protocol


class Scalar:
    """An integer modulo L. Immutable; arithmetic with other scalars and ints (reduced mod L)."""

    __slots__ = ("_b", "_v")
    _v: int
    _b: bytes

    def __init__(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError("Scalar takes an int")
        v = value % L
        object.__setattr__(self, "_v", v)
        object.__setattr__(self, "_b", v.to_bytes(32, "little"))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Scalar is immutable")

    @classmethod
    def from_bytes(cls, data: bytes) -> Scalar:
        """Decode a canonical 32-byte little-endian scalar; raise :class:`InvalidEncoding` otherwise."""
        if not isinstance(data, bytes | bytearray) or len(data) != 32:
            raise InvalidEncoding("a scalar is exactly 32 bytes")
        v = int.from_bytes(data, "little")
        if v >= L:
            raise InvalidEncoding("non-canonical scalar (not less than L)")
        return cls(v)

    @classmethod
    def from_hex(cls, text: str) -> Scalar:
        return cls.from_bytes(fixed_hex(text, 32, "scalar"))

    @classmethod
    def random(cls, rng: RandomSource | None = None) -> Scalar:
        """A uniformly random scalar (64 random bytes, little-endian, reduced mod L).

        ``rng`` is for tests and known-answer vectors only; it must return exactly 64 bytes.
        """
        raw = rng.randbytes(64) if rng is not None else secrets.token_bytes(64)
        if not isinstance(raw, bytes) or len(raw) != 64:
            raise ValueError("the random source must return exactly the requested number of bytes")
        return cls(int.from_bytes(raw, "little"))

    @classmethod
    def random_nonzero(cls, rng: RandomSource | None = None) -> Scalar:
        """:meth:`random`, redrawn while zero (a nonce or coefficient must never be zero)."""
        while True:
            s = cls.random(rng)
            if s._v:
                return s

    @property
    def value(self) -> int:
        return self._v

    def to_bytes(self) -> bytes:
        return self._b

    def hex(self) -> str:
        return self._b.hex()

    def inverse(self) -> Scalar:
        if not self._v:
            raise ZeroDivisionError("zero scalar has no inverse")
        return Scalar(pow(self._v, -1, L))

    def __int__(self) -> int:
        return self._v

    def __add__(self, other: Scalar | int) -> Scalar:
        return Scalar(self._v + _sv(other))

    __radd__ = __add__

    def __sub__(self, other: Scalar | int) -> Scalar:
        return Scalar(self._v - _sv(other))

    def __rsub__(self, other: Scalar | int) -> Scalar:
        return Scalar(_sv(other) - self._v)

    def __neg__(self) -> Scalar:
        return Scalar(-self._v)

    def __mul__(self, other: Scalar | int) -> Scalar:
        if isinstance(other, Point):  # pragma: no cover - dispatched to Point.__rmul__
            return NotImplemented
        return Scalar(self._v * _sv(other))

    def __rmul__(self, other: Scalar | int) -> Scalar:
        return Scalar(self._v * _sv(other))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scalar) and other._v == self._v

    def __hash__(self) -> int:
        return hash(("Scalar", self._v))

    def __bool__(self) -> bool:
        return self._v != 0

    def __repr__(self) -> str:
        return f"Scalar({self._b.hex()})"

    def __reduce__(self) -> tuple[type[Scalar], tuple[int]]:
        return (Scalar, (self._v,))


class Point:
    """An element of the prime-order subgroup of edwards25519 (identity included). Immutable."""

    __slots__ = ("_b",)
    _b: bytes

    def __init__(self, data: bytes) -> None:
        """Validate and wrap a 32-byte encoding; raise :class:`InvalidEncoding` if it is not one."""
        if not isinstance(data, bytes | bytearray) or len(data) != 32:
            raise InvalidEncoding("a point is exactly 32 bytes")
        data = bytes(data)
        if data != _IDENTITY_BYTES and not _valid(data):
            raise InvalidEncoding(
                "not a canonical encoding of an element of the prime-order subgroup of edwards25519"
            )
        object.__setattr__(self, "_b", data)

    @classmethod
    def _trusted(cls, data: bytes) -> Point:
        """Wrap bytes libsodium just produced from valid inputs (no re-validation)."""
        p = object.__new__(cls)
        object.__setattr__(p, "_b", data)
        return p

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Point is immutable")

    @classmethod
    def from_bytes(cls, data: bytes) -> Point:
        return cls(data)

    @classmethod
    def from_hex(cls, text: str) -> Point:
        return cls(fixed_hex(text, 32, "point"))

    @property
    def is_identity(self) -> bool:
        return self._b == _IDENTITY_BYTES

    def to_bytes(self) -> bytes:
        return self._b

    def hex(self) -> str:
        return self._b.hex()

    def __add__(self, other: Point) -> Point:
        if not isinstance(other, Point):
            return NotImplemented
        return Point._trusted(_add(self._b, other._b))

    def __sub__(self, other: Point) -> Point:
        if not isinstance(other, Point):
            return NotImplemented
        return Point._trusted(_sub(self._b, other._b))

    def __neg__(self) -> Point:
        return Point._trusted(_sub(_IDENTITY_BYTES, self._b))

    def __rmul__(self, scalar: Scalar) -> Point:
        if not isinstance(scalar, Scalar):
            return NotImplemented
        if not scalar._v or self._b == _IDENTITY_BYTES:
            return IDENTITY
        if self._b == _BASE_BYTES:
            return Point._trusted(_mul_base(scalar._b))
        return Point._trusted(_mul(scalar._b, self._b))

    def __mul__(self, scalar: Scalar) -> Point:
        return self.__rmul__(scalar)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and other._b == self._b

    def __hash__(self) -> int:
        return hash(("Point", self._b))

    def __repr__(self) -> str:
        return f"Point({self._b.hex()})"

    def __reduce__(self) -> tuple[type[Point], tuple[bytes]]:
        return (Point, (self._b,))


def _sv(x: Scalar | int) -> int:
    if isinstance(x, Scalar):
        return x._v
    if isinstance(x, int) and not isinstance(x, bool):
        return x
    raise TypeError("scalar arithmetic takes Scalar or int")


G: Final[Point] = Point(_BASE_BYTES)
IDENTITY: Final[Point] = Point(_IDENTITY_BYTES)


@lru_cache(maxsize=4096)
def small_multiple(k: int) -> Point:
    """``k·G`` for a small non-negative integer (plaintexts, allowed sums); cached."""
    if k < 0:
        raise ValueError("small_multiple takes k >= 0")
    return Scalar(k) * G
