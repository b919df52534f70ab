"""Checkpoints on a schedule (issue 11, "less linkability by time"): a cast does not sign its own checkpoint,
so ballots share checkpoint times; receipts are pending until the next checkpoint and then carry their
inclusion proof; the client waits for it and refuses a server that completes a receipt with another entry;
production refuses a checkpoint per receipt."""

from __future__ import annotations

import datetime as dt
import time
import traceback
from typing import Any

import pytest
from _service_util import ADMIN_TOKEN, start_election_on

from voting._errors import ConfigurationError
from voting._settings import Settings
from voting._startup import CHECKS, run_checks
from voting.clients.voter import ReceiptError
from voting.testing import DemoElection, JpkiTestCa, RsaKeyPool, make_residents, tsukuba_manifest

pytestmark = pytest.mark.xdist_group("checkpoint_schedule")

CHOICE = {"mayor": ["cand-1"], "referendum": ["no"], "subsidy": ["proj-2"]}
BATCH = 3


@pytest.fixture(scope="module")
def election(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Any:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(BATCH + 1, ca, now, pool=RsaKeyPool(BATCH + 1))
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    # an hour between scheduled checkpoints: only the entry count (BATCH) triggers one during the test
    with start_election_on(
        module_database_url,
        tmp_path_factory.mktemp("cpsched"),
        residents,
        ca,
        manifest,
        checkpoint_interval=3600,
        checkpoint_max_entries=BATCH,
    ) as e:
        e.service.ledger.checkpoint()  # cover the set-up entries: the batch below starts uncovered
        yield e


def test_casts_share_one_scheduled_checkpoint(election: DemoElection) -> None:
    e = election
    led = e.service.ledger
    start = led.latest_checkpoint().size
    with e.client() as c:
        first = [c.cast_jpki(r.card, CHOICE) for r in e.residents[: BATCH - 1]]
        assert all(r.pending and r.checkpoint is None and r.inclusion_proof is None for r in first)
        time.sleep(1.5)  # the keeper ticked a few times: fewer than BATCH uncovered, no hour passed
        assert led.latest_checkpoint().size == start, "a cast signed its own checkpoint"
        assert c.lookup(first[0].tracking_code).pending
        last = c.cast_jpki(e.residents[BATCH - 1].card, CHOICE)  # BATCH uncovered: the keeper signs one
        done = [c.complete_receipt(r, timeout=20) for r in (*first, last)]
        # one checkpoint (one public time) for the whole batch, not one per ballot
        assert len({r.checkpoint for r in done}) == 1
        assert led.latest_checkpoint().size == start + BATCH
        for r in done:
            entry = c.verify_receipt(r)
            assert entry.payload["ballot_hash"] == r.ballot_hash


def test_a_pending_receipt_times_out_with_a_named_check(election: DemoElection) -> None:
    """A server that never covers a ballot with a checkpoint is reported, not waited for forever."""
    e = election
    with e.client() as c:
        r = c.cast_jpki(e.residents[BATCH].card, CHOICE)
        assert r.pending
        t0 = time.monotonic()
        with pytest.raises(ReceiptError) as err:
            c.complete_receipt(r, timeout=0.6, poll=0.2)
        assert err.value.check == "receipt-pending"
        assert time.monotonic() - t0 < 10
        e.service.ledger.checkpoint()  # an operator's checkpoint covers it: the receipt completes
        assert not c.complete_receipt(r, timeout=5).pending


def test_a_casts_receipt_reads_no_checkpoint_until_this_process_knows_one_covering_it(
    election: DemoElection,
) -> None:
    """A checkpoint covering an entry is signed after the entry's append: a cast's receipt is pending without
    reading the newest checkpoint while this process knows of none covering it (what a read at the moment of
    the append would have found). Once it knows of one (its keeper, here the operator, signed it), the receipt
    of that entry reads the newest and carries its proof."""
    from sqlalchemy import event

    e = election
    led = e.service.ledger
    reads: list[str] = []

    @event.listens_for(led._store.engine, "before_cursor_execute")
    def _seen(_c: object, _cur: object, sql: str, *_a: object) -> None:
        # a receipt's reads (the keeper reads the newest checkpoint too, on its own schedule)
        if "ledger_checkpoint" in sql and any(f.name == "_receipt" for f in traceback.extract_stack()):
            reads.append(sql)

    with e.client() as c:
        r = c.cast_jpki(e.residents[0].card, CHOICE)  # a re-vote: the residents all voted above
        assert r.pending and reads == []
        led.checkpoint()  # covers it; this process knows
        assert led.known_checkpoint_size > r.leaf_index
        reads.clear()
        again = e.intake._receipt(
            "cast",
            r.ballot_hash,
            r.tracking_code,
            r.leaf_index,
            bytes.fromhex(r.entry_hash),
            channel=r.channel,
            seq=r.seq,
            appended=True,
        )
        assert reads and not again.pending
        assert again.checkpoint == led.latest_checkpoint().signed.note
        assert c.verify_receipt(again).payload["ballot_hash"] == r.ballot_hash
        later = c.cast_jpki(e.residents[1].card, CHOICE)  # beyond the newest checkpoint again: pending
        assert later.pending and later.leaf_index >= led.known_checkpoint_size


def test_the_schedule_is_validated_and_production_refuses_a_checkpoint_per_receipt(tmp_path: Any) -> None:
    for bad in (-1, 3601, True):
        with pytest.raises(ConfigurationError) as err:
            Settings(environment="test", admin_token=ADMIN_TOKEN, checkpoint_interval=bad)  # type: ignore[arg-type]
        assert err.value.code == "config.checkpoint_interval"
    with pytest.raises(ConfigurationError) as err:
        Settings(environment="test", admin_token=ADMIN_TOKEN, checkpoint_max_entries=0)
    assert err.value.code == "config.checkpoint_max_entries"
    only = [c for c in CHECKS if c.name == "checkpoints"]
    prod = Settings(environment="production", data_dir=tmp_path, admin_token=ADMIN_TOKEN)
    assert run_checks(prod, checks=only) == []  # the default: every 10 s
    problems = run_checks(prod.with_(checkpoint_interval=0), checks=only)
    assert [p.check for p in problems] == ["checkpoints"] and "public timestamp" in problems[0].message
    assert run_checks(prod.with_(environment="test", checkpoint_interval=0), checks=only) == []
