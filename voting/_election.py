"""The election lifecycle service (no HTTP): setup → key ceremony → voting → tally → publish → export.

:class:`ElectionService` owns the engine (private state, :mod:`voting._db`) and the :class:`ledger.Ledger`
(the public record). Every state change follows one pattern: check everything (phase, credentials, the
submitted object's encoding and proofs), then append the one ledger entry, then commit the private state.
A rejected request raises a :class:`~voting._errors.ServiceError` before anything is appended, so nothing
rejected changes the ledger. Mutations are serialised by a lock (one server process owns an election).
If the process dies (or the private write fails) between an append and its private write,
:meth:`ElectionService.reconcile` (at start-up, or ``tvote admin reconcile``) rebuilds the private state from
the entries the private state has not recorded (``ElectionRow.ledger_synced``); what no entry can give back
(the roll key, trustee codes, ballot authentication evidence) is committed *before* the append.

Phases (``ElectionRow.phase``)::

    setup ──open──▶ voting ──close──▶ closed ──tally──▶ tallied ──result──▶ decrypted ──declare──▶ declared

During ``setup`` the roll is loaded and committed and the key ceremony runs (``trustee.registered`` →
``trustee.shares`` → ``trustee.complaint`` / ``trustee.answer`` → ``trustee.disqualified`` →
``election.joint-key``). Voting opens only once the joint key and the roll commitment are on the ledger.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, insert, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from crypto import (
    Ciphertext,
    Complaint,
    ComplaintAnswer,
    CryptoError,
    EncryptedShare,
    InvalidEncoding,
    JointKey,
    PartialDecryption,
    ThresholdError,
    TrusteeCommitments,
    TrusteeEnrolment,
    qualify,
    resolve_complaint,
    verify_partial,
)
from ledger import InvalidEncoding as LedgerInvalidEncoding
from ledger import ProofError as LedgerProofError
from ledger.events import EventType
from ledger.files import write_atomic
from ledger.merkle import fold, leaf_hash, subtree_nodes
from ledger.merkle import root as merkle_root
from ledger.record import RESULT_FILE, archive_record

from ._db import (
    ComplaintRow,
    ElectionRow,
    PartialRow,
    RollEntryRow,
    RollNodeRow,
    ShareRow,
    TrusteeRow,
    create_tables,
    make_engine,
    make_private_dir,
    normalise_database_url,
    utcnow,
)
from ._errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    ManifestError,
    NotFound,
    RejectedSubmission,
    ServiceError,
    ServiceUnavailable,
    Unauthenticated,
)
from ._manifest import Manifest, parse_manifest
from ._roll import (
    ALIAS_SCHEME,
    Roll,
    RollProof,
    parse_roll_csv,
    roll_proof_from_nodes,
    roll_proof_plan,
    roll_root,
    roll_tree,
)
from ._settings import Settings

__all__ = [
    "PHASES",
    "CreatedElection",
    "ElectionService",
    "PartialOutcome",
    "ReconcileReport",
    "ServiceUnavailable",
    "count_ballots",
]


PHASES = ("setup", "voting", "closed", "tallied", "decrypted", "declared")


#: rows per bulk INSERT when a roll is stored (each statement an executemany of this many parameter sets)
_INSERT_CHUNK = 20_000


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_rfc3339(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _aware(t: dt.datetime) -> dt.datetime:
    """A stored time as UTC (SQLite hands back naive datetimes)."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


#: the longest override reason (code points); it is published, so it obeys the manifest's text rule
MAX_REASON_CHARS = 500


def _check_reason(reason: object) -> str:
    from ledger.record import TextRuleError, check_display_text

    text = reason.strip() if isinstance(reason, str) else reason
    try:
        return check_display_text(text, max_chars=MAX_REASON_CHARS)
    except TextRuleError as e:
        raise InvalidRequest("voting.override_reason", f"the override reason {e}") from e


