"""HAZMAT: the trustees' distributed key generation, dealing (Feldman/Pedersen DKG, spec §T3.1–§T3.3).

Normative description: Part II of ``docs/protocol.md`` (sections T1–T6); the ``§T…`` below refer to it.

Key generation (§T3), for trustee (dealer) ``i`` in ``1..n`` and threshold ``t``:

1. Draw an X25519 key pair and a polynomial ``P_i(z) = a_i0 + a_i1·z + ... + a_i,t-1·z^(t-1)`` with nonzero
   random coefficients; publish :class:`TrusteeCommitments`: ``C_ik = a_ik·G`` for ``k = 0..t-1``, each with a
   Schnorr proof bound to ``("feldman-coefficient", base_hash, t, n, i, k, x25519_public_key)``.
2. For every other trustee ``j`` publish :class:`EncryptedShare`: ``P_i(j)`` in a PyNaCl ``Box`` from ``i``'s
   X25519 key to ``j``'s, with a plaintext header binding the election and the pair.
3. Trustee ``j`` decrypts and checks ``P_i(j)·G == Σ_k j^k·C_ik`` (:func:`verify_share`); if that fails it
   publishes a complaint (:mod:`crypto._complaints`, §T3.4).
4. The qualified dealers and the joint key follow (:mod:`crypto._joint_key`, §T3.5).

This module holds the public values of steps 1–3 and the checks anyone can run on them; the dealer's secret
side (drawing the polynomial, encrypting and opening shares) is :class:`~crypto._trustee.TrusteeKeyGen`.
The threshold modules build on one another in one direction::

    _dkg (§T3.1–3)  <  _complaints (§T3.4)  <  _joint_key (§T3.5)  <  _decryption (§T4)  <  _trustee

and share the validation helpers below (``check_index``, ``check_base_hash``, …), which are not part of any
public surface. Everything that can come from outside is validated; checks raise
:class:`~crypto._errors.ThresholdError` (``check`` names the failed check, ``subject`` the trustee) and
decoding raises :class:`~crypto._errors.InvalidEncoding`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import nacl.exceptions
from nacl.bindings import crypto_scalarmult
from nacl.public import Box

from ._codec import exact_keys, fixed_hex
from ._errors import InvalidEncoding, ProofError, ThresholdError
from ._group import G, Point, Scalar
from ._hash import TranscriptItem
from ._proofs import SchnorrProof, verify_schnorr

if TYPE_CHECKING:
    from ._native import BallotEngine

__all__ = [
    "COEFFICIENT_LABEL",
    "ENCRYPTED_SHARE_LEN",
    "MAX_TRUSTEES",
    "SHARE_PLAINTEXT_LEN",
    "EncryptedShare",
    "TrusteeCommitments",
    "check_base_hash",
    "check_index",
    "check_parameters",
    "coefficient_context",
    "eval_commitments",
    "is_int",
    "json_list",
    "open_share",
    "pair_subject",
    "share_plaintext",
    "verify_share",
]

#: Largest supported number of trustees.
MAX_TRUSTEES: Final[int] = 255
#: First context item of the Schnorr proof of a Feldman coefficient commitment.
COEFFICIENT_LABEL: Final[str] = "feldman-coefficient"
#: base_hash (32) || u32be sender || u32be recipient || share (32)
SHARE_PLAINTEXT_LEN: Final[int] = 32 + 4 + 4 + 32
#: nonce (24) || Poly1305 tag (16) || XSalsa20 ciphertext of the plaintext
ENCRYPTED_SHARE_LEN: Final[int] = Box.NONCE_SIZE + 16 + SHARE_PLAINTEXT_LEN

_X25519_PROBE: Final[bytes] = bytes(31) + b"\x40"


# ------------------------------------------------------------- validation (shared by the threshold modules)


def is_int(v: object) -> bool:
    """A JSON integer: an ``int`` that is not a ``bool``."""
    return isinstance(v, int) and not isinstance(v, bool)


def check_parameters(threshold: int, trustees: int) -> None:
    """Require ``1 <= threshold <= trustees <= MAX_TRUSTEES`` (``ValueError``/``InvalidEncoding``)."""
    if not is_int(threshold) or not is_int(trustees):
        raise InvalidEncoding("threshold and number of trustees are integers")
    if not 1 <= threshold <= trustees <= MAX_TRUSTEES:
        raise InvalidEncoding(f"need 1 <= t <= n <= {MAX_TRUSTEES}, got t={threshold}, n={trustees}")


def check_index(v: object, n: int, what: str) -> int:
    """``v`` if it is a trustee index in ``1..n``; InvalidEncoding naming ``what`` otherwise."""
    if not is_int(v):
        raise InvalidEncoding(f"{what} is an integer")
    assert isinstance(v, int)
    if not 1 <= v <= n:
        raise InvalidEncoding(f"{what} must be in 1..{n}, got {v}")
    return v


def check_base_hash(b: object) -> bytes:
    """``b`` if it is a 32-byte election base hash; InvalidEncoding otherwise."""
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


def json_list(v: Any, what: str) -> list[Any]:
    """``v`` if it is a JSON array; InvalidEncoding naming ``what`` otherwise."""
    if not isinstance(v, list):
        raise InvalidEncoding(f"{what} is a list")
    return v


def pair_subject(dealer: int, recipient: int) -> str:
    """The ``subject`` of an error about the share from ``dealer`` to ``recipient``."""
    return f"dealer {dealer} -> trustee {recipient}"


# ------------------------------------------------------------------- commitments and shares (§T3.1–§T3.3)


def coefficient_context(
    base_hash: bytes, threshold: int, trustees: int, dealer: int, k: int, x25519_public_key: bytes
) -> tuple[TranscriptItem, ...]:
    """Context of the Schnorr proof for ``C_dealer,k`` (spec §T3.1)."""
    return (COEFFICIENT_LABEL, base_hash, threshold, trustees, dealer, k, x25519_public_key)


def eval_commitments(points: Sequence[Point], x: int) -> Point:
    """Horner in the exponent: ``Σ_k x^k·points[k]``."""
    xs = Scalar(x)
    acc = points[-1]
    for p in reversed(points[:-1]):
        acc = xs * acc + p
    return acc


@dataclass(frozen=True, slots=True)
class TrusteeCommitments:
    """What dealer ``trustee`` publishes: Feldman commitments ``C_k``, their Schnorr proofs, X25519 key."""

    trustee: int
    commitments: tuple[Point, ...]
    proofs: tuple[SchnorrProof, ...]
    x25519_public_key: bytes

    def __post_init__(self) -> None:
        check_index(self.trustee, MAX_TRUSTEES, "trustee index")
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

    def verify(
        self, *, base_hash: bytes, threshold: int, trustees: int, engine: BallotEngine | None = None
    ) -> None:
        """Check count, indices, non-identity and every Schnorr proof (spec §T3.1); raise ThresholdError.

        With an ``engine`` (``crypto.select_engine``) the proofs are first checked together by its batch
        check (``engine.verify_proofs``); the reference then checks only a proof it refuses, so the error
        raised is the reference's."""
        check_base_hash(base_hash)
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
        contexts = [
            coefficient_context(base_hash, threshold, trustees, self.trustee, k, self.x25519_public_key)
            for k in range(len(self.commitments))
        ]
        refused: list[str | None] | None = None
        if engine is not None and not any(c.is_identity for c in self.commitments):
            from ._native import SchnorrStatement

            pairs = zip(self.commitments, self.proofs, contexts, strict=True)
            refused = engine.verify_proofs([SchnorrStatement(c, p, x) for c, p, x in pairs])
        for k, (c, proof) in enumerate(zip(self.commitments, self.proofs, strict=True)):
            if c.is_identity:
                raise ThresholdError("commitment-identity", f"commitment {k} is the identity", subject=who)
            if refused is not None and refused[k] is None:
                continue  # the batch check accepted it
            ctx = contexts[k]
            try:
                verify_schnorr(c, proof, context=ctx)
            except ProofError as e:
                raise ThresholdError(
                    "coefficient-proof", f"Schnorr proof of commitment {k} does not verify", subject=who
                ) from e

    def evaluate(self, j: int) -> Point:
        """``Σ_k j^k·C_k``: the public image ``P(j)·G`` of the share for trustee ``j``."""
        check_index(j, MAX_TRUSTEES, "recipient index")
        return eval_commitments(self.commitments, j)

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
            trustee=check_index(d["trustee"], MAX_TRUSTEES, "trustee index"),
            commitments=tuple(Point.from_hex(c) for c in json_list(d["commitments"], "commitments")),
            proofs=tuple(SchnorrProof.from_dict(p) for p in json_list(d["proofs"], "proofs")),
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
        check_index(self.sender, MAX_TRUSTEES, "sender index")
        check_index(self.recipient, MAX_TRUSTEES, "recipient index")
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
            sender=check_index(d["sender"], MAX_TRUSTEES, "sender index"),
            recipient=check_index(d["recipient"], MAX_TRUSTEES, "recipient index"),
            ciphertext=fixed_hex(d["ciphertext"], ENCRYPTED_SHARE_LEN, "encrypted share"),
        )


def share_plaintext(base_hash: bytes, sender: int, recipient: int, share: Scalar) -> bytes:
    return base_hash + sender.to_bytes(4, "big") + recipient.to_bytes(4, "big") + share.to_bytes()


def verify_share(dealer: TrusteeCommitments, recipient: int, share: Scalar) -> None:
    """Check ``share·G == Σ_k recipient^k·C_k`` (spec §T3.3); raise ThresholdError ``share-commitment``."""
    if not isinstance(share, Scalar):
        raise TypeError("a share is a Scalar")
    if share * G != dealer.evaluate(recipient):
        raise ThresholdError(
            "share-commitment",
            "the share does not match the dealer's Feldman commitments",
            subject=pair_subject(dealer.trustee, recipient),
        )


def open_share(plaintext: bytes, base_hash: bytes, dealer: TrusteeCommitments, recipient: int) -> Scalar:
    """Parse and check a decrypted share plaintext (spec §T3.3 checks 2-4)."""
    subject = pair_subject(dealer.trustee, recipient)
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
