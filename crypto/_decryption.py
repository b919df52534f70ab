"""HAZMAT: threshold ElGamal decryption by the trustees (spec §T4).

Trustee ``j`` (holding its :class:`TrusteeKey`, the secret share ``s_j``) publishes ``D_j = s_j·A`` with a
Chaum–Pedersen proof that ``log_G(S_j) == log_A(D_j)`` (:class:`PartialDecryption`); :func:`combine`
verifies every partial (:func:`verify_partial`), excludes and reports the invalid ones, and interpolates
``M = B - Σ_j λ_j·D_j`` over ``t`` valid ones (:func:`lagrange_combine`, the one Lagrange combination in
tvote); :func:`combine_tally` does so for a whole tally with one set of trustees.

Builds on :mod:`crypto._joint_key` (the public shares ``S_j`` a partial is checked against); see
:mod:`crypto._dkg` for the order of the threshold modules. Checks raise
:class:`~crypto._errors.ThresholdError` naming the trustee. :class:`TrusteeKey` serialises to a plain dict;
the caller must protect it at rest (§T5).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ._codec import exact_keys, fixed_hex
from ._dkg import MAX_TRUSTEES, check_base_hash, check_index, check_parameters, is_int
from ._elgamal import Ciphertext
from ._errors import InvalidEncoding, ProofError, ThresholdError
from ._group import IDENTITY, G, L, Point, Scalar
from ._hash import TranscriptItem
from ._joint_key import JointKey
from ._proofs import ChaumPedersenProof, RandomSource, prove_chaum_pedersen, verify_chaum_pedersen

if TYPE_CHECKING:
    from ._native import BallotEngine

__all__ = [
    "PARTIAL_DECRYPTION_LABEL",
    "CombinedDecryption",
    "CombinedTally",
    "Exclusion",
    "PartialDecryption",
    "TrusteeKey",
    "combine",
    "combine_tally",
    "lagrange_coefficient",
    "lagrange_combine",
    "partial_decryption_context",
    "verify_partial",
    "verify_partials",
]

#: First context item of the Chaum–Pedersen proof of a partial decryption.
PARTIAL_DECRYPTION_LABEL: Final[str] = "partial-decryption"


def partial_decryption_context(
    base_hash: bytes, trustee: int, ciphertext: Ciphertext
) -> tuple[TranscriptItem, ...]:
    """Context of the Chaum–Pedersen proof of trustee ``j``'s partial decryption (spec §T4.1)."""
    return (PARTIAL_DECRYPTION_LABEL, base_hash, trustee, ciphertext.b)


def lagrange_coefficient(j: int, indices: Iterable[int]) -> Scalar:
    """``λ_j = Π_{m ∈ indices, m ≠ j} m / (m - j) mod L`` (interpolation at 0).

    ``j`` must be one of ``indices`` (distinct positive integers)."""
    idx = sorted(set(indices))
    if j not in idx or any(not is_int(m) or m < 1 for m in idx):
        raise ValueError("lagrange_coefficient: j must be one of the positive, distinct indices")
    num, den = 1, 1
    for m in idx:
        if m != j:
            num = num * m % L
            den = den * (m - j) % L
    return Scalar(num * pow(den, -1, L))


def lagrange_combine(shares: Mapping[int, Point]) -> Point:
    """``Σ_j λ_j · S_j`` over the indices of ``shares`` (:func:`lagrange_coefficient` of each among all of
    them): the group element whose discrete log is the shared secret times the base of the shares, e.g. the
    sum ``s·a`` from the trustees' decryption shares ``s_j·a``. The one Lagrange combination in tvote (the
    decryption, the tally, the verifier's re-combination)."""
    used = tuple(shares)
    acc = IDENTITY
    for j in used:
        acc = acc + lagrange_coefficient(j, used) * shares[j]
    return acc


