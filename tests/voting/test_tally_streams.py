"""The tally streams the ledger: it never holds every cast ballot at once (a city's million encrypted ballots
would not fit in memory), and its sum and counted set are those of the counting rule applied to the ledger.

The streaming test reads the ledger in chunks of 10 entries (the service's ``ledger_entries`` with a smaller
``chunk``; 2,000 in production, which a test would need thousands of ballots to exceed), sums the counted
ballots in chunks of 10 (``SUM_CHUNK``, likewise) and compares the tally's peak of traced memory with what
holding the cast entries' payloads costs.

The tally's sum is the ballot engine's (``select_engine("auto")``): the native one when it is installed.
Both engines must give the published tally; the native one is required under ``TVOTE_REQUIRE_ALL=1`` (CI).
"""

from __future__ import annotations

import functools
import os
import random
import tracemalloc

import pytest
from _service_util import (
    ADMIN,
    ADMIN_TOKEN,
    CLOSE_EARLY,
    OPEN_EARLY,
    cast_directly,
    create_election,
    ok,
    roll_aliases,
    running_app,
)

import crypto
import voting.service._tally as tally_module
from crypto import ElectionContext, EncryptedBallot, native_available, select_engine, tally_ciphertexts
from ledger.merkle import leaf_hash, root
from voting.service import count_ballots
from voting.service._core import ledger_entries

BALLOTS = 120


def _choices(rng: random.Random) -> dict[str, list[str]]:
    return {
        "mayor": [rng.choice(["cand-1", "cand-2", "cand-3"])],
        "projects": rng.sample(["library", "cycling", "childcare", "science"], rng.randint(0, 2)),
        "referendum": [rng.choice(["yes", "no"])],
    }


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """An election closed with BALLOTS cast ballots (every voter of the 5-voter roll re-votes many times)."""
    rng = random.Random(7)
    with running_app(tmp_path_factory.mktemp("tally")) as (client, service):
        from voting.testing import run_key_ceremony

        run_key_ceremony(client, create_election(client), admin_token=ADMIN_TOKEN)
        ok(client.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY))
        aliases = roll_aliases(service)
        seq = dict.fromkeys(aliases, 0)
        for k in range(BALLOTS):
            alias = aliases[k % 4]  # the fifth voter abstains
            seq[alias] += 1
            cast_directly(service, alias, "internet", _choices(rng), seq[alias], rng)
        ok(client.post("/api/v1/admin/close", headers=ADMIN, json=CLOSE_EARLY))
        yield client, service


def _payload_bytes(service) -> int:  # type: ignore[no-untyped-def]
    """Traced memory of the list of every ``ballot.cast`` payload (what the tally used to hold)."""
    tracemalloc.start()
    try:
        held = [p for _, t, p in ledger_entries(service.ledger) if t == "ballot.cast"]
        size, _ = tracemalloc.get_traced_memory()
        assert len(held) == BALLOTS
    finally:
        tracemalloc.stop()
    return size


def test_the_tally_never_holds_every_ballot_and_equals_the_counting_rule(closed, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client, service = closed
    held = _payload_bytes(service)
    monkeypatch.setattr(tally_module, "ledger_entries", functools.partial(ledger_entries, chunk=10))
    monkeypatch.setattr(tally_module, "SUM_CHUNK", 10)
    used: list[tuple[str, str]] = []

    def recording_select_engine(name: str = "auto") -> crypto.BallotEngine:  # the real engine, recorded
        engine = select_engine(name)
        used.append((name, engine.name))
        return engine

    monkeypatch.setattr(crypto, "select_engine", recording_select_engine)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = service.compute_tally()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # holding the 120 payloads would cost `held`; a chunk of 10 and four short fields per ballot far less
    assert peak < held / 2, (peak, held)
    # the intake's choice of engine: the native one when installed
    assert used == [("auto", "native" if native_available() else "python")]

    # the reference: the counting rule and the sum over the whole ledger, in memory (120 ballots)
    cast = [(i, p) for i, t, p in ledger_entries(service.ledger) if t == "ballot.cast"]
    counting = count_ballots((i, p["ballot_hash"], p["voter_alias"], p["channel"]) for i, p in cast)
    assert (out["cast"], out["counted"], out["superseded"]) == (BALLOTS, 4, BALLOTS - 4)
    counted = set(counting.counted)
    ctx = ElectionContext(
        service.base_hash, service.joint_key().public_key, tuple(service.manifest.contest_specs())
    )
    want = tally_ciphertexts(
        (EncryptedBallot.from_dict(p["ballot"]) for _, p in cast if p["ballot_hash"] in counted), ctx=ctx
    )
    assert out["ciphertexts"] == {
        c: {s: ct.to_dict() for (c2, s), ct in want.items() if c2 == c} for c, _ in want
    }
    published = ok(client.get("/api/v1/election/tally"))
    want_root = root([leaf_hash(bytes.fromhex(h)) for h in counting.counted]).hex()
    assert published["counted_root"] == want_root
    # the counted ballots are each voter's last: the four highest ledger indices of the four voters
    last = {p["voter_alias"]: p["ballot_hash"] for _, p in cast}
    assert counted == set(last.values())


def test_the_tally_is_the_same_with_either_engine(closed) -> None:  # type: ignore[no-untyped-def]
    """The sum of the counted ballots by the native engine (in chunks smaller than the election) and by
    the reference, and the published tally if the test above computed it: all the same."""
    if not native_available():
        why = "the native engine (tvote_native) is not installed: `make native` builds it"
        if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
            pytest.fail(f"required (TVOTE_REQUIRE_ALL=1): {why}")
        pytest.skip(why)
    _, service = closed
    cast = [(i, p) for i, t, p in ledger_entries(service.ledger) if t == "ballot.cast"]
    counted = set(
        count_ballots((i, p["ballot_hash"], p["voter_alias"], p["channel"]) for i, p in cast).counted
    )
    assert len(counted) == 4
    ctx = ElectionContext(
        service.base_hash, service.joint_key().public_key, tuple(service.manifest.contest_specs())
    )
    counted_ballots = [p["ballot"] for _, p in cast if p["ballot_hash"] in counted]
    by_reference = select_engine("python").sum_ballots(ctx, iter(counted_ballots))
    by_native = select_engine("native").sum_ballots(ctx, iter(counted_ballots), chunk=3)
    assert by_native == by_reference
    assert len({ct for ct in by_native.values()}) > 1  # not the empty tally
    if service.election().phase == "tallied":
        assert service._tally_ciphertexts(service.encrypted_tally()) == by_native
