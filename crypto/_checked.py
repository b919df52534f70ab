"""One ballot in dict form, checked as a ballot box's intake checks it (``BallotEngine.check_ballot``).

The result is a :class:`CheckedBallot` (the ballot's record and hash) or the reference's error; the ballots
accepted are exactly those that ``EncryptedBallot.from_dict`` and ``verify_ballot`` accept, whichever the
engine:

* the reference engine (:func:`reference_check`): ``EncryptedBallot.from_dict`` (every point validated
  by libsodium, the Python objects built), ``verify_ballot``, then the ballot's ``to_dict()`` and
  ``ballot_hash()``;
* the native engine (:func:`native_check`): one decoding, in Rust. ``d`` is copied into the record's
  shape (:func:`ballot_copy`: new dicts and lists, nothing decoded); the native engine decodes that copy
  strictly, verifies it and gives its ballot hash; the copy is then the record, unchanged. The record is
  therefore exactly what was verified and hashed, and it equals ``EncryptedBallot.from_dict(d).to_dict()``:
  the native decoding is the reference's (``tests/native``), which accepts only canonical lowercase hex,
  exact keys and the integer version, so it gives back the very strings (and key order) of the copy.
  The native engine's refusal is never final: a ballot it refuses, or one that is not made of exact
  dicts, lists, strings and an int version (e.g. a ``str`` subclass as an id, which the reference
  accepts), is decoded and verified by the reference, which raises its own error or accepts it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ._ballot import ElectionContext, EncryptedBallot
from ._ballot_verify import verify_ballot

__all__ = ["CheckedBallot", "ballot_copy", "native_check", "reference_check"]


@dataclass(frozen=True, slots=True)
class CheckedBallot:
    """A ballot in dict form that decodes strictly (:meth:`EncryptedBallot.from_dict`) and verifies
    (:func:`crypto.verify_ballot`): what :meth:`BallotEngine.check_ballot` returns.

    ``record`` is the ballot's dict form exactly as ``EncryptedBallot.from_dict(d).to_dict()`` gives it
    (new dicts and lists, its keys in that order: what is published and hashed); ``ballot_hash`` its ballot
    hash (§10, :meth:`EncryptedBallot.ballot_hash`)."""

    record: dict[str, Any]
    ballot_hash: bytes


def reference_check(ctx: ElectionContext, d: Any) -> CheckedBallot:
    """:meth:`BallotEngine.check_ballot` by the reference: decode (libsodium checks every point), verify."""
    ballot = EncryptedBallot.from_dict(d)
    verify_ballot(ctx, ballot)
    return CheckedBallot(ballot.to_dict(), ballot.ballot_hash())


class _NotABallot(Exception):
    """:func:`ballot_copy`: the object is not made of exact dicts, lists and strings of a ballot's shape."""


def _items(d: Any, keys: frozenset[str]) -> dict[str, Any]:
    if type(d) is not dict or d.keys() != keys:
        raise _NotABallot
    return d


def _list(v: Any) -> list[Any]:
    if type(v) is not list:
        raise _NotABallot
    return v


_STR: Final = frozenset((str,))


def _str(v: Any) -> str:
    if type(v) is not str:
        raise _NotABallot
    return v


def _strs(v: Any) -> list[str]:
    """A new list of the strings of ``v``, an exact list of exact strings."""
    if type(v) is not list or not frozenset(map(type, v)) <= _STR:
        raise _NotABallot
    return v.copy()


_BALLOT_KEYS: Final = frozenset(("version", "election_hash", "ballot_nonce", "contests"))
_CONTEST_KEYS: Final = frozenset(("contest_id", "selections", "proof"))
_SELECTION_KEYS: Final = frozenset(("selection_id", "ciphertext", "proof"))
_CIPHERTEXT_KEYS: Final = frozenset(("a", "b"))
_PROOF_KEYS: Final = frozenset(("commitments", "challenges", "responses"))


def _proof_copy(v: Any) -> dict[str, Any]:
    p = _items(v, _PROOF_KEYS)
    return {
        "commitments": _strs(p["commitments"]),
        "challenges": _strs(p["challenges"]),
        "responses": _strs(p["responses"]),
    }


def _selection_copy(v: Any) -> dict[str, Any]:
    s = _items(v, _SELECTION_KEYS)
    ct = _items(s["ciphertext"], _CIPHERTEXT_KEYS)
    return {
        "selection_id": _str(s["selection_id"]),
        "ciphertext": {"a": _str(ct["a"]), "b": _str(ct["b"])},
        "proof": _proof_copy(s["proof"]),
    }


def _contest_copy(v: Any) -> dict[str, Any]:
    c = _items(v, _CONTEST_KEYS)
    return {
        "contest_id": _str(c["contest_id"]),
        "selections": [_selection_copy(s) for s in _list(c["selections"])],
        "proof": _proof_copy(c["proof"]),
    }


def ballot_copy(d: Any) -> dict[str, Any] | None:
    """A new copy of ``d`` in the shape of :meth:`EncryptedBallot.to_dict` (its dicts and lists new, its
    keys in that order, its strings and version the same objects, their values not checked), or ``None``
    unless ``d`` is made of what ``json.loads`` gives: exact ``dict`` objects with exactly a ballot's keys
    at each place, exact ``list`` objects, exact ``str`` values and an exact ``int`` version. Such objects
    run no code when read, so the copy holds exactly what the reference decoder would read from ``d``, and
    it is a tree of plain values as large as the ballot (nothing shared, nothing cyclic)."""
    try:
        b = _items(d, _BALLOT_KEYS)
        if type(b["version"]) is not int:
            raise _NotABallot
        return {
            "version": b["version"],
            "election_hash": _str(b["election_hash"]),
            "ballot_nonce": _str(b["ballot_nonce"]),
            "contests": [_contest_copy(c) for c in _list(b["contests"])],
        }
    except _NotABallot:
        return None


def native_check(
    ctx: ElectionContext, d: Any, verify: Callable[[dict[str, Any]], tuple[list[Any], Any, list[Any]]]
) -> CheckedBallot:
    """The native engine's check of ``d`` (see the module's docstring); ``verify`` is its batch check of
    one ballot in dict form (``(verdicts, sums, hashes)``, ``tvote_native.verify_ballots``)."""
    record = ballot_copy(d)
    if record is not None:
        verdicts, _, hashes = verify(record)
        if verdicts[0] is None and hashes[0] is not None:
            return CheckedBallot(record, hashes[0])
    return reference_check(ctx, d)
