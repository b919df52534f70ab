"""HAZMAT: exponential ElGamal over the edwards25519 prime-order subgroup.

``Enc_K(m; r) = (A, B) = (r·G, m·G + r·K)``. Ciphertexts add component-wise, plaintexts add in the
exponent. Decryption with the secret key ``s`` (``K = s·G``) yields the point ``M = B - s·A = m·G``;
:func:`crypto._dlog.discrete_log` turns it back into the small integer ``m``. Randomness must be fresh
and secret per ciphertext; reusing it reveals plaintext differences.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from . import _group
from ._codec import exact_keys
from ._group import IDENTITY, G, Point, Scalar, small_multiple

__all__ = ["Ciphertext", "encrypt", "sum_ciphertexts"]


@dataclass(frozen=True, slots=True)
class Ciphertext:
    """An ElGamal ciphertext ``(a, b)``; ``a = r·G`` ("pad"), ``b = m·G + r·K`` ("data")."""

    a: Point
    b: Point

    def __post_init__(self) -> None:
        if not isinstance(self.a, Point) or not isinstance(self.b, Point):
            raise TypeError("Ciphertext holds two Points")

    @classmethod
    def _of(cls, a: Point, b: Point) -> Ciphertext:
        """Internal constructor for two Points this package just computed (no type check)."""
        ct = object.__new__(cls)
        _set_a(ct, a)
        _set_b(ct, b)
        return ct

    def __add__(self, other: Ciphertext) -> Ciphertext:
        return Ciphertext._of(self.a + other.a, self.b + other.b)

    def __sub__(self, other: Ciphertext) -> Ciphertext:
        """The homomorphic difference (an encryption of the difference of the two plaintexts)."""
        return Ciphertext._of(self.a - other.a, self.b - other.b)

    def to_dict(self) -> dict[str, str]:
        return {"a": self.a.hex(), "b": self.b.hex()}

    @classmethod
    def from_dict(cls, d: Any) -> Ciphertext:
        d = exact_keys(d, {"a", "b"}, "a ciphertext")
        return cls(Point.from_hex(d["a"]), Point.from_hex(d["b"]))

    def decrypt_point(self, secret: Scalar) -> Point:
        """``b - s·a``: the plaintext as a group element ``m·G`` (single-key decryption)."""
        return self.b - secret * self.a


_set_a: Final = Ciphertext.__dict__["a"].__set__  # the slots' own setters (as crypto._group's)
_set_b: Final = Ciphertext.__dict__["b"].__set__
ZERO = Ciphertext(IDENTITY, IDENTITY)


def encrypt(public_key: Point, m: int, r: Scalar) -> Ciphertext:
    """Encrypt the small non-negative integer ``m`` with randomness ``r`` under ``public_key``."""
    if public_key.is_identity:
        raise ValueError("refusing to encrypt under the identity as public key")
    # no branch on the (secret) plaintext: m = 0 adds the identity, like any other m
    return Ciphertext(r * G, r * public_key + small_multiple(m))


def _encrypt_encoded(kb: bytes, m: int, r: int) -> tuple[bytes, bytes]:
    """:func:`encrypt` on encodings: the key's ``kb`` (the caller has checked it is not the identity) and
    ``r``'s value in ``[0, L)``. The same group operations (through :mod:`crypto._group`'s zero and
    identity rules), without the operators' dispatch and checks (the ballot encryption's hot path)."""
    a, rk = _group._mul_value_pair(r, kb)
    return a, _group._add(rk, small_multiple(m).to_bytes())


def _sum_encoded(cts: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    """:func:`sum_ciphertexts` on encodings (at least one ciphertext): the same additions."""
    it = iter(cts)
    a, b = next(it)
    add = _group._add
    for a2, b2 in it:
        a, b = add(a, a2), add(b, b2)
    return a, b


def sum_ciphertexts(cts: Iterable[Ciphertext]) -> Ciphertext:
    """Homomorphic sum; the empty sum is the encryption of 0 with randomness 0 (identity, identity).

    Starts from the first ciphertext rather than from the identity: one group addition fewer per sum on
    the ballot-verification hot path (libsodium's addition costs as much as decoding two points).
    """
    it = iter(cts)
    acc = next(it, ZERO)
    for c in it:
        acc = acc + c
    return acc
