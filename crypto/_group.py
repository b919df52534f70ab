"""HAZMAT: scalars mod L and elements of ristretto255 (RFC 9496), a group of prime order L.

This is the raw group layer. It is easy to misuse (no domain separation, no proofs): use the recipes in
:mod:`crypto` (ballots, trustees) unless you are writing a new protocol step and its proof.

* :class:`Scalar`: an integer in ``[0, L)``. Encoded as 32 bytes little-endian; decoding rejects
  non-canonical values (>= L) and wrong lengths.
* :class:`Point`: an element of ristretto255, encoded as its 32-byte canonical encoding (RFC 9496 §4.3.2).
  Decoding accepts exactly the encodings RFC 9496 §4.3.1 decodes: libsodium's
  ``crypto_core_ristretto255_is_valid_point`` plus the rule ``s < 2^255`` (the top bit clear), which
  libsodium 1.0.18 does not enforce. Every group element has exactly one encoding, so equal elements have
  equal bytes. The identity ``00…00`` is a valid element: the protocol refuses it by name
  where it must (the election key, a ballot's pad), never silently.

ristretto255 has prime order: there is no cofactor, no torsion and no second encoding of any element, so
none of the small-order or mixed-order rules of an edwards25519 protocol apply.

All group arithmetic is libsodium's (system library, through :mod:`crypto._sodium`); scalar arithmetic mod
L uses Python integers. libsodium's scalar multiplication refuses a result equal to the identity; a zero
scalar and the identity point are special-cased here, explicitly (in a prime-order group ``k·P = O`` only
when ``k = 0`` or ``P = O``).
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from typing import Final, Protocol

from . import _sodium as _na
from ._codec import fixed_hex
from ._errors import InvalidEncoding

__all__ = ["IDENTITY", "G", "L", "Point", "RandomSource", "Scalar", "small_multiple"]

#: Order of ristretto255 (the prime order of the edwards25519 subgroup it is built on).
L: Final[int] = 2**252 + 27742317777372353535851937790883648493

_IDENTITY_BYTES: Final[bytes] = bytes(32)
#: RFC 9496 §4.4 generator.
_BASE_BYTES: Final[bytes] = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76")

_add = _na.add
_sub = _na.sub
_valid = _na.is_valid_point
_mul = _na.mul
_mul_base = _na.mul_base


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
        _set_scalar_v(self, v)
        _set_scalar_b(self, v.to_bytes(32, "little"))

    @classmethod
    def _reduced(cls, value: int) -> Scalar:
        """``Scalar(value)`` for an ``int`` the caller already has (internal fast path: no type check)."""
        s = object.__new__(cls)
        v = value % L
        _set_scalar_v(s, v)
        _set_scalar_b(s, v.to_bytes(32, "little"))
        return s

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
        data = fixed_hex(text, 32, "scalar")
        v = int.from_bytes(data, "little")
        if v >= L:
            raise InvalidEncoding("non-canonical scalar (not less than L)")
        s = object.__new__(cls)  # the decoding hot path: the canonical bytes are the ones decoded
        _set_scalar_v(s, v)
        _set_scalar_b(s, data)
        return s

    @classmethod
    def random(cls, rng: RandomSource | None = None) -> Scalar:
        """A uniformly random scalar (64 random bytes, little-endian, reduced mod L).

        ``rng`` is for tests and known-answer vectors only; it must return exactly 64 bytes.
        """
        raw = rng.randbytes(64) if rng is not None else secrets.token_bytes(64)
        if not isinstance(raw, bytes) or len(raw) != 64:
            raise ValueError("the random source must return exactly the requested number of bytes")
        return cls._reduced(int.from_bytes(raw, "little"))

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
        return Scalar._reduced(self._v + _sv(other))

    __radd__ = __add__

    def __sub__(self, other: Scalar | int) -> Scalar:
        return Scalar._reduced(self._v - _sv(other))

    def __rsub__(self, other: Scalar | int) -> Scalar:
        return Scalar._reduced(_sv(other) - self._v)

    def __neg__(self) -> Scalar:
        return Scalar._reduced(-self._v)

    def __mul__(self, other: Scalar | int) -> Scalar:
        if isinstance(other, Point):  # pragma: no cover - dispatched to Point.__rmul__
            return NotImplemented
        return Scalar._reduced(self._v * _sv(other))

    def __rmul__(self, other: Scalar | int) -> Scalar:
        return Scalar._reduced(self._v * _sv(other))

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
    """An element of ristretto255 (identity included). Immutable."""

    __slots__ = ("_b",)
    _b: bytes

    def __init__(self, data: bytes) -> None:
        """Validate and wrap a 32-byte encoding; raise :class:`InvalidEncoding` if it is not one."""
        if type(data) is not bytes:
            if not isinstance(data, bytes | bytearray):
                raise InvalidEncoding("a point is exactly 32 bytes")
            data = bytes(data)
        if len(data) != 32:
            raise InvalidEncoding("a point is exactly 32 bytes")
        # libsodium 1.0.18 ignores the top bit of s (it accepts s + 2^255 for every valid s): RFC 9496
        # §4.3.1 requires s < p, so a set top bit is refused here, before libsodium sees the bytes.
        if data[31] & 0x80 or not _valid(data):
            raise InvalidEncoding("not the canonical encoding of a ristretto255 element (RFC 9496)")
        _set_point_b(self, data)

    @classmethod
    def _trusted(cls, data: bytes) -> Point:
        """Wrap bytes libsodium just produced from valid inputs (no re-validation)."""
        p = object.__new__(cls)
        _set_point_b(p, data)
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


# The slots' own setters: what ``object.__setattr__`` ends up calling, without its attribute lookup (the
# internal constructors above make dozens of values per ballot).
_set_point_b: Final = Point.__dict__["_b"].__set__
_set_scalar_v: Final = Scalar.__dict__["_v"].__set__
_set_scalar_b: Final = Scalar.__dict__["_b"].__set__


def _sv(x: Scalar | int) -> int:
    if type(x) is Scalar:
        return x._v
    if isinstance(x, int) and not isinstance(x, bool):
        return x
    raise TypeError("scalar arithmetic takes Scalar or int")


def _mul_bytes(s: Scalar, p: bytes) -> bytes:
    if not s._v or p == _IDENTITY_BYTES:
        return _IDENTITY_BYTES
    if p == _BASE_BYTES:
        return _mul_base(s._b)
    return _mul(s._b, p)


def _mul_value_pair(v: int, p: bytes) -> tuple[bytes, bytes]:
    """``(v·G, v·p)`` for ``v`` in ``[0, L)`` (a prover's own draws and sums, kept as ints until a proof's
    output) by :func:`_mul_bytes`'s rules and calls, the scalar encoded once (a ciphertext's
    ``(r·G, r·K)``, a proof branch's ``(u·G, u·K)`` or ``(w·G, w·K)``)."""
    if not v:
        return _IDENTITY_BYTES, _IDENTITY_BYTES
    vb = v.to_bytes(32, "little")
    vg = _mul_base(vb)
    if p == _IDENTITY_BYTES:
        return vg, _IDENTITY_BYTES
    return vg, (_mul_base(vb) if p == _BASE_BYTES else _mul(vb, p))


