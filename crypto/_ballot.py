"""Ballots: the election's shape, encrypted ballots, their hash and tracking code, and ballot secrets.

The values of the ballot layer, over :mod:`crypto._elgamal` and :mod:`crypto._disjunctive`. The normative
description of every structure and check is ``docs/protocol.md`` ("Ballots", "Tracking codes",
"Benaloh challenge"). The recipes on these values live beside this module, each using only it (and the
layers below), never each other:

* here: :class:`ContestSpec` / :class:`ElectionContext` (what a ballot must look like, and under which key
  and election base hash it is encrypted); :class:`EncryptedBallot` with its strict decoding, its
  :meth:`~EncryptedBallot.ballot_hash` and :meth:`~EncryptedBallot.tracking_code`; the secrets a voting
  device keeps (:class:`BallotSecrets`) and the public opening of a challenged ballot
  (:class:`RevealedBallot`); the proof contexts both sides use.
* :mod:`crypto._ballot_encrypt`, the voting device's side: :func:`~crypto._ballot_encrypt.encrypt_ballot`
  and, for a challenged ballot, :func:`~crypto._ballot_encrypt.reveal`.
* :mod:`crypto._ballot_verify`, anyone's side: :func:`~crypto._ballot_verify.verify_ballot` (one at a
  time or in a batch), :func:`~crypto._ballot_verify.verify_revealed` (the Benaloh audit of a spoiled
  ballot) and :func:`~crypto._ballot_verify.tally_ciphertexts` (the homomorphic aggregate).
"""

from __future__ import annotations

import json as _json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from ._codec import exact_keys, fixed_hex
from ._disjunctive import MAX_ALLOWED, PURPOSE, DisjunctiveProof
from ._elgamal import Ciphertext, sum_ciphertexts
from ._errors import InvalidEncoding
from ._group import Point, Scalar
from ._hash import encode_items, encode_transcript, tagged_sha256

__all__ = [
    "BALLOT_FORMAT_VERSION",
    "MAX_SELECTIONS",
    "ZERO_ONE",
    "BallotSecrets",
    "ContestSecrets",
    "ContestSpec",
    "ElectionContext",
    "EncryptedBallot",
    "EncryptedContest",
    "EncryptedSelection",
    "RevealedBallot",
    "SelectionSecret",
    "ballot_shape",
    "contest_context",
    "normalize_tracking_code",
    "proof_heads",
    "selection_context",
    "tracking_code_from_hash",
]

BALLOT_FORMAT_VERSION: Final[int] = 2
#: Most selections in one contest: its allowed sums {min..max} ⊆ {0..n} then have at most
#: ``MAX_ALLOWED`` = 1024 values, the cap of a disjunctive proof (docs/protocol.md §8.1, §9.1).
MAX_SELECTIONS: Final[int] = MAX_ALLOWED - 1
_ID_RE: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CROCKFORD: Final[str] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_SELECTION_ROLE: Final[str] = "ballot-selection"
_CONTEST_ROLE: Final[str] = "ballot-contest"
ZERO_ONE: Final[tuple[int, int]] = (0, 1)


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise ValueError(f"{what} must be 1-64 characters of [A-Za-z0-9_.-], got {value!r}")
    return value


