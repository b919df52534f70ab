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

One module per stage, each holding its forward steps and the replay appliers of the entries they append
(registered by event type; the core's reconciliation dispatches on them):

* ``_core``: the engine and ledger, the mutation lock (:meth:`~ElectionService.appending` exclusive,
  :meth:`~ElectionService.casting` shared per voter; ``_election_lock`` its in-process half), the append, the
  phase, the replay registry and the reconciliation driver;
* ``_setup``: the manifest and the trustees' registration codes;
* ``_roll``: the roll, its stored Merkle tree and its commitment;
* ``_ceremony``: the key ceremony's submissions (registration, shares, complaints, answers);
* ``_joint_key``: the ceremony's end (complaints resolved, dealers disqualified, the joint key);
* ``_booth``: the booth's digest (``booth.published``, before voting opens) and Check my ballot's counter;
* ``_kiosk``: the polling-place kiosks, the commission's side (enrolment, revocation, poll-worker PINs:
  ``kiosk.enrolled``, ``kiosk.revoked``), and ``_kiosk_sessions``, the kiosks' side (signed requests,
  opening and closing: ``kiosk.opened``, ``kiosk.closed``); a kiosk's ballot is cast by the intake
  (:meth:`IntakeService.cast_kiosk`);
* ``_period``: opening (publishing the booth first if nobody has), extending and closing the voting period;
* ``_tally``: the counting rule and the encrypted tally;
* ``_publish``: partial decryptions, the result, the declaration PDF, the export;
* ``_intake``: the ballot intake, :class:`IntakeService` (beside :class:`ElectionService`, appending through
  it): casting, Benaloh spoiling and receipts, with ``_intake_checks`` (its settings and the checks before the
  locks), ``_intake_auth`` (challenges, JPKI, digital ID and face), ``_intake_evidence`` (the pending and
  sealed authentication evidence, the observers' export) and ``_intake_replay`` (the replay of
  ``ballot.cast`` and ``ballot.spoiled``).

This package is the service's one public surface; its modules are private.
"""

from __future__ import annotations

from . import _intake_replay  # noqa: F401  (registers the intake's replay appliers)
from ._ceremony import CeremonyStage
from ._core import ORPHAN_MIN_AGE, PHASES, ReconcileReport, log_signer, open_ledger
from ._intake import IntakeService
from ._intake_auth import IssuedChallenge, OidcStart
from ._intake_checks import MAX_SPOILED, Channel
from ._joint_key import JointKeyStage
from ._kiosk import EnrolledKiosk
from ._kiosk_sessions import KioskSessions
from ._period import PeriodStage
from ._publish import PartialOutcome, PublishStage
from ._roll import RollStage
from ._setup import CreatedElection, SetupStage
from ._tally import CountedBallots, count_ballots

__all__ = [
    "MAX_SPOILED",
    "ORPHAN_MIN_AGE",
    "PHASES",
    "Channel",
    "CountedBallots",
    "CreatedElection",
    "ElectionService",
    "EnrolledKiosk",
    "IntakeService",
    "IssuedChallenge",
    "OidcStart",
    "PartialOutcome",
    "ReconcileReport",
    "count_ballots",
    "log_signer",
    "open_ledger",
]


class ElectionService(
    SetupStage, RollStage, CeremonyStage, JointKeyStage, KioskSessions, PeriodStage, PublishStage
):
    """The lifecycle of the one election this server runs (see the module docstring): one object composed of
    the stages, which share the core's engine, ledger, lock and cache."""
