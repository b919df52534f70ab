"""HAZMAT: non-interactive zero-knowledge proofs of knowledge over ristretto255.

Two sigma protocols made non-interactive by the *strong* Fiat–Shamir transform (the challenge hashes the
generator(s), the whole statement, the prover's commitments and a caller-supplied context):

* :func:`prove_schnorr` / :func:`verify_schnorr`: knowledge of ``x`` with ``X = x·G``.
* :func:`prove_chaum_pedersen` / :func:`verify_chaum_pedersen`: equality of discrete logarithms,
  ``log_G(X) == log_A(Y)`` (partial decryption: ``X = s·G`` is a trustee's public share, ``Y = s·A``).

Both proofs are in **commitment form** (protocol v2): the prover picks a nonce ``k``, publishes the
commitment(s) ``R = k·G`` (and ``R' = k·A``) and the response ``v = k + c·x mod L`` with
``c = H(...)``. The verifier first recomputes ``c`` from the published commitments, then checks the group
equations ``v·G == R + c·X`` (and ``v·A == R' + c·Y``). Because the equations come after the hash, many
proofs can be checked at once (:mod:`crypto._batch`); :func:`schnorr_equations` and
:func:`chaum_pedersen_equations` give them. The exact transcripts are in ``docs/protocol.md`` §T2:

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

from ._batch import Equation
from ._codec import exact_keys
from ._errors import InvalidEncoding, ProofError
from ._group import G, Point, RandomSource, Scalar
from ._hash import TranscriptItem, challenge

__all__ = [
    "CHAUM_PEDERSEN_PURPOSE",
    "SCHNORR_PURPOSE",
    "ChaumPedersenProof",
    "RandomSource",
    "SchnorrProof",
    "chaum_pedersen_equations",
    "prove_chaum_pedersen",
    "prove_schnorr",
    "random_scalar",
    "schnorr_equations",
    "verify_chaum_pedersen",
    "verify_schnorr",
]

SCHNORR_PURPOSE = "schnorr-pok"
CHAUM_PEDERSEN_PURPOSE = "chaum-pedersen"


def random_scalar(rng: RandomSource | None = None) -> Scalar:
    """A uniform scalar; the same as :meth:`Scalar.random` (kept as the hazmat name)."""
    return Scalar.random(rng)


def _nonce(rng: RandomSource | None) -> Scalar:
    # a zero nonce would publish the secret as v/c; never happens with a real CSPRNG
    return Scalar.random_nonzero(rng)


def _check_context(context: Sequence[TranscriptItem]) -> tuple[TranscriptItem, ...]:
    if isinstance(context, str | bytes) or not isinstance(context, Sequence):
        raise TypeError("context is a sequence of transcript items (not a bare str/bytes)")
    return tuple(context)


@dataclass(frozen=True, slots=True)
class SchnorrProof:
    """Schnorr proof of knowledge of ``x`` with ``X = x·G``: commitment ``R = k·G``, response
    ``v = k + c·x``. JSON: ``{"commitment": point, "response": scalar}``."""

    commitment: Point
    response: Scalar

    def __post_init__(self) -> None:
        if not isinstance(self.commitment, Point) or not isinstance(self.response, Scalar):
            raise TypeError("SchnorrProof holds a Point and a Scalar")

    def to_dict(self) -> dict[str, str]:
        return {"commitment": self.commitment.hex(), "response": self.response.hex()}

    @classmethod
    def from_dict(cls, d: Any) -> SchnorrProof:
        d = exact_keys(d, {"commitment", "response"}, "a Schnorr proof")
        return cls(Point.from_hex(d["commitment"]), Scalar.from_hex(d["response"]))


@dataclass(frozen=True, slots=True)
class ChaumPedersenProof:
    """Chaum–Pedersen proof that ``log_G(X) == log_A(Y)``: commitments ``(R, R') = (k·G, k·A)``, response
    ``v = k + c·s``. JSON: ``{"commitments": [R, R'], "response": scalar}``."""

    commitments: tuple[Point, Point]
    response: Scalar

    def __post_init__(self) -> None:
        if (
            not isinstance(self.commitments, tuple)
            or len(self.commitments) != 2
            or not all(isinstance(p, Point) for p in self.commitments)
            or not isinstance(self.response, Scalar)
        ):
            raise TypeError("ChaumPedersenProof holds two Points and a Scalar")

    def to_dict(self) -> dict[str, Any]:
        return {"commitments": [p.hex() for p in self.commitments], "response": self.response.hex()}

    @classmethod
    def from_dict(cls, d: Any) -> ChaumPedersenProof:
        d = exact_keys(d, {"commitments", "response"}, "a Chaum–Pedersen proof")
        cs = d["commitments"]
        if not isinstance(cs, list) or len(cs) != 2:
            raise InvalidEncoding("a Chaum–Pedersen proof has a list of exactly two commitments")
        return cls((Point.from_hex(cs[0]), Point.from_hex(cs[1])), Scalar.from_hex(d["response"]))


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
    R = k * G
    c = _schnorr_challenge(X, R, ctx)
    return SchnorrProof(R, k + c * x)


def schnorr_equations(
    X: Point, proof: SchnorrProof, *, context: Sequence[TranscriptItem]
) -> tuple[Equation, ...]:
    """The group equation of a Schnorr proof after hashing: ``v·G − c·X == R``."""
    if not isinstance(X, Point) or not isinstance(proof, SchnorrProof):
        raise TypeError("schnorr_equations takes a Point and a SchnorrProof")
    c = _schnorr_challenge(X, proof.commitment, _check_context(context))
    return (Equation(((proof.response, G), (-c, X)), proof.commitment),)


def verify_schnorr(X: Point, proof: SchnorrProof, *, context: Sequence[TranscriptItem]) -> None:
    """Check a Schnorr proof for ``X`` in ``context``; raise :class:`ProofError` (check ``schnorr-pok``)."""
    if not isinstance(X, Point) or not isinstance(proof, SchnorrProof):
        raise TypeError("verify_schnorr takes a Point and a SchnorrProof")
    c = _schnorr_challenge(X, proof.commitment, _check_context(context))
    if proof.response * G - c * X != proof.commitment:
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
    R1, R2 = k * G, k * A
    c = _cp_challenge(A, X, Y, R1, R2, ctx)
    return ChaumPedersenProof((R1, R2), k + c * s)


def _cp_prepare(
    X: Point, A: Point, Y: Point, proof: ChaumPedersenProof, context: Sequence[TranscriptItem]
) -> Scalar:
    if not all(isinstance(p, Point) for p in (X, A, Y)) or not isinstance(proof, ChaumPedersenProof):
        raise TypeError("Chaum–Pedersen verification takes three Points and a ChaumPedersenProof")
    ctx = _check_context(context)
    if A.is_identity and not Y.is_identity:
        raise ProofError("chaum-pedersen-identity", "base A is the identity but Y is not")
    R1, R2 = proof.commitments
    return _cp_challenge(A, X, Y, R1, R2, ctx)


def chaum_pedersen_equations(
    X: Point, A: Point, Y: Point, proof: ChaumPedersenProof, *, context: Sequence[TranscriptItem]
) -> tuple[Equation, ...]:
    """The two group equations after hashing: ``v·G − c·X == R`` and ``v·A − c·Y == R'``.

    Raises :class:`ProofError` ``chaum-pedersen-identity`` first, like :func:`verify_chaum_pedersen`."""
    c = _cp_prepare(X, A, Y, proof, context)
    v, (R1, R2) = proof.response, proof.commitments
    return (Equation(((v, G), (-c, X)), R1), Equation(((v, A), (-c, Y)), R2))


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
    identity elsewhere) and ``chaum-pedersen`` (a group equation fails).
    """
    c = _cp_prepare(X, A, Y, proof, context)
    v, (R1, R2) = proof.response, proof.commitments
    if v * G - c * X != R1 or v * A - c * Y != R2:
        raise ProofError(CHAUM_PEDERSEN_PURPOSE, "Chaum–Pedersen proof does not verify")
