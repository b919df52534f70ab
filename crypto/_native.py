"""Ballot batch engines: the reference (Python and libsodium) and the optional native one (Rust).

Both engines answer the same questions with the same verdicts and the same check names
(``docs/protocol.md`` §9.5, §12); they differ only in cost:

* ``"python"`` (:class:`PythonEngine`): the reference. A batch of encrypted ballots is checked by
  :func:`crypto.verify_ballots` (§12 with its naive multiscalar multiplication); ballots in dict form are
  checked one by one by :func:`crypto.decode_verified_ballot` (the fastest Python path).
* ``"native"`` (:class:`NativeEngine`): the extension module ``tvote_native`` built from ``native/``
  (PyO3 on ``curve25519-dalek``): strict decoding, every challenge recomputed, all group equations of a
  batch combined with fresh 128-bit weights into one variable-time multiscalar multiplication, bisected
  on failure. It handles public data only (verification: no secret passes through it), so variable time
  is fine. It is optional: :func:`native_available` tells whether it is installed; ``make native`` or
  ``pip install --no-build-isolation ./native`` builds it (README, "The fast engine").

:func:`select_engine` picks one: ``"auto"`` is the native engine when it is installed, else the reference;
``"native"`` raises :class:`EngineUnavailable` (an ``ImportError`` naming how to install it) when it is not.

Both also sum ballots that were already verified into the encrypted tally (§13,
:meth:`BallotEngine.sum_ballots`: no proof checked, every point still decoded strictly): the reference
with :func:`crypto.tally_ciphertexts`, the native engine in the group, in chunks, without the GIL.

A refused ballot is always reported with the reference's own error object (the native engine names the
failure, then the reference is asked for its message), so reports do not depend on the engine.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice
from types import ModuleType
from typing import Any, Final, Literal, Protocol

from ._ballot import ElectionContext, EncryptedBallot
from ._ballot_verify import decode_verified_ballot, tally_ciphertexts, verify_ballot, verify_ballots
from ._batch import Equation, failing_items
from ._checked import CheckedBallot, native_check, reference_check
from ._elgamal import Ciphertext
from ._errors import BatchError, CryptoError, InvalidEncoding, ProofError, VerificationError
from ._group import Point, Scalar
from ._hash import TranscriptItem
from ._proofs import (
    ChaumPedersenProof,
    SchnorrProof,
    chaum_pedersen_equations,
    schnorr_equations,
    verify_chaum_pedersen,
    verify_schnorr,
)

__all__ = [
    "ENGINE_NAMES",
    "NATIVE_INSTALL_HINT",
    "BallotEngine",
    "ChaumPedersenStatement",
    "DictCheck",
    "EngineUnavailable",
    "NativeEngine",
    "ProofStatement",
    "PythonEngine",
    "SchnorrStatement",
    "Verdict",
    "native_available",
    "select_engine",
]

#: What ``--engine`` accepts.
ENGINE_NAMES: Final[tuple[str, ...]] = ("auto", "python", "native")
EngineName = Literal["auto", "python", "native"]

#: Ballots per call of the native engine's sum (:meth:`NativeEngine.sum_ballots`): a chunk's dicts are
#: held at once, so memory is this many ballots, whatever the number summed.
SUM_CHUNK: Final[int] = 500

NATIVE_INSTALL_HINT: Final[str] = (
    "the native engine (the Python module tvote_native) is not installed. Build it from the repository "
    "with a Rust toolchain (cargo, https://rustup.rs): `make native`, or "
    "`pip install --no-build-isolation ./native` in tvote's environment after `pip install '.[fast]'` "
    "(which installs its build tool, maturin); see README, 'The fast engine'. "
    "Without it, use --engine python (or auto): the reference engine, same verdicts, slower."
)

#: A ballot's verdict in raw form: ``None`` (valid) or ``(check, subject, cause)``, where ``check`` is
#: ``"invalid-encoding"`` for a ballot that does not decode and otherwise the check of §9.5, and
#: ``cause`` the disjunctive proof's own check (§8.3) of a ``selection-proof`` / ``contest-proof``.
Verdict = tuple[str, str | None, str | None] | None


@dataclass(frozen=True)
class SchnorrStatement:
    """A Schnorr proof of knowledge of ``log_G(X)`` (§T2.1) in its context, for :meth:`verify_proofs`."""

    X: Point
    proof: SchnorrProof
    context: tuple[TranscriptItem, ...]


@dataclass(frozen=True)
class ChaumPedersenStatement:
    """A Chaum–Pedersen proof of ``log_G(X) == log_A(Y)`` (§T2.2) in its context."""

    X: Point
    A: Point
    Y: Point
    proof: ChaumPedersenProof
    context: tuple[TranscriptItem, ...]


ProofStatement = SchnorrStatement | ChaumPedersenStatement


class EngineUnavailable(ImportError):
    """The requested engine is not installed (its message says how to install it)."""


@dataclass
class DictCheck:
    """The result of checking ballots in dict form.

    ``valid[i]``: ballot ``i`` decodes strictly and verifies. ``ballot_hashes[i]``: its ballot hash (§10)
    if valid, else ``None``. ``sums``: the homomorphic sum per ``(contest id, selection id)`` of the valid
    ballots whose ``counted`` flag was set (every selection of the manifest, ``(O, O)`` if none)."""

    valid: list[bool]
    ballot_hashes: list[bytes | None]
    sums: dict[tuple[str, str], Ciphertext] = field(default_factory=dict)


class BallotEngine(Protocol):
    name: str

    def check_ballot(self, ctx: ElectionContext, d: Any) -> CheckedBallot:
        """A ballot in dict form checked exactly as ``from_dict`` + ``verify_ballot`` (crypto._checked)."""
        ...  # pragma: no cover - protocol

    def verify_ballots(self, ctx: ElectionContext, ballots: Sequence[EncryptedBallot]) -> None:
        """:func:`crypto.verify_ballots`: raise :class:`BatchError` naming exactly the refused ballots."""
        ...  # pragma: no cover - protocol

    def check_dicts(
        self, ctx: ElectionContext, ballots: Sequence[Any], counted: Sequence[bool] | None = None
    ) -> DictCheck:
        """Check ballots in dict form (as parsed from JSON), see :class:`DictCheck`."""
        ...  # pragma: no cover - protocol

    def verdicts(self, ctx: ElectionContext, ballots: Sequence[Any]) -> list[Verdict]:
        """The raw verdict of each ballot in dict form, by this engine's own batch check."""
        ...  # pragma: no cover - protocol

    def sum_ballots(
        self, ctx: ElectionContext, ballots: Iterable[Any], *, chunk: int = SUM_CHUNK
    ) -> dict[tuple[str, str], Ciphertext]:
        """The encrypted tally (§13) of ballots in dict form **that were already verified**: the sum per
        ``(contest id, selection id)`` of every selection of the manifest (``(O, O)`` for none), streamed
        (``ballots`` may be a generator; at most ``chunk`` of them are held at once, whatever their number).

        No proof is checked: the tally sums the ballots that intake verified (§9.5) and the counting rule
        counted. Every ballot must still decode strictly (every point a canonical ristretto255 encoding,
        as :meth:`EncryptedBallot.from_dict`), carry ``ctx``'s base hash and have the manifest's shape;
        the first one that does not raises the reference's error (:class:`InvalidEncoding`, or
        ``ValueError`` from :func:`crypto.tally_ciphertexts`), with a note giving its position."""
        ...  # pragma: no cover - protocol

    def verify_proofs(self, statements: Sequence[ProofStatement]) -> list[str | None]:
        """The trustees' proofs in a batch (§12 over §T2): per statement ``None`` (valid) or the check that
        verifying it alone fails (``schnorr-pok``, ``chaum-pedersen-identity``, ``chaum-pedersen``)."""
        ...  # pragma: no cover - protocol

    def verify_inclusions(
        self, root: bytes, size: int, items: Sequence[tuple[bytes, int, bytes]]
    ) -> list[str | None] | None:
        """RFC 9162 inclusion proofs under one tree (``root``, ``size``): the roll proofs of cast ballots
        (the verifier's V12). Each item is ``(leaf data, index, path)``, the path its 32-byte hashes
        concatenated; per item ``None`` (it verifies) or the reason it does not. The reference of this check
        is ``ledger.merkle.verify_inclusion`` (``ledger`` sits above ``crypto``, which cannot call it): the
        reference engine returns ``None`` for the whole call, "use the reference"."""
        ...  # pragma: no cover - protocol

    def canonical_leaf_hashes(self, texts: Sequence[bytes], max_depth: int) -> list[bytes | None] | None:
        """Ledger entry texts (lines of ``entries.jsonl`` without their newline): per text its leaf hash
        ``SHA-256(0x00 || text)`` if the text is certainly canonical (RFC 8785 of the ledger's values, nesting
        at most ``max_depth`` levels: ``ledger.record.Entry.parse_canonical``'s precondition), else ``None``,
        "ask the reference". The reference is ``ledger.record.Entry.parse``; the reference engine returns
        ``None`` for the whole call."""
        ...  # pragma: no cover - protocol

    def screen_literals(self, texts: Sequence[bytes]) -> list[list[bytes] | None] | None:
        """The verifier's V23 text screen of each entry text (``verifier._privacy._screen``, its reference):
        the distinct string literals to look at, or ``None`` for a text whose payload must be walked. The
        reference engine returns ``None`` for the whole call, "use the reference"."""
        ...  # pragma: no cover - protocol