@dataclass(frozen=True, slots=True)
class PartialDecryption:
    """Trustee ``j``'s decryption share ``D_j = s_j·A`` of one ciphertext, with its Chaum–Pedersen proof."""

    trustee: int
    decryption_share: Point
    proof: ChaumPedersenProof

    def __post_init__(self) -> None:
        check_index(self.trustee, MAX_TRUSTEES, "trustee index")
        if not isinstance(self.decryption_share, Point) or not isinstance(self.proof, ChaumPedersenProof):
            raise TypeError("PartialDecryption holds a Point and a ChaumPedersenProof")

    def to_dict(self) -> dict[str, Any]:
        return {
            "trustee": self.trustee,
            "decryption_share": self.decryption_share.hex(),
            "proof": self.proof.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> PartialDecryption:
        d = exact_keys(d, {"trustee", "decryption_share", "proof"}, "partial decryption")
        return cls(
            trustee=check_index(d["trustee"], MAX_TRUSTEES, "trustee index"),
            decryption_share=Point.from_hex(d["decryption_share"]),
            proof=ChaumPedersenProof.from_dict(d["proof"]),
        )


@dataclass(frozen=True, slots=True, repr=False)
class TrusteeKey:
    """SECRET: trustee ``j``'s final share ``s_j`` of the election secret key."""

    trustee: int
    threshold: int
    trustees: int
    base_hash: bytes
    secret_share: Scalar
    public_share: Point = field(init=False)

    def __post_init__(self) -> None:
        check_parameters(self.threshold, self.trustees)
        check_index(self.trustee, self.trustees, "trustee index")
        check_base_hash(self.base_hash)
        if not isinstance(self.secret_share, Scalar):
            raise TypeError("secret_share is a Scalar")
        object.__setattr__(self, "public_share", self.secret_share * G)

    def __repr__(self) -> str:
        return f"TrusteeKey(trustee={self.trustee}, public_share={self.public_share.hex()}, <secret>)"

    def partial_decrypt(
        self, ciphertext: Ciphertext, *, rng: RandomSource | None = None
    ) -> PartialDecryption:
        """Spec §T4.1: ``D_j = s_j·A`` and its Chaum–Pedersen proof against ``S_j``."""
        if not isinstance(ciphertext, Ciphertext):
            raise TypeError("partial_decrypt takes a Ciphertext")
        d = self.secret_share * ciphertext.a
        proof = prove_chaum_pedersen(
            self.secret_share,
            self.public_share,
            ciphertext.a,
            d,
            context=partial_decryption_context(self.base_hash, self.trustee, ciphertext),
            rng=rng,
        )
        return PartialDecryption(self.trustee, d, proof)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "tvote-trustee-key/2",
            "trustee": self.trustee,
            "threshold": self.threshold,
            "trustees": self.trustees,
            "base_hash": self.base_hash.hex(),
            "secret_share": self.secret_share.hex(),
            "public_share": self.public_share.hex(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> TrusteeKey:
        keys = {"format", "trustee", "threshold", "trustees", "base_hash", "secret_share", "public_share"}
        d = exact_keys(d, keys, "trustee key")
        if d["format"] != "tvote-trustee-key/2":
            raise InvalidEncoding("unknown trustee key format")
        check_parameters(d["threshold"], d["trustees"])
        key = cls(
            trustee=check_index(d["trustee"], d["trustees"], "trustee index"),
            threshold=d["threshold"],
            trustees=d["trustees"],
            base_hash=fixed_hex(d["base_hash"], 32, "base hash"),
            secret_share=Scalar.from_hex(d["secret_share"]),
        )
        if key.public_share != Point.from_hex(d["public_share"]):
            raise InvalidEncoding("the public share does not match the secret share")
        return key


def verify_partial(partial: PartialDecryption, ciphertext: Ciphertext, joint_key: JointKey) -> None:
    """Spec §T4.2: check one partial decryption; raise ThresholdError naming the trustee.

    Checks ``partial-trustee`` (index not in 1..n) and ``partial-proof`` (the Chaum–Pedersen proof against the
    trustee's public share ``S_j`` fails; the ProofError is the ``__cause__``).
    """
    if not isinstance(partial, PartialDecryption) or not isinstance(ciphertext, Ciphertext):
        raise TypeError("verify_partial takes a PartialDecryption and a Ciphertext")
    j = partial.trustee
    who = f"trustee {j}"
    if not 1 <= j <= joint_key.trustees:
        raise ThresholdError("partial-trustee", f"no trustee {j} in 1..{joint_key.trustees}", subject=who)
    try:
        verify_chaum_pedersen(
            joint_key.public_share(j),
            ciphertext.a,
            partial.decryption_share,
            partial.proof,
            context=partial_decryption_context(joint_key.base_hash, j, ciphertext),
        )
    except ProofError as e:
        raise ThresholdError(
            "partial-proof", f"partial decryption proof fails ({e.check})", subject=who
        ) from e


def verify_partials(
    items: Sequence[tuple[PartialDecryption, Ciphertext]],
    joint_key: JointKey,
    *,
    engine: BallotEngine | None = None,
) -> list[ThresholdError | None]:
    """:func:`verify_partial` of each ``(partial, ciphertext)``: ``None`` or the error it raises.

    With an ``engine`` (``crypto.select_engine``) the Chaum–Pedersen proofs are checked together by its
    batch check (``engine.verify_proofs``) and the reference runs only on those it refuses, so every error
    is the reference's."""
    for partial, ciphertext in items:
        if not isinstance(partial, PartialDecryption) or not isinstance(ciphertext, Ciphertext):
            raise TypeError("verify_partials takes PartialDecryption and Ciphertext pairs")
    out: list[ThresholdError | None] = [None] * len(items)
    batch: list[int] = []
    for n, (partial, ciphertext) in enumerate(items):
        if engine is not None and 1 <= partial.trustee <= joint_key.trustees:
            batch.append(n)
        else:
            out[n] = _partial_error(partial, ciphertext, joint_key)
    if batch:
        from ._native import ChaumPedersenStatement

        statements = []
        for n in batch:
            partial, ciphertext = items[n]
            j = partial.trustee
            context = partial_decryption_context(joint_key.base_hash, j, ciphertext)
            statements.append(
                ChaumPedersenStatement(
                    joint_key.public_share(j), ciphertext.a, partial.decryption_share, partial.proof, context
                )
            )
        assert engine is not None
        for n, refused in zip(batch, engine.verify_proofs(statements), strict=True):
            if refused is not None:
                out[n] = _partial_error(*items[n], joint_key)
    return out


def _partial_error(
    partial: PartialDecryption, ciphertext: Ciphertext, joint_key: JointKey
) -> ThresholdError | None:
    try:
        verify_partial(partial, ciphertext, joint_key)
    except ThresholdError as e:
        return e
    return None


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A partial decryption left out of :func:`combine`, with the failed check."""

    trustee: int
    check: str
    reason: str


@dataclass(frozen=True, slots=True)
class CombinedDecryption:
    """``point = B - Σ_{j∈used} λ_j·D_j`` (``= m·G``), the ``t`` trustees used and the excluded partials."""

    point: Point
    used: tuple[int, ...]
    excluded: tuple[Exclusion, ...]


def combine(
    ciphertext: Ciphertext, partials: Iterable[PartialDecryption], joint_key: JointKey
) -> CombinedDecryption:
    """Spec §T4.3: verify every partial, exclude (and report) invalid or duplicate ones, and interpolate with
    the ``t`` valid partials of lowest trustee index. Raises ThresholdError ``too-few-partials`` when fewer
    than ``t`` valid partials remain."""
    valid: dict[int, PartialDecryption] = {}
    excluded: list[Exclusion] = []
    seen: set[int] = set()
    for p in partials:
        if p.trustee in seen:
            excluded.append(
                Exclusion(p.trustee, "partial-duplicate", "more than one partial from this trustee")
            )
            valid.pop(p.trustee, None)
            continue
        seen.add(p.trustee)
        try:
            verify_partial(p, ciphertext, joint_key)
        except ThresholdError as e:
            excluded.append(Exclusion(p.trustee, e.check, str(e)))
            continue
        valid[p.trustee] = p
    t = joint_key.threshold
    if len(valid) < t:
        raise ThresholdError(
            "too-few-partials", f"{len(valid)} valid partial decryptions, need t = {t}", subject="combine"
        )
    used = tuple(sorted(valid)[:t])
    acc = lagrange_combine({j: valid[j].decryption_share for j in used})
    return CombinedDecryption(ciphertext.b - acc, used, tuple(excluded))


@dataclass(frozen=True, slots=True)
class CombinedTally:
    """Result of :func:`combine_tally`: one ``m·G`` per ciphertext, the trustees used, the exclusions."""

    points: tuple[Point, ...]
    used: tuple[int, ...]
    excluded: tuple[Exclusion, ...]


def combine_tally(
    ciphertexts: Sequence[Ciphertext],
    partials: Mapping[int, Sequence[PartialDecryption]],
    joint_key: JointKey,
) -> CombinedTally:
    """Spec §T4.4: decrypt many ciphertexts with one set of trustees.

    ``partials[j]`` is trustee ``j``'s submission: one partial decryption per ciphertext, in the same order.
    A trustee is excluded as a whole (and reported once) if its submission has the wrong length
    (``partial-count``), names another trustee (``partial-trustee``) or any partial fails (``partial-proof``,
    the reason names the ciphertext position). The ``t`` valid trustees of lowest index decrypt everything.
    Raises ThresholdError ``too-few-partials`` if fewer than ``t`` trustees remain.
    """
    cts = tuple(ciphertexts)
    if not all(isinstance(c, Ciphertext) for c in cts):
        raise TypeError("combine_tally takes Ciphertexts")
    if not all(is_int(j) for j in partials):
        raise TypeError("partials are keyed by integer trustee index")
    valid: list[int] = []
    excluded: list[Exclusion] = []
    for j in sorted(partials):
        sub = tuple(partials[j])
        if not 1 <= j <= joint_key.trustees:
            excluded.append(Exclusion(j, "partial-trustee", f"no trustee {j} in 1..{joint_key.trustees}"))
            continue
        if len(sub) != len(cts):
            excluded.append(Exclusion(j, "partial-count", f"{len(sub)} partials for {len(cts)} ciphertexts"))
            continue
        failure: Exclusion | None = None
        for pos, (p, ct) in enumerate(zip(sub, cts, strict=True)):
            if p.trustee != j:
                failure = Exclusion(j, "partial-trustee", f"partial {pos} names trustee {p.trustee}")
                break
            try:
                verify_partial(p, ct, joint_key)
            except ThresholdError as e:
                failure = Exclusion(j, e.check, f"ciphertext {pos}: {e}")
                break
        if failure is not None:
            excluded.append(failure)
        else:
            valid.append(j)
    t = joint_key.threshold
    if len(valid) < t:
        raise ThresholdError(
            "too-few-partials", f"{len(valid)} valid trustees, need t = {t}", subject="combine_tally"
        )
    used = tuple(valid[:t])
    points = [
        ct.b - lagrange_combine({j: partials[j][pos].decryption_share for j in used})
        for pos, ct in enumerate(cts)
    ]
    return CombinedTally(tuple(points), used, tuple(excluded))
