"""HAZMAT: disjunctive Chaum–Pedersen proof that an ElGamal ciphertext encrypts a value in a finite set.

Statement: public key ``K``, ciphertext ``(A, B)``, allowed set ``S`` of small non-negative integers
(sorted, distinct). Claim: there are ``m ∈ S`` and ``r`` with ``A = r·G`` and ``B = m·G + r·K``.

Compact proof: one challenge ``c_j`` and one response ``v_j`` per ``j ∈ S`` (in ascending order of ``j``).
The verifier recomputes the commitments::

    a_j = v_j·G − c_j·A
    b_j = v_j·K − c_j·(B − j·G)

and accepts iff ``Σ c_j = H`` with (strong Fiat–Shamir, everything public in the transcript)::

    H = challenge("disjunctive-cp", n_ctx, ctx_1, …, ctx_n, K, A, B, |S|, j_1, …, j_|S|,
                  a_{j_1}, b_{j_1}, …, a_{j_|S|}, b_{j_|S|})

where ``ctx`` is the caller's context (for ballots: a role tag, the election base hash, the ballot
nonce, the contest id and, for a selection, the selection id), ``n_ctx`` its length, and integers are
encoded as u64 (see :mod:`crypto._hash`). The normative description is ``docs/protocol.md``.

The prover knows ``m`` and ``r``. For each ``j ≠ m`` it simulates: random ``c_j`` and ``w_j``, sets
``v_j = w_j + c_j·r`` and computes ``a_j = w_j·G`` and ``b_j = w_j·K − c_j·(m − j)·G`` (equal to the
verifier's expressions, with one variable-base multiplication instead of three). For ``j = m`` it
commits ``a_m = u·G, b_m = u·K`` with random ``u``, then ``c_m = H − Σ_{j≠m} c_j``, ``v_m = u + c_m·r``.

:func:`prove_membership` refuses (``ValueError``) when ``m ∉ S``: the honest code path cannot produce a
proof of a false statement. :func:`verify_membership` raises :class:`~crypto._errors.ProofError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._codec import exact_keys
from ._elgamal import Ciphertext
from ._errors import InvalidEncoding, ProofError
from ._group import G, Point, RandomSource, Scalar, small_multiple
from ._hash import TranscriptItem, challenge

__all__ = [
    "PURPOSE",
    "DisjunctiveProof",
    "allowed_range",
    "canonical_allowed",
    "prove_membership",
    "prove_with_nonces",
    "verify_membership",
]

PURPOSE: Final[str] = "disjunctive-cp"
#: Largest allowed-set size accepted (a contest sum over at most this many values).
MAX_ALLOWED: Final[int] = 1024


@dataclass(frozen=True, slots=True)
class DisjunctiveProof:
    """Per allowed value (ascending) a challenge and a response. Serialized as lowercase hex lists."""

    challenges: tuple[Scalar, ...]
    responses: tuple[Scalar, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.challenges, tuple) or not isinstance(self.responses, tuple):
            raise TypeError("challenges and responses are tuples of Scalars")
        if not all(isinstance(x, Scalar) for x in self.challenges + self.responses):
            raise TypeError("challenges and responses are tuples of Scalars")
        if not self.challenges or len(self.challenges) != len(self.responses):
            raise ValueError("a disjunctive proof has as many challenges as responses, at least one")

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "challenges": [c.hex() for c in self.challenges],
            "responses": [v.hex() for v in self.responses],
        }

    @classmethod
    def from_dict(cls, d: Any) -> DisjunctiveProof:
        """Strict decoding: exactly the two keys, equal non-empty lists of canonical lowercase hex."""
        d = exact_keys(d, {"challenges", "responses"}, "a disjunctive proof")
        cs, vs = d["challenges"], d["responses"]
        if not isinstance(cs, list) or not isinstance(vs, list):
            raise InvalidEncoding("proof challenges and responses are lists")
        if not cs or len(cs) != len(vs) or len(cs) > MAX_ALLOWED:
            raise InvalidEncoding("proof challenges and responses are equal-length non-empty lists")
        return cls(tuple(Scalar.from_hex(c) for c in cs), tuple(Scalar.from_hex(v) for v in vs))


def canonical_allowed(allowed: Iterable[int]) -> tuple[int, ...]:
    """Validate an allowed set and return it sorted ascending (duplicates and negatives refused)."""
    values = list(allowed)
    if not values:
        raise ValueError("the allowed set is empty")
    if len(values) > MAX_ALLOWED:
        raise ValueError(f"the allowed set has more than {MAX_ALLOWED} values")
    for j in values:
        if not isinstance(j, int) or isinstance(j, bool) or not 0 <= j < 2**32:
            raise ValueError("allowed values are ints in [0, 2^32)")
    out = tuple(sorted(values))
    if len(set(out)) != len(out):
        raise ValueError("the allowed set has duplicate values")
    return out


def allowed_range(lo: int, hi: int) -> tuple[int, ...]:
    """``(lo, lo+1, …, hi)``."""
    if not 0 <= lo <= hi:
        raise ValueError("need 0 <= lo <= hi")
    return canonical_allowed(range(lo, hi + 1))


def _transcript_challenge(
    public_key: Point,
    ct: Ciphertext,
    allowed: tuple[int, ...],
    context: Sequence[TranscriptItem],
    commitments: Sequence[Point],
) -> Scalar:
    return challenge(
        PURPOSE,
        len(context),
        *context,
        public_key,
        ct.a,
        ct.b,
        len(allowed),
        *allowed,
        *commitments,
    )


def prove_membership(
    public_key: Point,
    ct: Ciphertext,
    plaintext: int,
    randomness: Scalar,
    allowed: Iterable[int],
    context: Sequence[TranscriptItem],
    *,
    rng: RandomSource | None = None,
) -> DisjunctiveProof:
    """Prove that ``ct = Enc_K(plaintext; randomness)`` with ``plaintext ∈ allowed``.

    ``rng`` (``randbytes``) makes the proof deterministic and is for known-answer vectors only.
    Raises ``ValueError`` if ``plaintext`` is not in ``allowed``.
    """
    s = _check_claim(plaintext, allowed)
    u = Scalar.random(rng)
    fakes: dict[int, tuple[Scalar, Scalar]] = {}
    for j in s:
        if j != plaintext:
            fakes[j] = (Scalar.random(rng), Scalar.random(rng))  # (c_j, w_j)
    return _prove(public_key, ct, plaintext, randomness, s, context, u, fakes)


def prove_with_nonces(
    public_key: Point,
    ct: Ciphertext,
    plaintext: int,
    randomness: Scalar,
    allowed: Iterable[int],
    context: Sequence[TranscriptItem],
    nonce: Scalar,
    fake: Mapping[int, tuple[Scalar, Scalar]],
) -> DisjunctiveProof:
    """Known-answer form: ``nonce`` is ``u``; ``fake[j] = (c_j, v_j)`` for every ``j ≠ plaintext``."""
    s = _check_claim(plaintext, allowed)
    if set(fake) != set(s) - {plaintext}:
        raise ValueError("fake branches must be given for exactly the other allowed values")
    fakes = {j: (c, v - c * randomness) for j, (c, v) in fake.items()}
    return _prove(public_key, ct, plaintext, randomness, s, context, nonce, fakes)


def _check_claim(plaintext: int, allowed: Iterable[int]) -> tuple[int, ...]:
    s = canonical_allowed(allowed)
    if not isinstance(plaintext, int) or isinstance(plaintext, bool) or plaintext not in s:
        raise ValueError(f"refusing to prove a false statement: {plaintext!r} is not in the allowed set")
    return s


def _prove(
    public_key: Point,
    ct: Ciphertext,
    m: int,
    r: Scalar,
    s: tuple[int, ...],
    context: Sequence[TranscriptItem],
    u: Scalar,
    fakes: Mapping[int, tuple[Scalar, Scalar]],
) -> DisjunctiveProof:
    if public_key.is_identity:
        raise ValueError("refusing to prove under the identity as public key")
    commitments: list[Point] = []
    for j in s:
        if j == m:
            commitments.append(u * G)
            commitments.append(u * public_key)
        else:
            c_j, w_j = fakes[j]
            commitments.append(w_j * G)
            commitments.append(w_j * public_key - (c_j * (m - j)) * G)
    h = _transcript_challenge(public_key, ct, s, context, commitments)
    c_real = h - sum((fakes[j][0].value for j in s if j != m), 0)
    challenges = tuple(c_real if j == m else fakes[j][0] for j in s)
    responses = tuple(u + c_real * r if j == m else fakes[j][1] + fakes[j][0] * r for j in s)
    return DisjunctiveProof(challenges, responses)


def verify_membership(
    public_key: Point,
    ct: Ciphertext,
    proof: DisjunctiveProof,
    allowed: Iterable[int],
    context: Sequence[TranscriptItem],
    *,
    subject: str | None = None,
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows ``ct`` encrypts a value of ``allowed``."""
    s = canonical_allowed(allowed)
    if len(proof.challenges) != len(s):
        raise ProofError(
            "disjunctive-shape",
            f"proof has {len(proof.challenges)} branches, the allowed set has {len(s)} values",
            subject=subject,
        )
    if public_key.is_identity:
        raise ProofError("disjunctive-key", "the public key is the identity", subject=subject)
    a, b = ct.a, ct.b
    commitments: list[Point] = []
    for j, c_j, v_j in zip(s, proof.challenges, proof.responses, strict=True):
        commitments.append(v_j * G - c_j * a)
        shifted = b - small_multiple(j) if j else b
        commitments.append(v_j * public_key - c_j * shifted)
    h = _transcript_challenge(public_key, ct, s, context, commitments)
    if Scalar(sum(c.value for c in proof.challenges)) != h:
        raise ProofError(
            "disjunctive-challenge",
            "the branch challenges do not sum to the transcript challenge",
            subject=subject,
        )
