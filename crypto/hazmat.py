"""HAZMAT: the raw layers under tvote's recipes — group (ristretto255), transcript hashing, ElGamal, proofs,
their group equations and the reference batch check, threshold math.

These are easy to misuse: no value here checks that a proof is bound to the right election, that
randomness is fresh, or that a decryption is authorised. Use the recipes exported by :mod:`crypto`
(ballot encryption and verification, trustee key generation and decryption) unless you are writing a
new protocol step together with its proof and its specification in ``docs/protocol.md``.
"""

from __future__ import annotations

from ._ballot_verify import ballot_equations
from ._batch import WEIGHT_BYTES, Equation, check_equation, combined_point, draw_weight, failing_items
from ._decryption import lagrange_coefficient, lagrange_combine
from ._disjunctive import (
    DisjunctiveProof,
    allowed_range,
    canonical_allowed,
    membership_equations,
    prove_membership,
    prove_with_nonces,
    verify_membership,
)
from ._dlog import MAX_BOUND
from ._elgamal import Ciphertext, encrypt, sum_ciphertexts
from ._group import IDENTITY, G, L, Point, Scalar, small_multiple
from ._hash import PROTOCOL_VERSION, TranscriptItem, challenge, encode_transcript, tagged_sha256
from ._joint_key import joint_public_key
from ._native import ChaumPedersenStatement, ProofStatement, SchnorrStatement
from ._proofs import (
    CHAUM_PEDERSEN_PURPOSE,
    SCHNORR_PURPOSE,
    ChaumPedersenProof,
    RandomSource,
    SchnorrProof,
    chaum_pedersen_equations,
    prove_chaum_pedersen,
    prove_schnorr,
    random_scalar,
    schnorr_equations,
    verify_chaum_pedersen,
    verify_schnorr,
)

__all__ = [
    "CHAUM_PEDERSEN_PURPOSE",
    "IDENTITY",
    "MAX_BOUND",
    "PROTOCOL_VERSION",
    "SCHNORR_PURPOSE",
    "WEIGHT_BYTES",
    "ChaumPedersenProof",
    "ChaumPedersenStatement",
    "Ciphertext",
    "DisjunctiveProof",
    "Equation",
    "G",
    "L",
    "Point",
    "ProofStatement",
    "RandomSource",
    "Scalar",
    "SchnorrProof",
    "SchnorrStatement",
    "TranscriptItem",
    "allowed_range",
    "ballot_equations",
    "canonical_allowed",
    "challenge",
    "chaum_pedersen_equations",
    "check_equation",
    "combined_point",
    "draw_weight",
    "encode_transcript",
    "encrypt",
    "failing_items",
    "joint_public_key",
    "lagrange_coefficient",
    "lagrange_combine",
    "membership_equations",
    "prove_chaum_pedersen",
    "prove_membership",
    "prove_schnorr",
    "prove_with_nonces",
    "random_scalar",
    "schnorr_equations",
    "small_multiple",
    "sum_ciphertexts",
    "tagged_sha256",
    "verify_chaum_pedersen",
    "verify_membership",
    "verify_schnorr",
]