def _cause(e: CryptoError) -> str | None:
    c = e.__cause__
    return c.check if isinstance(c, VerificationError) else None


def _zero_sums(ctx: ElectionContext) -> dict[tuple[str, str], Ciphertext]:
    zero = Ciphertext(Point(bytes(32)), Point(bytes(32)))
    return {(c.contest_id, s): zero for c in ctx.contests for s in c.selection_ids}


def _reference_sum(
    ctx: ElectionContext, ballots: Iterable[Any], first: int = 0
) -> dict[tuple[str, str], Ciphertext]:
    """:func:`crypto.tally_ciphertexts` of ballots in dict form (decoded one at a time, as they come); an
    error gets the note of the refused ballot's position (counted from ``first``)."""
    position = first - 1

    def decoded() -> Iterator[EncryptedBallot]:
        nonlocal position
        for d in ballots:
            position += 1
            yield EncryptedBallot.from_dict(d)

    try:
        return tally_ciphertexts(decoded(), ctx=ctx)
    except (CryptoError, ValueError, TypeError) as e:
        e.add_note(f"(ballot {position} of the tally, counted from 0)")
        raise


class PythonEngine:
    """The reference engine (:mod:`crypto._batch`, libsodium through pysodium)."""

    name = "python"

    def check_ballot(self, ctx: ElectionContext, d: Any) -> CheckedBallot:
        return reference_check(ctx, d)

    def verify_ballots(self, ctx: ElectionContext, ballots: Sequence[EncryptedBallot]) -> None:
        verify_ballots(ctx, ballots)

    def check_dicts(
        self, ctx: ElectionContext, ballots: Sequence[Any], counted: Sequence[bool] | None = None
    ) -> DictCheck:
        flags = [False] * len(ballots) if counted is None else list(counted)
        if len(flags) != len(ballots):
            raise ValueError("counted has one flag per ballot")
        out = DictCheck([], [])
        sums = _zero_sums(ctx)
        for d, count in zip(ballots, flags, strict=True):
            b = decode_verified_ballot(ctx, d)
            out.valid.append(b is not None)
            out.ballot_hashes.append(None if b is None else b.ballot_hash())
            if b is not None and count:
                out.sums = sums
                for c in b.contests:
                    for s in c.selections:
                        key = (c.contest_id, s.selection_id)
                        sums[key] = sums[key] + s.ciphertext
        return out

    def verdicts(self, ctx: ElectionContext, ballots: Sequence[Any]) -> list[Verdict]:
        out: list[Verdict] = [None] * len(ballots)
        decoded: list[tuple[int, EncryptedBallot]] = []
        for i, d in enumerate(ballots):
            try:
                decoded.append((i, EncryptedBallot.from_dict(d)))
            except (InvalidEncoding, ValueError, TypeError):
                out[i] = ("invalid-encoding", None, None)
        try:
            verify_ballots(ctx, [b for _, b in decoded])
        except BatchError as e:
            for j, err in e.failures:
                assert isinstance(err, VerificationError)
                out[decoded[j][0]] = (err.check, err.subject, _cause(err))
        return out

    def sum_ballots(
        self, ctx: ElectionContext, ballots: Iterable[Any], *, chunk: int = SUM_CHUNK
    ) -> dict[tuple[str, str], Ciphertext]:
        """One ballot at a time (:func:`crypto.tally_ciphertexts`; ``chunk`` is not needed)."""
        if chunk < 1:
            raise ValueError("chunk must be positive")
        return _reference_sum(ctx, ballots)

    def verify_proofs(self, statements: Sequence[ProofStatement]) -> list[str | None]:
        return _reference_proof_verdicts(statements)

    def verify_inclusions(
        self, root: bytes, size: int, items: Sequence[tuple[bytes, int, bytes]]
    ) -> list[str | None] | None:
        return None  # the reference is ledger.merkle.verify_inclusion (BallotEngine.verify_inclusions)

    def canonical_leaf_hashes(self, texts: Sequence[bytes], max_depth: int) -> list[bytes | None] | None:
        return None  # the reference is ledger.record.Entry.parse (BallotEngine.canonical_leaf_hashes)

    def screen_literals(self, texts: Sequence[bytes]) -> list[list[bytes] | None] | None:
        return None  # the reference is verifier._privacy._screen (BallotEngine.screen_literals)


