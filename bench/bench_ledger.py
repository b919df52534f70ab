"""Ledger benchmark: durable append throughput (SQLite, PostgreSQL), proof latency at scale, export.

    .venv/bin/python bench/bench_ledger.py [--entries 1000000] [--appends 20000] [--threads 32]

Prints a markdown table. PostgreSQL rows need the server binaries (the tests' fixture starts one).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from ledger import Ledger, LedgerConfig
from ledger.record import LogSigner, check_record

#: A smoke run of every path (``make test`` runs it; its figures are not measurements).
TINY_ARGS = ("--entries", "2000", "--appends", "300", "--threads", "4")


def _cfg() -> LedgerConfig:
    return LedgerConfig(LogSigner.generate("bench.example/ledger", bytes(32)), max_batch=5000)


def concurrent_appends(url: str, total: int, threads: int) -> float:
    with Ledger(url, _cfg()) as led:
        per = total // threads

        def work(k: int) -> None:
            for j in range(per):
                led.append("ballot.cast", {"client": k, "n": j, "tracking": f"{k:04x}{j:08x}"})

        ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return per * threads / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000, help="log size for proof latency / export")
    ap.add_argument("--appends", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=32)
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="tvote-bench-"))

    rate = concurrent_appends(f"sqlite:///{tmp / 'a.db'}", args.appends, args.threads)
    rows.append(
        (f"append, SQLite, {args.threads} concurrent appenders, durable ack", f"{rate:,.0f} entries/s")
    )

    from _pg import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is not None:
        pg = PostgresServer(bindir).start()
        try:
            rate = concurrent_appends(pg.create_database(), args.appends, args.threads)
            rows.append(
                (
                    f"append, PostgreSQL, {args.threads} concurrent appenders, durable ack",
                    f"{rate:,.0f} entries/s",
                )
            )
        finally:
            pg.stop()
    else:
        rows.append(("append, PostgreSQL", "skipped (no server binaries)"))

    n = args.entries
    with Ledger(f"sqlite:///{tmp / 'big.db'}", _cfg()) as led:
        t0 = time.perf_counter()
        batch = 5000
        for start in range(0, n, batch):
            led.append_many(
                [
                    ("ballot.cast", {"n": i, "tracking": f"{i:012x}"})
                    for i in range(start, min(n, start + batch))
                ]
            )
        rows.append(
            (
                f"bulk load {n:,} entries (append_many, SQLite)",
                f"{n / (time.perf_counter() - t0):,.0f} entries/s",
            )
        )
        cp = led.checkpoint()
        rng = random.Random(1)
        lat = []
        for _ in range(300):
            i = rng.randrange(n)
            t1 = time.perf_counter()
            p = led.inclusion_proof(i, n)
            lat.append(time.perf_counter() - t1)
            p.verify(cp.root)
        lat.sort()
        rows.append(
            (
                f"inclusion proof at {n:,} entries (median / p99)",
                f"{statistics.median(lat) * 1e3:.2f} ms / {lat[int(len(lat) * 0.99)] * 1e3:.2f} ms",
            )
        )
        t0 = time.perf_counter()
        led.export(tmp / "rec")
        rows.append(("export record (directory)", f"{n / (time.perf_counter() - t0):,.0f} entries/s"))
        t0 = time.perf_counter()
        led.export_archive(tmp / "rec.tar.gz")
        rows.append(("export record (.tar.gz)", f"{n / (time.perf_counter() - t0):,.0f} entries/s"))
    t0 = time.perf_counter()
    check_record(tmp / "rec")
    rows.append(("check_record (directory)", f"{n / (time.perf_counter() - t0):,.0f} entries/s"))

    print("| measurement | result |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
