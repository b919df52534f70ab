"""Ballot recipes: encrypt, verify, hash, track, challenge (Benaloh) and aggregate encrypted ballots.

This is the safe layer over :mod:`crypto._elgamal` and :mod:`crypto._disjunctive`. The normative
description of every structure and check is ``docs/protocol.md`` ("Ballots", "Tracking codes",
"Benaloh challenge"); the names of the checks below are the ones it lists.

* :class:`ContestSpec` / :class:`ElectionContext`: what a ballot must look like, and under which key
  and election base hash it is encrypted.
* :func:`encrypt_ballot` → (:class:`EncryptedBallot`, :class:`BallotSecrets`).
* :func:`verify_ballot` raises :class:`~crypto._errors.BallotError` (structure) or
  :class:`~crypto._errors.ProofError` (a proof), naming the check and the contest/selection.
* :func:`verify_ballots`: the batch form (one random linear combination of every group equation of many
  ballots, bisected on failure); :func:`ballot_equations` gives one ballot's equations.
* :meth:`EncryptedBallot.ballot_hash` and :meth:`EncryptedBallot.tracking_code`.
* :func:`reveal` / :func:`verify_revealed`: the Benaloh cast-or-challenge audit of a spoiled ballot.
* :func:`tally_ciphertexts`: the homomorphic per-selection aggregate of (already verified) ballots.
"""

from __future__ import annotations

import json as _json
import re
import secrets as _secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._batch import Equation, failing_items
from ._codec import exact_keys, fixed_hex
from ._disjunctive import (
    MAX_ALLOWED,
    DisjunctiveProof,
    membership_equations,
    prove_membership,
    verify_membership,
)
from ._elgamal import ZERO, Ciphertext, encrypt, sum_ciphertexts
from ._errors import BallotError, BatchError, InvalidEncoding, ProofError, VerificationError
from ._group import Point, RandomSource, Scalar
from ._hash import tagged_sha256

__all__ = [
    "BALLOT_FORMAT_VERSION",
    "MAX_SELECTIONS",
    "BallotSecrets",
    "ContestSecrets",
    "ContestSpec",
    "ElectionContext",
    "EncryptedBallot",
    "EncryptedContest",
    "EncryptedSelection",
    "RevealedBallot",
    "SelectionSecret",
    "ballot_equations",
    "decode_verified_ballot",
    "encrypt_ballot",
    "normalize_tracking_code",
    "reveal",
    "tally_ciphertexts",
    "tracking_code_from_hash",
    "verify_ballot",
    "verify_ballots",
    "verify_revealed",
]

BALLOT_FORMAT_VERSION: Final[int] = 2
#: Most selections in one contest: its allowed sums {min..max} ⊆ {0..n} then have at most
#: ``MAX_ALLOWED`` = 1024 values, the cap of a disjunctive proof (docs/protocol.md §8.1, §9.1).
MAX_SELECTIONS: Final[int] = MAX_ALLOWED - 1
_ID_RE: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CROCKFORD: Final[str] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_SELECTION_ROLE: Final[str] = "ballot-selection"
_CONTEST_ROLE: Final[str] = "ballot-contest"
_ZERO_ONE: Final[tuple[int, int]] = (0, 1)


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


def _selection_context(base_hash: bytes, nonce: bytes, contest_id: str, selection_id: str) -> tuple[Any, ...]:
    return (_SELECTION_ROLE, base_hash, nonce, contest_id, selection_id)