# --- the election's shape ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContestSpec:
    """One contest: its selections (in ballot order) and how many of them a voter may choose.

    ``min_selections <= (number chosen) <= max_selections``. Kinds: choose one of n is ``(0, 1)``
    (blank allowed) or ``(1, 1)``; choose up to k of n (approval) is ``(0, k)``; a yes/no referendum is
    ``("yes", "no")`` with ``(0, 1)``.
    """

    contest_id: str
    selection_ids: tuple[str, ...]
    min_selections: int
    max_selections: int

    def __post_init__(self) -> None:
        _check_id(self.contest_id, "contest_id")
        if not isinstance(self.selection_ids, tuple) or not self.selection_ids:
            raise ValueError("selection_ids is a non-empty tuple")
        if len(self.selection_ids) > MAX_SELECTIONS:
            raise ValueError(f"contest {self.contest_id}: more than {MAX_SELECTIONS} selections")
        for s in self.selection_ids:
            _check_id(s, "selection id")
        if len(set(self.selection_ids)) != len(self.selection_ids):
            raise ValueError(f"contest {self.contest_id}: duplicate selection ids")
        for v in (self.min_selections, self.max_selections):
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError("min_selections and max_selections are ints")
        if not 0 <= self.min_selections <= self.max_selections <= len(self.selection_ids):
            raise ValueError(
                f"contest {self.contest_id}: need 0 <= min_selections <= max_selections <= "
                f"{len(self.selection_ids)}"
            )

    @classmethod
    def one_of(cls, contest_id: str, selection_ids: Sequence[str], *, required: bool = False) -> ContestSpec:
        return cls(contest_id, tuple(selection_ids), 1 if required else 0, 1)

    @classmethod
    def up_to(cls, contest_id: str, selection_ids: Sequence[str], k: int) -> ContestSpec:
        return cls(contest_id, tuple(selection_ids), 0, k)

    @classmethod
    def yes_no(cls, contest_id: str) -> ContestSpec:
        return cls(contest_id, ("yes", "no"), 0, 1)

    @property
    def allowed_sums(self) -> tuple[int, ...]:
        return tuple(range(self.min_selections, self.max_selections + 1))


@dataclass(frozen=True, slots=True)
class ElectionContext:
    """What ballots are encrypted against: the election base hash, joint key and contests (in order)."""

    base_hash: bytes
    public_key: Point
    contests: tuple[ContestSpec, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.base_hash, bytes) or len(self.base_hash) != 32:
            raise ValueError("base_hash is 32 bytes")
        if not isinstance(self.public_key, Point):
            raise TypeError("public_key is a Point")
        if self.public_key.is_identity:
            raise ValueError("the election public key must not be the identity")
        if not isinstance(self.contests, tuple) or not self.contests:
            raise ValueError("contests is a non-empty tuple of ContestSpec")
        if not all(isinstance(c, ContestSpec) for c in self.contests):
            raise TypeError("contests is a tuple of ContestSpec")
        ids = [c.contest_id for c in self.contests]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate contest ids")

    def contest(self, contest_id: str) -> ContestSpec:
        for c in self.contests:
            if c.contest_id == contest_id:
                return c
        raise KeyError(contest_id)


def selection_context(base_hash: bytes, nonce: bytes, contest_id: str, selection_id: str) -> tuple[Any, ...]:
    """The transcript context of one selection's 0/1 proof (the election, the ballot nonce, the ids)."""
    return (_SELECTION_ROLE, base_hash, nonce, contest_id, selection_id)


def proof_heads(
    base_hash: bytes, nonce: bytes, contest_id: str, selection_ids: Sequence[str]
) -> tuple[list[bytes], bytes]:
    """:func:`~crypto._disjunctive.context_head` of each selection's :func:`selection_context` (in order)
    and of the :func:`contest_context`: the items the contexts share (base hash, nonce, contest id) are
    encoded once, the roles' part once per process (``tests/crypto/test_ballot.py`` checks these bytes
    against the contexts')."""
    shared = encode_items((base_hash, nonce, contest_id))
    sel_head, contest_head = _role_heads()
    common = sel_head + shared
    return [common + _id_item(sid) for sid in selection_ids], contest_head + shared


@lru_cache(maxsize=1)
def _role_heads() -> tuple[bytes, bytes]:
    """The start of each proof's transcript up to its role: the purpose, ``n_ctx`` and the role."""
    n_sel = len(selection_context(b"", b"", "", ""))
    n_contest = len(contest_context(b"", b"", ""))
    return (
        encode_transcript(PURPOSE, (n_sel, _SELECTION_ROLE)),
        encode_transcript(PURPOSE, (n_contest, _CONTEST_ROLE)),
    )