def _hash_secret(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CreatedElection:
    election_id: str
    base_hash: str
    ledger_index: int
    #: One-time registration codes ``"<index>-<secret>"`` for trustees 1..n. Shown once, never stored.
    invitations: Mapping[int, str]


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What :meth:`ElectionService.reconcile` did.

    ``start``/``ledger_size``: the ledger range it replayed; ``repaired``: ``(index, type)`` of every entry
    whose private effect was missing and is now recorded; ``orphans_removed``: private rows written before an
    append that never happened (pending evidence, an unpublished election); ``problems``: differences it
    could not repair (e.g. evidence that was never stored), one operator-readable line each.
    """

    start: int
    ledger_size: int
    repaired: tuple[tuple[int, str], ...] = ()
    orphans_removed: int = 0
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "ledger_size": self.ledger_size,
            "repaired": [{"index": i, "type": t} for i, t in self.repaired],
            "orphans_removed": self.orphans_removed,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, slots=True)
class PartialOutcome:
    trustee: int
    accepted: bool
    ledger_index: int
    reason: str | None = None


# ----------------------------------------------------------------------------------------- counting rule


@dataclass(frozen=True, slots=True)
class CountedBallots:
    counted: list[str]  # ballot hashes in ledger order
    cast: int
    superseded: int
    overridden: int
    spoiled: int


def count_ballots(cast: Iterable[tuple[int, str, str, str]], spoiled: int = 0) -> CountedBallots:
    """Apply ``last-internet-kiosk-overrides`` (docs/events.md) to ``(index, ballot_hash, alias, channel)``.

    Per alias: the first kiosk ballot counts and every internet ballot is overridden; without a kiosk ballot
    the internet ballot with the highest ledger index counts and earlier ones are superseded.
    """
    by_voter: dict[str, list[tuple[int, str, str]]] = {}
    n = 0
    for index, bh, alias, channel in cast:
        by_voter.setdefault(alias, []).append((index, bh, channel))
        n += 1
    counted: list[tuple[int, str]] = []
    superseded = overridden = 0
    for ballots in by_voter.values():
        ballots.sort()
        kiosk = [b for b in ballots if b[2] == "kiosk"]
        if kiosk:
            counted.append((kiosk[0][0], kiosk[0][1]))
            overridden += sum(1 for b in ballots if b[2] != "kiosk")
        else:
            counted.append((ballots[-1][0], ballots[-1][1]))
            superseded += len(ballots) - 1
    counted.sort()
    return CountedBallots([h for _, h in counted], n, superseded, overridden, spoiled)


def _summary(counting: CountedBallots) -> dict[str, int]:
    return {
        "cast": counting.cast,
        "counted": len(counting.counted),
        "superseded": counting.superseded,
        "overridden": counting.overridden,
        "spoiled": counting.spoiled,
    }


# ----------------------------------------------------------------------------------------------- service


def log_signer(settings: Settings, election_id: str) -> Any:
    """The ledger's Ed25519 checkpoint key, kept in ``data_dir/ledger-signing.key`` (created on first use).

    The log origin is ``settings.log_origin`` or ``tvote/<election_id>``.
    """
    from ledger.record import LogSigner

    origin = settings.log_origin or f"tvote/{election_id}"
    path = settings.data_dir / "ledger-signing.key"
    if path.exists():
        signer = LogSigner.from_skey(path.read_text(encoding="ascii"))
        if signer.name != origin:
            raise Conflict("ledger.key", f"{path.name} is the key of another log ({signer.name!r})")
        return signer
    signer = LogSigner.generate(origin)
    make_private_dir(path.parent)
    write_atomic(path, signer.skey + "\n", mode=0o600, overwrite=False)
    return signer


def witness_policy(manifest: Manifest) -> Any:
    """The ledger's witness policy from the manifest's witness keys and quorum."""
    from ledger.record import WitnessKey, WitnessPolicy

    keys = tuple(
        WitnessKey(k.name, bytes.fromhex(k.bls_public_key), bytes.fromhex(k.pop))
        for k in manifest.witnesses.keys
    )
    return WitnessPolicy(keys, manifest.witnesses.quorum)


def open_ledger(settings: Settings, manifest: Manifest) -> Any:
    """The election's :class:`ledger.Ledger` on the service's database (its own tables and engine)."""
    from ledger import Ledger, LedgerConfig

    config = LedgerConfig(signer=log_signer(settings, manifest.election_id), policy=witness_policy(manifest))
    return Ledger(normalise_database_url(settings.effective_database_url), config)


def _event_type(type_: str) -> str:
    """The service writes only the record's event types (``ledger.events.EventType``): an unknown one is a
    bug, refused before it reaches the append-only ledger."""
    return EventType(type_).value


class ElectionService:
    """The lifecycle of the one election this server runs (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        ledger: Any | None = None,
        *,
        settings: Settings | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self._ledger = ledger
        self.settings = settings or Settings(environment="development")
        self._clock = clock
        self._lock = threading.RLock()
        self._appended = 0  # appends made by this process (to detect an append whose record failed)
        self._diverged: str | None = None
        self._cache: dict[str, Any] = {}
        create_tables(engine)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Callable[[], dt.datetime] = utcnow
    ) -> ElectionService:
        make_private_dir(settings.data_dir)
        engine = make_engine(settings.effective_database_url)
        create_tables(engine)
        return cls(engine, settings=settings, clock=clock)

    @property
    def clock(self) -> Callable[[], dt.datetime]:
        """The service's time source (injected; the voting period is enforced against it)."""
        return self._clock

    @property
    def ledger(self) -> Any:
        """The election's :class:`ledger.Ledger` (opened on first use, once the election exists)."""
        if self._ledger is None:
            with self._lock:
                if self._ledger is None:
                    self._ledger = open_ledger(self.settings, self.manifest)
        return self._ledger

    def close(self) -> None:
        """Stop the ledger's sequencer and dispose of the engine."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        self.engine.dispose()

    # ------------------------------------------------------------------------------------ reading state

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _row(self, s: Session) -> ElectionRow:
        row = s.exec(select(ElectionRow)).first()
        if row is None:
            raise NotFound("election.none", "no election has been created on this server")
        return row

    def election(self) -> ElectionRow:
        """A detached copy of the election row (private columns included: never return it from a route)."""
        with self._session() as s:
            return self._row(s)

    def has_election(self) -> bool:
        with self._session() as s:
            return s.exec(select(ElectionRow)).first() is not None

    @property
    def manifest(self) -> Manifest:
        m = self._cache.get("manifest")
        if m is None:
            m = parse_manifest(json.loads(self.election().manifest_json))
            self._cache["manifest"] = m
        return m

    @property
    def election_id(self) -> str:
        return self.manifest.election_id

    @property
    def base_hash(self) -> bytes:
        return self.manifest.base_hash

    @property
    def phase(self) -> str:
        return self.election().phase

    @property
    def roll_key(self) -> bytes:
        """The election's 32-byte roll key (keys voter aliases and roll match keys). SECRET."""
        return bytes.fromhex(self.election().roll_key_hex)

    def joint_key(self) -> JointKey:
        jk = self._cache.get("joint_key")
        if jk is None:
            with self._session() as s:
                row = self._row(s)
                if row.joint_key_json is None:
                    raise Conflict("election.no_joint_key", "the key ceremony has not finished")
                jk = JointKey.from_dict(json.loads(row.joint_key_json))
            self._cache["joint_key"] = jk
        return jk

    def require_phase(self, *phases: str) -> ElectionRow:
        row = self.election()
        if row.phase not in phases:
            raise Conflict(
                "election.phase", f"not allowed in phase '{row.phase}' (needs {' or '.join(phases)})"
            )
        return row

    def _payload(self, **fields: Any) -> dict[str, Any]:
        return {"election_id": self.election_id, "base_hash": self.base_hash.hex(), **fields}

    @contextmanager
    def appending(self) -> Iterator[None]:
        """Hold the election's mutation lock for a check → append → record sequence (public API).

        Every ledger append of this election (lifecycle steps here, ballots in :mod:`voting._intake`) runs
        inside ``with service.appending():``, which serialises them against each other and against phase
        changes (re-entrant: a holder may nest it). The caller's rule (docs/operator-guide.md): read and check
        first with no write pending in any session, append, then write the private state (advancing
        ``ElectionRow.ledger_synced``). If the private write fails after an append, the ledger is ahead of
        the private state: the service then refuses every further mutation (``service.diverged``, 503)
        rather than act on stale state, until :meth:`reconcile` has rebuilt it from the ledger.
        """
        with self._lock:
            if self._diverged is not None:
                raise ServiceUnavailable("service.diverged", self._diverged)
            before = self._appended
            try:
                yield
            except BaseException:
                if self._appended != before:
                    self._diverged = (
                        "a ledger entry was appended but the private state was not recorded; fix the storage "
                        "and restart the server (the ledger is the truth)"
                    )
                raise

    def _append(self, type_: str, payload: Mapping[str, Any], row: ElectionRow) -> int:
        """Append one entry. Called inside :meth:`appending` with no write pending in any session (SQLite has
        one writer: the ledger's own transaction must not wait on ours), after every check; the private
        state is written afterwards, in the transaction that commits ``row`` (whose ``ledger_synced`` this
        advances past the new entry)."""
        appended = self.ledger.append(_event_type(type_), dict(payload))
        self._appended += 1
        index = int(appended.index)
        row.ledger_synced = max(row.ledger_synced, index + 1)
        return index

    def _append_many(self, items: Sequence[tuple[str, dict[str, Any]]], row: ElectionRow) -> int:
        """Append several entries atomically (one ledger transaction); returns the last index."""
        appended = self.ledger.append_many([(_event_type(t), p) for t, p in items])
        self._appended += 1
        index = int(appended[-1].index)
        row.ledger_synced = max(row.ledger_synced, index + 1)
        return index

    def record_synced(self, s: Session, index: int) -> None:
        """For a collaborator's private write after :meth:`append_entry` (same session, same transaction):
        the private state now covers ledger entry ``index`` (docs/operator-guide.md, reconciliation)."""
        s.execute(
            update(ElectionRow)
            .where(ElectionRow.election_id == self.election_id)  # type: ignore[arg-type]
            .where(ElectionRow.ledger_synced <= index)  # type: ignore[arg-type]
            .values(ledger_synced=index + 1)
        )

    def append_entry(self, type_: str, payload: Mapping[str, Any]) -> Any:
        """Append one entry for a collaborator (ballot intake); call it inside :meth:`appending`.
        Returns the ledger's ``Appended`` (index and entry hash)."""
        appended = self.ledger.append(_event_type(type_), dict(payload))
        self._appended += 1
        return appended

    # ---------------------------------------------------------------------------------- reconciliation

    def reconcile(self, *, full: bool = False) -> ReconcileReport:
        """Bring the private state up to the ledger (the truth); afterwards the service accepts changes again.

        Replays, through idempotent appliers, every entry the private state has not recorded
        (``ElectionRow.ledger_synced`` up to the ledger's size) — with ``full``, every entry, which also
        compares the whole private state with the ledger and reports what differs — then deletes orphans
        (pending evidence whose ballot was never appended; an election row whose manifest never was) and
        stores the new high-water mark, all in one transaction. Runs at start-up
        (:func:`voting.app.create_app`) and on ``POST /api/v1/admin/reconcile`` (``tvote admin reconcile``);
        clears ``service.diverged``.

        Raises :class:`ServiceUnavailable` (``reconcile.*``) if the private state contradicts the ledger in a
        way it cannot repair (e.g. the ledger holds fewer entries than were recorded, or a stored roll differs
        from its published commitment); the service then stays diverged (503) until an operator intervenes.
        """
        with self._lock:
            try:
                report = self._reconcile(full)
            except ServiceError as e:
                self._diverged = f"reconciliation failed: {e.message}"
                raise
            except Exception as e:
                self._diverged = f"reconciliation failed: {type(e).__name__} (fix the storage and retry)"
                raise
            self._diverged = None
            self._cache.clear()
            return report

    @property
    def diverged(self) -> str | None:
        """Why mutations are refused (``service.diverged``), or ``None``."""
        return self._diverged

    def _reconcile(self, full: bool) -> ReconcileReport:
        from ._intake import BallotReplay

        with self._session() as s:
            first = s.exec(select(ElectionRow)).first()
        if first is None:
            return ReconcileReport(0, 0)
        self._cache.clear()
        ledger = self.ledger
        size = int(ledger.size)
        if first.phase == "creating" and size == 0:  # the manifest was never appended: not an election
            with self._session() as s:
                self._delete_election_rows(s, first.election_id)
            self._ledger = None
            ledger.close()
            self._cache.clear()
            return ReconcileReport(0, 0, orphans_removed=1)
        if first.ledger_synced > size:
            raise ServiceUnavailable(
                "reconcile.ledger_behind",
                f"the private state recorded {first.ledger_synced} ledger entries but the ledger holds "
                f"{size}; restore the ledger, do not accept changes",
            )
        start = 0 if full else first.ledger_synced
        repaired: list[tuple[int, str]] = []
        problems: list[str] = []
        ballots = BallotReplay(first.election_id, self._clock())
        with self._session() as s:
            row = self._row(s)
            for index, etype, payload in ledger_entries(ledger, start=start, stop=size):
                if etype in (EventType.BALLOT_CAST, EventType.BALLOT_SPOILED):
                    changed = ballots.apply(s, index, etype, payload)
                else:
                    changed = self._replay(s, row, index, etype, payload, problems)
                if changed:
                    repaired.append((index, etype))
            orphans = ballots.finish(s, full=full)
            problems.extend(ballots.problems)
            if full and row.phase == "creating":  # pragma: no cover - a manifest entry always precedes
                problems.append("the election row is still 'creating' although the ledger holds entries")
            row.ledger_synced = size
            s.add(row)
            s.commit()
        return ReconcileReport(start, size, tuple(repaired), orphans, tuple(problems))

    @staticmethod
    def _advance(row: ElectionRow, phase: str) -> bool:
        order = ("creating", *PHASES)
        if order.index(row.phase) < order.index(phase):
            row.phase = phase
            return True
        return False

    def _replay(
        self, s: Session, row: ElectionRow, index: int, etype: str, p: dict[str, Any], problems: list[str]
    ) -> bool:
        """Record the private effect of lifecycle entry ``index`` if it is missing; ``True`` if it was."""
        eid = row.election_id
        body = {k: v for k, v in p.items() if k not in ("election_id", "base_hash")}
        if etype != EventType.MANIFEST and p.get("base_hash") != row.base_hash:
            raise ServiceUnavailable("reconcile.foreign_entry", f"entry {index} is not of this election")
        if etype == EventType.MANIFEST:
            if p.get("base_hash") != row.base_hash:
                raise ServiceUnavailable("reconcile.manifest", "the ledger's manifest is not this election's")
            return self._advance(row, "setup")
        if etype == EventType.ROLL_COMMITMENT:
            # the stored roll tree answers every cast's roll_proof: it must give the published root too
            if (
                p["root"] != row.roll_root
                or p["size"] != row.roll_size
                or self._stored_roll_tree_root(s, row) != bytes.fromhex(p["root"])
            ):
                raise ServiceUnavailable(
                    "reconcile.roll", "the stored roll differs from the published roll commitment"
                )
            if row.roll_committed:
                return False
            row.roll_committed = True
            return True
        if etype == EventType.TRUSTEE_REGISTERED:
            t = s.get(TrusteeRow, (eid, p["trustee"]))
            if t is None:
                raise ServiceUnavailable("reconcile.trustee", f"entry {index} registers an unknown trustee")
            if t.status != "invited":
                return False
            # the token was never delivered: the trustee registers again with the same code and commitments
            t.status, t.name, t.token_hash = "registered", p["name"], None
            t.x25519_public_key = p["x25519_public_key"]
            t.commitments_json = json.dumps(TrusteeCommitments.from_dict(p["commitments"]).to_dict())
            t.registered_at = self._clock()
            s.add(t)
            return True
        if etype == EventType.TRUSTEE_SHARES:
            changed = False
            for share in p["shares"]:
                if s.get(ShareRow, (eid, p["sender"], share["recipient"])) is None:
                    s.add(
                        ShareRow(
                            election_id=eid,
                            sender=p["sender"],
                            recipient=share["recipient"],
                            ciphertext=share["ciphertext"],
                        )
                    )
                    changed = True
            dealer = s.get(TrusteeRow, (eid, p["sender"]))
            if dealer is not None and not dealer.shares_dealt:
                dealer.shares_dealt = True
                s.add(dealer)
                changed = True
            return changed
        if etype == EventType.TRUSTEE_COMPLAINT:
            c = Complaint.from_dict(body)
            if self._complaint_row(s, eid, c.complainant, c.dealer) is not None:
                return False
            s.add(
                ComplaintRow(
                    election_id=eid,
                    complainant=c.complainant,
                    dealer=c.dealer,
                    complaint_json=json.dumps(c.to_dict()),
                )
            )
            return True
        if etype == EventType.TRUSTEE_ANSWER:
            a = ComplaintAnswer.from_dict(body)
            crow = self._complaint_row(s, eid, a.complainant, a.dealer)
            if crow is None:
                raise ServiceUnavailable("reconcile.answer", f"entry {index} answers an unknown complaint")
            if crow.answer_json is not None:
                return False
            crow.answer_json = json.dumps(a.to_dict())
            s.add(crow)
            return True
        if etype == EventType.TRUSTEE_DISQUALIFIED:
            t = s.get(TrusteeRow, (eid, p["dealer"]))
            if t is None or t.status != "registered":
                return False
            t.status = "disqualified"
            s.add(t)
            return True
        if etype == EventType.JOINT_KEY:
            if row.joint_key_json is not None:
                return False
            fields = ("base_hash", "threshold", "qualified", "joint_key", "public_shares")
            jk = JointKey.from_dict({k: p[k] for k in fields})
            commitments = self._commitments(s)
            for crow in s.exec(select(ComplaintRow).where(ComplaintRow.election_id == eid)):
                _, res = self._resolve(s, row, crow, commitments)
                crow.status = "upheld" if res.dealer_disqualified else str(res.outcome)
                s.add(crow)
            row.joint_key_json = json.dumps(jk.to_dict())
            return True
        if etype == EventType.VOTING_EXTENDED:
            closes = _parse_rfc3339(p["closes"])
            if row.closes_at is not None and _aware(row.closes_at) >= closes:
                return False
            row.closes_at = closes
            return True
        if etype in (EventType.VOTING_OPENED, EventType.VOTING_CLOSED):
            phase, column, field = (
                ("voting", "opened_at", "opened_at")
                if etype == EventType.VOTING_OPENED
                else ("closed", "closed_at", "closed_at")
            )
            changed = self._advance(row, phase)
            if getattr(row, column) is None:
                setattr(row, column, _parse_rfc3339(p[field]))
                changed = True
            return changed
        if etype == EventType.TALLY_ENCRYPTED:
            if row.tally_json is not None:
                return False
            _, counting = self._counting()
            counted_root = merkle_root([leaf_hash(bytes.fromhex(h)) for h in counting.counted])
            if counted_root.hex() != p["counted_root"]:
                raise ServiceUnavailable(
                    "reconcile.tally", f"entry {index}: the counted set differs from the counting rule's"
                )
            row.tally_json = json.dumps({"payload": p, "summary": _summary(counting)})
            self._advance(row, "tallied")
            return True
        if etype == EventType.TALLY_PARTIAL:
            if s.get(PartialRow, (eid, p["trustee"])) is not None:
                return False
            s.add(
                PartialRow(
                    election_id=eid,
                    trustee=p["trustee"],
                    partials_json=json.dumps(p["partials"]),
                    status="accepted",  # a tally.excluded entry follows in the same batch if it was not
                )
            )
            return True
        if etype == EventType.TALLY_EXCLUDED:
            part = s.get(PartialRow, (eid, p["trustee"]))
            if part is None:
                raise ServiceUnavailable("reconcile.partial", f"entry {index} excludes an unknown partial")
            if part.status == "excluded":
                return False
            part.status, part.reason = "excluded", p["reason"]
            s.add(part)
            return True
        if etype == EventType.TALLY_RESULT:
            changed = row.result_json is None
            if changed:
                row.result_json = json.dumps(p)
            return self._advance(row, "decrypted") or changed
        if etype == EventType.RESULT_DECLARATION:
            pdf = self.settings.data_dir / "result.pdf"
            if not pdf.exists() or hashlib.sha256(pdf.read_bytes()).hexdigest() != p["pdf_sha256"]:
                problems.append(f"entry {index}: result.pdf is missing or not the declared PDF (restore it)")
            return self._advance(row, "declared")
        if etype == EventType.EVIDENCE_EXPORTED:  # an export of the sealed evidence leaves no private state
            return False
        raise ServiceUnavailable("reconcile.unknown_entry", f"entry {index}: unknown entry type")

    @staticmethod
    def _complaint_row(s: Session, eid: str, complainant: int, dealer: int) -> ComplaintRow | None:
        return s.exec(
            select(ComplaintRow).where(
                ComplaintRow.election_id == eid,
                ComplaintRow.complainant == complainant,
                ComplaintRow.dealer == dealer,
            )
        ).first()

    def lookup_alias(self, match_key: bytes) -> bytes | None:
        """The voter alias for a roll match key, or ``None`` if the resident is not on the roll."""
        with self._session() as s:
            row = self._row(s)
            if not row.roll_committed:
                return None
            e = s.exec(
                select(RollEntryRow).where(
                    RollEntryRow.election_id == row.election_id, RollEntryRow.match_key == match_key.hex()
                )
            ).first()
            return bytes.fromhex(e.alias) if e else None

    @staticmethod
    def _roll_nodes(s: Session, eid: str, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored roll-tree nodes ``(level, idx)`` asked for: one SELECT of primary-key equalities."""
        want = sorted(set(keys))
        if not want:
            return {}
        # every disjunct names the whole primary key, so SQLite (MULTI-INDEX OR) and PostgreSQL (BitmapOr)
        # do one index lookup per node; ``election_id = ? AND (a OR b ...)`` made SQLite scan the election
        eq = col(RollNodeRow.election_id) == eid
        rows = s.execute(
            select(RollNodeRow.level, RollNodeRow.idx, RollNodeRow.hash).where(
                or_(*(and_(eq, col(RollNodeRow.level) == lv, col(RollNodeRow.idx) == ix) for lv, ix in want))
            )
        )
        return {(int(lv), int(ix)): bytes(h) for lv, ix, h in rows}

    def _stored_roll_tree_root(self, s: Session, row: ElectionRow) -> bytes | None:
        """The roll tree's root as the stored nodes give it (O(log n) rows), or ``None`` if one is missing."""
        keys = subtree_nodes(0, row.roll_size or 0)
        nodes = self._roll_nodes(s, row.election_id, keys)
        if len(nodes) != len(keys):
            return None
        return fold([nodes[k] for k in keys])

    def roll_proof(self, alias: bytes) -> RollProof:
        """The RFC 9162 inclusion proof of ``alias`` in the committed roll tree (the ``roll_proof`` of its
        ``ballot.cast``): two indexed reads (the alias's leaf index, then O(log n) stored nodes), checked
        against the published root before it is returned, so a damaged node table is never published.

        Raises ``Forbidden`` (``voter.not_on_roll``) for an alias not on the roll, ``Conflict``
        (``roll.not_committed``) before the commitment, ``ServiceUnavailable`` (``roll.integrity``) if the
        stored tree does not prove the alias against the committed root."""
        with self._session() as s:
            row = self._row(s)
            if not row.roll_committed or row.roll_size is None or row.roll_root is None:
                raise Conflict("roll.not_committed", "the roll commitment is not published yet")
            index = s.exec(
                select(RollEntryRow.leaf_index).where(
                    RollEntryRow.election_id == row.election_id, RollEntryRow.alias == alias.hex()
                )
            ).first()
            if index is None:
                raise Forbidden("voter.not_on_roll", "the voter alias is not on this election's roll")
            size = row.roll_size
            nodes = self._roll_nodes(
                s, row.election_id, (k for part in roll_proof_plan(index, size) for k in part)
            )
        try:
            proof = roll_proof_from_nodes(index, size, nodes)
            proof.verify(alias, bytes.fromhex(row.roll_root))
        except (KeyError, ValueError, LedgerProofError, LedgerInvalidEncoding) as e:
            raise ServiceUnavailable(
                "roll.integrity", "the stored roll tree does not prove this voter against the roll commitment"
            ) from e
        return proof

    # -------------------------------------------------------------------------------------------- setup

    def _preflight(self, m: Manifest) -> None:
        """Production: the server must be able to run this election to its end (witness quorum, every
        allowed ballot-intake method configured, a commission key valid until voting closes) before its
        manifest goes on the ledger, where it can never be changed (``voting._startup``). In every
        environment, a manifest's ``pins`` must be this server's (start-up check ``manifest_pins``)."""
        from ._startup import CHECKS, election_problems, run_checks

        if self.settings.environment == "production":
            problems = election_problems(self.settings, m, now=self._clock())
        elif m.pins is not None:  # pins that are given must be this server's, in every environment
            pins_check = tuple(c for c in CHECKS if c.name == "manifest_pins")
            problems = run_checks(self.settings, m, now=self._clock(), checks=pins_check)
        else:
            return
        if problems:
            raise ManifestError(
                "election.preflight",
                "this server cannot run the election described by the manifest: "
                + "; ".join(map(str, problems)),
                details=[{"loc": [p.check], "msg": p.message} for p in problems],
            )

    def create_election(self, manifest: Manifest | Mapping[str, Any] | str | bytes) -> CreatedElection:
        """Publish the manifest (``election.manifest``) and issue one registration code per trustee."""
        m = manifest if isinstance(manifest, Manifest) else parse_manifest(manifest)
        self._preflight(m)
        with self.appending(), self._session() as s, s.no_autoflush:
            if s.exec(select(ElectionRow)).first() is not None:
                raise Conflict("election.exists", "this server already runs an election")
            if self._ledger is None:
                self._ledger = open_ledger(self.settings, m)
            if self._ledger.size != 0:
                raise Conflict("ledger.not_empty", "the ledger already holds entries of another election")
            if m.pins is not None and m.pins.log_key != self._ledger.log_key.vkey:
                raise ManifestError(
                    "election.preflight",
                    "pins.log_key is not this ledger's key",
                    details=[{"loc": ["manifest_pins"], "msg": "pins.log_key is not this ledger's key"}],
                )
            # The roll key and the trustee slots cannot be derived from the manifest entry: write them first
            # (phase "creating", committed), then append; reconciliation removes them if the append never
            # happened and completes them (phase "setup") if it did.
            row = ElectionRow(
                election_id=m.election_id,
                manifest_json=json.dumps(m.to_dict(), ensure_ascii=False),
                base_hash=m.base_hash.hex(),
                phase="creating",
                roll_key_hex=(self.settings.roll_key() or secrets.token_bytes(32)).hex(),
            )
            s.add(row)
            invitations: dict[int, str] = {}
            for i in range(1, m.trustees.n + 1):
                code = f"{i}-{secrets.token_urlsafe(24)}"
                invitations[i] = code
                s.add(TrusteeRow(election_id=m.election_id, index=i, invite_hash=_hash_secret(code)))
            s.commit()
            try:
                index = self._append(
                    EventType.MANIFEST, {"manifest": m.to_dict(), "base_hash": m.base_hash.hex()}, row
                )
            except BaseException:
                if self._ledger.size == 0:  # nothing was appended: the pre-written rows are orphans
                    self._delete_election_rows(s, m.election_id)
                raise
            row.phase = "setup"
            s.add(row)
            s.commit()
        self._cache.clear()
        return CreatedElection(m.election_id, m.base_hash.hex(), index, invitations)

    @staticmethod
    def _delete_election_rows(s: Session, election_id: str) -> None:
        s.rollback()
        s.execute(delete(TrusteeRow).where(TrusteeRow.election_id == election_id))  # type: ignore[arg-type]
        s.execute(delete(RollEntryRow).where(RollEntryRow.election_id == election_id))  # type: ignore[arg-type]
        s.execute(delete(RollNodeRow).where(RollNodeRow.election_id == election_id))  # type: ignore[arg-type]
        s.execute(delete(ElectionRow).where(ElectionRow.election_id == election_id))  # type: ignore[arg-type]
        s.commit()

    def reissue_invitations(self) -> dict[int, str]:
        """New one-time registration codes for every trustee that has not registered yet (the old codes stop
        working). For a commission that never saw the codes (the server died while creating the election)
        or lost them. No ledger entry: the codes are private."""
        with self.appending(), self._session() as s:
            row = self._row(s)
            if row.phase != "setup" or row.joint_key_json is not None:
                raise Conflict("election.phase", "registration codes are issued during the key ceremony only")
            out: dict[int, str] = {}
            for i, t in self._trustees(s).items():
                if t.status == "invited":
                    code = f"{i}-{secrets.token_urlsafe(24)}"
                    t.invite_hash = _hash_secret(code)
                    s.add(t)
                    out[i] = code
            s.commit()
        return out

    def load_roll(self, data: bytes | str) -> Roll:
        """Validate and store the roll (replacing an unpublished one). Returns the (unpublished) roll."""
        with self.appending(), self._session() as s:
            row = self._row(s)
            if row.phase != "setup":
                raise Conflict("election.phase", "the roll can only be loaded during setup")
            if row.roll_committed:
                raise Conflict("roll.committed", "the roll commitment is already published")
            eid = row.election_id
            roll = parse_roll_csv(data, roll_key=bytes.fromhex(row.roll_key_hex), election_id=eid)
            # The roll tree's every complete subtree (about 2n rows) is stored with the roll, in the same
            # transaction, so each cast's roll inclusion proof reads O(log n) rows (see roll_proof).
            tree_root, nodes = roll_tree(e.alias for e in roll.entries)
            s.execute(delete(RollEntryRow).where(RollEntryRow.election_id == eid))  # type: ignore[arg-type]
            s.execute(delete(RollNodeRow).where(RollNodeRow.election_id == eid))  # type: ignore[arg-type]
            # bulk INSERTs (executemany), not one ORM object per row
            for lo in range(0, roll.size, _INSERT_CHUNK):
                s.execute(
                    insert(RollEntryRow),
                    [
                        {
                            "election_id": eid,
                            "alias": e.alias.hex(),
                            "match_key": e.match_key.hex(),
                            "leaf_index": i,
                        }
                        for i, e in enumerate(roll.entries[lo : lo + _INSERT_CHUNK], start=lo)
                    ],
                )
            for lo in range(0, len(nodes), _INSERT_CHUNK):
                s.execute(
                    insert(RollNodeRow),
                    [
                        {"election_id": eid, "level": lv, "idx": ix, "hash": h}
                        for lv, ix, h in nodes[lo : lo + _INSERT_CHUNK]
                    ],
                )
            row.roll_size = roll.size
            row.roll_root = tree_root.hex()
            s.add(row)
            s.commit()
        return roll

    def publish_roll(self) -> int:
        """Append ``roll.commitment`` (size and Merkle root of the aliases) from the stored roll."""
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "setup":
                raise Conflict("election.phase", "the roll commitment is published during setup")
            if row.roll_committed:
                raise Conflict("roll.committed", "the roll commitment is already published")
            aliases = [
                bytes.fromhex(a)
                for a in s.exec(select(RollEntryRow.alias).where(RollEntryRow.election_id == row.election_id))
            ]
            if not aliases:
                raise Conflict("roll.missing", "load a roll before publishing its commitment")
            root = roll_root(aliases)
            if (
                root.hex() != row.roll_root
                or len(aliases) != row.roll_size
                or self._stored_roll_tree_root(s, row) != root
            ):  # pragma: no cover - integrity
                raise Conflict("roll.integrity", "the stored roll does not match its summary")
            row.roll_committed = True
            s.add(row)
            index = self._append(
                EventType.ROLL_COMMITMENT,
                self._payload(size=len(aliases), root=root.hex(), alias_scheme=ALIAS_SCHEME),
                row,
            )
            s.commit()
        return index

    # ------------------------------------------------------------------------------------ key ceremony

    def trustee_for_token(self, token: str) -> int | None:
        h = _hash_secret(token)
        with self._session() as s:
            r = s.exec(select(TrusteeRow).where(TrusteeRow.token_hash == h)).first()
            return r.index if r is not None else None

    def _trustees(self, s: Session) -> dict[int, TrusteeRow]:
        return {r.index: r for r in s.exec(select(TrusteeRow).order_by(TrusteeRow.index))}  # type: ignore[arg-type]

    def _commitments(self, s: Session) -> dict[int, TrusteeCommitments]:
        return {
            i: TrusteeCommitments.from_dict(json.loads(r.commitments_json))
            for i, r in self._trustees(s).items()
            if r.commitments_json is not None
        }

    def register_trustee(
        self,
        invitation: str,
        name: str,
        commitments: Mapping[str, Any],
        enrolment: Mapping[str, Any] | None = None,
    ) -> tuple[int, str]:
        """Check the registration code and the trustee's commitments; append ``trustee.registered``.

        When the manifest pins the trustees' enrolment keys, the registration must be signed by the key
        pinned for this index (``enrolment``: :class:`crypto.TrusteeEnrolment`, published in the entry);
        otherwise it is refused (``trustee.enrolment``), so the registration code alone (which the commission
        issues) cannot register a key in a trustee's place.

        Returns ``(index, token)``: the per-trustee bearer token (shown once; only its hash is stored).
        """
        try:
            index = int(invitation.split("-", 1)[0])
        except ValueError:
            raise Unauthenticated("trustee.invitation", "the registration code is not valid") from None
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise InvalidRequest("trustee.name", "the trustee's public role name must have 1..200 characters")
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            t = s.get(TrusteeRow, (row.election_id, index))
            if (
                t is not None
                and t.status != "invited"
                and t.token_hash is None
                and t.commitments_json is not None
                and secrets.compare_digest(t.invite_hash, _hash_secret(invitation))
            ):
                # ``trustee.registered`` is on the ledger but the answer carrying the token never reached the
                # trustee (the server died; reconciliation restored the registration without a token): the
                # same code and the same commitments get a fresh token, nothing is appended.
                same = TrusteeCommitments.from_dict(dict(commitments)).to_dict()
                if same != json.loads(t.commitments_json):
                    raise Conflict("trustee.registered", f"trustee {index} registered other commitments")
                token = secrets.token_urlsafe(32)
                t.token_hash = _hash_secret(token)
                s.add(t)
                s.commit()
                return index, token
            if row.phase != "setup" or row.joint_key_json is not None:
                raise Conflict("election.phase", "trustees register during the key ceremony only")
            if t is None or not secrets.compare_digest(t.invite_hash, _hash_secret(invitation)):
                raise Unauthenticated("trustee.invitation", "the registration code is not valid")
            if t.status != "invited":
                raise Conflict("trustee.registered", f"trustee {index} is already registered")
            c = TrusteeCommitments.from_dict(dict(commitments))
            if c.trustee != index:
                raise RejectedSubmission(
                    "trustee.index", f"the commitments are for trustee {c.trustee}, this code is for {index}"
                )
            m = self.manifest
            c.verify(base_hash=m.base_hash, threshold=m.trustees.threshold, trustees=m.trustees.n)
            enrolled = self._check_enrolment(m, index, name, c, enrolment)
            for other in self._commitments(s).values():
                if other.x25519_public_key == c.x25519_public_key:
                    raise RejectedSubmission("trustee.key_reuse", "this X25519 key is already registered")
            token = secrets.token_urlsafe(32)
            t.token_hash = _hash_secret(token)
            t.status = "registered"
            t.name = name
            t.x25519_public_key = c.x25519_public_key.hex()
            t.commitments_json = json.dumps(c.to_dict())
            t.registered_at = self._clock()
            s.add(t)
            self._append(
                EventType.TRUSTEE_REGISTERED,
                self._payload(
                    trustee=index,
                    name=name,
                    x25519_public_key=c.x25519_public_key.hex(),
                    commitments=c.to_dict(),
                    **({"enrolment": enrolled} if enrolled is not None else {}),
                ),
                row,
            )
            s.commit()
        return index, token

    @staticmethod
    def _check_enrolment(
        m: Manifest, index: int, name: str, c: TrusteeCommitments, enrolment: Mapping[str, Any] | None
    ) -> dict[str, str] | None:
        """The registration's enrolment (to publish), checked against ``pins.trustee_enrolment_keys``."""
        if m.pins is None:
            if enrolment is not None:
                raise RejectedSubmission(
                    "trustee.enrolment", "this election pins no enrolment keys: register without an enrolment"
                )
            return None
        if enrolment is None:
            raise RejectedSubmission(
                "trustee.enrolment",
                f"this election pins trustee {index}'s enrolment key: sign the registration with it "
                "(`tvote trustee init --enrolment-key`)",
            )
        try:
            e = TrusteeEnrolment.from_dict(dict(enrolment))
            e.verify(
                pinned_key=bytes.fromhex(m.pins.trustee_enrolment_keys[index - 1]),
                base_hash=m.base_hash,
                trustee=index,
                name=name,
                commitments=c,
            )
        except CryptoError as err:
            raise RejectedSubmission(
                "trustee.enrolment", f"the registration is not signed by trustee {index}'s pinned key ({err})"
            ) from None
        return e.to_dict()

    def ceremony_state(self) -> dict[str, Any]:
        """Public view of the key ceremony (who registered, dealt, complained; open complaints)."""
        with self._session() as s:
            row = self._row(s)
            trustees = self._trustees(s)
            complaints = list(s.exec(select(ComplaintRow).where(ComplaintRow.election_id == row.election_id)))
            return {
                "threshold": self.manifest.trustees.threshold,
                "n": self.manifest.trustees.n,
                "trustees": [
                    {
                        "index": i,
                        "status": r.status,
                        "name": r.name,
                        "shares_dealt": r.shares_dealt,
                        "commitments": json.loads(r.commitments_json) if r.commitments_json else None,
                    }
                    for i, r in trustees.items()
                ],
                "complaints": [
                    {
                        "complaint": json.loads(c.complaint_json),
                        "answer": json.loads(c.answer_json) if c.answer_json else None,
                        "status": c.status,
                    }
                    for c in complaints
                ],
                "joint_key": self.joint_key().to_dict() if row.joint_key_json else None,
            }

    def submit_shares(self, trustee: int, shares: Sequence[Mapping[str, Any]]) -> int:
        """Dealer ``trustee`` publishes one encrypted share for every other registered trustee."""
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "setup" or row.joint_key_json is not None:
                raise Conflict("election.phase", "shares are dealt during the key ceremony only")
            trustees = self._trustees(s)
            me = trustees[trustee]
            if me.shares_dealt:
                raise Conflict("trustee.shares_dealt", "this trustee already dealt its shares")
            n = self.manifest.trustees.n
            registered = {i for i, r in trustees.items() if r.status == "registered"}
            if len(registered) != n:
                raise Conflict("ceremony.waiting", "shares are dealt once all trustees have registered")
            parsed = [EncryptedShare.from_dict(dict(d)) for d in shares]
            if any(p.sender != trustee for p in parsed):
                raise Forbidden("trustee.sender", "a trustee can only deal its own shares")
            recipients = sorted(p.recipient for p in parsed)
            if recipients != sorted(registered - {trustee}):
                raise RejectedSubmission(
                    "trustee.recipients", "exactly one share for every other trustee is required"
                )
            parsed.sort(key=lambda p: p.recipient)
            for p in parsed:
                s.add(
                    ShareRow(
                        election_id=row.election_id,
                        sender=trustee,
                        recipient=p.recipient,
                        ciphertext=p.ciphertext.hex(),
                    )
                )
            me.shares_dealt = True
            s.add(me)
            index = self._append(
                EventType.TRUSTEE_SHARES,
                self._payload(
                    sender=trustee,
                    shares=[{"recipient": p.recipient, "ciphertext": p.ciphertext.hex()} for p in parsed],
                ),
                row,
            )
            s.commit()
        return index

    def shares_for(self, recipient: int) -> list[dict[str, Any]]:
        with self._session() as s:
            row = self._row(s)
            rows = s.exec(
                select(ShareRow).where(
                    ShareRow.election_id == row.election_id, ShareRow.recipient == recipient
                )
            )
            return [
                EncryptedShare(r.sender, r.recipient, bytes.fromhex(r.ciphertext)).to_dict()
                for r in sorted(rows, key=lambda r: r.sender)
            ]

    def submit_complaint(self, trustee: int, complaint: Mapping[str, Any]) -> int:
        """Trustee ``trustee`` publicly accuses a dealer (evidence: their Box shared key)."""
        c = Complaint.from_dict(dict(complaint))
        if c.complainant != trustee:
            raise Forbidden("trustee.complainant", "a trustee can only complain in its own name")
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "setup" or row.joint_key_json is not None:
                raise Conflict("election.phase", "complaints are made during the key ceremony only")
            dealer = s.get(TrusteeRow, (row.election_id, c.dealer))
            if dealer is None or dealer.status != "registered":
                raise Conflict("complaint.dealer", f"trustee {c.dealer} is not a registered dealer")
            dup = s.exec(
                select(ComplaintRow).where(
                    ComplaintRow.election_id == row.election_id,
                    ComplaintRow.complainant == trustee,
                    ComplaintRow.dealer == c.dealer,
                )
            ).first()
            if dup is not None:
                raise Conflict("complaint.duplicate", "this complaint was already made")
            s.add(
                ComplaintRow(
                    election_id=row.election_id,
                    complainant=trustee,
                    dealer=c.dealer,
                    complaint_json=json.dumps(c.to_dict()),
                )
            )
            index = self._append(EventType.TRUSTEE_COMPLAINT, self._payload(**c.to_dict()), row)
            s.commit()
        return index

    def complaints_against(self, dealer: int) -> list[dict[str, Any]]:
        with self._session() as s:
            row = self._row(s)
            rows = s.exec(
                select(ComplaintRow).where(
                    ComplaintRow.election_id == row.election_id, ComplaintRow.dealer == dealer
                )
            )
            return [{**json.loads(r.complaint_json), "answered": r.answer_json is not None} for r in rows]

    def submit_answer(self, trustee: int, answer: Mapping[str, Any]) -> int:
        """The accused dealer reveals the disputed share (``trustee.answer``)."""
        a = ComplaintAnswer.from_dict(dict(answer))
        if a.dealer != trustee:
            raise Forbidden("trustee.dealer", "a trustee can only answer complaints against itself")
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "setup" or row.joint_key_json is not None:
                raise Conflict("election.phase", "answers are given during the key ceremony only")
            c = s.exec(
                select(ComplaintRow).where(
                    ComplaintRow.election_id == row.election_id,
                    ComplaintRow.complainant == a.complainant,
                    ComplaintRow.dealer == trustee,
                )
            ).first()
            if c is None:
                raise NotFound("complaint.none", "there is no such complaint against you")
            if c.answer_json is not None:
                raise Conflict("complaint.answered", "this complaint was already answered")
            c.answer_json = json.dumps(a.to_dict())
            s.add(c)
            index = self._append(EventType.TRUSTEE_ANSWER, self._payload(**a.to_dict()), row)
            s.commit()
        return index

    def _resolve(
        self, s: Session, row: ElectionRow, crow: ComplaintRow, commitments: Mapping[int, TrusteeCommitments]
    ) -> tuple[Complaint, Any]:
        """Resolve one stored complaint (``crypto._threshold.resolve_complaint``)."""
        c = Complaint.from_dict(json.loads(crow.complaint_json))
        share = s.get(ShareRow, (row.election_id, c.dealer, c.complainant))
        res = resolve_complaint(
            c,
            dealer=commitments[c.dealer],
            encrypted_share=(
                EncryptedShare(c.dealer, c.complainant, bytes.fromhex(share.ciphertext)) if share else None
            ),
            answer=ComplaintAnswer.from_dict(json.loads(crow.answer_json)) if crow.answer_json else None,
            base_hash=self.base_hash,
        )
        return c, res

    def finalize_key_ceremony(self) -> JointKey:
        """Resolve complaints, disqualify dealers, and publish the joint key (``election.joint-key``)."""
        m = self.manifest
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "setup" or row.joint_key_json is not None:
                raise Conflict("election.phase", "the key ceremony is already finished")
            trustees = self._trustees(s)
            commitments = self._commitments(s)
            out: dict[int, str] = {}
            complaints = list(s.exec(select(ComplaintRow).where(ComplaintRow.election_id == row.election_id)))
            accused = {c.dealer for c in complaints}
            for i, r in trustees.items():
                if r.status != "registered":
                    out[i] = "did not register"
                elif not r.shares_dealt and i not in accused:
                    # a silent dealer is disqualified only through complaints (publicly checkable cause)
                    raise Conflict(
                        "ceremony.waiting",
                        f"trustee {i} has not dealt its shares; the others must complain about the missing "
                        "share (tvote trustee verify-shares --complain-missing) first",
                    )
            resolutions = []
            for crow in complaints:
                c, res = self._resolve(s, row, crow, commitments)
                crow.status = "upheld" if res.dealer_disqualified else str(res.outcome)
                s.add(crow)
                resolutions.append(res)
                if res.dealer_disqualified:
                    out.setdefault(c.dealer, f"complaint by trustee {c.complainant}: {res.reason}")
            eligible = [c for i, c in commitments.items() if i not in out]
            try:
                q = qualify(
                    eligible,
                    base_hash=m.base_hash,
                    threshold=m.trustees.threshold,
                    trustees=m.trustees.n,
                    resolutions=resolutions,
                )
            except ThresholdError as e:
                raise Conflict("ceremony.too_few", e.operator_message) from e
            for i, why in q.disqualified.items():
                out.setdefault(i, why)
            jk = JointKey.from_commitments(eligible, q, base_hash=m.base_hash)
            for i in sorted(out):
                if trustees[i].status == "registered":
                    trustees[i].status = "disqualified"
                    s.add(trustees[i])
            row.joint_key_json = json.dumps(jk.to_dict())
            s.add(row)
            d = jk.to_dict()
            items = [
                (EventType.TRUSTEE_DISQUALIFIED, self._payload(dealer=i, reason=out[i])) for i in sorted(out)
            ]
            items.append(
                (
                    EventType.JOINT_KEY,
                    self._payload(
                        qualified=d["qualified"],
                        joint_key=d["joint_key"],
                        public_shares=d["public_shares"],
                        threshold=d["threshold"],
                    ),
                )
            )
            self._append_many(items, row)
            s.commit()
        self._cache.clear()
        return jk

    # ------------------------------------------------------------------------------------------ voting

    def voting_window(self) -> tuple[dt.datetime, dt.datetime]:
        """``(opens, closes)``: the manifest's voting period, ``closes`` moved by any ``voting.extended``."""
        period = self.manifest.voting_period
        closes = self.election().closes_at
        return period.opens, period.closes if closes is None else _aware(closes)

    def require_voting(self) -> None:
        """Ballots are accepted now: the phase is ``voting`` and the (extended) period has not ended.

        Raises 409 ``voting.not_open`` before voting opens and ``voting.closed`` once the period's end has
        passed (even before the ``voting.closed`` entry is appended) or voting was closed."""
        row = self.election()
        period = self.manifest.voting_period
        if row.phase in ("creating", "setup"):
            raise Conflict(
                "voting.not_open", f"voting has not opened (the voting period opens {_rfc3339(period.opens)})"
            )
        if row.phase != "voting":
            raise Conflict("voting.closed", "voting has closed")
        closes = self._voting_end(row)
        if self._clock() >= closes:
            raise Conflict("voting.closed", f"voting closed at {_rfc3339(closes)}")

    def _voting_end(self, row: ElectionRow) -> dt.datetime:
        """When voting ends: the manifest's ``voting_period.closes``, or the end of the last extension."""
        return self.manifest.voting_period.closes if row.closes_at is None else _aware(row.closes_at)

    @staticmethod
    def _override(reason: str | None, needed: bool, what: str) -> dict[str, Any]:
        """The ``override`` payload member, present exactly when the manifest's period is departed from."""
        if reason is None:
            return {}
        if not needed:
            raise InvalidRequest(
                "voting.override_unneeded",
                f"{what} follows the voting period: no override is needed, none is recorded",
            )
        return {"override": {"reason": _check_reason(reason)}}

    def open_voting(self, *, override_reason: str | None = None) -> int:
        """Append ``voting.opened`` (needs the joint key and the roll commitment on the ledger).

        Voting opens at the manifest's ``voting_period.opens`` (:meth:`enforce_period` does it by itself);
        opening earlier needs ``override_reason``, recorded in the entry (``override.reason``). Voting never
        opens once the period has ended (``voting.period_over``)."""
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "setup":
                raise Conflict("election.phase", f"voting cannot open in phase '{row.phase}'")
            if row.joint_key_json is None:
                raise Conflict("election.no_joint_key", "the key ceremony has not finished")
            if not row.roll_committed:
                raise Conflict("roll.not_committed", "publish the roll commitment before opening voting")
            now = self._clock().replace(microsecond=0)
            period = self.manifest.voting_period
            if now >= period.closes:
                raise Conflict(
                    "voting.period_over",
                    f"the voting period ended at {_rfc3339(period.closes)}; voting cannot open",
                )
            early = now < period.opens
            if early and override_reason is None:
                raise Conflict(
                    "voting.too_early",
                    f"the voting period opens {_rfc3339(period.opens)}; opening earlier needs an override "
                    "with its reason (recorded on the ledger)",
                )
            extra = self._override(override_reason, early, "opening now")
            row.phase, row.opened_at = "voting", now
            s.add(row)
            index = self._append(
                EventType.VOTING_OPENED, self._payload(opened_at=_rfc3339(now), **extra), row
            )
            s.commit()
        return index

    def extend_voting(self, closes: dt.datetime, reason: str) -> int:
        """Append ``voting.extended``: voting now closes at ``closes`` (later than the current end), for
        ``reason``. Only while voting is open and before the current end (a late close is decided in time
        and on the record, never after the fact)."""
        if closes.tzinfo is None or closes.microsecond:
            raise InvalidRequest("voting.extend_time", "the new end is a whole-second time with a time zone")
        closes = closes.astimezone(dt.UTC)
        text = _check_reason(reason)
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "voting":
                raise Conflict("election.phase", f"voting cannot be extended in phase '{row.phase}'")
            current = self._voting_end(row)
            if self._clock() >= current:
                raise Conflict(
                    "voting.closed", f"voting closed at {_rfc3339(current)}; it cannot be extended"
                )
            if closes <= current:
                raise InvalidRequest(
                    "voting.extend_time", f"the new end must be after the current end {_rfc3339(current)}"
                )
            row.closes_at = closes
            s.add(row)
            index = self._append(
                EventType.VOTING_EXTENDED, self._payload(closes=_rfc3339(closes), reason=text), row
            )
            s.commit()
        return index

    def close_voting(self, *, override_reason: str | None = None) -> int:
        """Append ``voting.closed``; no ballot is accepted afterwards.

        Voting closes at the end of the (extended) period (:meth:`enforce_period` does it by itself, and the
        intake refuses ballots from that instant on), and ``closed_at`` is then that end. Closing earlier
        needs ``override_reason``, recorded in the entry, and ``closed_at`` is the time of closing."""
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "voting":
                raise Conflict("election.phase", f"voting cannot close in phase '{row.phase}'")
            now = self._clock().replace(microsecond=0)
            end = self._voting_end(row)
            early = now < end
            if early and override_reason is None:
                raise Conflict(
                    "voting.too_early",
                    f"the voting period closes {_rfc3339(end)}; closing earlier needs an override with its "
                    "reason (recorded on the ledger)",
                )
            extra = self._override(override_reason, early, "closing now")
            closed_at = now if early else end
            row.phase, row.closed_at = "closed", closed_at
            s.add(row)
            index = self._append(
                EventType.VOTING_CLOSED, self._payload(closed_at=_rfc3339(closed_at), **extra), row
            )
            s.commit()
        return index

    def enforce_period(self) -> str | None:
        """Open or close voting if the voting period says so now; what the server's period keeper runs.

        Opens (``voting.opened``) once ``opens`` has come, if the key ceremony and the roll commitment are
        done; closes (``voting.closed``) once the (extended) end has come. Returns ``"opened"``,
        ``"closed"`` or ``None``; safe to call at any time, from any thread (idempotent under the lock)."""
        with self.appending():
            if not self.has_election():
                return None
            row = self.election()
            now = self._clock()
            opens, closes = self.voting_window()
            if row.phase == "setup" and opens <= now < closes:
                if row.joint_key_json is None or not row.roll_committed:
                    return None
                self.open_voting()
                return "opened"
            if row.phase == "voting" and now >= closes:
                self.close_voting()
                return "closed"
        return None

    # ------------------------------------------------------------------------------------------- tally

    def _ballot_entries(self) -> tuple[list[tuple[int, dict[str, Any]]], int]:
        """``ballot.cast`` entries ``(index, payload)`` in ledger order, and the number of spoiled ballots."""
        cast: list[tuple[int, dict[str, Any]]] = []
        spoiled = 0
        for index, etype, payload in ledger_entries(self.ledger):
            if etype == EventType.BALLOT_CAST:
                cast.append((index, payload))
            elif etype == EventType.BALLOT_SPOILED:
                spoiled += 1
        return cast, spoiled

    def _counting(self) -> tuple[list[tuple[int, dict[str, Any]]], CountedBallots]:
        """The ``ballot.cast`` entries and the counting rule applied to them (the ledger is the input)."""
        cast, spoiled = self._ballot_entries()
        seen: set[str] = set()
        for index, p in cast:
            if p["ballot_hash"] in seen:  # pragma: no cover - intake refuses replays
                raise Conflict("ledger.replay", f"ballot hash repeated at entry {index}")
            seen.add(p["ballot_hash"])
        counting = count_ballots(
            ((i, p["ballot_hash"], p["voter_alias"], p["channel"]) for i, p in cast), spoiled
        )
        return cast, counting

    def compute_tally(self) -> dict[str, Any]:
        """Apply the counting rule; publish the sum of the counted ballots (``tally.encrypted``)."""
        from crypto import ElectionContext, EncryptedBallot, tally_ciphertexts

        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "closed":
                raise Conflict(
                    "election.phase", f"the tally is computed after voting closes (phase '{row.phase}')"
                )
            cast, counting = self._counting()
            counted = set(counting.counted)
            ctx = ElectionContext(
                self.base_hash, self.joint_key().public_key, tuple(self.manifest.contest_specs())
            )
            totals = tally_ciphertexts(
                (EncryptedBallot.from_dict(p["ballot"]) for _, p in cast if p["ballot_hash"] in counted),
                ctx=ctx,
            )
            ciphertexts: dict[str, dict[str, Any]] = {}
            for (contest, selection), ct in totals.items():
                ciphertexts.setdefault(contest, {})[selection] = ct.to_dict()
            # The counted set is published as the RFC 9162 Merkle root over the counted ballot hashes in
            # ledger order (a list would not fit one 1 MiB entry at city scale); the verifier re-derives it.
            counted_root = merkle_root([leaf_hash(bytes.fromhex(h)) for h in counting.counted])
            payload = self._payload(counted_root=counted_root.hex(), ciphertexts=ciphertexts)
            summary = _summary(counting)
            row.phase = "tallied"
            row.tally_json = json.dumps({"payload": payload, "summary": summary})
            s.add(row)
            index = self._append(EventType.TALLY_ENCRYPTED, payload, row)
            s.commit()
        # trustees decrypt only a tally.encrypted entry under a signed checkpoint (voting._tally_check): sign
        # one covering it now (the witnesses then cosign it; after a crash here: tvote admin checkpoint)
        self.ledger.checkpoint()
        return {"ledger_index": index, **summary, "ciphertexts": ciphertexts}

    def _tally(self, row: ElectionRow) -> dict[str, Any]:
        if row.tally_json is None:
            raise Conflict("tally.none", "the encrypted tally has not been computed")
        t: dict[str, Any] = json.loads(row.tally_json)
        return t

    def encrypted_tally(self) -> dict[str, Any]:
        """The ``tally.encrypted`` payload (what trustees decrypt)."""
        p: dict[str, Any] = self._tally(self.election())["payload"]
        return p

    def _tally_ciphertexts(self, payload: Mapping[str, Any]) -> dict[tuple[str, str], Ciphertext]:
        out: dict[tuple[str, str], Ciphertext] = {}
        for c in self.manifest.contests:
            for sel in c.selections:
                out[(c.id, sel.id)] = Ciphertext.from_dict(payload["ciphertexts"][c.id][sel.id])
        return out

    def submit_partials(self, trustee: int, partials: Mapping[str, Mapping[str, Any]]) -> PartialOutcome:
        """Record trustee ``trustee``'s partial decryptions (``tally.partial``).

        A malformed submission (wrong shape, undecodable, another trustee's index) is refused with a 4xx and
        changes nothing. A well-formed one is published; if any of its Chaum–Pedersen proofs fails, a
        ``tally.excluded`` entry names the trustee and the failed check, and the partial is never combined.
        """
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "tallied":
                raise Conflict(
                    "election.phase",
                    f"partial decryptions are accepted after the tally (phase '{row.phase}')",
                )
            if s.get(PartialRow, (row.election_id, trustee)) is not None:
                raise Conflict("partial.duplicate", "this trustee already submitted its partial decryptions")
            cts = self._tally_ciphertexts(self._tally(row)["payload"])
            expected = {c: {sel for (cc, sel) in cts if cc == c} for (c, _) in cts}
            if set(partials) != set(expected) or any(set(partials[c]) != expected[c] for c in expected):
                raise RejectedSubmission(
                    "partial.shape", "partials must cover exactly the manifest's contests and selections"
                )
            parsed: dict[tuple[str, str], PartialDecryption] = {}
            for key in cts:
                try:
                    pd = PartialDecryption.from_dict(partials[key[0]][key[1]])
                except (InvalidEncoding, CryptoError) as e:
                    raise RejectedSubmission("partial.encoding", f"{key[0]}/{key[1]}: {e}") from e
                if pd.trustee != trustee:
                    raise Forbidden(
                        "partial.trustee", "a trustee can only submit its own partial decryptions"
                    )
                parsed[key] = pd
            jk = self.joint_key()
            reason: str | None = None
            for key, pd in parsed.items():
                try:
                    verify_partial(pd, cts[key], jk)
                except ThresholdError as e:
                    reason = f"{key[0]}/{key[1]}: {e.check}"
                    break
            published: dict[str, dict[str, Any]] = {}
            for (c, sel), pd in parsed.items():
                published.setdefault(c, {})[sel] = pd.to_dict()
            s.add(
                PartialRow(
                    election_id=row.election_id,
                    trustee=trustee,
                    partials_json=json.dumps(published),
                    status="accepted" if reason is None else "excluded",
                    reason=reason,
                )
            )
            items = [(EventType.TALLY_PARTIAL, self._payload(trustee=trustee, partials=published))]
            if reason is not None:
                items.append((EventType.TALLY_EXCLUDED, self._payload(trustee=trustee, reason=reason)))
            index = self._append_many(items, row)
            s.commit()
        return PartialOutcome(trustee, reason is None, index, reason)

    def publish_result(self) -> dict[str, Any]:
        """Combine ``t`` accepted partials per selection, decode the counts, append ``tally.result``."""
        from crypto import combine, discrete_log

        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "tallied":
                raise Conflict(
                    "election.phase", f"the result is computed after the tally (phase '{row.phase}')"
                )
            tally = self._tally(row)
            cts = self._tally_ciphertexts(tally["payload"])
            accepted = {
                p.trustee: json.loads(p.partials_json)
                for p in s.exec(
                    select(PartialRow).where(
                        PartialRow.election_id == row.election_id, PartialRow.status == "accepted"
                    )
                )
            }
            jk = self.joint_key()
            if len(accepted) < jk.threshold:
                raise Conflict(
                    "tally.too_few_partials",
                    f"{len(accepted)} valid partial decryptions, need t = {jk.threshold}",
                )
            used = tuple(sorted(accepted)[: jk.threshold])
            bound = tally["summary"]["counted"]
            results: dict[str, dict[str, int]] = {}
            for (c, sel), ct in cts.items():
                parts = [PartialDecryption.from_dict(accepted[j][c][sel]) for j in used]
                comb = combine(ct, parts, jk)
                if comb.excluded:  # pragma: no cover - partials were verified on submission
                    raise Conflict("tally.partial_invalid", f"a stored partial fails for {c}/{sel}")
                results.setdefault(c, {})[sel] = discrete_log(comb.point, bound)
            payload = self._payload(results=results, trustees_used=list(used), **tally["summary"])
            row.phase = "decrypted"
            row.result_json = json.dumps(payload)
            s.add(row)
            index = self._append(EventType.TALLY_RESULT, payload, row)
            s.commit()
        return {"ledger_index": index, **payload}

    def result(self) -> dict[str, Any]:
        row = self.election()
        if row.result_json is None:
            raise Conflict("result.none", "the result has not been published")
        r: dict[str, Any] = json.loads(row.result_json)
        return r

    # -------------------------------------------------------------------------------- declaration, export

    def record_url(self) -> str:
        return f"{self.settings.public_url.rstrip('/')}/api/v1/ledger"

    def declare_result(self, signer: Any | None = None) -> dict[str, Any]:
        """Build the signed result declaration PDF citing a fresh checkpoint; append ``result.declaration``.

        ``signer`` is a :class:`voting._result_pdf.CommissionSigner`; by default the commission key in
        ``data_dir`` (created on first use in development/test, required in production).
        """
        from ._result_pdf import build_result_pdf

        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "decrypted":
                raise Conflict("election.phase", f"the declaration follows the result (phase '{row.phase}')")
            result = json.loads(row.result_json or "{}")
            size, cp_hash = ledger_checkpoint(self.ledger)
            pdf = build_result_pdf(
                self.manifest.to_dict(),
                {k: v for k, v in result.items() if k not in ("election_id", "base_hash")},
                checkpoint_hash=cp_hash,
                record_url=self.record_url(),
                signer=signer or self.commission_signer(),
            )
            pdf_path = self.settings.data_dir / "result.pdf"
            pdf_path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(pdf_path, pdf)  # before the append: the entry names its hash
            digest = hashlib.sha256(pdf).hexdigest()
            row.phase = "declared"
            s.add(row)
            index = self._append(
                EventType.RESULT_DECLARATION,
                self._payload(pdf_sha256=digest, checkpoint_size=size, checkpoint_hash=cp_hash),
                row,
            )
            s.commit()
        return {
            "ledger_index": index,
            "pdf_sha256": digest,
            "checkpoint_size": size,
            "checkpoint_hash": cp_hash,
            "pdf_path": str(pdf_path),
        }

    def result_pdf(self) -> bytes:
        p = self.settings.data_dir / "result.pdf"
        if self.phase != "declared" or not p.exists():
            raise NotFound("result.no_pdf", "the result declaration has not been produced")
        return p.read_bytes()

    def commission_signer(self) -> Any:
        """The commission's PDF-signing key and certificate from ``data_dir`` (see docs/operator-guide.md)."""
        from ._commission_key import load_or_create_commission_signer

        return load_or_create_commission_signer(self.settings)

    def export(self, directory: str | Path) -> Path:
        """Write the election record (ledger export plus ``result.pdf``) into ``directory``."""
        out = Path(directory)
        self.ledger.checkpoint()  # cover every committed entry
        pdf = self.settings.data_dir / RESULT_FILE
        self.ledger.export(out, {RESULT_FILE: pdf.read_bytes()} if pdf.exists() else None)
        return out

    def export_archive_bytes(self) -> bytes:
        """The record archive (docs/record.md §1, with ``result.pdf``): the record format's one writer."""
        import io
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            buf = io.BytesIO()
            archive_record(self.export(Path(tmp) / "record"), buf)
            return buf.getvalue()


# ----------------------------------------------------------------------------------- ledger adapters


def ledger_entries(
    ledger: Any, chunk: int = 2000, *, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """Iterate ``(index, type, payload)`` over the committed ledger entries ``[start, stop)``, in order
    (``stop`` defaults to the ledger's size when called)."""
    size = ledger.size if stop is None else stop
    for first in range(start, size, chunk):
        for e in ledger.entries(first, min(size, first + chunk)):
            yield e.index, e.type, e.payload


def ledger_checkpoint(ledger: Any) -> tuple[int, str]:
    """A fresh signed checkpoint: ``(tree size, SHA-256 of its signed-note text)`` (docs/record.md)."""
    cp = ledger.checkpoint()
    return int(cp.size), hashlib.sha256(cp.signed.note.encode("utf-8")).hexdigest()