def _contest_context(base_hash: bytes, nonce: bytes, contest_id: str) -> tuple[Any, ...]:
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
        ``tests/test_ballot.py`` checks the two agree."""
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


# --- secrets, encryption ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SelectionSecret:
    selection_id: str
    plaintext: int
    randomness: Scalar

    def __post_init__(self) -> None:
        _check_id(self.selection_id, "selection id")
        if type(self.plaintext) is not int or self.plaintext not in _ZERO_ONE:
            raise ValueError("a selection plaintext is 0 or 1")
        if not isinstance(self.randomness, Scalar):
            raise TypeError("randomness is a Scalar")

    def to_dict(self) -> dict[str, Any]:
        return {
            "selection_id": self.selection_id,
            "plaintext": self.plaintext,
            "randomness": self.randomness.hex(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> SelectionSecret:
        d = exact_keys(d, {"selection_id", "plaintext", "randomness"}, "a revealed selection")
        if type(d["plaintext"]) is not int or d["plaintext"] not in _ZERO_ONE:
            raise InvalidEncoding("a revealed plaintext is the integer 0 or 1")
        return cls(
            _id_field(d["selection_id"], "selection_id"), d["plaintext"], Scalar.from_hex(d["randomness"])
        )


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


def _validate_choices(ctx: ElectionContext, choices: Mapping[str, Sequence[str]]) -> list[frozenset[str]]:
    if not isinstance(choices, Mapping):
        raise ValueError("choices map each contest id to a list of chosen selection ids")
    known = {c.contest_id for c in ctx.contests}
    unknown = sorted(set(choices) - known, key=str)
    if unknown:
        raise ValueError(f"unknown contest(s) in choices: {', '.join(map(str, unknown))}")
    out: list[frozenset[str]] = []
    for spec in ctx.contests:
        if spec.contest_id not in choices:
            raise ValueError(
                f"contest {spec.contest_id}: no choice given (use an empty list for a blank vote)"
            )
        chosen = choices[spec.contest_id]
        if isinstance(chosen, str | bytes) or not isinstance(chosen, Sequence | set | frozenset):
            raise ValueError(f"contest {spec.contest_id}: choices are a list of selection ids")
        picked = list(chosen)
        if len(set(picked)) != len(picked):
            raise ValueError(f"contest {spec.contest_id}: a selection is chosen more than once")
        bad = [s for s in picked if s not in spec.selection_ids]
        if bad:
            raise ValueError(f"contest {spec.contest_id}: unknown selection(s) {bad!r}")
        if len(picked) > spec.max_selections:
            raise ValueError(
                f"contest {spec.contest_id}: over-vote, at most {spec.max_selections} selection(s) "
                f"allowed, {len(picked)} chosen"
            )
        if len(picked) < spec.min_selections:
            raise ValueError(
                f"contest {spec.contest_id}: at least {spec.min_selections} selection(s) required, "
                f"{len(picked)} chosen"
            )
        out.append(frozenset(picked))
    return out


class _Prefetched:
    """The OS CSPRNG (``secrets``), read once for everything one ballot's encryption draws (§9.3's draws:
    the nonce, each r, each proof's u, c_j, w_j); a further read (a redraw of a zero scalar) goes to the
    CSPRNG again. Production randomness, only fetched in one system call instead of dozens."""

    def __init__(self, n: int) -> None:
        self._buf = _secrets.token_bytes(n)
        self._pos = 0

    def randbytes(self, n: int, /) -> bytes:
        if self._pos + n > len(self._buf):
            return _secrets.token_bytes(n)
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out


def _random_bytes_needed(ctx: ElectionContext, nonce: bool) -> int:
    """Bytes §9.3 draws for one ballot: per selection r, u and one simulated branch (c, w): 4 scalars; per
    contest u and a (c, w) per other allowed sum; 64 bytes a scalar; 32 for the nonce."""
    scalars = sum(4 * len(c.selection_ids) + 1 + 2 * (len(c.allowed_sums) - 1) for c in ctx.contests)
    return 64 * scalars + (32 if nonce else 0)


def encrypt_ballot(
    ctx: ElectionContext,
    choices: Mapping[str, Sequence[str]],
    *,
    ballot_nonce: bytes | None = None,
    rng: RandomSource | None = None,
) -> tuple[EncryptedBallot, BallotSecrets]:
    """Encrypt ``choices`` (contest id → chosen selection ids; every contest present, ``[]`` = blank).

    Raises ``ValueError`` for an invalid choice (unknown contest or selection, duplicate, over- or
    under-vote). ``rng`` (an object with ``randbytes``) makes the output deterministic: known-answer
    vectors only; production leaves it ``None`` (OS randomness).
    """
    picked = _validate_choices(ctx, choices)
    if rng is None:  # one read of the OS CSPRNG for the whole ballot instead of one per scalar
        rng = _Prefetched(_random_bytes_needed(ctx, ballot_nonce is None))
    if ballot_nonce is None:
        ballot_nonce = rng.randbytes(32) if rng is not None else _secrets.token_bytes(32)
    if not isinstance(ballot_nonce, bytes) or len(ballot_nonce) != 32:
        raise ValueError("ballot_nonce is 32 bytes")
    k = ctx.public_key
    h = ctx.base_hash
    contests: list[EncryptedContest] = []
    contest_secrets: list[ContestSecrets] = []
    for spec, chosen in zip(ctx.contests, picked, strict=True):
        sels: list[EncryptedSelection] = []
        sel_secrets: list[SelectionSecret] = []
        total_r = Scalar(0)
        for sid in spec.selection_ids:
            m = 1 if sid in chosen else 0
            r = Scalar.random_nonzero(rng)
            ct = encrypt(k, m, r)
            proof = prove_membership(
                k, ct, m, r, _ZERO_ONE, _selection_context(h, ballot_nonce, spec.contest_id, sid), rng=rng
            )
            sels.append(EncryptedSelection(sid, ct, proof))
            sel_secrets.append(SelectionSecret(sid, m, r))
            total_r = total_r + r
        contest_proof = prove_membership(
            k,
            sum_ciphertexts(sel.ciphertext for sel in sels),
            len(chosen),
            total_r,
            spec.allowed_sums,
            _contest_context(h, ballot_nonce, spec.contest_id),
            rng=rng,
        )
        contests.append(EncryptedContest(spec.contest_id, tuple(sels), contest_proof))
        contest_secrets.append(ContestSecrets(spec.contest_id, tuple(sel_secrets)))
    return EncryptedBallot(h, ballot_nonce, tuple(contests)), BallotSecrets(tuple(contest_secrets))


# --- verification ----------------------------------------------------------------------------------


def _check_ids(found: Sequence[str], expected: Sequence[str], kind: str, where: str | None) -> None:
    """Same ids, each once, in the manifest's order; else a BallotError naming the first problem."""
    seen: set[str] = set()
    for x in found:
        if x in seen:
            raise BallotError(
                f"duplicate-{kind}", f"{kind} {x} appears more than once", subject=_sub(where, x)
            )
        seen.add(x)
    exp = set(expected)
    for x in found:
        if x not in exp:
            raise BallotError(f"unknown-{kind}", f"{kind} {x} is not in the manifest", subject=_sub(where, x))
    for x in expected:
        if x not in seen:
            raise BallotError(f"missing-{kind}", f"{kind} {x} is missing", subject=_sub(where, x))
    if list(found) != list(expected):
        raise BallotError(f"{kind}-order", f"{kind}s are not in the manifest's order", subject=where)


