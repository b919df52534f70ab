"""HAZMAT: t-of-n threshold trustees (Feldman/Pedersen DKG, complaints, threshold ElGamal decryption).

Normative description: Part II of ``docs/protocol.md`` (sections T1–T6); the ``§T…`` below refer to it.

Key generation (§T3), for trustee (dealer) ``i`` in ``1..n`` and threshold ``t``:

1. Draw an X25519 key pair and a polynomial ``P_i(z) = a_i0 + a_i1·z + ... + a_i,t-1·z^(t-1)`` with nonzero
   random coefficients; publish :class:`TrusteeCommitments`: ``C_ik = a_ik·G`` for ``k = 0..t-1``, each with a
   Schnorr proof bound to ``("feldman-coefficient", base_hash, t, n, i, k, x25519_public_key)``.
2. For every other trustee ``j`` publish :class:`EncryptedShare`: ``P_i(j)`` in a PyNaCl ``Box`` from ``i``'s
   X25519 key to ``j``'s, with a plaintext header binding the election and the pair.
3. Trustee ``j`` decrypts and checks ``P_i(j)·G == Σ_k j^k·C_ik``; if that fails it publishes a
   :class:`Complaint` revealing the Box shared key of the pair. The dealer may publish a
   :class:`ComplaintAnswer` revealing ``P_i(j)``. Anyone runs :func:`resolve_complaint`.
4. :func:`qualify` gives the qualified dealers ``Q``; the joint key is ``K = Σ_{i∈Q} C_i0``, trustee ``j``'s
   secret share is ``s_j = Σ_{i∈Q} P_i(j)`` and its public share ``S_j = Σ_{i∈Q} Σ_k j^k·C_ik``
   (:class:`JointKey`, :func:`public_share`).

Decryption (§T4): trustee ``j`` publishes ``D_j = s_j·A`` with a Chaum–Pedersen proof that
``log_G(S_j) == log_A(D_j)`` (:class:`PartialDecryption`); :func:`combine` verifies every partial, excludes
and reports the invalid ones, and interpolates ``M = B - Σ_j λ_j·D_j`` over ``t`` valid ones.

Everything that can come from outside is validated; checks raise :class:`~crypto._errors.ThresholdError`
(``check`` names the failed check, ``subject`` the trustee) and decoding raises
:class:`~crypto._errors.InvalidEncoding`. Secrets (:class:`TrusteeKeyGen`, :class:`TrusteeKey`) serialise to
plain dicts; the caller must protect them at rest.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import nacl.exceptions
import nacl.utils
from nacl.bindings import crypto_scalarmult
from nacl.public import Box, PrivateKey, PublicKey
from nacl.secret import SecretBox

from ._codec import exact_keys, fixed_hex
from ._elgamal import Ciphertext
from ._errors import InvalidEncoding, ProofError, ThresholdError
from ._group import IDENTITY, G, L, Point, Scalar
from ._hash import TranscriptItem
from ._proofs import (
    ChaumPedersenProof,
    RandomSource,
    SchnorrProof,
    prove_chaum_pedersen,
    prove_schnorr,
    verify_chaum_pedersen,
    verify_schnorr,
)

__all__ = [
    "COEFFICIENT_LABEL",
    "ENCRYPTED_SHARE_LEN",
    "MAX_TRUSTEES",
    "PARTIAL_DECRYPTION_LABEL",
    "SHARE_PLAINTEXT_LEN",
    "CombinedDecryption",
    "CombinedTally",
    "Complaint",
    "ComplaintAnswer",
    "ComplaintOutcome",
    "ComplaintResolution",
    "EncryptedShare",
    "Exclusion",
    "JointKey",
    "PartialDecryption",
    "Qualification",
    "TrusteeCommitments",
    "TrusteeKey",
    "TrusteeKeyGen",
    "check_parameters",
    "coefficient_context",
    "combine",
    "combine_tally",
    "joint_public_key",
    "lagrange_coefficient",
    "lagrange_combine",
    "partial_decryption_context",
    "public_share",
    "public_share_reference",
    "qualify",
    "resolve_complaint",
    "verify_partial",
    "verify_share",
]

#: Largest supported number of trustees.
MAX_TRUSTEES: Final[int] = 255
#: First context item of the Schnorr proof of a Feldman coefficient commitment.
COEFFICIENT_LABEL: Final[str] = "feldman-coefficient"
#: First context item of the Chaum–Pedersen proof of a partial decryption.
PARTIAL_DECRYPTION_LABEL: Final[str] = "partial-decryption"
#: base_hash (32) || u32be sender || u32be recipient || share (32)
SHARE_PLAINTEXT_LEN: Final[int] = 32 + 4 + 4 + 32
#: nonce (24) || Poly1305 tag (16) || XSalsa20 ciphertext of the plaintext
ENCRYPTED_SHARE_LEN: Final[int] = Box.NONCE_SIZE + 16 + SHARE_PLAINTEXT_LEN

_X25519_PROBE: Final[bytes] = bytes(31) + b"\x40"


# ------------------------------------------------------------------------------------------- validation


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_parameters(threshold: int, trustees: int) -> None:
    """Require ``1 <= threshold <= trustees <= MAX_TRUSTEES`` (``ValueError``/``InvalidEncoding``)."""
    if not _is_int(threshold) or not _is_int(trustees):
        raise InvalidEncoding("threshold and number of trustees are integers")
    if not 1 <= threshold <= trustees <= MAX_TRUSTEES:
        raise InvalidEncoding(f"need 1 <= t <= n <= {MAX_TRUSTEES}, got t={threshold}, n={trustees}")


def _index(v: object, n: int, what: str) -> int:
    if not _is_int(v):
        raise InvalidEncoding(f"{what} is an integer")
    assert isinstance(v, int)
    if not 1 <= v <= n:
        raise InvalidEncoding(f"{what} must be in 1..{n}, got {v}")
    return v


def _base_hash(b: object) -> bytes:
    if not isinstance(b, bytes) or len(b) != 32:
        raise InvalidEncoding("the election base hash is 32 bytes")
    return b


def _x25519_public(b: object) -> bytes:
    if not isinstance(b, bytes) or len(b) != 32:
        raise InvalidEncoding("an X25519 public key is 32 bytes")
    try:  # libsodium refuses a point whose product with a clamped scalar is zero (small order)
        crypto_scalarmult(_X25519_PROBE, b)
    except nacl.exceptions.CryptoError as e:
        raise InvalidEncoding("X25519 public key of small order") from e
    return b


def _list(v: Any, what: str) -> list[Any]:
    if not isinstance(v, list):
        raise InvalidEncoding(f"{what} is a list")
    return v


def _pair(dealer: int, recipient: int) -> str:
    return f"dealer {dealer} -> trustee {recipient}"


# ------------------------------------------------------------------------------------- polynomial math


def coefficient_context(
    base_hash: bytes, threshold: int, trustees: int, dealer: int, k: int, x25519_public_key: bytes
) -> tuple[TranscriptItem, ...]:
    """Context of the Schnorr proof for ``C_dealer,k`` (spec §T3.1)."""
    return (COEFFICIENT_LABEL, base_hash, threshold, trustees, dealer, k, x25519_public_key)


def partial_decryption_context(
    base_hash: bytes, trustee: int, ciphertext: Ciphertext
) -> tuple[TranscriptItem, ...]:
    """Context of the Chaum–Pedersen proof of trustee ``j``'s partial decryption (spec §T4.1)."""
    return (PARTIAL_DECRYPTION_LABEL, base_hash, trustee, ciphertext.b)


