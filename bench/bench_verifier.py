"""Verifier throughput and memory (prints a markdown section; see bench/run_all.py).

    .venv/bin/python bench/bench_verifier.py                 # quick: small records (a minute or two)
    .venv/bin/python bench/bench_verifier.py --n 1000 --big 100000    # the issue's figures (FULL_ARGS)

``bench/run_all.py`` (``make bench``) runs it with :data:`FULL_ARGS`: the first run generates the
100,000-ballot record (several minutes on 2 cores), later runs reuse it from ``--cache``.

Rows:
* ballot checks (V13/V14) per second on one core, for the 1-of-5 ballot and the demo's 3-contest ballot
  (1 of 4, yes/no, up to 3 of 8): the pure per-ballot work (``verifier._ballots.verify_batch``);
* the whole ``tvote-verify`` run with ``--workers 1`` and ``--workers 2`` (ballots per second of wall time,
  everything included: ledger structure, counting rule, tally, decryption, PDF);
* time and peak memory for a big record made by ``tools/gen_big_record.py``: the high-water mark of
  resident memory (``VmHWM``, sampled from ``/proc`` every 0.2 s) of the ``tvote-verify`` process and of
  its largest worker process. Target: >= 250 ballots/s per core for 1-of-5.

Records are cached under ``--cache`` (default: the system temp directory) so re-runs skip generation.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "bench"))

from _proc import descendants, hwm_kb  # noqa: E402
from _v1 import V1_COMMIT, extract  # noqa: E402

#: The arguments for the issue's figures; ``bench/run_all.py`` passes them (``make bench``).
FULL_ARGS: Final[tuple[str, ...]] = ("--n", "1000", "--big", "100000", "--v1")
#: A smoke run of every path (``make test`` runs it; its figures are not measurements).
TINY_ARGS: Final[tuple[str, ...]] = ("--n", "12", "--big", "24", "--v1")


def record(cache: Path, n: int, kind: str, workers: int) -> Path:
    """The cached record of ``n`` ballots, (re)generated unless it was made by this very generator."""
    import hashlib

    from gen_big_record import generate

    out = cache / f"tvote-bench-{kind}-{n}"
    stamp = out / "generator.sha256"
    from crypto import PROTOCOL_VERSION

    generator = (ROOT / "tools" / "gen_big_record.py").read_bytes()
    source = hashlib.sha256(generator + f"protocol {PROTOCOL_VERSION}".encode()).hexdigest()
    if not stamp.exists() or stamp.read_text() != source:
        print(f"generating {n} {kind} ballots …", file=sys.stderr)
        stamp.unlink(missing_ok=True)
        generate(out, n, kind, workers)
        stamp.write_text(source)
    return out / "record"


def ballot_rate(rec: Path, limit: int = 300) -> float:
    from crypto import JointKey

    # the verifier's own per-ballot pass (V12-V14), timed without the rest of a run: private on purpose
    # (tests/system/test_layering.py lists this exception)
    from verifier._ballots import BallotContext, RollCommitment, verify_batch
    from verifier._manifest import read_manifest

    items: list[tuple[int, bytes]] = []
    info = jk = roll = None
    with (rec / "entries.jsonl").open("rb") as f:
        for i, line in enumerate(f):
            e = json.loads(line)
            if e["type"] == "election.manifest":
                info = read_manifest(e["payload"])
            elif e["type"] == "election.joint-key":
                p = e["payload"]
                jk = JointKey.from_dict(
                    {
                        "base_hash": p["base_hash"],
                        **{k: p[k] for k in ("threshold", "qualified", "joint_key", "public_shares")},
                    }
                )
            elif e["type"] == "roll.commitment":  # V12 checks every ballot's roll proof against it
                roll = RollCommitment(e["payload"]["size"], bytes.fromhex(e["payload"]["root"]))
            elif e["type"] == "ballot.cast":
                items.append((i, line.rstrip(b"\n")))
                if len(items) >= limit:
                    break
    assert info is not None and jk is not None and roll is not None
    ctx = BallotContext.create(info, jk, roll)
    t = time.perf_counter()
    res = verify_batch(ctx, items)
    dt = time.perf_counter() - t
    assert not res.failures, res.failures[:3]
    return len(items) / dt


#: ``tvote-verify`` run as ``python -c``: the same ``main``, and the CPU time of this process alone (not of
#: its workers: ``time.process_time``) during the verification itself (``verify_record``: not the
#: interpreter's start, the imports or the report's rendering, a fixed cost) written to the file named by
#: ``TVOTE_BENCH_CPU_FILE``
_MEASURED_MAIN: Final[str] = """
import os, sys, time
import verifier.cli as cli

