"""The names of the election record's events (``docs/events.md``): the one home for them.

The service writes these types, the verifier checks them, the tools generate them; each imports the names
from here (a ``StrEnum``: a member *is* its string, so ``EventType.BALLOT_CAST == "ballot.cast"``). The
lifecycle order, which events appear once, and which are ballots are the record format's too, so they live
here with the names; what each check makes of them stays with the checker (the verifier shares names, not
logic).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = ["BALLOT_TYPES", "LIFECYCLE_RANK", "ONCE", "EventType"]


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
    VOTING_OPENED = "voting.opened"
    BALLOT_CAST = "ballot.cast"
    BALLOT_SPOILED = "ballot.spoiled"
    VOTING_EXTENDED = "voting.extended"
    EVIDENCE_EXPORTED = "evidence.exported"
    VOTING_CLOSED = "voting.closed"
    TALLY_ENCRYPTED = "tally.encrypted"
    TALLY_PARTIAL = "tally.partial"
    TALLY_EXCLUDED = "tally.excluded"
    TALLY_RESULT = "tally.result"
    RESULT_DECLARATION = "result.declaration"


E = EventType

#: Lifecycle rank of each event type (``docs/events.md``, "The order below is the lifecycle order"): an
#: event never follows one of a higher rank. ``roll.commitment`` may come anywhere before ``voting.opened``
#: and ``evidence.exported`` anywhere after it: neither advances the phase.
LIFECYCLE_RANK: Final[Mapping[str, int]] = MappingProxyType(
    {
        E.MANIFEST: 0,
        E.TRUSTEE_REGISTERED: 1,
        E.TRUSTEE_SHARES: 1,
        E.TRUSTEE_COMPLAINT: 1,
        E.TRUSTEE_ANSWER: 1,
        E.TRUSTEE_DISQUALIFIED: 1,
        E.JOINT_KEY: 2,
        E.ROLL_COMMITMENT: 2,
        E.VOTING_OPENED: 3,
        E.BALLOT_CAST: 4,
        E.BALLOT_SPOILED: 4,
        E.VOTING_EXTENDED: 4,
        E.EVIDENCE_EXPORTED: 4,
        E.VOTING_CLOSED: 5,
        E.TALLY_ENCRYPTED: 6,
        E.TALLY_PARTIAL: 7,
        E.TALLY_EXCLUDED: 7,
        E.TALLY_RESULT: 8,
        E.RESULT_DECLARATION: 9,
    }
)

#: the events a record holds at most once
ONCE: Final[frozenset[str]] = frozenset(
    {
        E.MANIFEST,
        E.JOINT_KEY,
        E.ROLL_COMMITMENT,
        E.VOTING_OPENED,
        E.VOTING_CLOSED,
        E.TALLY_ENCRYPTED,
        E.TALLY_RESULT,
        E.RESULT_DECLARATION,
    }
)

#: the ballots (verified in batches, by the workers)
BALLOT_TYPES: Final[frozenset[str]] = frozenset({E.BALLOT_CAST, E.BALLOT_SPOILED})

del E