@lru_cache(maxsize=4096)
def _id_item(selection_id: str) -> bytes:
    return encode_items((selection_id,))


def contest_context(base_hash: bytes, nonce: bytes, contest_id: str) -> tuple[Any, ...]:
    """The transcript context of one contest's proof that the number chosen is allowed."""
    return (_CONTEST_ROLE, base_hash, nonce, contest_id)


# --- encrypted ballots ----------------------------------------------------------------------------------


def _id_field(v: Any, what: str) -> str:
    try:
        return _check_id(v, what)
    except ValueError as e:
        raise InvalidEncoding(str(e)) from None


def _list_field(v: Any, what: str) -> list[Any]:
    if not isinstance(v, list) or not v:
        raise InvalidEncoding(f"{what} is a non-empty list")
    return v


@dataclass(frozen=True, slots=True)
class EncryptedSelection:
    selection_id: str
    ciphertext: Ciphertext
    proof: DisjunctiveProof  # plaintext ∈ {0, 1}

    def to_dict(self) -> dict[str, Any]:
        return {
            "selection_id": self.selection_id,
            "ciphertext": self.ciphertext.to_dict(),
            "proof": self.proof.to_dict(),
        }

    @classmethod
    def _of(cls, selection_id: str, ciphertext: Ciphertext, proof: DisjunctiveProof) -> EncryptedSelection:
        """Internal constructor for the encryption's own values (the same object as the dataclass's
        ``__init__`` makes, without its ``object.__setattr__`` per field)."""
        sel = object.__new__(cls)
        _set_selection_id(sel, selection_id)
        _set_selection_ciphertext(sel, ciphertext)
        _set_selection_proof(sel, proof)
        return sel

    @classmethod
    def from_dict(cls, d: Any) -> EncryptedSelection:
        return cls._decode(d, Point.from_hex)

    @classmethod
    def _decode(cls, d: Any, commitment: Callable[[str], Point]) -> EncryptedSelection:
        d = exact_keys(d, {"selection_id", "ciphertext", "proof"}, "a selection")
        return cls(
            _id_field(d["selection_id"], "selection_id"),
            Ciphertext.from_dict(d["ciphertext"]),
            DisjunctiveProof._decode(d["proof"], commitment),
        )