def _sub(where: str | None, x: str) -> str:
    return f"{where}/{x}" if where else x


def _check_structure(ctx: ElectionContext, ballot: EncryptedBallot) -> None:
    """§9.5 steps 1-3: election hash, contest ids, selection ids (all before any proof)."""
    if ballot.election_hash != ctx.base_hash:
        raise BallotError("election-hash", "the ballot is for another election (base hash differs)")
    _check_ids([c.contest_id for c in ballot.contests], [c.contest_id for c in ctx.contests], "contest", None)
    for spec, ec in zip(ctx.contests, ballot.contests, strict=True):
        _check_ids([s.selection_id for s in ec.selections], spec.selection_ids, "selection", spec.contest_id)


def _check_pad(cid: str, sel: EncryptedSelection) -> None:
    # A pad A = r·G equal to the identity means r = 0: B = m·G is the vote in the clear.
    if sel.ciphertext.a.is_identity:
        raise BallotError(
            "selection-randomness",
            "the pad is the identity (randomness zero): the ciphertext shows the vote in the clear",
            subject=f"{cid}/{sel.selection_id}",
        )


def _selection_proof_error(e: ProofError, subject: str) -> ProofError:
    return ProofError("selection-proof", f"plaintext not proven to be 0 or 1 ({e})", subject=subject)


def _contest_proof_error(e: ProofError, spec: ContestSpec) -> ProofError:
    return ProofError(
        "contest-proof",
        f"number of selections not proven to be in [{spec.min_selections}, {spec.max_selections}] ({e})",
        subject=spec.contest_id,
    )


