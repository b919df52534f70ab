"""Ballot verification, anyone's side: :func:`verify_ballot`, its batch and fast forms, the Benaloh check of
a spoiled ballot and the homomorphic tally.

* :func:`verify_ballot` raises :class:`~crypto._errors.BallotError` (structure) or
  :class:`~crypto._errors.ProofError` (a proof), naming the check (``docs/protocol.md`` §9.5) and the
  contest/selection.
* :func:`verify_ballots`: the batch form (one random linear combination of every group equation of many
  ballots, bisected on failure, §12); :func:`ballot_equations` gives one ballot's equations.
* :func:`decode_verified_ballot`: a verifier's fast path (decode + verify, ``None`` on any failure).
* :func:`verify_revealed`: the Benaloh cast-or-challenge audit of a spoiled ballot (§11).
* :func:`tally_ciphertexts`: the homomorphic per-selection aggregate of (already verified) ballots.

Built on :mod:`crypto._ballot` only (not on :mod:`crypto._ballot_encrypt`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ._ballot import (
    ZERO_ONE,
    ContestSpec,
    ElectionContext,
    EncryptedBallot,
    EncryptedSelection,
    RevealedBallot,
    ballot_shape,
    contest_context,
    selection_context,
)
from ._batch import Equation, failing_items
from ._codec import fixed_hex
from ._disjunctive import membership_equations, verify_membership
from ._elgamal import ZERO, Ciphertext, encrypt
from ._errors import BallotError, BatchError, ProofError, VerificationError
from ._group import Point, RandomSource

__all__ = [
    "ballot_equations",
    "decode_verified_ballot",
    "tally_ciphertexts",
    "verify_ballot",
    "verify_ballots",
    "verify_revealed",
]


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
                    ZERO_ONE,
                    selection_context(h, nonce, cid, sel.selection_id),
                )
            except ProofError as e:
                raise _selection_proof_error(e, subject) from e
        try:
            verify_membership(
                k, ec.sum_ciphertext(), ec.proof, spec.allowed_sums, contest_context(h, nonce, cid)
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
                        ZERO_ONE,
                        selection_context(h, nonce, cid, sel.selection_id),
                    )
                )
            except ProofError as e:
                raise _selection_proof_error(e, subject) from e
        try:
            out.extend(
                membership_equations(
                    k, ec.sum_ciphertext(), ec.proof, spec.allowed_sums, contest_context(h, nonce, cid)
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


# --- Benaloh challenge: anyone's check ------------------------------------------------------------


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
    if ballot_shape(ballot.contests) != ballot_shape(revealed.contests):
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
