"""HAZMAT: group equations of Σ-proofs and their small-exponent batch verification (reference).

Every proof of tvote v2 carries its commitments, so a verifier can hash first (recompute each challenge
from the published commitments) and check the group equations afterwards. Each equation has the form::

    Σ_i s_i·P_i  ==  R          (terms (s_i, P_i), commitment R)

:func:`check_equation` checks one equation on its own. :func:`combined_point` checks many at once: it
draws a weight ``z_e`` uniformly from ``[0, 2^128)`` per equation and computes
``Σ_e z_e·(Σ_i s_ei·P_ei − R_e)``, merging the coefficients of equal points (the generator, the election
key, a ciphertext shared by several branches); every equation holds iff the result is the identity, except
with probability at most 2^-128 per call (see ``docs/protocol.md`` §12, "Batch verification").

:func:`failing_items` runs the check over items (ballots, proofs) and bisects on failure to name exactly
the items whose equations do not all hold. The weights come from the OS CSPRNG; a caller injects a stream
only to reproduce known-answer vectors.

This module is the *reference*: its multi-scalar multiplication is one libsodium multiplication per
distinct point (no Straus/Pippenger), so it is no faster than checking each equation. It fixes the
semantics that a fast engine must reproduce.

Soundness needs a group of prime order (ristretto255): if one equation's difference ``D_e`` is not the
identity it has order L > 2^128, so for any fixed choice of the other weights at most one value of
``z_e`` in ``[0, 2^128)`` cancels it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from ._errors import CryptoError
from ._group import IDENTITY, Point, RandomSource, Scalar

__all__ = [
    "WEIGHT_BYTES",
    "Equation",
    "check_equation",
    "combined_point",
    "draw_weight",
    "failing_items",
]

#: A batch weight is 16 random bytes read little-endian: an integer in [0, 2^128).
WEIGHT_BYTES: Final[int] = 16

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Equation:
    """``Σ s_i·P_i == commitment`` for ``terms = ((s_1, P_1), …)``."""

    terms: tuple[tuple[Scalar, Point], ...]
    commitment: Point

    def lhs(self) -> Point:
        """``Σ s_i·P_i`` computed term by term (the obviously correct evaluation)."""
        acc = IDENTITY
        for s, p in self.terms:
            acc = acc + s * p
        return acc


def check_equation(eq: Equation) -> bool:
    """Whether the one equation holds (encodings are unique, so equal bytes mean equal elements)."""
    return eq.lhs() == eq.commitment


def draw_weight(rng: RandomSource | None = None) -> Scalar:
    """A batch weight: ``WEIGHT_BYTES`` random bytes read little-endian."""
    raw = rng.randbytes(WEIGHT_BYTES) if rng is not None else secrets.token_bytes(WEIGHT_BYTES)
    if not isinstance(raw, bytes) or len(raw) != WEIGHT_BYTES:
        raise ValueError("the random source must return exactly the requested number of bytes")
    return Scalar(int.from_bytes(raw, "little"))


def combined_point(equations: Iterable[Equation], rng: RandomSource | None = None) -> Point:
    """``Σ_e z_e·(Σ_i s_ei·P_ei − R_e)`` with one fresh weight per equation, drawn in order.

    Coefficients of equal points are merged before multiplying, so a point that occurs in many equations
    (``G``, the election key) costs one multiplication. The identity means every equation holds (except
    with probability ≤ 2^-128).
    """
    coefficients: dict[bytes, int] = {}
    points: dict[bytes, Point] = {}
    for eq in equations:
        z = draw_weight(rng).value
        for s, p in eq.terms:
            key = p.to_bytes()
            coefficients[key] = coefficients.get(key, 0) + z * s.value
            points[key] = p
        key = eq.commitment.to_bytes()
        coefficients[key] = coefficients.get(key, 0) - z
        points[key] = eq.commitment
    acc = IDENTITY
    for key, c in coefficients.items():
        acc = acc + Scalar(c) * points[key]
    return acc


def failing_items(
    items: Sequence[T],
    equations_of: Callable[[T], Sequence[Equation]],
    *,
    rng: RandomSource | None = None,
) -> list[int]:
    """Indices (ascending) of the ``items`` whose equations do not all hold, or whose ``equations_of``
    raised a :class:`~crypto._errors.CryptoError` (a check before the group equations failed).

    All equations of all remaining items are checked with one :func:`combined_point`; on failure the
    items are split in two halves, each checked with fresh weights, down to single items.
    """
    bad: list[int] = []
    pending: list[tuple[int, Sequence[Equation]]] = []
    for i, item in enumerate(items):
        try:
            pending.append((i, equations_of(item)))
        except CryptoError:
            bad.append(i)

    def bisect(group: list[tuple[int, Sequence[Equation]]]) -> None:
        if not group:
            return
        if combined_point((eq for _, eqs in group for eq in eqs), rng).is_identity:
            return
        if len(group) == 1:
            bad.append(group[0][0])
            return
        mid = len(group) // 2
        bisect(group[:mid])
        bisect(group[mid:])

    bisect(pending)
    return sorted(bad)
