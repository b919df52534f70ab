"""HAZMAT: qualification and the joint key, the outcome of the trustees' key generation (spec §T3.5).

:func:`qualify` gives the qualified dealers ``Q``; the joint key is ``K = Σ_{i∈Q} C_i0`` and trustee ``j``'s
public share ``S_j = Σ_{i∈Q} Σ_k j^k·C_ik`` (:class:`JointKey`, :func:`public_share`, with the slow
:func:`public_share_reference` beside it). Trustee ``j``'s secret share ``s_j = Σ_{i∈Q} P_i(j)`` is
:meth:`crypto._trustee.TrusteeKeyGen.finalize`.

Builds on :mod:`crypto._dkg` and :mod:`crypto._complaints`; see :mod:`crypto._dkg` for the order of the
threshold modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._codec import exact_keys, fixed_hex
from ._complaints import ComplaintResolution
from ._dkg import (
    MAX_TRUSTEES,
    TrusteeCommitments,
    check_base_hash,
    check_index,
    check_parameters,
    eval_commitments,
    is_int,
    json_list,
)
from ._errors import InvalidEncoding, ThresholdError
from ._group import IDENTITY, L, Point, Scalar

__all__ = [
    "JointKey",
    "Qualification",
    "joint_public_key",
    "public_share",
    "public_share_reference",
    "qualify",
]


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
    check_base_hash(base_hash)
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
    return eval_commitments(aggregated, check_index(j, MAX_TRUSTEES, "trustee index"))


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
        check_base_hash(self.base_hash)
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
            or any(check_index(i, n, "qualified dealer") != i for i in self.qualified)
        ):
            raise InvalidEncoding("qualified is a sorted list of at least t distinct indices in 1..n")
        if not isinstance(self.public_key, Point) or self.public_key.is_identity:
            raise InvalidEncoding("the joint public key is a point other than the identity")

    @property
    def trustees(self) -> int:
        return len(self.public_shares)

    def public_share(self, j: int) -> Point:
        return self.public_shares[check_index(j, self.trustees, "trustee index") - 1]

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
        if not is_int(d["threshold"]):
            raise InvalidEncoding("threshold is an integer")
        qualified = json_list(d["qualified"], "qualified")
        if not all(is_int(i) for i in qualified):
            raise InvalidEncoding("qualified holds integers")
        return cls(
            base_hash=fixed_hex(d["base_hash"], 32, "base hash"),
            threshold=d["threshold"],
            qualified=tuple(qualified),
            public_key=Point.from_hex(d["joint_key"]),
            public_shares=tuple(Point.from_hex(shares[str(j)]) for j in range(1, len(shares) + 1)),
        )
