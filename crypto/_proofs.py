"""HAZMAT: non-interactive zero-knowledge proofs of knowledge over the edwards25519 subgroup.

Two sigma protocols made non-interactive by the *strong* Fiat–Shamir transform (the challenge hashes the
generator(s), the whole statement, the prover's commitments and a caller-supplied context):

* :func:`prove_schnorr` / :func:`verify_schnorr`: knowledge of ``x`` with ``X = x·G``.
* :func:`prove_chaum_pedersen` / :func:`verify_chaum_pedersen`: equality of discrete logarithms,
  ``log_G(X) == log_A(Y)`` (partial decryption: ``X = s·G`` is a trustee's public share, ``Y = s·A``).

Both proofs are in compact form ``(challenge c, response v)``: the prover picks a nonce ``k``, computes the
commitment(s) ``R = k·G`` (and ``R' = k·A``), ``c = H(...)`` and ``v = k - c·x mod L``; the verifier
recomputes ``R = v·G + c·X`` (and ``R' = v·A + c·Y``) and checks that hashing gives back ``c``.
The exact transcripts are specified in ``docs/protocol-trustees.md`` §2:

``schnorr-pok``:    ``G, X, R, u64(len(context)), context...``
``chaum-pedersen``: ``G, A, X, Y, R, R', u64(len(context)), context...``

The context must bind the proof to its use (a label naming the protocol step, the election base hash,
indices, ...): a proof is only meaningful with the context it was made for. These functions do no domain
checking of their own beyond the group: callers decide whether, e.g., an identity statement is acceptable.
The identity is handled explicitly: ``A = IDENTITY`` (an all-zero tally) is a legitimate Chaum–Pedersen
base, and then ``Y`` must be the identity too.

Verification raises :class:`~crypto._errors.ProofError` naming the failed check; it never returns a bool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._codec import exact_keys
from ._errors import ProofError
from ._group import G, Point, RandomSource, Scalar
from ._hash import TranscriptItem, challenge

__all__ = [
    "CHAUM_PEDERSEN_PURPOSE",
    "SCHNORR_PURPOSE",
    "ChaumPedersenProof",
    "RandomSource",
    "SchnorrProof",
    "prove_chaum_pedersen",
    "prove_schnorr",
    "random_scalar",
    "verify_chaum_pedersen",
    "verify_schnorr",
]

SCHNORR_PURPOSE = "schnorr-pok"
CHAUM_PEDERSEN_PURPOSE = "chaum-pedersen"


def random_scalar(rng: RandomSource | None = None) -> Scalar:
    """A uniform scalar; the same as :meth:`Scalar.random` (kept as the hazmat name)."""
    return Scalar.random(rng)


def _nonce(rng: RandomSource | None) -> Scalar:
    # a zero nonce would publish the secret as -v/c; never happens with a real CSPRNG
    return Scalar.random_nonzero(rng)


def _check_context(context: Sequence[TranscriptItem]) -> tuple[TranscriptItem, ...]:
    if isinstance(context, str | bytes) or not isinstance(context, Sequence):
        raise TypeError("context is a sequence of transcript items (not a bare str/bytes)")
    return tuple(context)


def _scalar_fields(d: Any, what: str) -> tuple[Scalar, Scalar]:
    d = exact_keys(d, {"challenge", "response"}, f"a {what}")
    return Scalar.from_hex(d["challenge"]), Scalar.from_hex(d["response"])


@dataclass(frozen=True, slots=True)
class SchnorrProof:
    """Compact Schnorr proof of knowledge ``(c, v)`` of ``x`` with ``X = x·G``."""

    challenge: Scalar
    response: Scalar

    def __post_init__(self) -> None:
        if not isinstance(self.challenge, Scalar) or not isinstance(self.response, Scalar):
            raise TypeError("SchnorrProof holds two Scalars")

    def to_dict(self) -> dict[str, str]:
        return {"challenge": self.challenge.hex(), "response": self.response.hex()}

    @classmethod
    def from_dict(cls, d: Any) -> SchnorrProof:
        return cls(*_scalar_fields(d, "Schnorr proof"))


@dataclass(frozen=True, slots=True)
class ChaumPedersenProof:
    """Compact Chaum–Pedersen proof ``(c, v)`` that ``log_G(X) == log_A(Y)``."""

    challenge: Scalar
    response: Scalar

    def __post_init__(self) -> None:
        if not isinstance(self.challenge, Scalar) or not isinstance(self.response, Scalar):
            raise TypeError("ChaumPedersenProof holds two Scalars")

    def to_dict(self) -> dict[str, str]:
        return {"challenge": self.challenge.hex(), "response": self.response.hex()}

    @classmethod
    def from_dict(cls, d: Any) -> ChaumPedersenProof:
        return cls(*_scalar_fields(d, "Chaum–Pedersen proof"))


# --------------------------------------------------------------------------------------------- Schnorr


def _schnorr_challenge(X: Point, R: Point, context: tuple[TranscriptItem, ...]) -> Scalar:
    return challenge(SCHNORR_PURPOSE, G, X, R, len(context), *context)


def prove_schnorr(
    x: Scalar,
    X: Point,
    *,
    context: Sequence[TranscriptItem],
    rng: RandomSource | None = None,
) -> SchnorrProof:
    """Prove knowledge of ``x`` with ``X = x·G``, bound to ``context``.

    Raises ``ValueError`` if ``X != x·G`` (a prover-side bug, never a verification result).
    """
    if not isinstance(x, Scalar) or not isinstance(X, Point):
        raise TypeError("prove_schnorr takes a Scalar and a Point")
    ctx = _check_context(context)
    if x * G != X:
        raise ValueError("prove_schnorr: X is not x·G")
    k = _nonce(rng)
    c = _schnorr_challenge(X, k * G, ctx)
    return SchnorrProof(c, k - c * x)


def verify_schnorr(X: Point, proof: SchnorrProof, *, context: Sequence[TranscriptItem]) -> None:
    """Check a Schnorr proof for ``X`` in ``context``; raise :class:`ProofError` (check ``schnorr-pok``)."""
    if not isinstance(X, Point) or not isinstance(proof, SchnorrProof):
        raise TypeError("verify_schnorr takes a Point and a SchnorrProof")
    ctx = _check_context(context)
    R = proof.response * G + proof.challenge * X
    if _schnorr_challenge(X, R, ctx) != proof.challenge:
        raise ProofError(SCHNORR_PURPOSE, "Schnorr proof of knowledge does not verify")


# ------------------------------------------------------------------------------------- Chaum–Pedersen


def _cp_challenge(
    A: Point, X: Point, Y: Point, R1: Point, R2: Point, context: tuple[TranscriptItem, ...]
) -> Scalar:
    return challenge(CHAUM_PEDERSEN_PURPOSE, G, A, X, Y, R1, R2, len(context), *context)


def prove_chaum_pedersen(
    s: Scalar,
    X: Point,
    A: Point,
    Y: Point,
    *,
    context: Sequence[TranscriptItem],
    rng: RandomSource | None = None,
) -> ChaumPedersenProof:
    """Prove ``log_G(X) == log_A(Y) == s``, bound to ``context``.

    ``A`` may be the identity (then ``Y`` is the identity). Raises ``ValueError`` if ``X != s·G`` or
    ``Y != s·A`` (a prover-side bug).
    """
    if not isinstance(s, Scalar) or not all(isinstance(p, Point) for p in (X, A, Y)):
        raise TypeError("prove_chaum_pedersen takes a Scalar and three Points")
    ctx = _check_context(context)
    if s * G != X or s * A != Y:
        raise ValueError("prove_chaum_pedersen: the statement does not match the secret")
    k = _nonce(rng)
    c = _cp_challenge(A, X, Y, k * G, k * A, ctx)
    return ChaumPedersenProof(c, k - c * s)


def verify_chaum_pedersen(
    X: Point,
    A: Point,
    Y: Point,
    proof: ChaumPedersenProof,
    *,
    context: Sequence[TranscriptItem],
) -> None:
    """Check that ``proof`` shows ``log_G(X) == log_A(Y)`` in ``context``; raise :class:`ProofError`.

    Checks: ``chaum-pedersen-identity`` (``A`` is the identity but ``Y`` is not: no exponent maps the
    identity elsewhere) and ``chaum-pedersen`` (the recomputed challenge differs).
    """
    if not all(isinstance(p, Point) for p in (X, A, Y)) or not isinstance(proof, ChaumPedersenProof):
        raise TypeError("verify_chaum_pedersen takes three Points and a ChaumPedersenProof")
    ctx = _check_context(context)
    if A.is_identity and not Y.is_identity:
        raise ProofError("chaum-pedersen-identity", "base A is the identity but Y is not")
    c, v = proof.challenge, proof.response
    R1 = v * G + c * X
    R2 = v * A + c * Y
    if _cp_challenge(A, X, Y, R1, R2, ctx) != c:
        raise ProofError(CHAUM_PEDERSEN_PURPOSE, "Chaum–Pedersen proof does not verify")
