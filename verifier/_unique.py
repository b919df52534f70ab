"""V15 ballot.unique and the counting row of each ballot: the main process's share of a ballot entry.

Cheap and without cryptography (the proofs are the workers', :mod:`verifier._ballots`): every value that
must be unique is looked up in, and recorded into, the on-disk index, and a cast ballot's counting row is
added for V17.
"""

from __future__ import annotations

from typing import Any

from ledger.events import EventType
from ledger.record import CastRow, ballot_unique_values, repeats_within

from ._checks import fail, failure
from ._counting import BallotIndex
from ._report import Report
from ._state import State

__all__ = ["cast_row", "index_ballot"]


def index_ballot(
    report: Report,
    st: State,
    index: BallotIndex,
    i: int,
    etype: str,
    p: dict[str, Any],
) -> None:
    """Main-process part of a ballot: V15 uniqueness and the counting row (V17). Cheap, no crypto.

    A replayed ballot (its hash published before) is not indexed again; a ballot that repeats a nonce or a
    pad is reported and still indexed (it is another voter's ballot: the counting rule still applies).

    The reference of a serial run; a sliced run has the same effects, V15 by ``verifier._shards``."""
    bh = p.get("ballot_hash")
    if not isinstance(bh, str):
        fail("ballot.binding", "ballot_hash missing", entry=i)
    row = cast_row(report, i, etype, p)
    # V15 ballot.unique: "A ballot_hash, a ballot nonce and every selection's ciphertext pad (its first
    # component, r·G) each appear at most once among all cast and spoiled ballots, within a ballot too (no
    # replay, no contest copied with its nonce, no copied or mauled ciphertext), and no two ballots share
    # an authentication-evidence hash." The rules are ledger.record's (the server's intake applies the same).
    values = ballot_unique_values(bh, p.get("ballot"))
    problems = [
        f"{later.describe()} repeats the {earlier.describe()} within this ballot"
        for earlier, later in repeats_within(values)
    ]
    replay = False
    for v in values:  # every value is recorded, so a later ballot is named against its first use
        earlier = index.first_seen(v.kind, v.value, i)
        if earlier is None or earlier == i:
            continue
        if v.kind == "ballot_hash":
            replay = True
            problems.append(f"ballot_hash already published at entry {earlier} (replay)")
        else:
            problems.append(f"{v.describe()} already used at entry {earlier}")
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        err = failure("ballot.unique", "; ".join(problems[:3]) + more, entry=i)
        if replay:
            raise err
        report.add(err)
    if etype == EventType.BALLOT_SPOILED:
        st.spoiled += 1
        return
    st.cast += 1
    auth = p.get("auth")
    ev = auth.get("evidence_hash") if isinstance(auth, dict) else None
    if isinstance(ev, str):
        earlier = index.first_seen("evidence", ev, i)
        if earlier is not None:
            fail("ballot.unique", f"authentication evidence already used at entry {earlier}", entry=i)
    if row is not None:
        index.add_cast(row)


def cast_row(report: Report, i: int, etype: str, p: dict[str, Any]) -> CastRow | None:
    """The counting row of a cast ballot whose ``ballot_hash`` is a string (None for a spoiled one); a cast
    ballot without a voter alias, channel or seq fails V14 and has none (reported whether or not V15 then
    finds it a replay: a sliced run knows that only at the end)."""
    if etype != EventType.BALLOT_CAST:
        return None
    alias, channel, seq = p.get("voter_alias"), p.get("channel"), p.get("seq")
    if not isinstance(alias, str) or channel not in ("internet", "kiosk") or not isinstance(seq, int):
        report.fail("ballot.binding", "cast ballot without voter_alias, channel or seq", entry=i)
        return None
    return CastRow(i, p["ballot_hash"], alias, channel, seq)
