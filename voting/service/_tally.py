"""Stage 5, the tally: apply the counting rule to the ledger's ballots and publish the homomorphic sum of
the counted ones (``tally.encrypted``), the ciphertexts the trustees then decrypt (:mod:`._publish`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from crypto import Ciphertext
from ledger.events import EventType
from ledger.merkle import leaf_hash
from ledger.merkle import root as merkle_root

from .._db import ElectionRow
from .._errors import Conflict, ServiceUnavailable
from ._core import Replay, ServiceCore, ledger_entries, replays

__all__ = ["SUM_CHUNK", "CountedBallots", "TallyStage", "count_ballots"]

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


class TallyStage(ServiceCore):
    """Count the ballots on the ledger and publish their encrypted sum."""

    def _cast_ballots(self, out: list[tuple[list[tuple[int, str, str, str]], int]]) -> Iterator[Any]:
        """One streaming pass over the ledger: yields every cast ballot (its dict form, the payload's
        ``ballot``) and, once exhausted, puts in ``out`` the ``(index, ballot_hash, voter_alias, channel)`` of
        every ``ballot.cast`` entry in ledger order and the number of spoiled ballots. It keeps four short
        fields per ballot, never the ballots (a city's million encrypted ballots would not fit in memory)."""
        cast: list[tuple[int, str, str, str]] = []
        spoiled = 0
        seen: set[str] = set()
        for index, etype, payload in ledger_entries(self.ledger):
            if etype == EventType.BALLOT_CAST:
                bh = payload["ballot_hash"]
                if bh in seen:  # pragma: no cover - intake refuses replays
                    raise Conflict("ledger.replay", f"ballot hash repeated at entry {index}")
                seen.add(bh)
                cast.append((index, bh, payload["voter_alias"], payload["channel"]))
                yield payload["ballot"]
            elif etype == EventType.BALLOT_SPOILED:
                spoiled += 1
        out.append((cast, spoiled))

    def _counting(self) -> CountedBallots:
        """The counting rule applied to the ledger's ``ballot.cast`` entries (the ledger is the input)."""
        out: list[tuple[list[tuple[int, str, str, str]], int]] = []
        for _ in self._cast_ballots(out):
            pass
        return count_ballots(*out[0])

    def _counted_ballots(self, counted: set[str]) -> Iterator[Any]:
        """The counted ballots (their dict form, the payload's ``ballot``), streamed from the ledger in
        ledger order."""
        for _, etype, p in ledger_entries(self.ledger):
            if etype == EventType.BALLOT_CAST and p["ballot_hash"] in counted:
                yield p["ballot"]

    def _ballots_at(self, indexes: list[int]) -> Iterator[Any]:
        """The cast ballots (dict form) at the given ledger indexes (ascending), read in runs of nearby
        entries spanning fewer than :data:`SUM_CHUNK` entries (so memory stays bounded when most ballots
        are re-votes), never the whole ledger (counted in ``_read_again``)."""
        self._read_again = 0
        i = 0
        while i < len(indexes):
            j = i
            while (
                j + 1 < len(indexes)
                and indexes[j + 1] - indexes[j] <= 8
                and indexes[j + 1] - indexes[i] < SUM_CHUNK
            ):
                j += 1
            want = set(indexes[i : j + 1])
            for index, etype, p in self.ledger.payloads(indexes[i], indexes[j] + 1):
                if index in want and etype == EventType.BALLOT_CAST:
                    self._read_again += 1
                    yield p["ballot"]
            i = j + 1

    def compute_tally(self) -> dict[str, Any]:
        """Apply the counting rule; publish the sum of the counted ballots (``tally.encrypted``).

        One streaming pass over the ledger (the counting rule's fields and the sum of every cast ballot),
        then the ballots the rule does not count are read again by their indexes and taken out of the sum,
        so memory grows with a few short fields per ballot, not with the ballots. The sum is the ballot
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
            out: list[tuple[list[tuple[int, str, str, str]], int]] = []
            every = engine.sum_ballots(ctx, self._cast_ballots(out), chunk=SUM_CHUNK)
            cast, spoiled = out[0]
            counting = count_ballots(cast, spoiled)
            # the sum of the counted ballots = the sum of every cast ballot - the sum of those not counted
            # (superseded re-votes, internet ballots overridden by a kiosk ballot: usually few, read again
            # by their indexes)
            counted = set(counting.counted)
            not_counted = [index for index, bh, _, _ in cast if bh not in counted]
            dropped = engine.sum_ballots(ctx, self._ballots_at(not_counted), chunk=SUM_CHUNK)
            if self._read_again != len(not_counted):  # the ledger is append-only: a bug or tampered storage
                raise ServiceUnavailable(
                    "ledger.changed", "the ledger's cast ballots changed during the tally"
                )
            totals = {key: every[key] - dropped[key] for key in every}
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

    @replays(EventType.TALLY_ENCRYPTED)
    def _replay_tally(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        row = r.row
        if row.tally_json is not None:
            return False
        counting = self._counting()
        counted_root = merkle_root([leaf_hash(bytes.fromhex(h)) for h in counting.counted])
        if counted_root.hex() != p["counted_root"]:
            raise ServiceUnavailable(
                "reconcile.tally", f"entry {index}: the counted set differs from the counting rule's"
            )
        row.tally_json = json.dumps({"payload": p, "summary": _summary(counting)})
        self._advance(row, "tallied")
        return True
