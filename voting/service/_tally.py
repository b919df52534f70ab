"""Stage 5, the tally: apply the counting rule to the ledger's ballots and publish the homomorphic sum of
the counted ones (``tally.encrypted``), the ciphertexts the trustees then decrypt (:mod:`._publish`)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from crypto import Ciphertext
from ledger.events import EventType
from ledger.record import BallotStatus, CastRow, CountedSet, CountingIndex

from .._db import ElectionRow
from .._errors import Conflict, ServiceUnavailable
from ._core import Replay, ServiceCore, ledger_entries, replays

__all__ = ["SUM_CHUNK", "CountedBallots", "TallyStage", "count_ballots", "not_counted"]

#: counted ballots the tally's sum holds at once (a chunk of the native engine's sum; the reference engine
#: holds one): a few MB of 1-of-5 ballots, so memory stays flat in the number of ballots
SUM_CHUNK: Final[int] = 500


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

    The reference, in memory (a few hundred bytes a ballot): the tally counts with :func:`not_counted` on
    the on-disk :class:`ledger.record.CountingIndex` instead, and the tests cross-check the two.
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


def not_counted(index: CountingIndex, counted: CountedSet) -> Iterator[int]:
    """Fold every cast ballot of ``index`` (its status under the counting rule, in ledger order) into
    ``counted`` (the counts and ``counted_root``), yielding the ledger index of each ballot the rule does not
    count (superseded, overridden, a second kiosk ballot), ascending. Memory: O(log n) hashes."""
    for d in index.derived():
        counted.add(d)
        if d.status is not BallotStatus.COUNTED:
            yield d.index


class TallyStage(ServiceCore):
    """Count the ballots on the ledger and publish their encrypted sum."""

    def _cast_ballots(self, index: CountingIndex, spoiled: list[int]) -> Iterator[Any]:
        """One streaming pass over the ledger: yields every cast ballot (its dict form, the payload's
        ``ballot``), adds its counting row (index, ballot hash, voter alias, channel, seq) to ``index`` (a
        temporary file) and counts the spoiled ballots in ``spoiled[0]``. Nothing per ballot stays in memory
        (a city's million encrypted ballots would not fit, nor, at scale, their counting rows)."""
        for i, etype, payload in ledger_entries(self.ledger):
            if etype == EventType.BALLOT_CAST:
                row = CastRow(
                    i,
                    payload["ballot_hash"],
                    payload["voter_alias"],
                    payload["channel"],
                    payload.get("seq", 0),
                )
                index.add_cast(row)
                yield payload["ballot"]
            elif etype == EventType.BALLOT_SPOILED:
                spoiled[0] += 1
        replay = index.repeated_hash()
        if replay is not None:  # pragma: no cover - intake refuses replays
            raise Conflict("ledger.replay", f"ballot hash repeated at entry {replay[0]}")

    def _counting_index(self) -> CountingIndex:
        """An empty counting index, its file in the data directory (about 200 bytes a cast ballot, deleted
        after the count; not the system's temporary directory, which may be a tmpfs: memory)."""
        return CountingIndex(str(self.settings.data_dir), prefix="tally-count-")

    def _counting(self) -> tuple[dict[str, int], bytes]:
        """The counting rule applied to the ledger's ``ballot.cast`` entries (the ledger is the input): the
        counts and ``counted_root``."""
        counted, spoiled = CountedSet(), [0]
        with self._counting_index() as index:
            for _ in self._cast_ballots(index, spoiled):
                pass
            for _ in not_counted(index, counted):
                pass
        return counted.summary(spoiled[0]), counted.root()

    def _ballots_at(self, indexes: Iterable[int]) -> Iterator[Any]:
        """The cast ballots (dict form) at the given ledger indexes (ascending, streamed), read in runs of
        nearby entries spanning fewer than :data:`SUM_CHUNK` entries (so memory stays bounded when most
        ballots are re-votes), never the whole ledger; ``_read_again`` counts them, ``_asked`` the indexes."""
        self._read_again = self._asked = 0
        run: list[int] = []
        for i in itertools.chain(indexes, (None,)):
            if run and (i is None or i - run[-1] > 8 or i - run[0] >= SUM_CHUNK):
                want = set(run)
                for index, etype, p in self.ledger.payloads(run[0], run[-1] + 1):
                    if index in want and etype == EventType.BALLOT_CAST:
                        self._read_again += 1
                        yield p["ballot"]
                run = []
            if i is not None:
                self._asked += 1
                run.append(i)

    def compute_tally(self) -> dict[str, Any]:
        """Apply the counting rule; publish the sum of the counted ballots (``tally.encrypted``).

        One streaming pass over the ledger (the counting rule's rows, into a temporary on-disk index, and the
        sum of every cast ballot), then the counting rule streamed from that index in ledger order (the
        counts, ``counted_root`` in a compact range) while the ballots it does not count are read again by
        their indexes and taken out of the sum: memory does not grow with the ballots. The sum is the ballot
        engine's (``crypto.select_engine("auto")``, as the intake's check: the native one when installed,
        in chunks of :data:`SUM_CHUNK` ballots); it decodes every counted ballot strictly but checks no
        proof again (intake verified each one; the public verifier re-checks them all)."""
        from crypto import ElectionContext, select_engine

        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "closed":
                raise Conflict(
                    "election.phase", f"the tally is computed after voting closes (phase '{row.phase}')"
                )
            ctx = ElectionContext(
                self.base_hash, self.joint_key().public_key, tuple(self.manifest.contest_specs())
            )
            engine = select_engine("auto")
            counted, spoiled = CountedSet(), [0]
            with self._counting_index() as rows:
                every = engine.sum_ballots(ctx, self._cast_ballots(rows, spoiled), chunk=SUM_CHUNK)
                # the sum of the counted ballots = the sum of every cast ballot - the sum of those not
                # counted (superseded re-votes, internet ballots overridden by a kiosk ballot: usually few,
                # read again by their indexes while the counting rule streams from the index)
                dropped = engine.sum_ballots(
                    ctx, self._ballots_at(not_counted(rows, counted)), chunk=SUM_CHUNK
                )
            if self._read_again != self._asked:  # the ledger is append-only: a bug or tampered storage
                raise ServiceUnavailable(
                    "ledger.changed", "the ledger's cast ballots changed during the tally"
                )
            totals = {key: every[key] - dropped[key] for key in every}
            ciphertexts: dict[str, dict[str, Any]] = {}
            for (contest, selection), ct in totals.items():
                ciphertexts.setdefault(contest, {})[selection] = ct.to_dict()
            # The counted set is published as the RFC 9162 Merkle root over the counted ballot hashes in
            # ledger order (a list would not fit one 1 MiB entry at city scale); the verifier re-derives it.
            payload = self._payload(counted_root=counted.root().hex(), ciphertexts=ciphertexts)
            summary = counted.summary(spoiled[0])
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

    @replays(EventType.TALLY_ENCRYPTED)
    def _replay_tally(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        row = r.row
        if row.tally_json is not None:
            return False
        summary, counted_root = self._counting()
        if counted_root.hex() != p["counted_root"]:
            raise ServiceUnavailable(
                "reconcile.tally", f"entry {index}: the counted set differs from the counting rule's"
            )
        row.tally_json = json.dumps({"payload": p, "summary": summary})
        self._advance(row, "tallied")
        return True