def timed(*args, **kwargs):
    t = time.process_time()
    try:
        return verify(*args, **kwargs)
    finally:
        with open(os.environ["TVOTE_BENCH_CPU_FILE"], "w") as f:
            f.write(repr(time.process_time() - t))

verify, cli.verify_record = cli.verify_record, timed
sys.exit(cli.main())
"""


def whole_run(
    rec: Path, workers: int, roots: Path, tree: Path | None = None, engine: str | None = None
) -> tuple[float, float, int, int, float, float]:
    """(seconds, ballots/s, peak RSS kB of tvote-verify, peak RSS kB of its largest worker, CPU ms per
    ballot of the verifier and its workers together, CPU ms per ballot of the verifier's main process
    alone) of one run.

    ``tree``: run the verifier of that source tree (v1's, read from git) instead of the installed one.
    ``engine``: ``--engine`` (the default, ``auto``, if None)."""
    verify = [sys.executable, "-c", _MEASURED_MAIN]
    cpu_file = Path(tempfile.mkstemp(prefix="tvote-bench-cpu-")[1])
    env = {**os.environ, "TVOTE_BENCH_CPU_FILE": str(cpu_file)}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    cmd = [*verify, str(rec), "--workers", str(workers), "--no-progress", "--json", os.devnull]
    if engine is not None:
        cmd += ["--engine", engine]
    if roots.exists():
        cmd += ["--trust-root", str(roots)]
    else:
        cmd += ["--partial"]
    main_kb = worker_kb = 0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # workers are waited for by tvote-verify: included
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        # for v1 the working directory is its tree too: ``python -c`` puts it first on sys.path
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tree)
        while p.poll() is None:
            main_kb = max(main_kb, hwm_kb(p.pid))
            for c in descendants(p.pid):
                worker_kb = max(worker_kb, hwm_kb(c))
            time.sleep(0.2)
        dt = time.perf_counter() - t
        if p.returncode != 0:
            out.seek(0)
            raise SystemExit(f"verification failed:\n{out.read()[-4000:].decode(errors='replace')}")
    if main_kb == 0:  # no /proc: the largest process of the run, verifier or worker
        main_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    n = sum(1 for line in (rec / "entries.jsonl").open("rb") if b'"type":"ballot.cast"' in line)
    try:
        main_cpu = float(cpu_file.read_text() or "nan")
    finally:
        cpu_file.unlink(missing_ok=True)
    return dt, n / dt, main_kb, worker_kb, 1000 * cpu / n, 1000 * main_cpu / n


def v1_big(n: int, cache: Path, gen_workers: int, v2_rate: float, v2_cpu: float) -> None:
    """The same big-record run with protocol v1's generator and verifier, read from git (bench/_v1.py)."""
    with tempfile.TemporaryDirectory(prefix="tvote-bench-v1-") as tmp:
        tree = Path(tmp)
        why = extract(tree, ("crypto", "ledger", "verifier", "voting", "tools"))
        if why:
            print(f"Protocol v1 not measured: {why}\n")
            return
        out = cache / f"tvote-bench-v1-{V1_COMMIT}-1of5-{n}"
        if not (out / "record" / "record.json").exists():
            print(f"generating {n} 1of5 ballots with protocol v1 …", file=sys.stderr)
            gen = [sys.executable, str(tree / "tools" / "gen_big_record.py"), "--out", str(out),
                   "--ballots", str(n), "--workers", str(gen_workers)]  # fmt: skip
            env = {**os.environ, "PYTHONPATH": str(tree)}
            subprocess.run(gen, check=True, env=env, stdout=subprocess.DEVNULL)
        t, rate, main_kb, _, cpu, _ = whole_run(out / "record", 2, out / "root.pem", tree=tree)
        print(
            f"Protocol v1 (edwards25519, commit `{V1_COMMIT}`): the same big record made and verified by "
            f"v1's code in this run, `--workers 2`: {t:.1f}s ({rate:.0f} ballots/s; {cpu:.2f} ms of CPU per "
            f"ballot; peak {main_kb / 1024:.0f} MB). v2 / v1: **{v2_rate / rate:.2f}×** in ballots/s of wall "
            f"time, **{cpu / v2_cpu:.2f}×** in CPU per ballot (the figure other load on the machine disturbs "
            "least).\n"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400, help="ballots in the throughput records")
    ap.add_argument(
        "--big", type=int, default=2000, help="ballots in the big record (100000 for the full run)"
    )
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--gen-workers", type=int, default=2)
    ap.add_argument(
        "--engine",
        choices=("auto", "python", "native"),
        default=None,
        help="tvote-verify --engine for the whole runs (default: its own default, auto)",
    )
    ap.add_argument(
        "--v1", action="store_true", help="also generate and verify a protocol v1 big record in this run"
    )
    a = ap.parse_args()
    load_before = os.getloadavg()[0]
    rows = []
    for kind, label in (("1of5", "1 of 5"), ("demo3", "demo: 1 of 4 + yes/no + up to 3 of 8")):
        rec = record(a.cache, a.n, kind, a.gen_workers)
        core = ballot_rate(rec)
        t1, r1, _, _, _, m1 = whole_run(rec, 1, rec.parent / "root.pem", engine=a.engine)
        t2, r2, _, _, _, m2 = whole_run(rec, 2, rec.parent / "root.pem", engine=a.engine)
        rows.append((label, a.n, core, r1, r2, t1, t2, m1, m2))
    print("### Verifier (`tvote-verify`)\n")
    print(
        "| ballot | ballots | ballot checks/s, 1 core | whole run, --workers 1 (ballots/s) "
        "| whole run, --workers 2 (ballots/s) | time w1 / w2 | main-process CPU ms/ballot, w1 / w2 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, n, core, r1, r2, t1, t2, m1, m2 in rows:
        print(
            f"| {label} | {n} | {core:.0f} | {r1:.0f} | {r2:.0f} | {t1:.1f}s / {t2:.1f}s "
            f"| {m1:.3f} / {m2:.3f} |"
        )
    big = record(a.cache, a.big, "1of5", a.gen_workers)
    t, rate, main_kb, worker_kb, cpu, main_cpu = whole_run(big, 2, big.parent / "root.pem", engine=a.engine)
    size = (big / "entries.jsonl").stat().st_size / 1e6
    print(
        f"\nBig record: {a.big:,} ballots (1 of 5), entries.jsonl {size:.0f} MB, `--workers 2`: "
        f"{t:.1f}s ({rate:.0f} ballots/s; {cpu:.2f} ms of CPU per ballot, verifier and workers; "
        f"main-process CPU ms/ballot {main_cpu:.3f}, the `tvote-verify` process alone); "
        f"peak resident memory (VmHWM) {main_kb / 1024:.0f} MB for the "
        f"`tvote-verify` process, {worker_kb / 1024:.0f} MB for its largest worker process.\n"
    )
    if a.v1:
        v1_big(a.big, a.cache, a.gen_workers, rate, cpu)
    print(
        f"Load average (1 min) of the machine when the run started: {load_before:.1f}, when it ended: "
        f"{os.getloadavg()[0]:.1f} ({os.cpu_count()} cores; above the core count other work competed with "
        "these figures, `--workers 2` most).\n"
    )
    print("Target: >= 250 ballot checks/s per core for the 1-of-5 ballot.")


if __name__ == "__main__":
    main()
