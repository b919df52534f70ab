"""The intake's entries, written by the ballot intake (:mod:`voting._intake`, through
:meth:`ServiceCore.append_entry`): ``ballot.cast`` and ``ballot.spoiled`` are replayed by the intake's
:class:`~voting._intake.BallotReplay`, registered here like every stage's applier; ``evidence.exported``
(the export of the sealed evidence, :mod:`voting._oversight`) leaves no private state."""

from __future__ import annotations

from typing import Any

from ledger.events import EventType

from ._core import Replay, ServiceCore, replays

__all__: list[str] = []


@replays(EventType.BALLOT_CAST, EventType.BALLOT_SPOILED, own_check=True)
def _replay_ballot(service: ServiceCore, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
    """The intake's :meth:`BallotReplay.apply <voting._intake.BallotReplay.apply>` (which checks the entry's
    ``election_id`` itself)."""
    return r.ballots.apply(r.s, index, etype, p)


@replays(EventType.EVIDENCE_EXPORTED)
def _replay_evidence_exported(
    service: ServiceCore, r: Replay, index: int, etype: str, p: dict[str, Any]
) -> bool:
    """An export of the sealed evidence leaves no private state."""
    return False