def _proof_equations(s: ProofStatement) -> tuple[Equation, ...]:
    if isinstance(s, SchnorrStatement):
        return schnorr_equations(s.X, s.proof, context=s.context)
    return chaum_pedersen_equations(s.X, s.A, s.Y, s.proof, context=s.context)


def _proof_check(s: ProofStatement) -> str | None:
    try:
        if isinstance(s, SchnorrStatement):
            verify_schnorr(s.X, s.proof, context=s.context)
        else:
            verify_chaum_pedersen(s.X, s.A, s.Y, s.proof, context=s.context)
    except ProofError as e:
        return e.check
    return None


def _reference_proof_verdicts(statements: Sequence[ProofStatement]) -> list[str | None]:
    out: list[str | None] = [None] * len(statements)
    for i in failing_items(statements, _proof_equations):
        out[i] = _proof_check(statements[i])
        if out[i] is None:  # pragma: no cover - only if a weight cancelled a false equation (2^-128)
            raise AssertionError("batch and single verification disagree")
    return out


def _native_item(x: TranscriptItem) -> bytes | int:
    """A context item as the native engine takes it (§4: a u64 as an int, everything else encoded)."""
    if isinstance(x, Point | Scalar):
        return x.to_bytes()
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode("utf-8")
    if isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**64:
        return x
    raise TypeError(f"cannot put {type(x).__name__} {x!r} in a transcript")