@dataclass(frozen=True, slots=True)
class EncryptedContest:
    contest_id: str
    selections: tuple[EncryptedSelection, ...]
    proof: DisjunctiveProof  # sum of the selections ∈ [min, max]

    def to_dict(self) -> dict[str, Any]:
        return {
            "contest_id": self.contest_id,
            "selections": [s.to_dict() for s in self.selections],
            "proof": self.proof.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> EncryptedContest:
        return cls._decode(d, Point.from_hex)

    @classmethod
    def _decode(cls, d: Any, commitment: Callable[[str], Point]) -> EncryptedContest:
        d = exact_keys(d, {"contest_id", "selections", "proof"}, "a contest")
        sels = _list_field(d["selections"], "selections")
        return cls(
            _id_field(d["contest_id"], "contest_id"),
            tuple(EncryptedSelection._decode(s, commitment) for s in sels),
            DisjunctiveProof._decode(d["proof"], commitment),
        )

    def sum_ciphertext(self) -> Ciphertext:
        """The homomorphic sum of the selections (what the contest proof is about)."""
        return sum_ciphertexts(s.ciphertext for s in self.selections)


@dataclass(frozen=True, slots=True)
class EncryptedBallot:
    """An encrypted ballot. Its dict form (``to_dict``) is what is signed, published and hashed."""

    election_hash: bytes
    ballot_nonce: bytes
    contests: tuple[EncryptedContest, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.election_hash, bytes) or len(self.election_hash) != 32:
            raise ValueError("election_hash is 32 bytes")
        if not isinstance(self.ballot_nonce, bytes) or len(self.ballot_nonce) != 32:
            raise ValueError("ballot_nonce is 32 bytes")

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": BALLOT_FORMAT_VERSION,
            "election_hash": self.election_hash.hex(),
            "ballot_nonce": self.ballot_nonce.hex(),
            "contests": [c.to_dict() for c in self.contests],
        }

    @classmethod
    def from_dict(cls, d: Any) -> EncryptedBallot:
        """Strict decoding (exact keys, lowercase hex, valid points, canonical scalars)."""
        return cls._decode(d, Point.from_hex)

    @classmethod
    def _decode(cls, d: Any, commitment: Callable[[str], Point]) -> EncryptedBallot:
        d = exact_keys(d, {"version", "election_hash", "ballot_nonce", "contests"}, "a ballot")
        if type(d["version"]) is not int or d["version"] != BALLOT_FORMAT_VERSION:
            raise InvalidEncoding(f"unsupported ballot version {d['version']!r}")
        return cls(
            fixed_hex(d["election_hash"], 32, "election_hash"),
            fixed_hex(d["ballot_nonce"], 32, "ballot_nonce"),
            tuple(EncryptedContest._decode(c, commitment) for c in _list_field(d["contests"], "contests")),
        )

    def canonical_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of :meth:`to_dict`.

        Every string of a ballot's dict form is an identifier (``[A-Za-z0-9_.-]``) or lowercase hex, every
        number a small non-negative integer: for such values RFC 8785 is exactly ``json.dumps`` with sorted
        keys and no whitespace (ASCII keys sort the same by UTF-16 code unit and by code point; no string
        needs an escape), which is C code instead of the ``rfc8785`` package's Python.
        ``tests/crypto/test_ballot.py`` checks the two agree."""
        return _json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode("ascii")

    def ballot_hash(self) -> bytes:
        """``tagged_sha256("ballot-hash", canonical_json(to_dict()))`` (32 bytes)."""
        return tagged_sha256("ballot-hash", self.canonical_bytes())

    def tracking_code(self) -> str:
        """The voter-facing rendering of :meth:`ballot_hash` (see :func:`tracking_code_from_hash`)."""
        return tracking_code_from_hash(self.ballot_hash())


def tracking_code_from_hash(ballot_hash: bytes) -> str:
    """Crockford base32 of the first 10 bytes (80 bits, most significant first), 4 groups of 4."""
    if not isinstance(ballot_hash, bytes) or len(ballot_hash) != 32:
        raise ValueError("a ballot hash is 32 bytes")
    n = int.from_bytes(ballot_hash[:10], "big")
    chars = [_CROCKFORD[(n >> (5 * (15 - i))) & 31] for i in range(16)]
    return "-".join("".join(chars[i : i + 4]) for i in range(0, 16, 4))


def normalize_tracking_code(text: str) -> str:
    """Read back a typed tracking code: case-insensitive, ``O→0``, ``I/L→1``, hyphens/spaces optional.

    Raises ``ValueError`` unless the result is 16 Crockford symbols; returns the canonical form.
    """
    t = text.upper().replace("-", "").replace(" ", "").translate(str.maketrans("OIL", "011"))
    if len(t) != 16 or any(c not in _CROCKFORD for c in t):
        raise ValueError("a tracking code is 16 Crockford base32 symbols")
    return "-".join(t[i : i + 4] for i in range(0, 16, 4))


# --- secrets and the Benaloh opening --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SelectionSecret:
    selection_id: str
    plaintext: int
    randomness: Scalar

    def __post_init__(self) -> None:
        _check_id(self.selection_id, "selection id")
        if type(self.plaintext) is not int or self.plaintext not in ZERO_ONE:
            raise ValueError("a selection plaintext is 0 or 1")
        if not isinstance(self.randomness, Scalar):
            raise TypeError("randomness is a Scalar")

    @classmethod
    def _of(cls, selection_id: str, plaintext: int, randomness: Scalar) -> SelectionSecret:
        """Internal constructor for the encryption's own values (an id of the election's contest spec, a
        plaintext it chose in {0, 1}, the Scalar it drew): the same object without ``__post_init__``."""
        sec = object.__new__(cls)
        _set_secret_id(sec, selection_id)
        _set_secret_plaintext(sec, plaintext)
        _set_secret_randomness(sec, randomness)
        return sec

    def to_dict(self) -> dict[str, Any]:
        return {
            "selection_id": self.selection_id,
            "plaintext": self.plaintext,
            "randomness": self.randomness.hex(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> SelectionSecret:
        d = exact_keys(d, {"selection_id", "plaintext", "randomness"}, "a revealed selection")
        if type(d["plaintext"]) is not int or d["plaintext"] not in ZERO_ONE:
            raise InvalidEncoding("a revealed plaintext is the integer 0 or 1")
        return cls(
            _id_field(d["selection_id"], "selection_id"), d["plaintext"], Scalar.from_hex(d["randomness"])
        )


# the slots' own setters (as crypto._group's), for SelectionSecret._of and EncryptedSelection._of
_set_secret_id: Final = SelectionSecret.__dict__["selection_id"].__set__
_set_secret_plaintext: Final = SelectionSecret.__dict__["plaintext"].__set__
_set_secret_randomness: Final = SelectionSecret.__dict__["randomness"].__set__
_set_selection_id: Final = EncryptedSelection.__dict__["selection_id"].__set__
_set_selection_ciphertext: Final = EncryptedSelection.__dict__["ciphertext"].__set__
_set_selection_proof: Final = EncryptedSelection.__dict__["proof"].__set__


@dataclass(frozen=True, slots=True)
class ContestSecrets:
    contest_id: str
    selections: tuple[SelectionSecret, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"contest_id": self.contest_id, "selections": [s.to_dict() for s in self.selections]}

    @classmethod
    def from_dict(cls, d: Any) -> ContestSecrets:
        d = exact_keys(d, {"contest_id", "selections"}, "a revealed contest")
        sels = _list_field(d["selections"], "selections")
        return cls(
            _id_field(d["contest_id"], "contest_id"), tuple(SelectionSecret.from_dict(s) for s in sels)
        )


@dataclass(frozen=True, slots=True)
class BallotSecrets:
    """What the voting device keeps until the voter casts (then it is erased) or challenges."""

    contests: tuple[ContestSecrets, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"contests": [c.to_dict() for c in self.contests]}

    @classmethod
    def from_dict(cls, d: Any) -> BallotSecrets:
        d = exact_keys(d, {"contests"}, "ballot secrets")
        return cls(tuple(ContestSecrets.from_dict(c) for c in _list_field(d["contests"], "contests")))


@dataclass(frozen=True, slots=True)
class RevealedBallot:
    """A challenged (spoiled) ballot's openings, bound to its ballot hash. Public; never counted."""

    ballot_hash: bytes
    contests: tuple[ContestSecrets, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.ballot_hash, bytes) or len(self.ballot_hash) != 32:
            raise ValueError("ballot_hash is 32 bytes")

    def to_dict(self) -> dict[str, Any]:
        return {"ballot_hash": self.ballot_hash.hex(), "contests": [c.to_dict() for c in self.contests]}

    @classmethod
    def from_dict(cls, d: Any) -> RevealedBallot:
        d = exact_keys(d, {"ballot_hash", "contests"}, "a revealed ballot")
        return cls(
            fixed_hex(d["ballot_hash"], 32, "ballot_hash"),
            tuple(ContestSecrets.from_dict(c) for c in _list_field(d["contests"], "contests")),
        )


def ballot_shape(contests: Iterable[EncryptedContest | ContestSecrets]) -> list[tuple[str, list[str]]]:
    """``(contest id, [selection ids])`` in order: what a ballot and its secrets or opening must share."""
    return [(c.contest_id, [s.selection_id for s in c.selections]) for c in contests]
