"""Witnesses: cosign a growing log through the real HTTP API, refuse forks and rollbacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ledger_util import Clock, log_signer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import ledger
from ledger import Ledger, LedgerConfig
from ledger.log._witness import STATE_FILE, Witness
from ledger.record import WitnessKey, WitnessPolicy
from voting._cli_witness import app as witness_cli
from voting._ledger_api import create_app

TOKEN = "admin-token-for-tests-0123456789"


def _rng(seed: int):  # injected randomness: deterministic witness keys
    return lambda n: bytes([seed]) * n


@pytest.fixture(scope="module")
def witness_pub(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WitnessKey]:
    d = tmp_path_factory.mktemp("witness")
    return d, Witness.init(d, "univ-tsukuba", log_signer().public, random=_rng(7))


def _ledger(path: Path, pub: WitnessKey) -> Ledger:
    return Ledger(f"sqlite:///{path}", LedgerConfig(log_signer(), WitnessPolicy((pub,), 1), clock=Clock()))


def _fill(led: Ledger, n: int, tag: str) -> None:
    led.append_many([("x", {"tag": tag, "i": i}) for i in range(led.size, n)])
    led.checkpoint()


def test_witness_cosigns_growth_and_refuses_fork_and_rollback(
    tmp_path: Path, witness_pub: tuple[Path, WitnessKey]
) -> None:
    wdir, pub = witness_pub
    w = Witness.load(wdir)
    with (
        _ledger(tmp_path / "a.db", pub) as a,
        _ledger(tmp_path / "b.db", pub) as b,
        _ledger(tmp_path / "c.db", pub) as c,
    ):
        ca, cb, cc = (TestClient(create_app(x, TOKEN)) for x in (a, b, c))
        _fill(a, 3, "honest")
        r1 = w.cosign(ca)
        assert (r1.size, r1.previous_size) == (3, None)
        assert a.latest_checkpoint().witnessed
        _fill(a, 5, "honest")
        r2 = w.cosign(ca)
        assert (r2.size, r2.previous_size) == (5, 3)
        assert w.cosign(ca).size == 5  # same checkpoint again: fine, idempotent

        _fill(b, 7, "forked")  # same log key, different history
        with pytest.raises(ledger.ForkError):
            w.cosign(cb)
        _fill(c, 5, "other")  # same size, different root
        with pytest.raises(ledger.ForkError):
            w.cosign(cc)
        with _ledger(tmp_path / "d.db", pub) as d:  # an honest prefix: the log went back in time
            d.append_many([("x", {"tag": "honest", "i": i}) for i in range(2)])
            d.checkpoint()
            with pytest.raises(ledger.RollbackError):
                w.cosign(TestClient(create_app(d, TOKEN)))
        assert w.state() == (5, a.root(5))  # nothing was signed or recorded for the bad logs
        assert b.latest_checkpoint().cosignatures is None

        _fill(a, 9, "honest")
        assert w.cosign(ca).size == 9


def test_witness_refuses_a_checkpoint_not_signed_by_the_log(
    tmp_path: Path, witness_pub: tuple[Path, WitnessKey]
) -> None:
    wdir, _ = witness_pub
    w = Witness.load(wdir)
    before = (wdir / STATE_FILE).read_text()
    from ledger.record import Checkpoint, LogSigner, SignedCheckpoint

    impostor = LogSigner.generate(log_signer().name, b"\x09" * 32)
    note = SignedCheckpoint.sign(Checkpoint(impostor.name, 100, b"\x01" * 32, 1_750_000_000), impostor).note
    with pytest.raises(ledger.SignatureError):
        w.check_and_sign(note, lambda o, n: [])
    forged = note.replace("\n100\n", "\n101\n")
    with pytest.raises((ledger.SignatureError, ledger.InvalidEncoding)):
        w.check_and_sign(forged, lambda o, n: [])
    assert (wdir / STATE_FILE).read_text() == before


def test_cli_init_writes_key_public_and_state(tmp_path: Path) -> None:
    runner = CliRunner()
    d = tmp_path / "w"
    res = runner.invoke(
        witness_cli,
        ["init", "--dir", str(d), "--name", "observer-party", "--log-key", log_signer().public.vkey],
    )
    assert res.exit_code == 0, res.output
    pub = WitnessKey.from_json(json.loads(res.output))
    assert pub.name == "observer-party"
    assert (d / "witness-key.json").stat().st_mode & 0o077 == 0
    again = runner.invoke(
        witness_cli,
        ["init", "--dir", str(d), "--name", "observer-party", "--log-key", log_signer().public.vkey],
    )
    assert again.exit_code != 0  # never overwrite a key


def test_witness_refuses_a_checkpoint_whose_signed_time_goes_back(tmp_path: Path) -> None:
    """Same tree, growing size, but the log's signed clock moved backwards: refused, nothing recorded."""
    from ledger.merkle import consistency_proof, leaf_hash, root
    from ledger.record import Checkpoint, SignedCheckpoint

    signer = log_signer()
    leaves = [leaf_hash(bytes([i])) for i in range(6)]
    w_dir = tmp_path / "w"
    Witness.init(w_dir, "observer-party", signer.public, random=_rng(3))
    w = Witness.load(w_dir)

    def note(size: int, time: int) -> str:
        cp = Checkpoint(signer.public.name, size, root(leaves[:size]), time)
        return SignedCheckpoint.sign(cp, signer).note

    def proof(old: int, new: int) -> list[bytes]:
        return consistency_proof(old, leaves[:new])

    w.check_and_sign(note(3, 1_800_000_100), proof)
    assert w.last_time() == 1_800_000_100
    with pytest.raises(ledger.RollbackError) as e:
        w.check_and_sign(note(5, 1_800_000_099), proof)
    assert e.value.check == "witness-time-rollback"
    assert w.state() == (3, root(leaves[:3])) and w.last_time() == 1_800_000_100
    assert w.check_and_sign(note(5, 1_800_000_100), proof).size == 5  # equal time is fine