def _eval_poly(coefficients: Sequence[Scalar], x: int) -> Scalar:
    acc = 0
    for a in reversed(coefficients):
        acc = (acc * x + a.value) % L
    return Scalar(acc)


def _eval_commitments(points: Sequence[Point], x: int) -> Point:
    """Horner in the exponent: ``Σ_k x^k·points[k]``."""
    xs = Scalar(x)
    acc = points[-1]
    for p in reversed(points[:-1]):
        acc = xs * acc + p
    return acc


def lagrange_coefficient(j: int, indices: Iterable[int]) -> Scalar:
    """``λ_j = Π_{m ∈ indices, m ≠ j} m / (m - j) mod L`` (interpolation at 0).

    ``j`` must be one of ``indices`` (distinct positive integers)."""
    idx = sorted(set(indices))
    if j not in idx or any(not _is_int(m) or m < 1 for m in idx):
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


# ------------------------------------------------------------------------------------ public values


@dataclass(frozen=True, slots=True)
class TrusteeCommitments:
    """What dealer ``trustee`` publishes: Feldman commitments ``C_k``, their Schnorr proofs, X25519 key."""

    trustee: int
    commitments: tuple[Point, ...]
    proofs: tuple[SchnorrProof, ...]
    x25519_public_key: bytes

    def __post_init__(self) -> None:
        _index(self.trustee, MAX_TRUSTEES, "trustee index")
        if not isinstance(self.commitments, tuple) or not isinstance(self.proofs, tuple):
            raise TypeError("commitments and proofs are tuples")
        if not all(isinstance(c, Point) for c in self.commitments):
            raise TypeError("commitments are Points")
        if not all(isinstance(p, SchnorrProof) for p in self.proofs):
            raise TypeError("proofs are SchnorrProofs")
        if not 1 <= len(self.commitments) <= MAX_TRUSTEES or len(self.proofs) != len(self.commitments):
            raise InvalidEncoding("one Schnorr proof per commitment, 1..MAX_TRUSTEES commitments")
        _x25519_public(self.x25519_public_key)

    @property
    def threshold(self) -> int:
        return len(self.commitments)

    def verify(self, *, base_hash: bytes, threshold: int, trustees: int) -> None:
        """Check count, indices, non-identity and every Schnorr proof (spec §T3.1); raise ThresholdError."""
        _base_hash(base_hash)
        check_parameters(threshold, trustees)
        who = f"trustee {self.trustee}"
        if self.trustee > trustees:
            raise ThresholdError("trustee-index", f"index {self.trustee} > n = {trustees}", subject=who)
        if len(self.commitments) != threshold:
            raise ThresholdError(
                "commitment-count",
                f"{len(self.commitments)} commitments, expected t = {threshold}",
                subject=who,
            )
        for k, (c, proof) in enumerate(zip(self.commitments, self.proofs, strict=True)):
            if c.is_identity:
                raise ThresholdError("commitment-identity", f"commitment {k} is the identity", subject=who)
            ctx = coefficient_context(base_hash, threshold, trustees, self.trustee, k, self.x25519_public_key)
            try:
                verify_schnorr(c, proof, context=ctx)
            except ProofError as e:
                raise ThresholdError(
                    "coefficient-proof", f"Schnorr proof of commitment {k} does not verify", subject=who
                ) from e

    def evaluate(self, j: int) -> Point:
        """``Σ_k j^k·C_k``: the public image ``P(j)·G`` of the share for trustee ``j``."""
        _index(j, MAX_TRUSTEES, "recipient index")
        return _eval_commitments(self.commitments, j)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trustee": self.trustee,
            "commitments": [c.hex() for c in self.commitments],
            "proofs": [p.to_dict() for p in self.proofs],
            "x25519_public_key": self.x25519_public_key.hex(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> TrusteeCommitments:
        d = exact_keys(d, {"trustee", "commitments", "proofs", "x25519_public_key"}, "trustee commitments")
        return cls(
            trustee=_index(d["trustee"], MAX_TRUSTEES, "trustee index"),
            commitments=tuple(Point.from_hex(c) for c in _list(d["commitments"], "commitments")),
            proofs=tuple(SchnorrProof.from_dict(p) for p in _list(d["proofs"], "proofs")),
            x25519_public_key=fixed_hex(d["x25519_public_key"], 32, "X25519 public key"),
        )


@dataclass(frozen=True, slots=True)
class EncryptedShare:
    """``P_sender(recipient)`` encrypted with ``Box(sender_x25519_private, recipient_x25519_public)``.

    ``ciphertext`` = 24-byte nonce || crypto_box_easy output (16-byte tag || 72-byte encrypted plaintext).
    """

    sender: int
    recipient: int
    ciphertext: bytes

    def __post_init__(self) -> None:
        _index(self.sender, MAX_TRUSTEES, "sender index")
        _index(self.recipient, MAX_TRUSTEES, "recipient index")
        if self.sender == self.recipient:
            raise InvalidEncoding("a dealer does not send a share to itself")
        if not isinstance(self.ciphertext, bytes) or len(self.ciphertext) != ENCRYPTED_SHARE_LEN:
            raise InvalidEncoding(f"an encrypted share is {ENCRYPTED_SHARE_LEN} bytes")

    def to_dict(self) -> dict[str, Any]:
        return {"sender": self.sender, "recipient": self.recipient, "ciphertext": self.ciphertext.hex()}

    @classmethod
    def from_dict(cls, d: Any) -> EncryptedShare:
        d = exact_keys(d, {"sender", "recipient", "ciphertext"}, "encrypted share")
        return cls(
            sender=_index(d["sender"], MAX_TRUSTEES, "sender index"),
            recipient=_index(d["recipient"], MAX_TRUSTEES, "recipient index"),
            ciphertext=fixed_hex(d["ciphertext"], ENCRYPTED_SHARE_LEN, "encrypted share"),
        )


def _share_plaintext(base_hash: bytes, sender: int, recipient: int, share: Scalar) -> bytes:
    return base_hash + sender.to_bytes(4, "big") + recipient.to_bytes(4, "big") + share.to_bytes()


def verify_share(dealer: TrusteeCommitments, recipient: int, share: Scalar) -> None:
    """Check ``share·G == Σ_k recipient^k·C_k`` (spec §T3.3); raise ThresholdError ``share-commitment``."""
    if not isinstance(share, Scalar):
        raise TypeError("a share is a Scalar")
    if share * G != dealer.evaluate(recipient):
        raise ThresholdError(
            "share-commitment",
            "the share does not match the dealer's Feldman commitments",
            subject=_pair(dealer.trustee, recipient),
        )


def _open_share(plaintext: bytes, base_hash: bytes, dealer: TrusteeCommitments, recipient: int) -> Scalar:
    """Parse and check a decrypted share plaintext (spec §T3.3 checks 2-4)."""
    subject = _pair(dealer.trustee, recipient)
    expected = base_hash + dealer.trustee.to_bytes(4, "big") + recipient.to_bytes(4, "big")
    if len(plaintext) != SHARE_PLAINTEXT_LEN or plaintext[:40] != expected:
        raise ThresholdError(
            "share-header", "share plaintext has the wrong length or header", subject=subject
        )
    try:
        share = Scalar.from_bytes(plaintext[40:])
    except InvalidEncoding as e:
        raise ThresholdError("share-encoding", "share is not a canonical scalar", subject=subject) from e
    verify_share(dealer, recipient, share)
    return share


@dataclass(frozen=True, slots=True)
class Complaint:
    """Trustee ``complainant`` accuses ``dealer``; ``shared_key`` is their Box shared key (evidence)."""

    dealer: int
    complainant: int
    shared_key: bytes

    def __post_init__(self) -> None:
        _index(self.dealer, MAX_TRUSTEES, "dealer index")
        _index(self.complainant, MAX_TRUSTEES, "complainant index")
        if self.dealer == self.complainant:
            raise InvalidEncoding("a trustee cannot complain about itself")
        if not isinstance(self.shared_key, bytes) or len(self.shared_key) != 32:
            raise InvalidEncoding("the Box shared key is 32 bytes")

    def to_dict(self) -> dict[str, Any]:
        return {"complainant": self.complainant, "dealer": self.dealer, "evidence": self.shared_key.hex()}

    @classmethod
    def from_dict(cls, d: Any) -> Complaint:
        d = exact_keys(d, {"complainant", "dealer", "evidence"}, "complaint")
        return cls(
            dealer=_index(d["dealer"], MAX_TRUSTEES, "dealer index"),
            complainant=_index(d["complainant"], MAX_TRUSTEES, "complainant index"),
            shared_key=fixed_hex(d["evidence"], 32, "Box shared key"),
        )


@dataclass(frozen=True, slots=True)
class ComplaintAnswer:
    """The dealer's public answer to a complaint: the disputed share ``P_dealer(complainant)`` in clear."""

    dealer: int
    complainant: int
    share: Scalar

    def __post_init__(self) -> None:
        _index(self.dealer, MAX_TRUSTEES, "dealer index")
        _index(self.complainant, MAX_TRUSTEES, "complainant index")
        if not isinstance(self.share, Scalar):
            raise TypeError("the revealed share is a Scalar")

    def to_dict(self) -> dict[str, Any]:
        return {"complainant": self.complainant, "dealer": self.dealer, "share": self.share.hex()}

    @classmethod
    def from_dict(cls, d: Any) -> ComplaintAnswer:
        d = exact_keys(d, {"complainant", "dealer", "share"}, "complaint answer")
        return cls(
            dealer=_index(d["dealer"], MAX_TRUSTEES, "dealer index"),
            complainant=_index(d["complainant"], MAX_TRUSTEES, "complainant index"),
            share=Scalar.from_hex(d["share"]),
        )


class ComplaintOutcome(enum.StrEnum):
    """How a complaint ended (spec §T3.4)."""

    #: The dealer did not answer, or answered with a share that fails its commitments.
    DEALER_DISQUALIFIED = "dealer-disqualified"
    #: The complainant's own revealed key opens the published ciphertext to a valid share: a false complaint.
    COMPLAINT_REJECTED = "complaint-rejected"
    #: The dealer answered with a valid share; it stays qualified and the share is now public.
    SHARE_REVEALED = "share-revealed"


@dataclass(frozen=True, slots=True)
class ComplaintResolution:
    """The publicly checkable result of :func:`resolve_complaint`.

    ``at_fault`` is who provably misbehaved (``None`` if the evidence cannot tell); ``share`` is the valid
    share ``P_dealer(complainant)`` the complainant must use, when the dealer stays qualified.
    """

    dealer: int
    complainant: int
    outcome: ComplaintOutcome
    at_fault: Literal["dealer", "complainant"] | None
    share: Scalar | None = field(repr=False)
    reason: str

    @property
    def dealer_disqualified(self) -> bool:
        return self.outcome is ComplaintOutcome.DEALER_DISQUALIFIED


def resolve_complaint(
    complaint: Complaint,
    *,
    dealer: TrusteeCommitments,
    encrypted_share: EncryptedShare | None,
    answer: ComplaintAnswer | None,
    base_hash: bytes,
) -> ComplaintResolution:
    """Decide a complaint from public data only (spec §T3.4).

    ``dealer`` must be the dealer's commitments, already verified; ``encrypted_share`` the ciphertext the
    dealer published for the complainant (``None`` if it published none); ``answer`` the dealer's answer
    (``None`` if it gave none by the deadline). Raises ThresholdError ``complaint-mismatch`` if the pieces do
    not belong together. Rules, in order:

    1. an answer whose share fails the commitments disqualifies the dealer;
    2. if the revealed shared key opens the published ciphertext to a valid share, the complaint is rejected
       and the complainant is at fault;
    3. otherwise a valid answer resolves the complaint (the dealer is at fault if the key opened the
       ciphertext to an invalid share, else nobody can be blamed);
    4. otherwise (no answer) the dealer is disqualified.
    """
    _base_hash(base_hash)
    i, j = complaint.dealer, complaint.complainant
    subject = _pair(i, j)
    if dealer.trustee != i:
        raise ThresholdError("complaint-mismatch", "commitments of another dealer", subject=subject)
    if encrypted_share is not None and (encrypted_share.sender, encrypted_share.recipient) != (i, j):
        raise ThresholdError("complaint-mismatch", "encrypted share of another pair", subject=subject)
    if answer is not None and (answer.dealer, answer.complainant) != (i, j):
        raise ThresholdError("complaint-mismatch", "answer to another complaint", subject=subject)

    def result(
        outcome: ComplaintOutcome,
        at_fault: Literal["dealer", "complainant"] | None,
        share: Scalar | None,
        why: str,
    ) -> ComplaintResolution:
        return ComplaintResolution(i, j, outcome, at_fault, share, why)

    answer_ok = False
    if answer is not None:
        try:
            verify_share(dealer, j, answer.share)
            answer_ok = True
        except ThresholdError:
            return result(
                ComplaintOutcome.DEALER_DISQUALIFIED,
                "dealer",
                None,
                "the answer does not match the commitments",
            )

    opened: Literal["valid", "invalid", "unopened"] = "unopened"
    decrypted: Scalar | None = None
    if encrypted_share is not None:
        try:
            plaintext = SecretBox(complaint.shared_key).decrypt(encrypted_share.ciphertext)
        except nacl.exceptions.CryptoError:
            pass
        else:
            try:
                decrypted = _open_share(plaintext, base_hash, dealer, j)
                opened = "valid"
            except ThresholdError:
                opened = "invalid"

    if opened == "valid":
        return result(
            ComplaintOutcome.COMPLAINT_REJECTED,
            "complainant",
            decrypted,
            "the complainant's revealed key opens the ciphertext to a valid share",
        )
    if answer_ok:
        assert answer is not None
        if opened == "invalid":
            return result(
                ComplaintOutcome.SHARE_REVEALED,
                "dealer",
                answer.share,
                "the ciphertext held an invalid share; the dealer revealed a valid one",
            )
        return result(
            ComplaintOutcome.SHARE_REVEALED,
            None,
            answer.share,
            "the dealer revealed a valid share (the ciphertext could not be opened with the revealed key)",
        )
    return result(
        ComplaintOutcome.DEALER_DISQUALIFIED,
        "dealer",
        None,
        "no valid share was published" if opened != "invalid" else "the ciphertext held an invalid share",
    )


# -------------------------------------------------------------------------------------- qualification


@dataclass(frozen=True, slots=True)
class Qualification:
    """Result of :func:`qualify`: the qualified dealers ``Q`` (sorted) and why the others are out."""

    trustees: int
    qualified: tuple[int, ...]
    disqualified: Mapping[int, str]


def qualify(
    commitments: Iterable[TrusteeCommitments],
    *,
    base_hash: bytes,
    threshold: int,
    trustees: int,
    resolutions: Iterable[ComplaintResolution] = (),
) -> Qualification:
    """Spec §T3.5: a dealer is qualified iff it published exactly one set of commitments that verifies and no
    complaint disqualified it. Raises ThresholdError ``too-few-qualified`` if fewer than ``t`` remain."""
    _base_hash(base_hash)
    check_parameters(threshold, trustees)
    out: dict[int, str] = {}
    seen: dict[int, TrusteeCommitments] = {}
    for c in commitments:
        if not isinstance(c, TrusteeCommitments):
            raise TypeError("qualify takes TrusteeCommitments")
        if c.trustee > trustees:
            raise ThresholdError("trustee-index", f"index {c.trustee} > n", subject=f"trustee {c.trustee}")
        if c.trustee in seen:
            out[c.trustee] = "published commitments more than once"
            continue
        seen[c.trustee] = c
        try:
            c.verify(base_hash=base_hash, threshold=threshold, trustees=trustees)
        except ThresholdError as e:
            out[c.trustee] = f"invalid commitments ({e.check})"
    for i in range(1, trustees + 1):
        if i not in seen:
            out.setdefault(i, "published no commitments")
    for r in resolutions:
        if r.dealer_disqualified:
            out.setdefault(r.dealer, f"complaint by trustee {r.complainant}: {r.reason}")
    qualified = tuple(i for i in range(1, trustees + 1) if i not in out)
    if len(qualified) < threshold:
        raise ThresholdError(
            "too-few-qualified", f"only {len(qualified)} qualified dealers, need at least t = {threshold}"
        )
    return Qualification(trustees, qualified, dict(sorted(out.items())))


def joint_public_key(commitments: Sequence[TrusteeCommitments]) -> Point:
    """``K = Σ_i C_i0`` over the given (qualified) dealers."""
    acc = IDENTITY
    for c in commitments:
        acc = acc + c.commitments[0]
    return acc


def public_share(commitments: Sequence[TrusteeCommitments], j: int) -> Point:
    """``S_j = Σ_i Σ_k j^k·C_ik`` over the given (qualified) dealers, computed as ``Σ_k j^k·(Σ_i C_ik)``."""
    if not commitments:
        raise ValueError("public_share needs at least one dealer")
    t = commitments[0].threshold
    if any(c.threshold != t for c in commitments):
        raise ValueError("all dealers must commit to the same number of coefficients")
    aggregated = []
    for k in range(t):
        acc = IDENTITY
        for c in commitments:
            acc = acc + c.commitments[k]
        aggregated.append(acc)
    return _eval_commitments(aggregated, _index(j, MAX_TRUSTEES, "trustee index"))


def public_share_reference(commitments: Sequence[TrusteeCommitments], j: int) -> Point:
    """Slow, obviously correct ``S_j``: the literal double sum with ``j^k mod L`` (cross-checks the above)."""
    acc = IDENTITY
    for c in commitments:
        for k, ck in enumerate(c.commitments):
            acc = acc + Scalar(pow(j, k, L)) * ck
    return acc


@dataclass(frozen=True, slots=True)
class JointKey:
    """The outcome of the key ceremony (spec §T3.5): public key ``K`` and public shares ``S_1..S_n``."""

    base_hash: bytes
    threshold: int
    qualified: tuple[int, ...]
    public_key: Point
    public_shares: tuple[Point, ...]  # public_shares[j - 1] = S_j

    def __post_init__(self) -> None:
        _base_hash(self.base_hash)
        if not isinstance(self.public_shares, tuple) or not all(
            isinstance(p, Point) for p in self.public_shares
        ):
            raise TypeError("public_shares is a tuple of Points")
        check_parameters(self.threshold, len(self.public_shares))
        n = len(self.public_shares)
        if (
            not isinstance(self.qualified, tuple)
            or list(self.qualified) != sorted(set(self.qualified))
            or len(self.qualified) < self.threshold
            or any(_index(i, n, "qualified dealer") != i for i in self.qualified)
        ):
            raise InvalidEncoding("qualified is a sorted list of at least t distinct indices in 1..n")
        if not isinstance(self.public_key, Point) or self.public_key.is_identity:
            raise InvalidEncoding("the joint public key is a point other than the identity")

    @property
    def trustees(self) -> int:
        return len(self.public_shares)

    def public_share(self, j: int) -> Point:
        return self.public_shares[_index(j, self.trustees, "trustee index") - 1]

    @classmethod
    def from_commitments(
        cls, commitments: Iterable[TrusteeCommitments], qualification: Qualification, *, base_hash: bytes
    ) -> JointKey:
        """Derive the joint key from the commitments of the qualified dealers (others are ignored)."""
        by_index = {c.trustee: c for c in commitments}
        missing = [i for i in qualification.qualified if i not in by_index]
        if missing:
            raise ValueError(f"no commitments for qualified dealers {missing}")
        q = [by_index[i] for i in qualification.qualified]
        n = qualification.trustees
        return cls(
            base_hash=base_hash,
            threshold=q[0].threshold,
            qualified=qualification.qualified,
            public_key=joint_public_key(q),
            public_shares=tuple(public_share(q, j) for j in range(1, n + 1)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_hash": self.base_hash.hex(),
            "threshold": self.threshold,
            "qualified": list(self.qualified),
            "joint_key": self.public_key.hex(),
            "public_shares": {str(j): p.hex() for j, p in enumerate(self.public_shares, start=1)},
        }

    @classmethod
    def from_dict(cls, d: Any) -> JointKey:
        d = exact_keys(d, {"base_hash", "threshold", "qualified", "joint_key", "public_shares"}, "joint key")
        shares = d["public_shares"]
        if not isinstance(shares, Mapping) or set(shares) != {str(j) for j in range(1, len(shares) + 1)}:
            raise InvalidEncoding('public_shares maps "1".."n" to points')
        if not _is_int(d["threshold"]):
            raise InvalidEncoding("threshold is an integer")
        qualified = _list(d["qualified"], "qualified")
        if not all(_is_int(i) for i in qualified):
            raise InvalidEncoding("qualified holds integers")
        return cls(
            base_hash=fixed_hex(d["base_hash"], 32, "base hash"),
            threshold=d["threshold"],
            qualified=tuple(qualified),
            public_key=Point.from_hex(d["joint_key"]),
            public_shares=tuple(Point.from_hex(shares[str(j)]) for j in range(1, len(shares) + 1)),
        )


# -------------------------------------------------------------------------------------- dealer secrets


@dataclass(frozen=True, slots=True, repr=False)
class TrusteeKeyGen:
    """SECRET: one trustee's key-generation state (its polynomial and X25519 private key)."""

    trustee: int
    threshold: int
    trustees: int
    base_hash: bytes
    coefficients: tuple[Scalar, ...]
    x25519_private_key: PrivateKey
    commitments: TrusteeCommitments

    def __post_init__(self) -> None:
        check_parameters(self.threshold, self.trustees)
        _index(self.trustee, self.trustees, "trustee index")
        _base_hash(self.base_hash)
        if not isinstance(self.x25519_private_key, PrivateKey):
            raise TypeError("x25519_private_key is a nacl.public.PrivateKey")
        if len(self.coefficients) != self.threshold or not all(
            isinstance(a, Scalar) and a for a in self.coefficients
        ):
            raise InvalidEncoding("t nonzero coefficients")
        c = self.commitments
        if (
            c.trustee != self.trustee
            or c.x25519_public_key != bytes(self.x25519_private_key.public_key)
            or c.commitments != tuple(a * G for a in self.coefficients)
        ):
            raise InvalidEncoding("the commitments do not belong to these secrets")
        c.verify(base_hash=self.base_hash, threshold=self.threshold, trustees=self.trustees)

    def __repr__(self) -> str:
        return f"TrusteeKeyGen(trustee={self.trustee}, t={self.threshold}, n={self.trustees}, <secret>)"

    @classmethod
    def generate(
        cls,
        trustee: int,
        *,
        threshold: int,
        trustees: int,
        base_hash: bytes,
        rng: RandomSource | None = None,
    ) -> TrusteeKeyGen:
        """Spec §T3.1. ``rng`` (tests/vectors only) is read in this order: 32 bytes X25519 private key, then
        64 bytes per coefficient ``a_0..a_t-1`` (a zero is redrawn), then 64 bytes per Schnorr nonce."""
        check_parameters(threshold, trustees)
        _index(trustee, trustees, "trustee index")
        _base_hash(base_hash)
        sk = PrivateKey(rng.randbytes(32)) if rng is not None else PrivateKey.generate()
        pk = bytes(sk.public_key)
        coefficients = [Scalar.random_nonzero(rng) for _ in range(threshold)]
        points = tuple(a * G for a in coefficients)
        proofs = tuple(
            prove_schnorr(
                a, C, context=coefficient_context(base_hash, threshold, trustees, trustee, k, pk), rng=rng
            )
            for k, (a, C) in enumerate(zip(coefficients, points, strict=True))
        )
        return cls(
            trustee, threshold, trustees, base_hash, tuple(coefficients), sk,
            TrusteeCommitments(trustee, points, proofs, pk),
        )  # fmt: skip

    def share_for(self, j: int) -> Scalar:
        """``P_i(j)``."""
        return _eval_poly(self.coefficients, _index(j, self.trustees, "recipient index"))

    def _box(self, other: TrusteeCommitments) -> Box:
        return Box(self.x25519_private_key, PublicKey(other.x25519_public_key))

    def encrypt_share(
        self, recipient: TrusteeCommitments, *, rng: RandomSource | None = None
    ) -> EncryptedShare:
        """Spec §T3.2: encrypt ``P_i(j)`` for trustee ``j`` (``rng``: 24 bytes of nonce, tests only)."""
        j = _index(recipient.trustee, self.trustees, "recipient index")
        if j == self.trustee:
            raise ValueError("a dealer keeps its own share")
        nonce = rng.randbytes(Box.NONCE_SIZE) if rng is not None else nacl.utils.random(Box.NONCE_SIZE)
        msg = _share_plaintext(self.base_hash, self.trustee, j, self.share_for(j))
        return EncryptedShare(self.trustee, j, bytes(self._box(recipient).encrypt(msg, nonce)))

    def decrypt_share(self, share: EncryptedShare, dealer: TrusteeCommitments) -> Scalar:
        """Spec §T3.3: open and check a share sent to this trustee; raise ThresholdError (then complain)."""
        if share.recipient != self.trustee or share.sender != dealer.trustee:
            raise ValueError("this encrypted share is not from that dealer to this trustee")
        try:
            plaintext = self._box(dealer).decrypt(share.ciphertext)
        except nacl.exceptions.CryptoError as e:
            raise ThresholdError(
                "share-decryption", "the share does not decrypt", subject=_pair(dealer.trustee, self.trustee)
            ) from e
        return _open_share(plaintext, self.base_hash, dealer, self.trustee)

    def complain(self, dealer: TrusteeCommitments) -> Complaint:
        """Spec §T3.4: accuse ``dealer``, revealing the Box shared key of the pair as evidence."""
        if dealer.trustee == self.trustee:
            raise ValueError("a trustee cannot complain about itself")
        return Complaint(dealer.trustee, self.trustee, self._box(dealer).shared_key())

    def answer(self, complaint: Complaint) -> ComplaintAnswer:
        """Spec §T3.4: answer a complaint against this dealer by revealing the disputed share."""
        if complaint.dealer != self.trustee:
            raise ValueError("the complaint is about another dealer")
        return ComplaintAnswer(self.trustee, complaint.complainant, self.share_for(complaint.complainant))

    def finalize(self, received: Mapping[int, Scalar], qualified: Sequence[TrusteeCommitments]) -> TrusteeKey:
        """Spec §T3.5: ``s_j = Σ_{i∈Q} P_i(j)``. ``received`` maps each other qualified dealer to its share
        (decrypted, or revealed in a complaint resolution); each is re-checked against its commitments."""
        q_idx = sorted(c.trustee for c in qualified)
        if len(set(q_idx)) != len(q_idx) or len(q_idx) < self.threshold:
            raise ValueError("qualified dealers must be distinct and at least t")
        expected = {i for i in q_idx if i != self.trustee}
        if set(received) != expected:
            raise ValueError(f"need exactly the shares of dealers {sorted(expected)}")
        total = Scalar(0)
        for c in qualified:
            if c.trustee == self.trustee:
                if c != self.commitments:
                    raise ValueError("the qualified commitments of this trustee are not its own")
                total = total + self.share_for(self.trustee)
            else:
                verify_share(c, self.trustee, received[c.trustee])
                total = total + received[c.trustee]
        key = TrusteeKey(self.trustee, self.threshold, self.trustees, self.base_hash, total)
        if key.public_share != public_share(
            qualified, self.trustee
        ):  # pragma: no cover - implied by the above
            raise ThresholdError("public-share", "secret share does not match the public share")
        return key

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "tvote-trustee-keygen/2",
            "trustee": self.trustee,
            "threshold": self.threshold,
            "trustees": self.trustees,
            "base_hash": self.base_hash.hex(),
            "coefficients": [a.hex() for a in self.coefficients],
            "x25519_private_key": bytes(self.x25519_private_key).hex(),
            "commitments": self.commitments.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> TrusteeKeyGen:
        keys = {"format", "trustee", "threshold", "trustees", "base_hash", "coefficients"}
        d = exact_keys(d, keys | {"x25519_private_key", "commitments"}, "trustee key-generation secrets")
        if d["format"] != "tvote-trustee-keygen/2":
            raise InvalidEncoding("unknown trustee key-generation format")
        check_parameters(d["threshold"], d["trustees"])
        return cls(
            trustee=_index(d["trustee"], d["trustees"], "trustee index"),
            threshold=d["threshold"],
            trustees=d["trustees"],
            base_hash=fixed_hex(d["base_hash"], 32, "base hash"),
            coefficients=tuple(Scalar.from_hex(a) for a in _list(d["coefficients"], "coefficients")),
            x25519_private_key=PrivateKey(fixed_hex(d["x25519_private_key"], 32, "X25519 private key")),
            commitments=TrusteeCommitments.from_dict(d["commitments"]),
        )


# -------------------------------------------------------------------------------------------- decryption


@dataclass(frozen=True, slots=True)
class PartialDecryption:
    """Trustee ``j``'s decryption share ``D_j = s_j·A`` of one ciphertext, with its Chaum–Pedersen proof."""

    trustee: int
    decryption_share: Point
    proof: ChaumPedersenProof

    def __post_init__(self) -> None:
        _index(self.trustee, MAX_TRUSTEES, "trustee index")
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
            trustee=_index(d["trustee"], MAX_TRUSTEES, "trustee index"),
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
        _index(self.trustee, self.trustees, "trustee index")
        _base_hash(self.base_hash)
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
            trustee=_index(d["trustee"], d["trustees"], "trustee index"),
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
    if not all(_is_int(j) for j in partials):
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
