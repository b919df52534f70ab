"""The replay registry: reconciliation dispatches every ledger entry to the one applier its stage registered.

Each stage module of :mod:`voting.service` registers the appliers of the entries it appends
(``voting.service._core.replays``); the intake's ``ballot.cast`` / ``ballot.spoiled`` go to its
``BallotReplay`` through the same registry. An entry type without an applier is refused
(``reconcile.unknown_entry``), so a new event type cannot be appended without a way to replay it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledger.events import EventType
from voting._db import ElectionRow, make_engine
from voting._errors import ServiceUnavailable
from voting.service import ElectionService
from voting.service._core import APPLIERS, Replay, replays
from voting.service._intake_replay import BallotReplay


def test_every_event_type_has_exactly_one_applier() -> None:
    # a dict holds one applier per type, and ``replays`` refuses a second: here every type has one, no more
    assert sorted(APPLIERS) == sorted(e.value for e in EventType)


def test_a_second_applier_for_a_type_is_refused() -> None:
    with pytest.raises(RuntimeError, match=r"two replay appliers for ballot\.cast"):
        replays(EventType.BALLOT_CAST)(lambda *a: False)
    assert APPLIERS[EventType.BALLOT_CAST].apply.__name__ == "_replay_ballot"


def test_only_ballot_entries_are_replayed_in_pages_and_a_page_applier_checks_its_entries() -> None:
    paged = {t for t, r in APPLIERS.items() if r.page is not None}
    assert paged == {EventType.BALLOT_CAST.value, EventType.BALLOT_SPOILED.value}
    assert APPLIERS[EventType.BALLOT_CAST].page is APPLIERS[EventType.BALLOT_SPOILED].page
    with pytest.raises(RuntimeError, match="own_check"):  # the driver checks no base_hash for a page
        replays(EventType.BALLOT_CAST, page=lambda *a: [])
    assert APPLIERS[EventType.BALLOT_CAST].apply.__name__ == "_replay_ballot"  # nothing was registered


class _Ballots:
    """Stands in for the intake's :class:`BallotReplay`; records what it is asked to apply."""

    def __init__(self) -> None:
        self.applied: list[tuple[int, str]] = []

    def apply(self, s: Any, index: int, etype: str, p: Any) -> bool:
        self.applied.append((index, etype))
        return True


@pytest.fixture()
def service(tmp_path: Path) -> ElectionService:
    return ElectionService(make_engine(f"sqlite:///{tmp_path / 's.sqlite3'}"))


def _replay(ballots: Any) -> Replay:
    row = ElectionRow(election_id="e", manifest_json="{}", base_hash="ab" * 32, roll_key_hex="00" * 32)
    return Replay(s=None, row=row, ballots=ballots)  # type: ignore[arg-type]


def test_ballot_entries_go_to_the_intakes_ballot_replay(service: ElectionService) -> None:
    assert BallotReplay.apply  # the intake's replay the registry delegates to
    ballots = _Ballots()
    r = _replay(ballots)
    for index, etype in ((7, EventType.BALLOT_CAST), (8, EventType.BALLOT_SPOILED)):
        # the intake's replay checks the entry's election itself (a ballot carries no base_hash check here)
        assert service._replay(r, index, etype, {"election_id": "e"}) is True
    assert ballots.applied == [(7, "ballot.cast"), (8, "ballot.spoiled")]


def test_an_unknown_entry_type_is_refused(service: ElectionService) -> None:
    r = _replay(_Ballots())
    with pytest.raises(ServiceUnavailable) as info:
        service._replay(r, 3, "tally.recount", {"base_hash": r.row.base_hash})
    assert info.value.code == "reconcile.unknown_entry"
    with pytest.raises(ServiceUnavailable) as info:  # another election's entry: refused as such first
        service._replay(r, 3, "tally.recount", {"base_hash": "cd" * 32})
    assert info.value.code == "reconcile.foreign_entry"


def test_a_lifecycle_entry_of_another_election_is_refused(service: ElectionService) -> None:
    r = _replay(_Ballots())
    with pytest.raises(ServiceUnavailable) as info:
        service._replay(r, 4, EventType.VOTING_OPENED, {"base_hash": "cd" * 32, "opened_at": "x"})
    assert info.value.code == "reconcile.foreign_entry"
    with pytest.raises(ServiceUnavailable) as info:
        service._replay(r, 0, EventType.MANIFEST, {"base_hash": "cd" * 32})
    assert info.value.code == "reconcile.manifest"
