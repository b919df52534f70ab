"""Ballot encryption, the voting device's side: :func:`encrypt_ballot` and :func:`reveal`.

:func:`encrypt_ballot` → (:class:`~crypto._ballot.EncryptedBallot`, :class:`~crypto._ballot.BallotSecrets`):
one ElGamal ciphertext per selection with its 0/1 proof, one proof per contest that the number chosen is
allowed (``docs/protocol.md`` §9.3). :func:`reveal` is the public opening of a ballot the voter challenges
(Benaloh); :func:`crypto._ballot_verify.verify_revealed` checks it. Built on :mod:`crypto._ballot` only.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Callable, Mapping, Sequence

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
    proof_heads,
)
from ._disjunctive import _prove_encoded, check_claim
from ._elgamal import Ciphertext, _encrypt_encoded, _sum_encoded
from ._group import L, Point, RandomSource, Scalar

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
    the nonce, each r, each proof's u, c_j, w_j): production randomness, fetched in one system call
    instead of dozens. The bytes come in two parts: the first is read by :meth:`randbytes` (the nonce and
    each r, through ``Scalar.random_nonzero``), the rest are the proofs' scalars, each 64 bytes reduced mod
    L (uniform) up front; a read beyond the first part (a redraw of a zero r) goes to the CSPRNG again."""

    value: Callable[[], int]

    def __init__(self, n_bytes: int, n_values: int) -> None:
        buf = _secrets.token_bytes(n_bytes + 64 * n_values)
        self._buf = buf[:n_bytes]
        self._pos = 0
        values = [int.from_bytes(buf[i : i + 64], "little") % L for i in range(n_bytes, len(buf), 64)]
        self.value = iter(values).__next__  # one value per call; a miscount raises StopIteration

    def randbytes(self, n: int, /) -> bytes:
        if self._pos + n > len(self._buf):
            return _secrets.token_bytes(n)
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out


class _Injected:
    """A caller's random source (known-answer vectors, tests), drawn from exactly as the generic prover
    does: ``Scalar.random(rng)`` per scalar, in the same order."""

    def __init__(self, rng: RandomSource) -> None:
        self._rng = rng

    def randbytes(self, n: int, /) -> bytes:
        return self._rng.randbytes(n)

    def value(self) -> int:
        return Scalar.random(self._rng).value


def _prefetch(ctx: ElectionContext, nonce: bool) -> _Prefetched:
    """What §9.3 draws for one ballot: the nonce (32 bytes) and per selection r (64 bytes) through
    ``randbytes``; as values per selection u and one simulated branch (c, w), per contest u and a (c, w)
    per other allowed sum."""
    n_sel = sum(len(c.selection_ids) for c in ctx.contests)
    n_values = 3 * n_sel + sum(2 * (c.max_selections - c.min_selections) + 1 for c in ctx.contests)
    return _Prefetched(64 * n_sel + (32 if nonce else 0), n_values)


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

    The proofs are :func:`~crypto._disjunctive.prove_membership`'s, drawn in its order (r, then per proof
    u and each simulated branch's c_j, w_j), made by its encoding-level kernel: the statement's values
    come from this function (the context's key, libsodium's outputs), so none is checked again.
    """
    picked = _validate_choices(ctx, choices)
    # one read of the OS CSPRNG for the whole ballot instead of one per scalar
    src = _prefetch(ctx, ballot_nonce is None) if rng is None else _Injected(rng)
    if ballot_nonce is None:
        ballot_nonce = src.randbytes(32)
    if not isinstance(ballot_nonce, bytes) or len(ballot_nonce) != 32:
        raise ValueError("ballot_nonce is 32 bytes")
    k = ctx.public_key
    if k.is_identity:  # ElectionContext refuses it; the kernels below rely on it
        raise ValueError("refusing to encrypt under the identity as public key")
    kb = k.to_bytes()
    h = ctx.base_hash
    draw = src.value
    trusted = Point._trusted
    contests: list[EncryptedContest] = []
    contest_secrets: list[ContestSecrets] = []
    for spec, chosen in zip(ctx.contests, picked, strict=True):
        cid = spec.contest_id
        sels: list[EncryptedSelection] = []
        sel_secrets: list[SelectionSecret] = []
        cts: list[tuple[bytes, bytes]] = []
        total_r = 0
        heads, contest_head = proof_heads(h, ballot_nonce, cid, spec.selection_ids)
        for sid, head in zip(spec.selection_ids, heads, strict=True):
            m = 1 if sid in chosen else 0
            r = Scalar.random_nonzero(src)
            rv = r.value
            a, b = _encrypt_encoded(kb, m, rv)
            u = draw()
            c = draw()  # the simulated branch 1 - m of ZERO_ONE: c, then w
            proof = _prove_encoded(kb, a, b, m, rv, ZERO_ONE, head, u, {1 - m: (c, draw())})
            sels.append(EncryptedSelection._of(sid, Ciphertext._of(trusted(a), trusted(b)), proof))
            sel_secrets.append(SelectionSecret._of(sid, m, r))
            cts.append((a, b))
            total_r += rv
        n = len(chosen)
        allowed = check_claim(n, spec.allowed_sums)
        u = draw()
        fakes = {j: (draw(), draw()) for j in allowed if j != n}
        a, b = _sum_encoded(cts)
        contest_proof = _prove_encoded(kb, a, b, n, total_r % L, allowed, contest_head, u, fakes)
        contests.append(EncryptedContest(cid, tuple(sels), contest_proof))
        contest_secrets.append(ContestSecrets(cid, tuple(sel_secrets)))
    return EncryptedBallot(h, ballot_nonce, tuple(contests)), BallotSecrets(tuple(contest_secrets))


# --- Benaloh challenge: the device's side --------------------------------------------------------


def reveal(ballot: EncryptedBallot, secrets: BallotSecrets) -> RevealedBallot:
    """The public opening of a challenged ballot (its secrets bound to its ballot hash).

    Raises ``ValueError`` if ``secrets`` do not have the ballot's contests and selections.
    """
    if ballot_shape(ballot.contests) != ballot_shape(secrets.contests):
        raise ValueError("these secrets are not for this ballot (contests or selections differ)")
    return RevealedBallot(ballot.ballot_hash(), secrets.contests)
