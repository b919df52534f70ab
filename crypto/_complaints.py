"""HAZMAT: complaints in the trustees' key generation, decided from public data (spec §T3.4).

Trustee ``j`` whose share from dealer ``i`` does not decrypt or fails the dealer's commitments (§T3.3)
publishes a :class:`Complaint` revealing the Box shared key of the pair. The dealer may publish a
:class:`ComplaintAnswer` revealing ``P_i(j)``. Anyone runs :func:`resolve_complaint` on the published pieces;
its :class:`ComplaintResolution` says who is at fault and feeds :func:`~crypto._joint_key.qualify`.

Builds on :mod:`crypto._dkg` (the dealing: commitments, encrypted shares, the share check); see its docstring
for the order of the threshold modules.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal

import nacl.exceptions
from nacl.secret import SecretBox

from ._codec import exact_keys, fixed_hex
from ._dkg import (
    MAX_TRUSTEES,
    EncryptedShare,
    TrusteeCommitments,
    check_base_hash,
    check_index,
    open_share,
    pair_subject,
    verify_share,
)
from ._errors import InvalidEncoding, ThresholdError
from ._group import Scalar

__all__ = ["Complaint", "ComplaintAnswer", "ComplaintOutcome", "ComplaintResolution", "resolve_complaint"]


@dataclass(frozen=True, slots=True)
class Complaint:
    """Trustee ``complainant`` accuses ``dealer``; ``shared_key`` is their Box shared key (evidence)."""

    dealer: int
    complainant: int
    shared_key: bytes

    def __post_init__(self) -> None:
        check_index(self.dealer, MAX_TRUSTEES, "dealer index")
        check_index(self.complainant, MAX_TRUSTEES, "complainant index")
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
            dealer=check_index(d["dealer"], MAX_TRUSTEES, "dealer index"),
            complainant=check_index(d["complainant"], MAX_TRUSTEES, "complainant index"),
            shared_key=fixed_hex(d["evidence"], 32, "Box shared key"),
        )


@dataclass(frozen=True, slots=True)
class ComplaintAnswer:
    """The dealer's public answer to a complaint: the disputed share ``P_dealer(complainant)`` in clear."""

    dealer: int
    complainant: int
    share: Scalar

    def __post_init__(self) -> None:
        check_index(self.dealer, MAX_TRUSTEES, "dealer index")
        check_index(self.complainant, MAX_TRUSTEES, "complainant index")
        if not isinstance(self.share, Scalar):
            raise TypeError("the revealed share is a Scalar")

    def to_dict(self) -> dict[str, Any]:
        return {"complainant": self.complainant, "dealer": self.dealer, "share": self.share.hex()}

    @classmethod
    def from_dict(cls, d: Any) -> ComplaintAnswer:
        d = exact_keys(d, {"complainant", "dealer", "share"}, "complaint answer")
        return cls(
            dealer=check_index(d["dealer"], MAX_TRUSTEES, "dealer index"),
            complainant=check_index(d["complainant"], MAX_TRUSTEES, "complainant index"),
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
    check_base_hash(base_hash)
    i, j = complaint.dealer, complaint.complainant
    subject = pair_subject(i, j)
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
                decrypted = open_share(plaintext, base_hash, dealer, j)
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