def _native_statement(s: ProofStatement) -> tuple[Any, ...]:
    ctx = [_native_item(x) for x in s.context]
    if isinstance(s, SchnorrStatement):
        return ("schnorr", s.X.to_bytes(), s.proof.commitment.to_bytes(), s.proof.response.to_bytes(), ctx)
    r1, r2 = s.proof.commitments
    points = (s.X, s.A, s.Y, r1, r2)
    return ("chaum-pedersen", *(p.to_bytes() for p in points), s.proof.response.to_bytes(), ctx)


class NativeEngine:
    """The native engine (the extension module ``tvote_native``)."""

    name = "native"

    def __init__(self, module: ModuleType) -> None:
        self._m = module
        self._elections = lru_cache(maxsize=16)(self._election)

    def _election(self, ctx: ElectionContext) -> Any:
        specs = [
            (c.contest_id, list(c.selection_ids), c.min_selections, c.max_selections) for c in ctx.contests
        ]
        return self._m.Election(ctx.base_hash, ctx.public_key.to_bytes(), specs)

    def _raw(self, ctx: ElectionContext, ballots: Sequence[Any], counted: list[bool] | None) -> Any:
        return self._m.verify_ballots(self._elections(ctx), list(ballots), counted)

    def check_ballot(self, ctx: ElectionContext, d: Any) -> CheckedBallot:
        return native_check(ctx, d, lambda record: self._raw(ctx, [record], None))

    def verify_ballots(self, ctx: ElectionContext, ballots: Sequence[EncryptedBallot]) -> None:
        verdicts, _, _ = self._raw(ctx, [b.to_dict() for b in ballots], None)
        failures: list[tuple[int, CryptoError]] = []
        for i, v in enumerate(verdicts):
            if v is None:
                continue
            try:  # the reference's own error, with its message; its check must be the one named here
                verify_ballot(ctx, ballots[i])
            except VerificationError as e:
                if (e.check, e.subject) != (v[0], v[1]):  # pragma: no cover - an engine bug
                    why = f"engines disagree on ballot {i}: {v[:2]} != {(e.check, e.subject)}"
                    raise AssertionError(why) from e
                failures.append((i, e))
            else:  # pragma: no cover - only if a weight cancelled a false equation (2^-128)
                raise AssertionError("batch and single verification disagree")
        if failures:
            raise BatchError(tuple(failures))

    def check_dicts(
        self, ctx: ElectionContext, ballots: Sequence[Any], counted: Sequence[bool] | None = None
    ) -> DictCheck:
        flags = None if counted is None else [bool(x) for x in counted]
        if flags is not None and len(flags) != len(ballots):
            raise ValueError("counted has one flag per ballot")
        verdicts, sums, hashes = self._raw(ctx, ballots, flags)
        valid = [v is None for v in verdicts]
        out = DictCheck(valid, hashes)
        if sums is not None and any(ok and f for ok, f in zip(valid, flags or (), strict=False)):
            keys = [(c.contest_id, s) for c in ctx.contests for s in c.selection_ids]
            out.sums = {
                k: Ciphertext(Point._trusted(a), Point._trusted(b))
                for k, (a, b) in zip(keys, sums, strict=True)
            }
        return out

    def verdicts(self, ctx: ElectionContext, ballots: Sequence[Any]) -> list[Verdict]:
        verdicts, _, _ = self._raw(ctx, ballots, None)
        return [None if v is None else (v[0], v[1], v[2]) for v in verdicts]

    def sum_ballots(
        self, ctx: ElectionContext, ballots: Iterable[Any], *, chunk: int = SUM_CHUNK
    ) -> dict[tuple[str, str], Ciphertext]:
        """In chunks of ``chunk`` ballots, each summed in Rust without the GIL onto the previous chunks'
        sum; a refused ballot is re-decoded by the reference, which raises its own error for it."""
        if chunk < 1:
            raise ValueError("chunk must be positive")
        election = self._elections(ctx)
        sums: list[tuple[bytes, bytes]] | None = None
        seen = 0
        it = iter(ballots)
        while batch := list(islice(it, chunk)):
            sums, refused = self._m.sum_ballots(election, batch, sums)
            if refused is not None:
                i, reason = refused
                _reference_sum(ctx, [batch[i]], first=seen + i)  # raises the reference's error
                raise AssertionError(  # pragma: no cover - an engine bug
                    f"engines disagree on ballot {seen + i}: the native engine refused it ({reason})"
                )
            seen += len(batch)
        if sums is None:
            return _zero_sums(ctx)
        keys = [(c.contest_id, s) for c in ctx.contests for s in c.selection_ids]
        return {
            k: Ciphertext(Point._trusted(a), Point._trusted(b)) for k, (a, b) in zip(keys, sums, strict=True)
        }

    def verify_proofs(self, statements: Sequence[ProofStatement]) -> list[str | None]:
        out: list[str | None] = self._m.verify_proofs([_native_statement(s) for s in statements])
        return out

    def verify_inclusions(
        self, root: bytes, size: int, items: Sequence[tuple[bytes, int, bytes]]
    ) -> list[str | None] | None:
        """In Rust without the GIL (``native/src/merkle.rs``); the same verdicts as
        ``ledger.merkle.verify_inclusion`` (``tests/native/test_native_merkle.py``)."""
        out: list[str | None] = self._m.verify_inclusions(root, size, list(items))
        return out

    def canonical_leaf_hashes(self, texts: Sequence[bytes], max_depth: int) -> list[bytes | None] | None:
        """In Rust without the GIL (``native/src/canonical.rs``): sound, not complete; a text it does not
        accept is the reference's to decide (``tests/native/test_native_canonical.py``)."""
        out: list[bytes | None] = self._m.canonical_leaf_hashes(list(texts), max_depth)
        return out

    def screen_literals(self, texts: Sequence[bytes]) -> list[list[bytes] | None] | None:
        """In Rust without the GIL (``native/src/screen.rs``), exactly the reference's result."""
        out: list[list[bytes] | None] = self._m.screen_literals(list(texts))
        return out


