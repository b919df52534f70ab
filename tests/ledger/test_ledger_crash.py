"""Crash safety: a real ledger server appending for concurrent clients is killed with SIGKILL repeatedly.

After every restart each acknowledged entry is present with its hash and payload, the chain and the tree
verify (storage fsck), and nothing half-written is visible (contiguous indices, nodes match entries).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from _ledger_util import log_signer

from ledger import Ledger, LedgerConfig

TOKEN = "crash-test-admin-token-0123456789"
ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(db: str, key: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TVOTE_LEDGER_ADMIN_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from voting._cli_ledger import app; app()",
            "serve",
            "--db",
            db,
            "--key",
            str(key),
            "--port",
            str(port),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server died: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/ledger/witnesses", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start")


def _clients(
    port: int,
    acked: dict[int, tuple[str, dict]],
    lock: threading.Lock,
    stop: threading.Event,
    n: int,
    tag: str,
) -> list[threading.Thread]:
    def work(c: int) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=5, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client:
            j = 0
            while not stop.is_set():
                payload = {"round": tag, "client": c, "n": j}
                j += 1
                try:
                    r = client.post("/ledger/append", json={"type": "ballot.cast", "payload": payload})
                except httpx.HTTPError:
                    return  # server gone: this request was not acknowledged
                if r.status_code == 200:
                    body = r.json()
                    with lock:
                        acked[body["index"]] = (body["entry_hash"], payload)

    return [threading.Thread(target=work, args=(c,)) for c in range(n)]


def _crash_rounds(db: str, tmp_path: Path, rounds: int) -> None:
    key = tmp_path / "log.key"
    key.write_text(log_signer().skey + "\n")
    acked: dict[int, tuple[str, dict]] = {}
    lock = threading.Lock()
    rng = random.Random(1234)
    for rnd in range(rounds):
        port = _port()
        proc = _start(db, key, port)
        stop = threading.Event()
        threads = _clients(port, acked, lock, stop, 6, f"r{rnd}")
        for t in threads:
            t.start()
        # kill mid-stream: once this round has been acknowledged some appends (a loaded machine can take
        # seconds for the first), then after a random moment
        before, deadline = len(acked), time.monotonic() + 30
        while len(acked) < before + 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
        os.kill(proc.pid, signal.SIGKILL)  # our own child: no cleanup, no flush
        proc.wait()
        stop.set()
        for t in threads:
            t.join()
        if proc.stderr:
            proc.stderr.close()
    assert len(acked) > 50, "the clients should have been acknowledged many appends"
    with Ledger(db, LedgerConfig(log_signer())) as led:
        size = led.size
        assert size >= max(acked) + 1
        entries = {e.index: e for e in led.entries(0, size)}
        assert sorted(entries) == list(range(size))  # contiguous: nothing half-written
        for index, (h, payload) in acked.items():
            assert entries[index].hash.hex() == h
            assert entries[index].payload == payload
        led.checkpoint()
        summary = led.check()  # chain, stored hashes, nodes vs entries, checkpoint root
        assert summary.size == size


@pytest.mark.slow
def test_sigkill_during_appends_loses_nothing_acknowledged_sqlite(tmp_path: Path) -> None:
    _crash_rounds(f"sqlite:///{tmp_path / 'crash.db'}", tmp_path, rounds=6)


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_during_appends_loses_nothing_acknowledged_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    _crash_rounds(postgres_url, tmp_path, rounds=3)
