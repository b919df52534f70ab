"""HAZMAT: the trustee's key-generation recipe, :class:`TrusteeKeyGen` (spec §T3, secrets at rest §T5).

One trustee's secret side of the key ceremony, as a value that the service stores between steps: draw the
polynomial and the X25519 key and publish the commitments (§T3.1, :meth:`TrusteeKeyGen.generate`), encrypt a
share for every other trustee (§T3.2), open and check the shares received (§T3.3), complain or answer a
complaint (§T3.4), and finally derive the trustee's :class:`~crypto._decryption.TrusteeKey`
``s_j = Σ_{i∈Q} P_i(j)`` (§T3.5, :meth:`TrusteeKeyGen.finalize`).

Top of the threshold modules (see :mod:`crypto._dkg` for their order). :class:`TrusteeKeyGen` serialises to a
plain dict; the caller must protect it at rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.utils
from nacl.public import Box, PrivateKey, PublicKey

from ._codec import exact_keys, fixed_hex
from ._complaints import Complaint, ComplaintAnswer
from ._decryption import TrusteeKey
from ._dkg import (
    EncryptedShare,
    TrusteeCommitments,
    check_base_hash,
    check_index,
    check_parameters,
    coefficient_context,
    json_list,
    open_share,
    pair_subject,
    share_plaintext,
    verify_share,
)
from ._errors import InvalidEncoding, ThresholdError
from ._group import G, L, Scalar
from ._joint_key import public_share
from ._proofs import RandomSource, prove_schnorr

__all__ = ["TrusteeKeyGen"]


def _eval_poly(coefficients: Sequence[Scalar], x: int) -> Scalar:
    """``P(x) = Σ_k coefficients[k]·x^k mod L`` (Horner)."""
    acc = 0
    for a in reversed(coefficients):
        acc = (acc * x + a.value) % L
    return Scalar(acc)


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
        check_index(self.trustee, self.trustees, "trustee index")
        check_base_hash(self.base_hash)
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
        check_index(trustee, trustees, "trustee index")
        check_base_hash(base_hash)
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
        return _eval_poly(self.coefficients, check_index(j, self.trustees, "recipient index"))

    def _box(self, other: TrusteeCommitments) -> Box:
        return Box(self.x25519_private_key, PublicKey(other.x25519_public_key))

    def encrypt_share(
        self, recipient: TrusteeCommitments, *, rng: RandomSource | None = None
    ) -> EncryptedShare:
        """Spec §T3.2: encrypt ``P_i(j)`` for trustee ``j`` (``rng``: 24 bytes of nonce, tests only)."""
        j = check_index(recipient.trustee, self.trustees, "recipient index")
        if j == self.trustee:
            raise ValueError("a dealer keeps its own share")
        nonce = rng.randbytes(Box.NONCE_SIZE) if rng is not None else nacl.utils.random(Box.NONCE_SIZE)
        msg = share_plaintext(self.base_hash, self.trustee, j, self.share_for(j))
        return EncryptedShare(self.trustee, j, bytes(self._box(recipient).encrypt(msg, nonce)))

    def decrypt_share(self, share: EncryptedShare, dealer: TrusteeCommitments) -> Scalar:
        """Spec §T3.3: open and check a share sent to this trustee; raise ThresholdError (then complain)."""
        if share.recipient != self.trustee or share.sender != dealer.trustee:
            raise ValueError("this encrypted share is not from that dealer to this trustee")
        try:
            plaintext = self._box(dealer).decrypt(share.ciphertext)
        except nacl.exceptions.CryptoError as e:
            raise ThresholdError(
                "share-decryption",
                "the share does not decrypt",
                subject=pair_subject(dealer.trustee, self.trustee),
            ) from e
        return open_share(plaintext, self.base_hash, dealer, self.trustee)

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
            trustee=check_index(d["trustee"], d["trustees"], "trustee index"),
            threshold=d["threshold"],
            trustees=d["trustees"],
            base_hash=fixed_hex(d["base_hash"], 32, "base hash"),
            coefficients=tuple(Scalar.from_hex(a) for a in json_list(d["coefficients"], "coefficients")),
            x25519_private_key=PrivateKey(fixed_hex(d["x25519_private_key"], 32, "X25519 private key")),
            commitments=TrusteeCommitments.from_dict(d["commitments"]),
        )