def verify_ballot(ctx: ElectionContext, ballot: EncryptedBallot) -> None:
    """Check an encrypted ballot against the election; raise BallotError / ProofError naming the check.

    Checks, in order (docs/protocol.md §9.5): ``election-hash``; contests (``duplicate-contest``,
    ``unknown-contest``, ``missing-contest``, ``contest-order``); per contest its selections (same four with
    ``selection``); then contest by contest: per selection ``selection-randomness`` (the pad is not the
    identity) and ``selection-proof`` (plaintext ∈ {0,1}), then ``contest-proof`` (sum ∈ [min, max]).
    """
    _check_structure(ctx, ballot)
    k, h, nonce = ctx.public_key, ctx.base_hash, ballot.ballot_nonce
    for spec, ec in zip(ctx.contests, ballot.contests, strict=True):
        cid = spec.contest_id
        for sel in ec.selections:
            _check_pad(cid, sel)
            subject = f"{cid}/{sel.selection_id}"
            try:
                verify_membership(
                    k,
                    sel.ciphertext,
                    sel.proof,
                    _ZERO_ONE,
                    _selection_context(h, nonce, cid, sel.selection_id),
                )
            except ProofError as e:
                raise _selection_proof_error(e, subject) from e
        try:
            verify_membership(
                k, ec.sum_ciphertext(), ec.proof, spec.allowed_sums, _contest_context(h, nonce, cid)
            )
        except ProofError as e:
            raise _contest_proof_error(e, spec) from e


def _unchecked_commitment(text: str) -> Point:
    """A proof commitment's 32 bytes (exactly 64 lowercase hex digits), not yet checked to be a point."""
    return Point._trusted(fixed_hex(text, 32, "point"))


def decode_verified_ballot(ctx: ElectionContext, d: Any) -> EncryptedBallot | None:
    """``EncryptedBallot.from_dict(d)`` if it decodes and :func:`verify_ballot` accepts it, else ``None``
    (the caller then decodes and verifies the strict way, which says why): the fast path of a verifier
    that checks many ballots.

    The ballot's proof commitments are decoded as bytes here, without the point validation of
    ``from_dict`` (a libsodium decoding per commitment), because a proof that verifies makes it redundant:
    verification uses a commitment only as bytes (hashed into the challenge, compared with the encoding
    libsodium computes from the response and challenge), and libsodium's output is always the canonical
    encoding of a valid element, which ``Point.from_hex`` accepts. So when verification succeeds, every
    commitment is a valid encoding, the strict decoding gives the same ballot and strict verification the
    same success; anything else (a decoding error, an invalid commitment, any failed check) gives
    ``None``. Ciphertexts are validated as ``from_dict`` validates them: libsodium multiplies them."""
    try:
        ballot = EncryptedBallot._decode(d, _unchecked_commitment)
        verify_ballot(ctx, ballot)
    except Exception:  # any failure: the strict path decides and reports
        return None
    return ballot


def ballot_equations(ctx: ElectionContext, ballot: EncryptedBallot) -> tuple[Equation, ...]:
    """Every check of :func:`verify_ballot` that needs no group equation (structure, pads, each proof's
    shape, key and challenge split), raising what :func:`verify_ballot` raises for them; then return the
    group equations of all the ballot's proofs (selections in order, each contest's sum after its
    selections), for :mod:`crypto._batch`.

    A ballot is valid iff this returns without raising and every returned equation holds. Which check a
    ballot with several faults is reported under is decided by :func:`verify_ballot`, never by this."""
    _check_structure(ctx, ballot)
    k, h, nonce = ctx.public_key, ctx.base_hash, ballot.ballot_nonce
    out: list[Equation] = []
    for spec, ec in zip(ctx.contests, ballot.contests, strict=True):
        cid = spec.contest_id
        for sel in ec.selections:
            _check_pad(cid, sel)
            subject = f"{cid}/{sel.selection_id}"
            try:
                out.extend(
                    membership_equations(
                        k,
                        sel.ciphertext,
                        sel.proof,
                        _ZERO_ONE,
                        _selection_context(h, nonce, cid, sel.selection_id),
                    )
                )
            except ProofError as e:
                raise _selection_proof_error(e, subject) from e
        try:
            out.extend(
                membership_equations(
                    k, ec.sum_ciphertext(), ec.proof, spec.allowed_sums, _contest_context(h, nonce, cid)
                )
            )
        except ProofError as e:
            raise _contest_proof_error(e, spec) from e
    return tuple(out)


def verify_ballots(
    ctx: ElectionContext, ballots: Sequence[EncryptedBallot], *, rng: RandomSource | None = None
) -> None:
    """Batch form of :func:`verify_ballot` (docs/protocol.md §12): one random linear combination of the
    group equations of every ballot, bisected on failure.

    Raises :class:`~crypto._errors.BatchError` whose ``failures`` are ``(index, error)`` for exactly the
    ballots :func:`verify_ballot` refuses, each with the error :func:`verify_ballot` raises for it. ``rng``
    (the weights' source) is for known-answer vectors only; production leaves it ``None`` (OS CSPRNG)."""
    bad = failing_items(ballots, lambda b: ballot_equations(ctx, b), rng=rng)
    if not bad:
        return
    failures: list[tuple[int, VerificationError]] = []
    for i in bad:
        try:
            verify_ballot(ctx, ballots[i])
        except VerificationError as e:
            failures.append((i, e))
        else:  # pragma: no cover - only if a weight cancelled a valid ballot's equations (impossible)
            raise AssertionError("batch and single verification disagree")
    raise BatchError(tuple(failures))


