"""The tally's counting rule runs on the on-disk index (``ledger.record.CountingIndex``), so its memory does
not grow with the ballots (issue 15: "memory flat in the number of ballots"):

* the streaming count (``voting.service._tally.not_counted`` over the index, folded into a ``CountedSet``)
  equals the in-memory reference :func:`voting.service.count_ballots` on Hypothesis-generated ballots
  (re-votes, kiosk ballots overriding internet ones, a second kiosk ballot): the same counts, the ballots
  not counted, and a ``counted_root`` equal to ``ledger.merkle``'s root of the reference's counted hashes;
* ``compute_tally`` over thousands of synthetic cast entries keeps no Python object per ballot: the traced
  memory (tracemalloc: Python objects, deterministic; not time, not RSS) is the same after a quarter of the
  ballots as after all of them, in the pass over the ledger and while the ballots not counted are read
  again. Keeping even the four short counting fields of each ballot (as the tally did) adds megabytes.
"""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from _service_util import (
    ADMIN,
    ADMIN_TOKEN,
    CLOSE_EARLY,
    OPEN_EARLY,
    create_election,
    ok,
    roll_aliases,
    running_app,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import ledger.record._counting as counting_module
import voting.service._tally as tally_module
from crypto import ElectionContext, encrypt_ballot
from ledger.merkle import leaf_hash, root
from ledger.record import CastRow, CountedSet, CountingIndex
from tests.strategies import cast_sequences
from voting.service import count_ballots
from voting.service._tally import not_counted


@settings(max_examples=100, deadline=None)
@given(cast_sequences, st.integers(0, 3))
def test_the_streaming_count_equals_the_reference(seq: list[tuple[int, str]], spoiled: int) -> None:
    cast = [(2 * i + 5, f"{i:064x}", f"{v:064x}", ch) for i, (v, ch) in enumerate(seq)]
    want = count_ballots(cast, spoiled)
    counted = CountedSet()
    with CountingIndex() as index:
        for i, bh, alias, ch in cast:
            index.add_cast(CastRow(i, bh, alias, ch, 1))
        dropped = list(not_counted(index, counted))
    assert counted.summary(spoiled) == {
        "cast": want.cast,
        "counted": len(want.counted),
        "superseded": want.superseded,
        "overridden": want.overridden,
        "spoiled": spoiled,
    }
    assert dropped == [i for i, bh, _, _ in cast if bh not in set(want.counted)]
    assert counted.root() == root([leaf_hash(bytes.fromhex(h)) for h in want.counted])


BALLOTS = 8000
REVOTE_EVERY = 4  # every 4th ballot is a re-vote of the voter before: 2,000 ballots to read again


@pytest.fixture
def closed(tmp_path):  # type: ignore[no-untyped-def]
    """A closed election with its key ceremony done and no ballot on its ledger."""
    with running_app(tmp_path) as (client, service):
        from voting.testing import run_key_ceremony

        run_key_ceremony(client, create_election(client), admin_token=ADMIN_TOKEN)
        ok(client.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY))
        alias = roll_aliases(service)[0]
        ok(client.post("/api/v1/admin/close", headers=ADMIN, json=CLOSE_EARLY))
        yield service, alias


def test_the_tally_keeps_nothing_per_ballot(closed, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``compute_tally`` over BALLOTS synthetic ``ballot.cast`` entries (one real encrypted ballot, each entry
    with its own ballot hash and voter alias) served by stand-ins of the ledger's reads; the traced memory
    is sampled at a quarter and at the end of each of the tally's two reads."""
    service, _ = closed
    ctx = ElectionContext(
        service.base_hash, service.joint_key().public_key, tuple(service.manifest.contest_specs())
    )
    choices = {"mayor": ["cand-1"], "projects": ["library"], "referendum": ["yes"]}
    ballot = encrypt_ballot(ctx, choices, rng=random.Random(1))[0].to_dict()
    first = service.ledger.size  # the synthetic ballots stand after the real entries

    def entry(i: int) -> tuple[int, str, dict[str, Any]]:
        k = i - first
        voter = k - k // REVOTE_EVERY - (1 if k % REVOTE_EVERY == REVOTE_EVERY - 1 else 0)
        payload = {
            "ballot": ballot,
            "ballot_hash": f"{k:064x}",
            "voter_alias": f"{voter:064x}",
            "channel": "internet",
            "seq": 1,
        }
        return i, "ballot.cast", payload

    samples: dict[str, list[int]] = {"pass": [], "again": []}

    def sample(what: str) -> None:
        samples[what].append(tracemalloc.get_traced_memory()[0])

    def entries(ledger: Any, chunk: int = 2000, **_: Any) -> Iterator[tuple[int, str, dict[str, Any]]]:
        for k in range(BALLOTS):
            if k + 1 in (BALLOTS // 4, BALLOTS):
                sample("pass")  # before the ballot at a quarter and at the end
            yield entry(first + k)

    def payloads(start: int, stop: int) -> list[tuple[int, str, dict[str, Any]]]:
        sample("again")  # at each run of ballots read again
        return [entry(i) for i in range(start, stop)]

    monkeypatch.setattr(tally_module, "ledger_entries", entries)
    monkeypatch.setattr(service.ledger, "payloads", payloads)
    monkeypatch.setattr(counting_module, "INSERT_BUFFER", 100)  # else its 10,000 rows would hide a leak
    tracemalloc.start()
    try:
        out = service.compute_tally()
    finally:
        tracemalloc.stop()
    monkeypatch.undo()
    dropped = BALLOTS // REVOTE_EVERY
    assert (out["cast"], out["counted"], out["superseded"]) == (BALLOTS, BALLOTS - dropped, dropped)
    # a quarter of the ballots (or of the runs read again) and all of them: flat (measured: within a few
    # KiB); the four counting fields of each of the 6,000 more ballots in a Python list would add 2.5 MB
    assert len(samples["pass"]) == 2 and len(samples["again"]) >= 8, samples
    for what, got in samples.items():
        quarter, end = got[len(got) // 4 - (1 if what == "again" else 0)], got[-1]
        assert end - quarter < 2**18, (what, samples)
    assert not [p for p in service.settings.data_dir.iterdir() if p.name.startswith("tally-count-")]
