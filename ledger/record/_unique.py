"""The uniqueness rules of an election's ballots: one definition for the server's intake and the verifier.

Across every ``ballot.cast`` **and** ``ballot.spoiled`` entry of an election, and within each ballot,
each of these values appears at most once (``docs/events.md``, "Uniqueness"; check V15 ``ballot.unique``
in ``docs/verifier.md``; intake in ``docs/voting.md``):

1. ``ballot_hash`` — the hash of the whole encrypted ballot: a ballot is published once (no replay, and a
   challenged ballot can never be cast).
2. ``ballot_nonce`` — the fresh nonce every proof of a ballot is bound to. Proofs do not bind a contest to
   the rest of its ballot, only to the nonce: a repeated nonce is how a contest, with its ciphertexts and
   proofs, is moved into another ballot (Cortier–Smyth ballot copying) or how a published ballot is
   re-submitted under another hash.
3. ``pad`` — the first component ``a = r·G`` of every selection's ciphertext, drawn with fresh random
   ``r``: a repeated pad means a copied or mauled ciphertext (or broken randomness), whichever ballot it
   is in, and whichever selection.

Values are compared as published: canonical encodings in lowercase hex, which decoding a ballot enforces
(a ballot that does not decode fails V13 anyway). :func:`ballot_unique_values` lists a ballot's values
from its record form (the ``ballot`` dict of ``docs/events.md``) and skips what is malformed there, so the
verifier can run it before any decoding; :func:`repeats_within` names a value a ballot repeats itself.
The intake (``voting/service/_intake.py``) refuses a ballot that breaks a rule before it is appended,
backed by unique keys in its database; the verifier reports it as V15.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["UNIQUE_KINDS", "UniqueKind", "UniqueValue", "ballot_unique_values", "repeats_within"]

UniqueKind = Literal["ballot_hash", "ballot_nonce", "pad"]
#: the kinds, in the order :func:`ballot_unique_values` lists them
UNIQUE_KINDS: Final[tuple[UniqueKind, ...]] = ("ballot_hash", "ballot_nonce", "pad")
_WHAT: Final[dict[str, str]] = {
    "ballot_hash": "ballot hash",
    "ballot_nonce": "ballot nonce",
    "pad": "ciphertext pad",
}


@dataclass(frozen=True, slots=True)
class UniqueValue:
    """One value a rule makes unique: its ``kind``, the ``value`` (lowercase hex, as published) and
    ``where`` in the ballot it sits (``"contest/selection"`` for a pad)."""

    kind: UniqueKind
    value: str
    where: str = ""

    def describe(self) -> str:
        """Operator text, e.g. ``ciphertext pad of mayor/cand-1`` (never the value itself)."""
        return f"{_WHAT[self.kind]} of {self.where}" if self.where else _WHAT[self.kind]


#: a decoded entry's objects are dicts: checked first (an ABC check costs more)
_MAP: Final = (dict, Mapping)


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def ballot_unique_values(ballot_hash: Any, ballot: Any) -> tuple[UniqueValue, ...]:
    """Every value the rules make unique for one ballot, in a fixed order: the ballot hash, the nonce,
    then each selection's pad in ballot order. ``ballot`` is the record form (``EncryptedBallot.to_dict()``);
    values that are missing or not strings are skipped (their shape is V1/V13/V14's to report)."""
    out: list[UniqueValue] = []
    if (h := _str(ballot_hash)) is not None:
        out.append(UniqueValue("ballot_hash", h))
    if not isinstance(ballot, _MAP):
        return tuple(out)
    if (n := _str(ballot.get("ballot_nonce"))) is not None:
        out.append(UniqueValue("ballot_nonce", n))
    contests = ballot.get("contests")
    for contest in contests if isinstance(contests, list) else ():
        if not isinstance(contest, _MAP) or not isinstance(contest.get("selections"), list):
            continue
        cid = _str(contest.get("contest_id")) or "?"
        for sel in contest["selections"]:
            ct = sel.get("ciphertext") if isinstance(sel, _MAP) else None
            pad = _str(ct.get("a")) if isinstance(ct, _MAP) else None
            if pad is not None:
                sid = _str(sel.get("selection_id")) or "?"
                out.append(UniqueValue("pad", pad, f"{cid}/{sid}"))
    return tuple(out)


def repeats_within(values: Iterable[UniqueValue]) -> list[tuple[UniqueValue, UniqueValue]]:
    """``(earlier, later)`` for every value one ballot repeats itself (e.g. two selections with one pad)."""
    first: dict[tuple[str, str], UniqueValue] = {}
    out: list[tuple[UniqueValue, UniqueValue]] = []
    for v in values:
        prev = first.setdefault((v.kind, v.value), v)
        if prev is not v:
            out.append((prev, v))
    return out
