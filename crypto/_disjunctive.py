"""HAZMAT: disjunctive Chaum–Pedersen proof that an ElGamal ciphertext encrypts a value in a finite set.

Statement: public key ``K``, ciphertext ``(A, B)``, allowed set ``S`` of small non-negative integers
(sorted, distinct). Claim: there are ``m ∈ S`` and ``r`` with ``A = r·G`` and ``B = m·G + r·K``.

Proof (commitment form, protocol v2): per ``j ∈ S`` (ascending) the commitments ``(a_j, b_j)``, a
challenge ``c_j`` and a response ``v_j``. The verifier hashes first::

    H = challenge("disjunctive-cp", n_ctx, ctx_1, …, ctx_n, K, A, B, |S|, j_1, …, j_|S|,
                  a_{j_1}, b_{j_1}, …, a_{j_|S|}, b_{j_|S|})

requires ``Σ c_j = H`` (the challenge split), then the group equations of every branch::

    v_j·G − c_j·A            == a_j
    v_j·K − c_j·(B − j·G)    == b_j

where ``ctx`` is the caller's context (for ballots: a role tag, the election base hash, the ballot
nonce, the contest id and, for a selection, the selection id), ``n_ctx`` its length, and integers are
encoded as u64 (see :mod:`crypto._hash`). The normative description is ``docs/protocol.md`` §8. The
equations can also be checked in a batch (:func:`membership_equations`, :mod:`crypto._batch`).

The prover knows ``m`` and ``r``. For each ``j ≠ m`` it simulates: random ``c_j`` and ``w_j``, sets
``v_j = w_j + c_j·r`` and computes ``a_j = w_j·G`` and ``b_j = w_j·K − c_j·(m − j)·G`` (equal to the
verifier's expressions, with one variable-base multiplication instead of three). For ``j = m`` it
commits ``a_m = u·G, b_m = u·K`` with random ``u``, then ``c_m = H − Σ_{j≠m} c_j``, ``v_m = u + c_m·r``.

:func:`prove_membership` refuses (``ValueError``) when ``m ∉ S``: the honest code path cannot produce a
proof of a false statement. :func:`verify_membership` raises :class:`~crypto._errors.ProofError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from . import _group
from ._batch import Equation
from ._codec import exact_keys
from ._elgamal import Ciphertext
from ._errors import InvalidEncoding, ProofError
from ._group import G, L, Point, RandomSource, Scalar, diff_of_products, small_multiple
from ._hash import TranscriptItem, challenge, challenge_value, encode_items, encode_transcript

__all__ = [
    "PURPOSE",
    "DisjunctiveProof",
    "allowed_range",
    "canonical_allowed",
    "membership_equations",
    "prove_membership",
    "prove_with_nonces",
    "verify_membership",
]

PURPOSE: Final[str] = "disjunctive-cp"
#: Largest allowed-set size accepted (a contest sum over at most this many values).
MAX_ALLOWED: Final[int] = 1024
_LEN32: Final[bytes] = (32).to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class DisjunctiveProof:
    """Per allowed value (ascending) the commitments ``(a_j, b_j)``, a challenge and a response.

    JSON: ``{"commitments": [a_1, b_1, …, a_n, b_n], "challenges": [c_1 … c_n], "responses": [v_1 … v_n]}``
    (lowercase hex; the commitments in the order they are hashed)."""

    commitments: tuple[tuple[Point, Point], ...]
    challenges: tuple[Scalar, ...]
    responses: tuple[Scalar, ...]

    def __post_init__(self) -> None:
        if not all(isinstance(x, tuple) for x in (self.commitments, self.challenges, self.responses)):
            raise TypeError("commitments, challenges and responses are tuples")
        if not all(isinstance(x, Scalar) for x in self.challenges + self.responses):
            raise TypeError("challenges and responses are tuples of Scalars")
        if not all(
            isinstance(ab, tuple) and len(ab) == 2 and all(isinstance(p, Point) for p in ab)
            for ab in self.commitments
        ):
            raise TypeError("commitments is a tuple of (Point, Point) pairs")
        n = len(self.challenges)
        if not n or len(self.responses) != n or len(self.commitments) != n:
            raise ValueError(
                "a disjunctive proof has as many commitment pairs, challenges and responses, at least one"
            )

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "commitments": [p.hex() for ab in self.commitments for p in ab],
            "challenges": [c.hex() for c in self.challenges],
            "responses": [v.hex() for v in self.responses],
        }

    @classmethod
    def from_dict(cls, d: Any) -> DisjunctiveProof:
        """Strict decoding: exactly the three keys; ``n`` challenges, ``n`` responses and ``2n``
        commitments for some ``1 <= n <= MAX_ALLOWED``; canonical lowercase hex, valid points.

        Lists of inconsistent lengths are an :class:`InvalidEncoding` (§8.2): a decoding failure,
        reported before any check of the proof."""
        return cls._decode(d, Point.from_hex)

    @classmethod
    def _decode(cls, d: Any, commitment: Callable[[str], Point]) -> DisjunctiveProof:
        """:meth:`from_dict` with ``commitment`` decoding each commitment (``Point.from_hex``; the ballot
        fast path of :func:`crypto._ballot.decode_verified_ballot` passes a decoder that checks the hex
        only)."""
        d = exact_keys(d, {"commitments", "challenges", "responses"}, "a disjunctive proof")
        ps, cs, vs = d["commitments"], d["challenges"], d["responses"]
        if not isinstance(ps, list) or not isinstance(cs, list) or not isinstance(vs, list):
            raise InvalidEncoding("proof commitments, challenges and responses are lists")
        n = len(cs)
        if not 1 <= n <= MAX_ALLOWED or len(vs) != n or len(ps) != 2 * n:
            raise InvalidEncoding(
                "a disjunctive proof has n challenges, n responses and 2n commitments, 1 <= n <= "
                f"{MAX_ALLOWED} (got {len(cs)}, {len(vs)} and {len(ps)})"
            )
        pts = [commitment(p) for p in ps]
        return cls._of(
            tuple(zip(pts[0::2], pts[1::2], strict=True)),
            tuple([Scalar.from_hex(c) for c in cs]),
            tuple([Scalar.from_hex(v) for v in vs]),
        )

    @classmethod
    def _of(
        cls,
        commitments: tuple[tuple[Point, Point], ...],
        challenges: tuple[Scalar, ...],
        responses: tuple[Scalar, ...],
    ) -> DisjunctiveProof:
        """Internal constructor for fields this module just built from valid values (the decoder, the
        prover): the same object, without the type checks of ``__post_init__`` on the hot paths."""
        proof = object.__new__(cls)
        _set_commitments(proof, commitments)
        _set_challenges(proof, challenges)
        _set_responses(proof, responses)
        return proof


# the slots' own setters (as crypto._group's), for _of
_set_commitments: Final = DisjunctiveProof.__dict__["commitments"].__set__
_set_challenges: Final = DisjunctiveProof.__dict__["challenges"].__set__
_set_responses: Final = DisjunctiveProof.__dict__["responses"].__set__


def canonical_allowed(allowed: Iterable[int]) -> tuple[int, ...]:
    """Validate an allowed set and return it sorted ascending (duplicates and negatives refused)."""
    # the common case (a contest's sums, {0, 1}) is a tuple of ints: validated once per distinct value
    # (the type test first: True == 1, so a cached (0, 1) must not answer for (False, True))
    if type(allowed) is tuple and all(type(j) is int for j in allowed):
        return _canonical_tuple(allowed)
    return _canonical(list(allowed))


@lru_cache(maxsize=256)
def _canonical_tuple(allowed: tuple[int, ...]) -> tuple[int, ...]:
    return _canonical(list(allowed))


def _canonical(values: list[int]) -> tuple[int, ...]:
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
    s = check_claim(plaintext, allowed)
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
    s = check_claim(plaintext, allowed)
    if set(fake) != set(s) - {plaintext}:
        raise ValueError("fake branches must be given for exactly the other allowed values")
    fakes = {j: (c, v - c * randomness) for j, (c, v) in fake.items()}
    return _prove(public_key, ct, plaintext, randomness, s, context, nonce, fakes)


def check_claim(plaintext: int, allowed: Iterable[int]) -> tuple[int, ...]:
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
    return _prove_encoded(
        public_key.to_bytes(),
        ct.a.to_bytes(),
        ct.b.to_bytes(),
        m,
        r.value,
        s,
        context_head(context),
        u.value,
        {j: (c.value, w.value) for j, (c, w) in fakes.items()},
    )


def context_head(context: Sequence[TranscriptItem]) -> bytes:
    """The start of a proof's transcript: the purpose, ``n_ctx`` and the context (what
    :func:`_prove_encoded` continues)."""
    return encode_transcript(PURPOSE, (len(context), *context))


@lru_cache(maxsize=256)
def _allowed_encoding(s: tuple[int, ...]) -> bytes:
    return encode_items((len(s), *s))


def _prove_encoded(
    kb: bytes,
    ab: bytes,
    bb: bytes,
    m: int,
    r: int,
    s: tuple[int, ...],
    head: bytes,
    u: int,
    fakes: Mapping[int, tuple[int, int]],
) -> DisjunctiveProof:
    """:func:`_prove` on encodings and values: the key ``kb`` (not the identity), the ciphertext ``(ab,
    bb)``, the secrets ``r``, ``u`` and each fake ``(c_j, w_j)`` as ints in ``[0, L)``, and the
    transcript's ``head`` (:func:`context_head` of the context). The ballot encryption's hot path.

    The same group operations as the point operators (``u·G``, ``u·K``, ``w_j·G`` and
    ``w_j·K − (c_j·(m − j))·G``, each through :mod:`crypto._group`'s zero and identity rules) and the
    same transcript as :func:`_transcript_challenge`, joined from the encodings instead of item by item;
    no object is made but the proof's own, and none is validated again (libsodium made the points)."""
    flat: list[bytes] = []
    c_sum = 0
    for j in s:
        if j == m:
            flat += _group._mul_value_pair(u, kb)
        else:
            c_j, w_j = fakes[j]
            flat += _group._mul_value_pair_minus(w_j, kb, c_j * (m - j) % L)
            c_sum += c_j
    # the commitments, each length-prefixed: _LEN32 before the first, the rest joined by it
    transcript = b"".join(
        (head, _LEN32, kb, _LEN32, ab, _LEN32, bb, _allowed_encoding(s), _LEN32, _LEN32.join(flat))
    )
    c_real = (challenge_value(transcript) - c_sum) % L
    challenges: list[Scalar] = []
    responses: list[Scalar] = []
    reduced = Scalar._reduced
    for j in s:
        if j == m:
            challenges.append(reduced(c_real))
            responses.append(reduced(u + c_real * r))
        else:
            c_j, w_j = fakes[j]
            challenges.append(reduced(c_j))
            responses.append(reduced(w_j + c_j * r))
    trusted = Point._trusted
    pairs = tuple([(trusted(flat[i]), trusted(flat[i + 1])) for i in range(0, len(flat), 2)])
    return DisjunctiveProof._of(pairs, tuple(challenges), tuple(responses))


def _prepare(
    public_key: Point,
    ct: Ciphertext,
    proof: DisjunctiveProof,
    allowed: Iterable[int],
    context: Sequence[TranscriptItem],
    subject: str | None,
) -> tuple[int, ...]:
    """§8.3 steps 1-3 (shape, key, challenge split): everything before the group equations."""
    s = canonical_allowed(allowed)
    if len(proof.challenges) != len(s):
        raise ProofError(
            "disjunctive-shape",
            f"proof has {len(proof.challenges)} branches, the allowed set has {len(s)} values",
            subject=subject,
        )
    if public_key.is_identity:
        raise ProofError("disjunctive-key", "the public key is the identity", subject=subject)
    flat = [p for ab in proof.commitments for p in ab]
    h = _transcript_challenge(public_key, ct, s, context, flat)
    if Scalar(sum(c.value for c in proof.challenges)) != h:
        raise ProofError(
            "disjunctive-challenge",
            "the branch challenges do not sum to the transcript challenge",
            subject=subject,
        )
    return s


def membership_equations(
    public_key: Point,
    ct: Ciphertext,
    proof: DisjunctiveProof,
    allowed: Iterable[int],
    context: Sequence[TranscriptItem],
    *,
    subject: str | None = None,
) -> tuple[Equation, ...]:
    """§8.3 steps 1-3, then the group equations of step 4, two per branch (ascending ``j``)::

        v_j·G − c_j·A == a_j
        v_j·K − c_j·B + (c_j·j)·G == b_j

    Raises :class:`ProofError` as :func:`verify_membership` does for steps 1-3."""
    s = _prepare(public_key, ct, proof, allowed, context, subject)
    out: list[Equation] = []
    for j, (a_j, b_j), c_j, v_j in zip(s, proof.commitments, proof.challenges, proof.responses, strict=True):
        out.append(Equation(((v_j, G), (-c_j, ct.a)), a_j))
        out.append(Equation(((v_j, public_key), (-c_j, ct.b), (c_j * j, G)), b_j))
    return tuple(out)


def verify_membership(
    public_key: Point,
    ct: Ciphertext,
    proof: DisjunctiveProof,
    allowed: Iterable[int],
    context: Sequence[TranscriptItem],
    *,
    subject: str | None = None,
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows ``ct`` encrypts a value of ``allowed``.

    Checks, in order (§8.3): ``disjunctive-shape``, ``disjunctive-key``, ``disjunctive-challenge`` (the
    challenges do not sum to the hash of the statement and the published commitments), then
    ``disjunctive-equation`` (branch by branch, ascending ``j``, a commitment is not what the response
    and challenge give).
    """
    s = _prepare(public_key, ct, proof, allowed, context, subject)
    a, b = ct.a, ct.b
    for j, (a_j, b_j), c_j, v_j in zip(s, proof.commitments, proof.challenges, proof.responses, strict=True):
        shifted = b - small_multiple(j) if j else b
        # v_j·G − c_j·A == a_j and v_j·K − c_j·(B − j·G) == b_j, compared as encodings (unique, §2)
        if (
            diff_of_products(v_j, G, c_j, a) != a_j.to_bytes()
            or diff_of_products(v_j, public_key, c_j, shifted) != b_j.to_bytes()
        ):
            raise ProofError(
                "disjunctive-equation",
                f"branch {j}: the commitments do not match the challenge and response",
                subject=subject,
            )
