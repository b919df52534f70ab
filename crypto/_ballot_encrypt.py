"""Ballot encryption, the voting device's side: :func:`encrypt_ballot` and :func:`reveal`.

:func:`encrypt_ballot` → (:class:`~crypto._ballot.EncryptedBallot`, :class:`~crypto._ballot.BallotSecrets`):
one ElGamal ciphertext per selection with its 0/1 proof, one proof per contest that the number chosen is
allowed (``docs/protocol.md`` §9.3). :func:`reveal` is the public opening of a ballot the voter challenges
(Benaloh); :func:`crypto._ballot_verify.verify_revealed` checks it. Built on :mod:`crypto._ballot` only.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Mapping, Sequence

from ._ballot import (
    ZERO_ONE,
    BallotSecrets,
    ContestSecrets,
    ElectionContext,
    EncryptedBallot,
    EncryptedContest,
    EncryptedSelection,
    RevealedBallot,
    SelectionSecret,
    ballot_shape,
    contest_context,
    selection_context,
)
from ._disjunctive import prove_membership
from ._elgamal import encrypt, sum_ciphertexts
from ._group import RandomSource, Scalar

__all__ = ["encrypt_ballot", "reveal"]


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
                k, ct, m, r, ZERO_ONE, selection_context(h, ballot_nonce, spec.contest_id, sid), rng=rng
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
            contest_context(h, ballot_nonce, spec.contest_id),
            rng=rng,
        )
        contests.append(EncryptedContest(spec.contest_id, tuple(sels), contest_proof))
        contest_secrets.append(ContestSecrets(spec.contest_id, tuple(sel_secrets)))
    return EncryptedBallot(h, ballot_nonce, tuple(contests)), BallotSecrets(tuple(contest_secrets))


# --- Benaloh challenge: the device's side --------------------------------------------------------


def reveal(ballot: EncryptedBallot, secrets: BallotSecrets) -> RevealedBallot:
    """The public opening of a challenged ballot (its secrets bound to its ballot hash).

    Raises ``ValueError`` if ``secrets`` do not have the ballot's contests and selections.
    """
    if ballot_shape(ballot.contests) != ballot_shape(secrets.contests):
        raise ValueError("these secrets are not for this ballot (contests or selections differ)")
    return RevealedBallot(ballot.ballot_hash(), secrets.contests)
