"""HAZMAT: the raw layers under tvote's recipes — group, transcript hashing, ElGamal, proofs, threshold math.

These are easy to misuse: no value here checks that a proof is bound to the right election, that
randomness is fresh, or that a decryption is authorised. Use the recipes exported by :mod:`crypto`
(ballot encryption and verification, trustee key generation and decryption) unless you are writing a
new protocol step together with its proof and its specification in ``docs/protocol.md``.
"""

from __future__ import annotations

from ._elgamal import Ciphertext, encrypt, sum_ciphertexts
from ._group import G, IDENTITY, L, Point, Scalar, small_multiple
from ._hash import PROTOCOL_VERSION, challenge, encode_transcript, tagged_sha256

__all__ = [
    "G",
    "IDENTITY",
    "L",
    "PROTOCOL_VERSION",
    "Ciphertext",
    "Point",
    "Scalar",
    "challenge",
    "encode_transcript",
    "encrypt",
    "small_multiple",
    "sum_ciphertexts",
    "tagged_sha256",
]
