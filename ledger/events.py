"""The names of the election record (``docs/events.md``): the one home for them.

* :class:`EventType`: every event type (a ``StrEnum``: a member *is* its string, so
  ``EventType.BALLOT_CAST == "ballot.cast"``);
* :class:`Phase` and :data:`LIFECYCLE_RANK`: the lifecycle phases and the phase of each event type;
  :data:`ONCE` (the events a record holds at most once) and :data:`BALLOT_TYPES`;
* payload keys that every writer and reader spells: :data:`ELECTION_ID`, :data:`BASE_HASH` and
  :data:`BOUND_KEYS` (what binds every entry after the manifest to its election).

The service writes these, the verifier checks them, the tools generate them; each imports the names from
here. What each check makes of them stays with the checker (the verifier shares names, not logic).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Final

__all__ = [
    "BALLOT_TYPES",
    "BASE_HASH",
    "BOUND_KEYS",
    "ELECTION_ID",
    "LIFECYCLE_RANK",
    "ONCE",
    "EventType",
    "Phase",
]


class EventType(StrEnum):
    """Every event type of the record, in the order of ``docs/events.md``'s table."""

    MANIFEST = "election.manifest"
    TRUSTEE_REGISTERED = "trustee.registered"
    TRUSTEE_SHARES = "trustee.shares"
    TRUSTEE_COMPLAINT = "trustee.complaint"
    TRUSTEE_ANSWER = "trustee.answer"
    TRUSTEE_DISQUALIFIED = "trustee.disqualified"
    JOINT_KEY = "election.joint-key"
    ROLL_COMMITMENT = "roll.commitment"
    BOOTH_PUBLISHED = "booth.published"
    VOTING_OPENED = "voting.opened"
    BALLOT_CAST = "ballot.cast"
    BALLOT_SPOILED = "ballot.spoiled"
    VOTING_EXTENDED = "voting.extended"
    EVIDENCE_EXPORTED = "evidence.exported"
    KIOSK_ENROLLED = "kiosk.enrolled"
    KIOSK_REVOKED = "kiosk.revoked"
    KIOSK_OPENED = "kiosk.opened"
    KIOSK_CLOSED = "kiosk.closed"
    VOTING_CLOSED = "voting.closed"
    TALLY_ENCRYPTED = "tally.encrypted"
    TALLY_PARTIAL = "tally.partial"
    TALLY_EXCLUDED = "tally.excluded"
    TALLY_RESULT = "tally.result"
    RESULT_DECLARATION = "result.declaration"


class Phase(IntEnum):
    """The record's lifecycle phases, in order (``docs/events.md``, "The order below is the lifecycle
    order"): an event never follows one of a later phase."""

    MANIFEST = 0  # the manifest, entry 0
    CEREMONY = 1  # the trustees' key ceremony
    KEYED = 2  # the joint key (and the roll commitment and the booth, which may come earlier)
    OPENED = 3  # voting opened
    VOTING = 4  # ballots, extensions, evidence exports
    CLOSED = 5  # voting closed
    TALLIED = 6  # the encrypted tally
    DECRYPTION = 7  # partial decryptions and exclusions
    RESULT = 8  # the result
    DECLARED = 9  # the signed declaration


E = EventType
P = Phase

#: The phase of each event type. ``roll.commitment`` and ``booth.published`` may come anywhere before
#: ``voting.opened`` and ``evidence.exported`` anywhere after it: none of them advances the phase. Nor do the
#: kiosk events (docs/events.md, "Polling-place kiosks"): ``kiosk.enrolled`` and ``kiosk.revoked`` come
#: anywhere after the manifest (enrolment before ``voting.closed``), ``kiosk.opened`` while voting is open and
#: ``kiosk.closed`` anywhere after its opening.
LIFECYCLE_RANK: Final[Mapping[str, Phase]] = MappingProxyType(
    {
        E.MANIFEST: P.MANIFEST,
        E.TRUSTEE_REGISTERED: P.CEREMONY,
        E.TRUSTEE_SHARES: P.CEREMONY,
        E.TRUSTEE_COMPLAINT: P.CEREMONY,
        E.TRUSTEE_ANSWER: P.CEREMONY,
        E.TRUSTEE_DISQUALIFIED: P.CEREMONY,
        E.JOINT_KEY: P.KEYED,
        E.ROLL_COMMITMENT: P.KEYED,
        E.BOOTH_PUBLISHED: P.KEYED,
        E.VOTING_OPENED: P.OPENED,
        E.BALLOT_CAST: P.VOTING,
        E.BALLOT_SPOILED: P.VOTING,
        E.VOTING_EXTENDED: P.VOTING,
        E.EVIDENCE_EXPORTED: P.VOTING,
        E.KIOSK_ENROLLED: P.KEYED,
        E.KIOSK_REVOKED: P.KEYED,
        E.KIOSK_OPENED: P.VOTING,
        E.KIOSK_CLOSED: P.VOTING,
        E.VOTING_CLOSED: P.CLOSED,
        E.TALLY_ENCRYPTED: P.TALLIED,
        E.TALLY_PARTIAL: P.DECRYPTION,
        E.TALLY_EXCLUDED: P.DECRYPTION,
        E.TALLY_RESULT: P.RESULT,
        E.RESULT_DECLARATION: P.DECLARED,
    }
)

#: the events a record holds at most once
ONCE: Final[frozenset[str]] = frozenset(
    {
        E.MANIFEST,
        E.JOINT_KEY,
        E.ROLL_COMMITMENT,
        E.BOOTH_PUBLISHED,
        E.VOTING_OPENED,
        E.VOTING_CLOSED,
        E.TALLY_ENCRYPTED,
        E.TALLY_RESULT,
        E.RESULT_DECLARATION,
    }
)

#: the ballots (verified in batches, by the workers)
BALLOT_TYPES: Final[frozenset[str]] = frozenset({E.BALLOT_CAST, E.BALLOT_SPOILED})

#: payload key: the election's id (docs/events.md, "Conventions")
ELECTION_ID: Final[str] = "election_id"
#: payload key: the election's base hash, 64 hex
BASE_HASH: Final[str] = "base_hash"
#: the keys every payload after the manifest carries, so that no entry can be replayed into another election
BOUND_KEYS: Final[frozenset[str]] = frozenset({ELECTION_ID, BASE_HASH})

del E, P
