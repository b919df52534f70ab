"""TEST REFERENCE ONLY: a slow, obviously correct edwards25519 in plain Python integers.

Do not use this module in production code. It exists so the test-suite can cross-check the libsodium
fast path in :mod:`crypto._group` and :mod:`crypto._elgamal` against textbook formulas (see
``tests/test_group.py``). It is deliberately naive:

* points are affine pairs ``(x, y)`` over GF(p), ``p = 2^255 - 19``;
* addition is the complete twisted Edwards law for ``a = -1``::

      x3 = (x1*y2 + y1*x2) / (1 + d*x1*x2*y1*y2)
      y3 = (y1*y2 + x1*x2) / (1 - d*x1*x2*y1*y2)

* scalar multiplication is left-to-right double-and-add (variable time: never use it on secrets);
* decoding follows RFC 8032 section 5.1.3 step by step (reject ``y >= p``, recover ``x`` by the
  square root with exponent ``(p+3)/8``, reject ``x = 0`` with the sign bit set);
* subgroup membership is checked by multiplying by ``L``.

``validate`` mirrors the acceptance rule of :class:`crypto._group.Point`: a canonical encoding of an
element of the order-``L`` subgroup (which includes the identity, and excludes the seven other
small-order points and every mixed-order point).

It is independent of libsodium on purpose: nothing here imports PyNaCl.
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
    "is_on_curve",
    "mul",
    "neg",
    "scalar_decode",
    "sub",
    "torsion_points",
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
    """The reference rejects an encoding (the message says which RFC 8032 / subgroup rule)."""


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


def _recover_x(y: int, sign: int) -> int:
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x2 = u * pow(v, -1, P) % P
    if x2 == 0:
        if sign:
            raise RefRejected("x = 0 with the sign bit set (non-canonical)")
        return 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * _SQRT_M1 % P
    if (x * x - x2) % P != 0:
        raise RefRejected("not on the curve (no square root)")
    if x & 1 != sign:
        x = P - x
    return x


def decode(data: bytes) -> RefPoint:
    """RFC 8032 5.1.3 decoding; raises :class:`RefRejected` on any rule it breaks."""
    if len(data) != 32:
        raise RefRejected("a point is 32 bytes")
    n = int.from_bytes(data, "little")
    sign = n >> 255
    y = n & ((1 << 255) - 1)
    if y >= P:
        raise RefRejected("y >= p (non-canonical)")
    return (_recover_x(y, sign), y)


def encode(pt: RefPoint) -> bytes:
    x, y = pt
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def validate(data: bytes) -> RefPoint:
    """Accept exactly the canonical encodings of the order-L subgroup (identity included)."""
    pt = decode(data)
    if mul(L, pt) != IDENTITY:
        raise RefRejected("not in the prime-order subgroup (small or mixed order)")
    return pt


def scalar_decode(data: bytes) -> int:
    if len(data) != 32:
        raise RefRejected("a scalar is 32 bytes")
    v = int.from_bytes(data, "little")
    if v >= L:
        raise RefRejected("scalar >= L (non-canonical)")
    return v


BASE: Final[RefPoint] = (_recover_x(_BASE_Y, 0), _BASE_Y)


def torsion_points() -> list[RefPoint]:
    """The eight points of order dividing 8 (``k·T`` for a generator ``T`` of the torsion subgroup)."""
    y = 2
    while True:
        try:
            pt = (_recover_x(y, 0), y)
        except RefRejected:
            y += 1
            continue
        t = mul(L, pt)  # kills the prime-order part, keeps the torsion part
        if mul(4, t) != IDENTITY:
            return [mul(k, t) for k in range(8)]
        y += 1


def elgamal_encrypt(public_key: RefPoint, m: int, r: int) -> tuple[RefPoint, RefPoint]:
    """``(r·G, m·G + r·K)`` with the textbook operations."""
    return mul(r, BASE), add(mul(m, BASE), mul(r, public_key))
