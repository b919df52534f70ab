"""A million ballots, end to end (prints a markdown section; see bench/run_all.py).

    .venv/bin/python bench/bench_million.py --n 20000 --memory-n 2000 --jobs 2    # FULL_ARGS
    make bench-million      # the full run: --n 1000000 --memory-n 20000 --jobs 2 --write-docs

For each size (``--memory-n`` first, if given, then ``--n``) the script runs every step of an election with
the service's own code, each step in a child process of its own (``--step``), so that the step's wall time,
CPU time (the step's process and the children it waited for: ``RUSAGE_CHILDREN``) and peak resident memory
(``VmHWM`` of the step's process and of its largest child, sampled from ``/proc`` every 0.2 s) are the step's
alone:

1. **setup**: the service of ``tvote serve`` (:func:`voting.testing.demo_settings`,
   :func:`voting.app.create_app`, SQLite in the data directory), the manifest (1 of 5, or ``--ballot demo``:
   the demo's 1 of 4, yes/no, up to 3 of 8), 5 trustees with threshold 3, a roll of N synthetic residents
   (``load_roll`` and ``publish_roll``), the real key ceremony over the API
   (:func:`voting.testing.run_key_ceremony`), voting opened; the trustees' state files are saved
   (``Trustee.save``) for the decryption step.
2. **cast**: N ballots, really encrypted with their proofs in ``--jobs`` worker processes (streamed: a
   bounded window of chunks in flight, never all ballots), each appended by the intake's append path
   (``ElectionService.appending()`` around ``Ledger.append_many``, one transaction per chunk) with the
   fields the intake writes: the voter alias (``lookup_alias`` of the resident's roll match key) and its roll
   proof (``roll_proof``, checked against the committed root), ``channel``, the authentication evidence
   hash, ``seq``; every 50th ballot is a re-vote of the voter before. The intake's private rows are then
   rebuilt from the ledger by ``ElectionService.reconcile`` (the service's replay of ``ballot.cast``).
   Resumable: a run stopped here goes on from the last appended chunk; the finished cast is kept under
   ``--cache`` and later runs copy it instead of casting again.
3. **close** (``close_voting``), **tally** (``compute_tally``: the counting rule and the homomorphic sum),
   **decrypt** (trustees 1, 2 and 3 load their state files and each runs ``Trustee.decrypt``: it checks the
   tally against the ledger with the public verifier, over the API, then submits its partial decryptions;
   then ``publish_result`` and ``declare_result``; the result must equal the tally of the simulated choices),
   **export** (``ElectionService.export``).
4. **verify**: ``tvote-verify RECORD --trust-root ROOT`` with ``--workers 2``, then with ``--scheduler`` the
   address of a ``distributed.LocalCluster`` of 1 and of 2 worker processes (one thread each), started in a
   child process of its own; the cluster's CPU and memory are counted with the step's.

The extrapolation to 1,000,000 ballots is linear in N from the largest size run (the key ceremony and other
fixed costs are included, so it over-estimates a little) and is labelled as such.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "bench"))

from _proc import descendants, hwm_kb  # noqa: E402
from gen_big_record import contests  # noqa: E402

#: The figures recorded in docs/benchmarks.md (``make bench``); the full run is ``make bench-million``.
FULL_ARGS: Final[tuple[str, ...]] = ("--n", "20000", "--memory-n", "2000", "--jobs", "2")
#: A smoke run of every path (``make test`` runs it; its figures are not measurements).
#: ``run_all.py --quick``: a few minutes.
QUICK_ARGS: Final[tuple[str, ...]] = ("--n", "1000", "--memory-n", "200", "--jobs", "2")
TINY_ARGS: Final[tuple[str, ...]] = ("--n", "20", "--memory-n", "10", "--jobs", "2", "--tiny")

TARGET_N: Final = 1_000_000
CHUNK: Final = 100  # ballots per worker task and per ledger transaction
PASSPHRASE: Final = "bench-million-trustee"  # the bench trustees' state files: test keys only
REVOTE_EVERY: Final = 50
STEPS: Final = ("setup", "cast", "close", "tally", "decrypt", "export")
TRUSTEES_PRESENT: Final = (1, 2, 3)
MEASURED: Final = "measured.json"  # the setup and cast steps' figures, kept with the cached cast


# ------------------------------------------------------------------------------------------ the election


def manifest(kind: str, now: dt.datetime) -> dict[str, Any]:
    from voting.testing import tsukuba_manifest

    m = tsukuba_manifest(now, election_id=f"bench-million-{kind}", trustees=5, threshold=3)
    if kind == "1of5":
        m["contests"] = contests("1of5")  # the big-record generator's ballot: one contest, 1 of 5
    m["voting_period"]["closes"] = (now + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return m


def resident(v: int) -> tuple[str, str, dt.date, str]:
    """Voter ``v`` of the synthetic roll: register id, name, birth date, address."""
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=(v * 7919) % (365 * 60))
    return f"R{v + 1:07d}", f"住民 太郎{v}", birth, f"茨城県つくば市天久保{v // 1000 + 1}丁目{v % 1000 + 1}番"


def roll_csv(n: int) -> bytes:
    lines = ["resident_id,name,birth_date,address"]
    for v in range(n):
        rid, name, birth, address = resident(v)
        lines.append(f"{rid},{name},{birth.isoformat()},{address}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def voter_of(k: int) -> tuple[int, bool]:
    """Ballot ``k``'s voter and whether it is a re-vote (every 50th ballot re-votes for the voter before)."""
    if k % REVOTE_EVERY == REVOTE_EVERY - 1:
        return (k - 1) - (k - 1) // REVOTE_EVERY, True
    return k - k // REVOTE_EVERY, False


