"""Verifier throughput and memory (prints a markdown section; see bench/run_all.py).

    .venv/bin/python bench/bench_verifier.py                 # quick: small records
    .venv/bin/python bench/bench_verifier.py --big 100000    # the 100,000-ballot record (slow to generate)

Rows:
* ballot checks (V13/V14) per second on one core, for the 1-of-5 ballot and the demo's 3-contest ballot
  (1 of 4, yes/no, up to 3 of 8): the pure per-ballot work (``verifier._ballots.verify_batch``);
* the whole ``verify_record`` run with ``--workers 1`` and ``--workers 2`` (ballots per second of wall time,
  everything included: ledger structure, counting rule, tally, decryption, PDF);
* time and peak memory (max RSS of the ``tvote-verify`` process) for a big record made by
  ``tools/gen_big_record.py``. Target: >= 250 ballots/s per core for 1-of-5.

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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


def record(cache: Path, n: int, kind: str, workers: int) -> Path:
    from gen_big_record import generate

    out = cache / f"tvote-bench-{kind}-{n}"
    if not (out / "record" / "checkpoints.jsonl").exists():
        print(f"generating {n} {kind} ballots …", file=sys.stderr)
        generate(out, n, kind, workers)
    return out / "record"


def ballot_rate(rec: Path, limit: int = 300) -> float:
    from crypto._threshold import JointKey
    from verifier._ballots import BallotContext, verify_batch
    from verifier._manifest import read_manifest

    items: list[tuple[int, bytes]] = []
    info = jk = None
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
            elif e["type"] == "ballot.cast":
                items.append((i, line.rstrip(b"\n")))
                if len(items) >= limit:
                    break
    assert info is not None and jk is not None
    ctx = BallotContext.create(info, jk)
    t = time.perf_counter()
    res = verify_batch(ctx, items)
    dt = time.perf_counter() - t
    assert not res.failures, res.failures[:3]
    return len(items) / dt


def whole_run(rec: Path, workers: int, roots: Path) -> tuple[float, float, int]:
    """(seconds, ballots/s, peak RSS kB) of one ``tvote-verify`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    exe = Path(sys.executable).parent / "tvote-verify"
    cmd = [str(exe), str(rec), "--workers", str(workers), "--no-progress", "--json", os.devnull]
    if roots.exists():
        cmd += ["--trust-root", str(roots)]
    else:
        cmd += ["--partial"]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"verification failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    n = sum(1 for line in (rec / "entries.jsonl").open("rb") if b'"type":"ballot.cast"' in line)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return dt, n / dt, max(peak, before)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400, help="ballots in the throughput records")
    ap.add_argument(
        "--big", type=int, default=2000, help="ballots in the big record (100000 for the full run)"
    )
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--gen-workers", type=int, default=2)
    a = ap.parse_args()
    rows = []
    for kind, label in (("1of5", "1 of 5"), ("demo3", "demo: 1 of 4 + yes/no + up to 3 of 8")):
        rec = record(a.cache, a.n, kind, a.gen_workers)
        core = ballot_rate(rec)
        t1, r1, _ = whole_run(rec, 1, rec.parent / "root.pem")
        t2, r2, _ = whole_run(rec, 2, rec.parent / "root.pem")
        rows.append((label, a.n, core, r1, r2, t1, t2))
    print("### Verifier (`tvote-verify`)\n")
    print(
        "| ballot | ballots | ballot checks/s, 1 core | whole run, --workers 1 (ballots/s) "
        "| whole run, --workers 2 (ballots/s) | time w1 / w2 |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, n, core, r1, r2, t1, t2 in rows:
        print(f"| {label} | {n} | {core:.0f} | {r1:.0f} | {r2:.0f} | {t1:.1f}s / {t2:.1f}s |")
    big = record(a.cache, a.big, "1of5", a.gen_workers)
    t, rate, peak = whole_run(big, 2, big.parent / "root.pem")
    size = (big / "entries.jsonl").stat().st_size / 1e6
    print(
        f"\nBig record: {a.big} ballots (1 of 5), entries.jsonl {size:.0f} MB, `--workers 2`: "
        f"{t:.1f}s ({rate:.0f} ballots/s), peak memory of the verifier process {peak / 1024:.0f} MB "
        "(max RSS; worker processes are separate).\n"
    )
    print("Target: >= 250 ballot checks/s per core for the 1-of-5 ballot.")


if __name__ == "__main__":
    main()
