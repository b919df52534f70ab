"""TEST REFERENCE ONLY: a slow, obviously correct ristretto255 (RFC 9496) in plain Python integers.

Do not use this module in production code. It exists so the test-suite can cross-check the libsodium
fast path in :mod:`crypto._group` and :mod:`crypto._elgamal` against the RFC's formulas (see
``tests/crypto/test_group.py``). It is deliberately naive:

* edwards25519 points are affine pairs ``(x, y)`` over GF(p), ``p = 2^255 - 19``; addition is the
  complete twisted Edwards law for ``a = -1``::

      x3 = (x1*y2 + y1*x2) / (1 + d*x1*x2*y1*y2)
      y3 = (y1*y2 + x1*x2) / (1 - d*x1*x2*y1*y2)

* scalar multiplication is left-to-right double-and-add (variable time: never use it on secrets);
* :func:`decode` is RFC 9496 §4.3.1 step by step (reject ``s >= p`` and negative ``s``, then the square
  root, the sign of ``t`` and ``y = 0``); :func:`encode` is §4.3.2; :func:`equal` is §4.3.3. A ristretto255
  element is represented by any edwards25519 point of its class: two points of one class differ by a
  point of the 4-torsion, and encode to the same 32 bytes.

It is independent of libsodium on purpose: nothing here imports PyNaCl or pysodium.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BASE",
    "IDENTITY",
    "D",
    "L",
    "P",
    "RefPoint",
    "RefRejected",
    "add",
    "decode",
    "elgamal_encrypt",
    "encode",
    "equal",
    "is_on_curve",
    "mul",
    "neg",
    "scalar_decode",
    "sub",
    "torsion4",
    "validate",
]

P: Final[int] = 2**255 - 19
L: Final[int] = 2**252 + 27742317777372353535851937790883648493
D: Final[int] = (-121665 * pow(121666, -1, P)) % P
_SQRT_M1: Final[int] = pow(2, (P - 1) // 4, P)

RefPoint = tuple[int, int]

IDENTITY: Final[RefPoint] = (0, 1)
_BASE_Y: Final[int] = (4 * pow(5, -1, P)) % P


class RefRejected(ValueError):
    """The reference rejects an encoding (the message says which RFC 9496 rule)."""


def is_on_curve(pt: RefPoint) -> bool:
    x, y = pt
    return (-x * x + y * y - 1 - D * x * x * y * y) % P == 0


def add(p1: RefPoint, p2: RefPoint) -> RefPoint:
    x1, y1 = p1
    x2, y2 = p2
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + y1 * x2) * pow(1 + t, -1, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, -1, P) % P
    return (x3, y3)


def neg(pt: RefPoint) -> RefPoint:
    return ((-pt[0]) % P, pt[1])


def sub(p1: RefPoint, p2: RefPoint) -> RefPoint:
    return add(p1, neg(p2))


def mul(k: int, pt: RefPoint) -> RefPoint:
    """``k·pt`` by double-and-add for any integer ``k`` (negative means the negated point)."""
    if k < 0:
        return mul(-k, neg(pt))
    acc = IDENTITY
    for bit in bin(k)[2:] if k else "":
        acc = add(acc, acc)
        if bit == "1":
            acc = add(acc, pt)
    return acc


def _is_negative(x: int) -> bool:
    """RFC 9496 §4.1: a field element is negative iff the least significant bit of its encoding is 1."""
    return (x % P) & 1 == 1


def _abs(x: int) -> int:
    x %= P
    return P - x if _is_negative(x) else x


def _sqrt_ratio_m1(u: int, v: int) -> tuple[bool, int]:
    """RFC 9496 §4.2 SQRT_RATIO_M1: (was_square, the non-negative square root of u/v or of i·u/v)."""
    u %= P
    v %= P
    r = (u * pow(v, 3, P)) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    check = v * r * r % P
    correct = check == u
    flipped = check == (-u) % P
    flipped_i = check == (-u * _SQRT_M1) % P
    if flipped or flipped_i:
        r = r * _SQRT_M1 % P
    return correct or flipped, _abs(r)


_SQRT_AD_MINUS_ONE: Final[int] = _sqrt_ratio_m1((-D - 1) % P, 1)[1]
_INVSQRT_A_MINUS_D: Final[int] = _sqrt_ratio_m1(1, (-1 - D) % P)[1]


def decode(data: bytes) -> RefPoint:
    """RFC 9496 §4.3.1 decoding to an affine edwards25519 point; raises :class:`RefRejected`."""
    if len(data) != 32:
        raise RefRejected("an element is 32 bytes")
    s = int.from_bytes(data, "little")
    if s >= P:
        raise RefRejected("s >= p (non-canonical field encoding)")
    if _is_negative(s):
        raise RefRejected("s is negative")
    ss = s * s % P
    u1 = (1 - ss) % P
    u2 = (1 + ss) % P
    u2_sqr = u2 * u2 % P
    v = (-(D * u1 * u1) - u2_sqr) % P
    was_square, invsqrt = _sqrt_ratio_m1(1, v * u2_sqr)
    den_x = invsqrt * u2 % P
    den_y = invsqrt * den_x * v % P
    x = _abs(2 * s * den_x)
    y = u1 * den_y % P
    t = x * y % P
    if not was_square:
        raise RefRejected("not a square (no point)")
    if _is_negative(t):
        raise RefRejected("x·y is negative")
    if y == 0:
        raise RefRejected("y = 0")
    return (x, y)


def encode(pt: RefPoint) -> bytes:
    """RFC 9496 §4.3.2 encoding of the class of the affine point ``pt`` (z = 1, t = x·y)."""
    x0, y0 = pt
    z0, t0 = 1, x0 * y0 % P
    u1 = (z0 + y0) * (z0 - y0) % P
    u2 = x0 * y0 % P
    _, invsqrt = _sqrt_ratio_m1(1, u1 * u2 * u2)
    den1 = invsqrt * u1 % P
    den2 = invsqrt * u2 % P
    z_inv = den1 * den2 * t0 % P
    ix0 = x0 * _SQRT_M1 % P
    iy0 = y0 * _SQRT_M1 % P
    enchanted_denominator = den1 * _INVSQRT_A_MINUS_D % P
    rotate = _is_negative(t0 * z_inv)
    x, y = (iy0, ix0) if rotate else (x0, y0)
    den_inv = enchanted_denominator if rotate else den2
    if _is_negative(x * z_inv):
        y = (-y) % P
    s = _abs(den_inv * (z0 - y))
    return s.to_bytes(32, "little")


def equal(p1: RefPoint, p2: RefPoint) -> bool:
    """RFC 9496 §4.3.3: whether two edwards25519 points represent the same ristretto255 element."""
    x1, y1 = p1
    x2, y2 = p2
    return (x1 * y2 - y1 * x2) % P == 0 or (y1 * y2 - x1 * x2) % P == 0


def validate(data: bytes) -> RefPoint:
    """Accept exactly what RFC 9496 decoding accepts (the identity ``00…00`` included)."""
    return decode(data)


def scalar_decode(data: bytes) -> int:
    if len(data) != 32:
        raise RefRejected("a scalar is 32 bytes")
    v = int.from_bytes(data, "little")
    if v >= L:
        raise RefRejected("scalar >= L (non-canonical)")
    return v


def _recover_x(y: int, sign: int) -> int:
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x2 = u * pow(v, -1, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * _SQRT_M1 % P
    if x & 1 != sign:
        x = P - x
    return x


#: RFC 9496 §4.4: the generator is (the class of) the edwards25519 base point.
BASE: Final[RefPoint] = (_recover_x(_BASE_Y, 0), _BASE_Y)


def torsion4() -> list[RefPoint]:
    """The four edwards25519 points of order dividing 4: adding one never changes an encoding."""
    return [(0, 1), (0, P - 1), (_SQRT_M1, 0), (P - _SQRT_M1, 0)]


def elgamal_encrypt(public_key: RefPoint, m: int, r: int) -> tuple[RefPoint, RefPoint]:
    """``(r·G, m·G + r·K)`` with the textbook operations."""
    return mul(r, BASE), add(mul(m, BASE), mul(r, public_key))