# --- Benaloh challenge -----------------------------------------------------------------------------


def _shape(contests: Iterable[EncryptedContest | ContestSecrets]) -> list[tuple[str, list[str]]]:
    return [(c.contest_id, [s.selection_id for s in c.selections]) for c in contests]


def reveal(ballot: EncryptedBallot, secrets: BallotSecrets) -> RevealedBallot:
    """The public opening of a challenged ballot (its secrets bound to its ballot hash).

    Raises ``ValueError`` if ``secrets`` do not have the ballot's contests and selections.
    """
    if _shape(ballot.contests) != _shape(secrets.contests):
        raise ValueError("these secrets are not for this ballot (contests or selections differ)")
    return RevealedBallot(ballot.ballot_hash(), secrets.contests)


def verify_revealed(
    ctx: ElectionContext, ballot: EncryptedBallot, revealed: RevealedBallot
) -> dict[str, list[str]]:
    """Check a spoiled ballot's opening; return contest id → chosen selection ids (manifest order).

    Verifies the ballot itself (:func:`verify_ballot`), then ``revealed-ballot-hash``,
    ``revealed-structure`` and each ``revealed-reencryption`` (``Enc_K(m; r)`` equals the published
    ciphertext). The chosen count is then within ``[min, max]`` without a further check: the plaintexts are
    the ones the contest proof covers (docs/protocol.md §11).
    """
    verify_ballot(ctx, ballot)
    if revealed.ballot_hash != ballot.ballot_hash():
        raise BallotError("revealed-ballot-hash", "the opening names another ballot hash")
    if _shape(ballot.contests) != _shape(revealed.contests):
        raise BallotError(
            "revealed-structure", "the opening's contests or selections differ from the ballot's"
        )
    k = ctx.public_key
    result: dict[str, list[str]] = {}
    for spec, ec, rc in zip(ctx.contests, ballot.contests, revealed.contests, strict=True):
        chosen: list[str] = []
        for sel, sec in zip(ec.selections, rc.selections, strict=True):
            if encrypt(k, sec.plaintext, sec.randomness) != sel.ciphertext:
                raise BallotError(
                    "revealed-reencryption",
                    "plaintext and randomness do not re-encrypt to the published ciphertext",
                    subject=f"{spec.contest_id}/{sel.selection_id}",
                )
            if sec.plaintext:
                chosen.append(sel.selection_id)
        result[spec.contest_id] = chosen
    return result


# --- aggregation -----------------------------------------------------------------------------------


def tally_ciphertexts(
    ballots: Iterable[EncryptedBallot], *, ctx: ElectionContext | None = None
) -> dict[tuple[str, str], Ciphertext]:
    """Homomorphic sum per ``(contest id, selection id)`` of ballots that were already verified.

    With ``ctx`` every selection of the manifest is present (``(identity, identity)`` when no ballot
    is given) and every ballot must carry ``ctx``'s base hash. Without it, all ballots must share the
    first one's election hash and shape. Raises ``ValueError`` otherwise.
    """
    totals: dict[tuple[str, str], Ciphertext] = {}
    shape: list[tuple[str, str]] | None = None
    election: bytes | None = None
    if ctx is not None:
        shape = [(c.contest_id, s) for c in ctx.contests for s in c.selection_ids]
        election = ctx.base_hash
        totals = dict.fromkeys(shape, ZERO)
    for b in ballots:
        keys = [(c.contest_id, s.selection_id) for c in b.contests for s in c.selections]
        if shape is None:
            shape, election = keys, b.election_hash
            totals = dict.fromkeys(shape, ZERO)
        if keys != shape or b.election_hash != election:
            raise ValueError("ballots of different elections or shapes cannot be tallied together")
        for c in b.contests:
            for s in c.selections:
                key = (c.contest_id, s.selection_id)
                totals[key] = totals[key] + s.ciphertext
    return totals