def choices(k: int, contests: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Ballot ``k``'s choices: a function of ``k`` alone (a resumed run and the expected tally agree)."""
    r = random.Random(f"choice/{k}")  # synthetic choices only
    out = {}
    for c in contests:
        ids = [s["id"] for s in c["selections"]]
        out[c["id"]] = r.sample(ids, r.randint(c["min"], c["max"]))
    return out


def expected_tally(n: int, contests: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """The plaintext result the decryption must give: each voter's last ballot counts."""
    last: dict[int, int] = {}
    for k in range(n):
        last[voter_of(k)[0]] = k
    out = {c["id"]: {s["id"]: 0 for s in c["selections"]} for c in contests}
    for k in last.values():
        for cid, sel in choices(k, contests).items():
            for s in sel:
                out[cid][s] += 1
    return out


# ------------------------------------------------------------------------------------------- the service


class Election:
    """The service of one bench directory, opened from its data directory (each step is a new process)."""

    def __init__(self, work: Path) -> None:
        from fastapi.testclient import TestClient

        from voting.app import create_app
        from voting.testing import JpkiTestCa, demo_settings

        self.work = work
        self.state: dict[str, Any] = json.loads((work / "state.json").read_text())
        now = dt.datetime.now(dt.UTC)
        settings, intake = demo_settings(
            work / "data", JpkiTestCa.generate(now), now, admin_token=self.state["admin_token"]
        )
        self.app = create_app(settings, intake=intake)
        self.service = self.app.state.service
        self.http = TestClient(self.app)

    def close(self) -> None:
        self.http.close()
        self.service.close()


def step_setup(work: Path, n: int, kind: str, interactive_kdf: bool = False) -> None:
    """``interactive_kdf`` (the tiny run): the trustees' files under Argon2id's interactive limits instead
    of the default moderate ones (about 1 s per file to write and again to read, a fixed cost, not in N)."""
    import secrets

    from voting.clients.trustee import KdfLimits
    from voting.testing import run_key_ceremony

    now = dt.datetime.now(dt.UTC)
    m = manifest(kind, now)
    token = secrets.token_urlsafe(32)
    (work / "state.json").write_text(json.dumps({"admin_token": token, "n": n, "kind": kind, "manifest": m}))
    e = Election(work)
    try:
        auth = {"Authorization": f"Bearer {token}"}
        r = e.http.post("/api/v1/admin/election", json=m, headers=auth)
        r.raise_for_status()
        e.service.load_roll(roll_csv(n))
        e.service.publish_roll()
        invitations = {int(i): c for i, c in r.json()["invitations"].items()}
        trustees = run_key_ceremony(e.http, invitations, admin_token=token)
        (work / "trustees").mkdir(exist_ok=True)
        for i, t in trustees.items():
            t.save(
                work / "trustees" / f"trustee-{i}.json",
                PASSPHRASE,
                KdfLimits.interactive() if interactive_kdf else None,
            )
        e.service.enforce_period()
        if e.service.phase == "setup":
            e.service.open_voting(override_reason="bench: opened before the period")
        assert e.service.phase == "voting", e.service.phase
    finally:
        e.close()


_CTX: Any = None


def _init_worker(ctx: Any, contests: list[dict[str, Any]]) -> None:
    global _CTX
    _CTX = (ctx, contests)


def _encrypt_chunk(start: int, count: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Encrypt ballots ``start .. start+count`` (in a worker): ``(ballot hash, tracking code, ballot)``."""
    from crypto import encrypt_ballot

    ctx, contests = _CTX
    rng = random.Random(f"encrypt/{start}")  # test randomness for a benchmark, never for a real ballot
    out = []
    for k in range(start, start + count):
        b, _ = encrypt_ballot(ctx, choices(k, contests), rng=rng)
        out.append((b.ballot_hash().hex(), b.tracking_code(), b.to_dict()))
    return out


def _chunks(
    ctx: Any, contests: list[dict[str, Any]], first: int, n: int, jobs: int
) -> Iterator[tuple[int, list[tuple[str, str, dict[str, Any]]]]]:
    """Encrypted chunks in order, ``jobs`` worker processes, at most ``2 * jobs + 2`` chunks in flight."""
    starts = iter(range(first, n, CHUNK))
    if jobs <= 1:
        _init_worker(ctx, contests)
        for s in starts:
            yield s, _encrypt_chunk(s, min(CHUNK, n - s))
        return
    import concurrent.futures as cf

    mp = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(
        jobs, mp_context=mp, initializer=_init_worker, initargs=(ctx, contests)
    ) as pool:
        window: deque[tuple[int, Any]] = deque()
        for s in starts:
            window.append((s, pool.submit(_encrypt_chunk, s, min(CHUNK, n - s))))
            if len(window) >= 2 * jobs + 2:
                s0, f = window.popleft()
                yield s0, f.result()
        while window:
            s0, f = window.popleft()
            yield s0, f.result()


def step_cast(work: Path, jobs: int) -> None:
    from crypto import ElectionContext
    from ledger.events import BASE_HASH, ELECTION_ID, EventType
    from voting.auth import RollKey, roll_match_key

    e = Election(work)
    try:
        svc = e.service
        n, contests = e.state["n"], e.state["manifest"]["contests"]
        ctx = ElectionContext(svc.base_hash, svc.joint_key().public_key, tuple(svc.manifest.contest_specs()))
        eid, bh = svc.election_id, svc.base_hash.hex()
        roll_key = RollKey(svc.roll_key)
        seqs = {}
        # resume: the ballots already on the ledger (appended a chunk per transaction)
        done = sum(1 for _, t, _ in _entries(svc.ledger) if t == EventType.BALLOT_CAST)
        assert done % CHUNK == 0 or done == n, done
        t0 = time.monotonic()
        for start, chunk in _chunks(ctx, contests, done, n, jobs):
            items = []
            for j, (ballot_hash, tracking, ballot) in enumerate(chunk):
                k = start + j
                v, revote = voter_of(k)
                _, name, birth, address = resident(v)
                alias = svc.lookup_alias(roll_match_key(roll_key, name, birth, address).digest)
                assert alias is not None, v
                payload = {
                    ELECTION_ID: eid,
                    BASE_HASH: bh,
                    "ballot": ballot,
                    "ballot_hash": ballot_hash,
                    "tracking_code": tracking,
                    "voter_alias": alias.hex(),
                    "roll_proof": svc.roll_proof(alias).to_dict(),
                    "channel": "internet",
                    "auth": {
                        "method": "jpki",
                        "evidence_hash": hashlib.sha256(f"bench-evidence/{eid}/{k}".encode()).hexdigest(),
                    },
                    "seq": 2 if revote else 1,
                }
                seqs[v] = payload["seq"]
                items.append((EventType.BALLOT_CAST.value, payload))
            with svc.appending():
                svc.ledger.append_many(items)
            if (start // CHUNK) % 50 == 49:
                rate = (start + CHUNK - done) / (time.monotonic() - t0)
                print(f"  {start + CHUNK:,} ballots cast ({rate:.0f}/s)", file=sys.stderr, flush=True)
        # the intake's private rows, rebuilt from the ledger by its replay; what it cannot rebuild is the
        # sealed authentication evidence (no card signed here): exactly those problems are expected
        report = svc.reconcile()
        other = [p for p in report.problems if "authentication evidence" not in p]
        if other or len(report.problems) != n - done:
            raise SystemExit(f"reconcile: {other[:5] or len(report.problems)}")
    finally:
        e.close()


def _entries(ledger: Any) -> Iterator[tuple[int, str, dict[str, Any]]]:
    size = ledger.size
    for first in range(0, size, 2000):
        for x in ledger.entries(first, min(size, first + 2000)):
            yield x.index, x.type, x.payload


def step_close(work: Path) -> None:
    e = Election(work)
    try:
        e.service.close_voting(override_reason="bench: every ballot is cast")
    finally:
        e.close()


def step_tally(work: Path) -> None:
    e = Election(work)
    try:
        out = e.service.compute_tally()
        (work / "tally.json").write_text(json.dumps({k: out[k] for k in ("cast", "counted", "superseded")}))
    finally:
        e.close()


def step_decrypt(work: Path, jobs: int) -> None:
    from voting.clients.trustee import Trustee

    e = Election(work)
    try:
        log_key = e.service.ledger.log_key.vkey
        for i in TRUSTEES_PRESENT:  # trustees 4 and 5 are absent: 3 of 5 decrypt
            t = Trustee.load(work / "trustees" / f"trustee-{i}.json", PASSPHRASE)
            t.decrypt(e.http, log_key=log_key, workers=jobs)
        result = e.service.publish_result()
        e.service.declare_result()
        want = expected_tally(e.state["n"], e.state["manifest"]["contests"])
        if result["results"] != want:
            raise SystemExit(f"the decrypted result {result['results']} is not the simulated tally {want}")
    finally:
        e.close()


def step_export(work: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    e = Election(work)
    try:
        shutil.rmtree(work / "record", ignore_errors=True)
        e.service.export(work / "record")
        signer = e.service.commission_signer()
        root = signer.chain[-1] if signer.chain else signer.certificate
        (work / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    finally:
        e.close()


def step_cluster(workers: int) -> None:
    """A LocalCluster of ``workers`` processes; prints its address, runs until stdin closes."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:  # type: ignore[no-untyped-call]
        print(cluster.scheduler_address, flush=True)
        sys.stdin.read()


# ------------------------------------------------------------------------------------------- measuring


_TICK = os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system, with waited-for children) of ``pid`` and its live descendants."""
    total = 0.0
    for p in [pid, *descendants(pid)]:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in f[11:15]) / _TICK
        except (OSError, ValueError, IndexError):
            continue
    return total


class Measured:
    """One step's wall time, CPU seconds and peak RSS (KiB); ``None`` where it was not recorded."""

    def __init__(
        self, name: str, wall: float, cpu: float | None, main_kb: int | None, child_kb: int | None,
        note: str = "",
    ) -> None:  # fmt: skip
        self.name, self.wall, self.cpu, self.main_kb, self.child_kb = name, wall, cpu, main_kb, child_kb
        self.note = note  # where the figures come from, when not from this run

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measured:
        return cls(d["name"], d["wall"], d["cpu"], d["main_kb"], d["child_kb"], d.get("note", ""))


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def run_measured(name: str, cmd: list[str], extra_tree: int | None = None) -> Measured:
    """Run ``cmd``; its wall time, CPU (with its children, and ``extra_tree``'s processes), peak memory."""
    main_kb = child_kb = 0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    extra0 = _tree_cpu(extra_tree) if extra_tree else 0.0
    t = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=None)
    while p.poll() is None:
        main_kb = max(main_kb, hwm_kb(p.pid))
        kids = descendants(p.pid) + ([extra_tree, *descendants(extra_tree)] if extra_tree else [])
        own = _cmdline(p.pid)
        for c in kids:
            # a child caught between fork and exec still shows its parent's memory (and command line)
            if _cmdline(c) != own:
                child_kb = max(child_kb, hwm_kb(c))
        time.sleep(0.2)
    wall = time.perf_counter() - t
    extra = (_tree_cpu(extra_tree) - extra0) if extra_tree else 0.0
    out = p.stdout.read().decode(errors="replace") if p.stdout else ""
    if p.returncode != 0:
        raise SystemExit(f"step {name} failed ({p.returncode}):\n{out[-4000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) + extra
    if main_kb == 0:  # no /proc: the largest process waited for so far
        main_kb = after.ru_maxrss
    return Measured(name, wall, cpu, main_kb, child_kb)


def _me(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def _stamp() -> str:
    """What the cached cast depends on: the code that sets up the election and casts (not the report's or
    the later steps'), its constants and the protocol version. A change to any of them casts again."""
    import inspect

    from crypto import PROTOCOL_VERSION

    made_by = (manifest, resident, roll_csv, voter_of, choices, expected_tally, contests, Election,
               step_setup, _init_worker, _encrypt_chunk, _chunks, step_cast)  # fmt: skip
    text = "".join(inspect.getsource(f) for f in made_by)
    text += f"chunk {CHUNK} revote {REVOTE_EVERY} passphrase {PASSPHRASE} protocol {PROTOCOL_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()


def prepare(cache: Path, n: int, kind: str, jobs: int, tiny: bool = False) -> tuple[Path, list[Measured]]:
    """A work directory with the election set up and ``n`` ballots cast: a copy of the cached cast (or
    made now, and cached). Returns it and the measured setup and cast steps (empty when reused)."""
    base = cache / f"tvote-million-{kind}-{n}"
    cast_dir, work = base / "cast", base / "work"
    stamp = base / "stamp"
    measured: list[Measured] = []
    if not (stamp.exists() and stamp.read_text() == _stamp() and (cast_dir / "done").exists()):
        if not (stamp.exists() and stamp.read_text() == _stamp() and (cast_dir / "state.json").exists()):
            shutil.rmtree(base, ignore_errors=True)
            cast_dir.mkdir(parents=True)
            stamp.write_text(_stamp())
            print(f"[{n:,}] setup …", file=sys.stderr, flush=True)
            kdf = ["--interactive-kdf"] if tiny else []
            measured.append(run_measured("setup", _me("--step", "setup", "--dir", str(cast_dir),
                                                      "--n", str(n), "--ballot", kind, *kdf)))  # fmt: skip
        else:
            print(f"[{n:,}] resuming the cast in {cast_dir}", file=sys.stderr, flush=True)
        print(f"[{n:,}] cast …", file=sys.stderr, flush=True)
        measured.append(
            run_measured("cast", _me("--step", "cast", "--dir", str(cast_dir), "--jobs", str(jobs)))
        )
        # kept with the cast, so that a run reusing it still reports how it was made
        note = f"measured on {dt.datetime.now(dt.UTC).date().isoformat()}, when the cached cast was made"
        kept = [{**m.to_dict(), "note": m.note or note} for m in measured]
        (cast_dir / MEASURED).write_text(json.dumps(kept, indent=1))
        (cast_dir / "done").write_text("")
    else:
        print(f"[{n:,}] reusing the cast ballots of {cast_dir}", file=sys.stderr, flush=True)
        if (cast_dir / MEASURED).exists():
            measured = [Measured.from_dict(d) for d in json.loads((cast_dir / MEASURED).read_text())]
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(cast_dir, work)
    return work, measured


def verify_run(name: str, work: Path, *, workers: int = 2, dask: int = 0) -> Measured:
    exe = Path(sys.executable).parent / "tvote-verify"
    cmd = [str(exe), str(work / "record"), "--trust-root", str(work / "root.pem"), "--no-progress"]
    cmd += ["--json", os.devnull, "--unsafe-allow-unwitnessed"]  # the bench election has no witnesses
    if not dask:
        return run_measured(name, [*cmd, "--workers", str(workers)])
    cluster = subprocess.Popen(
        _me("--step", "cluster", "--workers", str(dask)), cwd=ROOT, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert cluster.stdout is not None
        address = cluster.stdout.readline().strip()
        if not address.startswith("tcp://"):
            raise SystemExit(f"the LocalCluster did not start: {address!r}")
        return run_measured(name, [*cmd, "--scheduler", address], extra_tree=cluster.pid)
    finally:
        if cluster.stdin is not None:
            cluster.stdin.close()
        cluster.wait(timeout=120)


def one_size(
    cache: Path, n: int, kind: str, jobs: int, tiny: bool = False
) -> tuple[list[Measured], dict[str, Any]]:
    work, measured = prepare(cache, n, kind, jobs, tiny)
    for step in STEPS[2:]:
        print(f"[{n:,}] {step} …", file=sys.stderr, flush=True)
        args = ["--step", step, "--dir", str(work)]
        if step == "decrypt":
            args += ["--jobs", str(jobs)]
        measured.append(run_measured(step, _me(*args)))
    runs: tuple[tuple[str, dict[str, int]], ...] = (
        ("verify, --workers 2", {"workers": 2}),
        ("verify, Dask LocalCluster 1 worker", {"dask": 1}),
        ("verify, Dask LocalCluster 2 workers", {"dask": 2}),
    )
    for label, kw in runs:
        print(f"[{n:,}] {label} …", file=sys.stderr, flush=True)
        measured.append(verify_run(label, work, **kw))
    info = json.loads((work / "tally.json").read_text())
    info["record_mb"] = sum(f.stat().st_size for f in (work / "record").iterdir()) / 1e6
    return measured, info


# ------------------------------------------------------------------------------------------------ report


def _fmt_t(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 60:.1f} min" if s >= 120 else f"{s:.1f} s"


def _rss(m: Measured, sep: str = " MB / ", unit: str = " MB") -> str:
    if m.main_kb is None or m.child_kb is None:
        return "not recorded"
    return f"{m.main_kb / 1024:.0f}{sep}{m.child_kb / 1024:.0f}{unit}"


def report(runs: list[tuple[int, list[Measured], dict[str, Any]]], kind: str, jobs: int, tiny: bool) -> None:
    label = "1 of 5" if kind == "1of5" else "demo: 1 of 4 + yes/no + up to 3 of 8"
    print("### A million ballots, end to end\n")
    if tiny:
        print("--tiny: a smoke run, not a measurement.\n")
    n, steps, info = runs[-1]
    print(
        f"Ballot: {label}; 5 trustees, threshold 3 (trustees 1-3 decrypt); SQLite; `--jobs {jobs}` "
        f"encryption processes. Largest size run: **{n:,} ballots** ({info['cast']:,} cast, "
        f"{info['counted']:,} counted, {info['superseded']:,} superseded re-votes); record "
        f"{info['record_mb']:.0f} MB.\n"
    )
    small = {m.name: m for m in runs[0][1]} if len(runs) > 1 else {}
    n0 = runs[0][0]

    def extrapolate(m: Measured) -> tuple[float, str]:
        """Wall time for TARGET_N: a line through the two sizes (fixed cost + cost per ballot) when both
        were measured, else proportional to N from the largest (an over-estimate of fixed costs)."""
        m0 = small.get(m.name)
        if m0 is not None and m.wall > m0.wall:
            slope = (m.wall - m0.wall) / (n - n0)
            return m.wall + slope * (TARGET_N - n), "line"
        return m.wall * TARGET_N / n, "prop"

    full = n >= TARGET_N  # measured at the target size: no extrapolation
    head = f"| step | wall, {n:,} | CPU, {n:,} | peak RSS (step process / largest child) |"
    if not full:
        head += f" **extrapolated** wall for {TARGET_N:,} | **extrapolated** CPU (∝ N) |"
    print(head)
    print("|---|---:|---:|---:|" + ("" if full else "---:|---:|"))
    notes = {k: i + 1 for i, k in enumerate(dict.fromkeys(m.note for m in steps if m.note))}
    for m in steps:
        ref = f" [{notes[m.note]}]" if m.note else ""
        cpu = "not recorded" if m.cpu is None else _fmt_t(m.cpu)
        row = f"| {m.name}{ref} | {_fmt_t(m.wall)} | {cpu} | {_rss(m)} |"
        if not full:
            t, how = extrapolate(m)
            mark = "" if how == "line" else " (∝ N)"
            row += f" {_fmt_t(t)}{mark} | {'—' if m.cpu is None else _fmt_t(m.cpu * TARGET_N / n)} |"
        print(row)
    for note, i in notes.items():
        print(f"\n[{i}] {note}")
    if full:
        print(
            "\nCPU time is the step's processes summed over cores; on 2 otherwise idle cores a step's wall "
            "time is at least its CPU time divided by the processes it keeps busy."
        )
    else:
        print(
            f"\nExtrapolation: a straight line through the wall times at {n0:,} and {n:,} ballots (a fixed "
            "cost plus a cost per ballot), or, marked ∝ N, proportional to N from the largest run. It "
            "assumes the same 2 cores and load; it is not a measurement. CPU time (the step's processes, "
            "summed over cores) is less disturbed by other work on a shared machine than wall time: on 2 "
            "otherwise idle cores a step's wall time is at least its CPU time divided by the processes it"
            " keeps busy."
            if small
            else "\nExtrapolation: proportional to N from this run (∝ N); it is not a measurement."
        )
    print()
    by = {m.name: m for m in steps}
    d1, d2 = by["verify, Dask LocalCluster 1 worker"], by["verify, Dask LocalCluster 2 workers"]
    print(
        f"Verification with Dask: 1 worker {_fmt_t(d1.wall)}, 2 workers {_fmt_t(d2.wall)} "
        f"(× {d1.wall / d2.wall:.2f} faster; on 2 shared cores the second worker competes with the "
        "verifier's own reading and with other work on the machine).\n"
    )
    if len(runs) > 1:
        print("Memory in N (peak RSS of the step's process / largest child, MB):\n")
        sizes = [r[0] for r in runs]
        print("| step | " + " | ".join(f"{s:,}" for s in sizes) + " |")
        print("|---|" + "---:|" * len(sizes))
        names = [m.name for m in runs[-1][1]]
        for name in names:
            cells = []
            for _, ms, _ in runs:
                got = next((x for x in ms if x.name == name), None)
                cells.append("(reused)" if got is None else _rss(got, " / ", ""))
            print(f"| {name} | " + " | ".join(cells) + " |")
        print()
    tally = extrapolate(by["tally"])[0]
    best = min(extrapolate(by[k])[0] for k in by if k.startswith("verify"))
    how = "measured" if full else "**extrapolated**"
    print(
        f"Targets on 2 cores for {TARGET_N:,} ballots: tally <= 10 min ({how} {_fmt_t(tally)}), "
        f"verification <= 30 min ({how}, fastest of the three: {_fmt_t(best)}).\n"
    )
    if n < TARGET_N:
        gb = info["record_mb"] * TARGET_N / n / 1000
        print(
            f"What was run: {', '.join(f'{r[0]:,}' for r in runs)} ballots (the machine's 2 cores are shared "
            f"with other work today). What remains: the full {TARGET_N:,}-ballot run, `make bench-million` "
            "(`nice -n 10 .venv/bin/python bench/bench_million.py --n 1000000 --memory-n 20000 --jobs 2 "
            "--cache /var/tmp --write-docs`), which replaces these figures with measured ones: about an hour "
            "of CPU for the encryption alone, resumable (the cast ballots are kept under `--cache`); its "
            f"record is about {gb:.0f} GB, and the cache holds the service's database twice (the cast and "
            "a working copy).\n"
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=TARGET_N, help="ballots (default 1,000,000)")
    ap.add_argument("--memory-n", type=int, default=0, help="also a smaller size first, to compare memory")
    ap.add_argument("--ballot", choices=["1of5", "demo"], default="1of5")
    ap.add_argument("--jobs", type=int, default=2, help="encryption worker processes")
    ap.add_argument(
        "--cache",
        type=Path,
        help="where the cast ballots are kept (default: the system temp directory; "
        "with --tiny a fresh temporary directory, removed afterwards)",
    )
    ap.add_argument("--tiny", action="store_true", help="say that the figures are a smoke run")
    ap.add_argument("--write-docs", action="store_true", help="write the section into docs/benchmarks.md")
    ap.add_argument("--step", choices=[*STEPS, "cluster"], help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--interactive-kdf", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.n < 1 or a.jobs < 1 or a.memory_n < 0:
        ap.error("--n and --jobs must be positive")
    if a.step == "cluster":
        step_cluster(a.workers)
        return
    if a.step is not None:
        assert a.dir is not None
        {
            "setup": lambda: step_setup(a.dir, a.n, a.ballot, a.interactive_kdf),
            "cast": lambda: step_cast(a.dir, a.jobs),
            "close": lambda: step_close(a.dir),
            "tally": lambda: step_tally(a.dir),
            "decrypt": lambda: step_decrypt(a.dir, a.jobs),
            "export": lambda: step_export(a.dir),
        }[a.step]()
        return
    load0 = os.getloadavg()
    sizes = ([a.memory_n] if a.memory_n and a.memory_n != a.n else []) + [a.n]
    runs = []
    with contextlib.ExitStack() as stack:
        cache = a.cache or Path(tempfile.gettempdir())
        if a.tiny and a.cache is None:
            cache = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tvote-million-tiny-")))
        for n in sizes:
            measured, info = one_size(cache, n, a.ballot, a.jobs, a.tiny)
            runs.append((n, measured, info))
    buf: list[str] = []
    with contextlib.redirect_stdout(_Tee(buf)):
        report(runs, a.ballot, a.jobs, a.tiny)
        load1 = os.getloadavg()
        print(
            f"Load average (1/5/15 min) when the run started: {load0[0]:.1f}/{load0[1]:.1f}/{load0[2]:.1f}, "
            f"when it ended: {load1[0]:.1f}/{load1[1]:.1f}/{load1[2]:.1f} ({os.cpu_count()} cores, shared)."
        )
    if a.write_docs:
        from run_all import write_section

        shown = " ".join(["bench/bench_million.py", *(argv if argv is not None else sys.argv[1:])])
        shown = shown.replace(" --write-docs", "")
        write_section("million", shown, "".join(buf))


class _Tee:
    def __init__(self, buf: list[str]) -> None:
        self.buf = buf

    def write(self, s: str) -> int:
        self.buf.append(s)
        return sys.__stdout__.write(s) if sys.__stdout__ else len(s)

    def flush(self) -> None:
        if sys.__stdout__:
            sys.__stdout__.flush()


if __name__ == "__main__":
    main()