_MODULE_NAME: Final[str] = "tvote_native"
#: what this wrapper calls (an extension module built from an older native/ lacks some)
_NATIVE_FUNCTIONS: Final[tuple[str, ...]] = (
    "Election",
    "verify_ballots",
    "verify_proofs",
    "sum_ballots",
    "verify_inclusions",
    "canonical_leaf_hashes",
    "screen_literals",
)


@lru_cache(maxsize=1)
def _module() -> ModuleType | None:
    try:
        m = importlib.import_module(_MODULE_NAME)
    except ImportError:
        return None
    if getattr(m, "PROTOCOL_VERSION", None) != "2" or not all(hasattr(m, f) for f in _NATIVE_FUNCTIONS):
        return None  # another protocol, or built before a function this wrapper calls: rebuild it
    return m


@lru_cache(maxsize=1)
def _native_engine(m: ModuleType) -> NativeEngine:
    return NativeEngine(m)


def native_available() -> bool:
    """Whether the native engine (``tvote_native``, protocol version 2) is installed."""
    return _module() is not None


def select_engine(name: str = "auto") -> BallotEngine:
    """The engine called ``name`` (:data:`ENGINE_NAMES`): ``"auto"`` is native when installed, else
    python; ``"native"`` raises :class:`EngineUnavailable` when it is not installed."""
    if name not in ENGINE_NAMES:
        raise ValueError(f"unknown engine {name!r} (one of {', '.join(ENGINE_NAMES)})")
    m = _module() if name != "python" else None
    if m is not None:
        return _native_engine(m)
    if name == "native":
        raise EngineUnavailable(NATIVE_INSTALL_HINT)
    return PythonEngine()