def _mul_value_pair_minus(v: int, p: bytes, d: int) -> tuple[bytes, bytes]:
    """``(v·G, v·p − d·G)`` for ``v``, ``d`` in ``[0, L)``, by :func:`_mul_bytes`'s rules and calls, in
    one frame (a simulated proof branch's commitments, ``d = c_j·(m − j)``)."""
    if v and p != _IDENTITY_BYTES:
        vb = v.to_bytes(32, "little")
        vg = _mul_base(vb)
        vp = _mul_base(vb) if p == _BASE_BYTES else _mul(vb, p)
    else:
        vg, vp = _mul_value_pair(v, p)
    return vg, _sub(vp, _mul_base(d.to_bytes(32, "little")) if d else _IDENTITY_BYTES)


def diff_of_products(s1: Scalar, p1: Point, s2: Scalar, p2: Point) -> bytes:
    """The encoding of ``s1·p1 − s2·p2``: the same libsodium calls as the operators make, without the
    intermediate :class:`Point` objects (the verification hot path compares it with published bytes)."""
    return _sub(_mul_bytes(s1, p1._b), _mul_bytes(s2, p2._b))


G: Final[Point] = Point(_BASE_BYTES)
IDENTITY: Final[Point] = Point(_IDENTITY_BYTES)


@lru_cache(maxsize=4096)
def small_multiple(k: int) -> Point:
    """``k·G`` for a small non-negative integer (plaintexts, allowed sums); cached."""
    if k < 0:
        raise ValueError("small_multiple takes k >= 0")
    return Scalar(k) * G
