"""The record's event names have one home, ``ledger.events`` (issue 12, point 2): the docs' table, the
verifier's lifecycle order and the service's writes all agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ledger.events import BALLOT_TYPES, BOUND_KEYS, LIFECYCLE_RANK, ONCE, EventType, Phase
from verifier._engine import EVENTS
from verifier._phases import RANK
from verifier._state import BOUND
from voting.service._core import _event_type

ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_table_lists_exactly_the_event_types_in_order() -> None:
    doc = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| \d+[a-z]? \| `([a-z.\-]+)` \|", doc, re.M)
    assert listed == [e.value for e in EventType]


def test_order_once_and_ballots_cover_the_names() -> None:
    assert set(LIFECYCLE_RANK) == set(EventType) and RANK is LIFECYCLE_RANK
    assert ONCE <= set(EventType) and BALLOT_TYPES <= set(EventType)
    # a member is its string: the verifier looks payload types (plain strings) up directly
    assert LIFECYCLE_RANK["ballot.cast"] == LIFECYCLE_RANK[EventType.BALLOT_CAST]
    assert set(EVENTS) | BALLOT_TYPES | {EventType.MANIFEST} == set(EventType)


def test_every_phase_is_named_and_reached() -> None:
    """The phases are names (``Phase``), in order, and each holds at least one event type."""
    assert all(isinstance(p, Phase) for p in LIFECYCLE_RANK.values())
    assert sorted(set(LIFECYCLE_RANK.values())) == list(Phase)
    assert LIFECYCLE_RANK[EventType.MANIFEST] == Phase.MANIFEST == 0
    assert LIFECYCLE_RANK[EventType.RESULT_DECLARATION] == max(Phase)


def test_the_binding_keys_are_the_records() -> None:
    """The keys binding every payload to its election are spelled once, and the verifier checks those."""
    assert BOUND_KEYS == {"election_id", "base_hash"} and BOUND is BOUND_KEYS


def test_the_service_writes_only_the_records_event_types() -> None:
    assert _event_type("ballot.cast") == "ballot.cast" and type(_event_type("ballot.cast")) is str
    for bad in ("ballot.casted", "Ballot.cast", "", "tally"):
        with pytest.raises(ValueError):
            _event_type(bad)
