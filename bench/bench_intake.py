"""Ballot-intake throughput of the REAL ``tvote serve`` process (prints a markdown section; see run_all.py).

    .venv/bin/python bench/bench_intake.py           # the issue's figures (the defaults are full size)
    .venv/bin/python bench/bench_intake.py --ballots 60 --voters 30 --clients 1,4 --db sqlite   # a smoke run
    .venv/bin/python bench/bench_intake.py --db postgres,postgres:2 --split 0   # 1 and 2 server processes

For each database (SQLite in the data directory; PostgreSQL from the tests' throwaway server,
``tests/_pg.py``, started here with ``fsync=on`` so that both rows pay for durable commits) the script starts
``tvote serve`` on loopback as the tests do (``tests/_serve_util.py``: JPKI test CA + CRL, TOML config, no
rate limit in the way; ``postgres:N`` runs ``tvote serve --workers N``, N server processes on the one
database and ledger), creates the demo election (``tsukuba_manifest``: mayor 1 of 4, referendum yes/no,
subsidy up to 3 of 8; 2 trustees, quorum 2) set up as production requires (:func:`production_like`: the
observers' oversight key, so each cast's evidence is sealed to it, and 3 witnesses with quorum 2, pinned to
the ledger's key before the election, each running ``tvote witness run --interval 60`` (the operator
guide's round) at ``nice -n 19``: the server verifies each cosignature and every receipt's checkpoint carries
them; their CPU is reported apart, since in production each is a machine of its own), loads a roll of
``--voters`` synthetic residents with test My Number cards, runs the key ceremony over HTTP and opens voting.
Then, per concurrency level ``C``:

* **outside the measured window**: the ballots are encrypted (a process pool; a voter's device does this),
  one server challenge per ballot is fetched (``POST /voter/challenge``), each card signs
  (base hash, ballot hash, challenge), and every request body is serialised to JSON bytes;
* **the measured window**: ``C`` threads, each with its own HTTP connection, send the ``--ballots`` prepared
  bodies (``POST /api/v1/voter/ballots``) and wait for each answer. Inside the window are the client's
  HTTP send/receive (the standard library's ``http.client``, a keep-alive connection per thread, on the
  same 2 cores: the lightest load generator at hand, so the clients take as little as possible of the
  cores the server is measured on) and everything the server does per cast: request parsing,
  ballot decoding and proof verification, the JPKI chain / CRL / signature check, the pending-evidence
  commit, the ledger append (group-committed), the private-state commit and the receipt (inclusion proof
  against a checkpoint). Receipts are parsed and checked after the window.

Ballot ``i`` of a run belongs to voter ``i mod voters``, so with the defaults (600 ballots, 300 voters) every
voter casts twice per run and later runs are all re-votes (the per-voter ``seq`` keeps growing).

Server CPU is read from ``/proc/<pid>/stat`` of the server process and its workers (and of every PostgreSQL
process) before and after the window: with N processes, "server CPU ms/ballot" is their sum. The split of
that CPU is measured afterwards in this process, single-threaded, on the same submissions: decode + hash +
:func:`crypto.verify_ballot` (the server's ``_parse_ballot``) and
:meth:`voting.auth.JpkiVerifier.verify` with the same trust anchor and CRL directory; the rest (HTTP,
JSON, pydantic, database, ledger, receipt) is the difference.

At the end every acknowledged ballot must be on the ledger: the script pages through
``/api/v1/ledger/entries`` and checks that each receipt's leaf is the ``ballot.cast`` of its ballot hash,
that the ledger holds exactly as many ``ballot.cast`` entries as were acknowledged, and verifies a sample
of receipts with :meth:`voting.clients.voter.VoterClient.verify_receipt`; otherwise it exits non-zero.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import http.client
import json
import os
import platform
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402

API = "/api/v1"
ELECTION_ID = "tsukuba-bench"
#: the witnesses' round in the operator guide (``tvote witness run --interval 60``)
WITNESS_INTERVAL = 60
_TICK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------ CPU accounting


#: A smoke run of every path (``make test`` runs it; its figures are not measurements).
TINY_ARGS = (
    "--ballots", "10", "--voters", "5", "--clients", "1",
    "--db", "sqlite,postgres,postgres:2", "--split", "3", "--checkpoint-interval", "1",
)  # fmt: skip


def _proc_cpu(pid: int) -> float:
    """utime + stime (seconds) of one live process; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the ")" of comm: state is field 3, utime field 14, stime 15, cutime 16, cstime 17
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / _TICK


def _tree(root: int) -> list[int]:
    """``root`` and all its descendants (one scan of /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_cpu(root: int | None) -> float:
    return 0.0 if root is None else sum(_proc_cpu(p) for p in _tree(root))


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# ------------------------------------------------------------------------------------------------- setup


def _random_choices(rnd: random.Random, manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in manifest["contests"]:
        ids = [s["id"] for s in c["selections"]]
        k = rnd.randint(int(c["min"]), int(c["max"]))
        out[c["id"]] = sorted(rnd.sample(ids, k))
    return out


def _encrypt_chunk(ctx: Any, choices: list[dict[str, list[str]]]) -> list[tuple[dict[str, Any], bytes]]:
    """Worker: encrypt ballots (what the voter's device does), return (wire dict, ballot hash)."""
    from crypto import encrypt_ballot

    out = []
    for ch in choices:
        b, _secrets = encrypt_ballot(ctx, ch)
        out.append((b.to_dict(), b.ballot_hash()))
    return out


def encrypt_all(
    ctx: Any, choices: list[dict[str, list[str]]], workers: int
) -> list[tuple[dict[str, Any], bytes]]:
    chunks = [choices[i : i + 50] for i in range(0, len(choices), 50)]
    with cf.ProcessPoolExecutor(max_workers=workers) as pool:
        return [x for part in pool.map(_encrypt_chunk, [ctx] * len(chunks), chunks) for x in part]


def durable_postgres(bindir: Path) -> Any:
    """The tests' throwaway PostgreSQL (``tests/_pg.py``) but with ``fsync=on``: the tests turn fsync off
    (they never lose power); a throughput figure must pay for durable commits, as the SQLite row does."""
    from _pg import PostgresServer

    class DurablePostgres(PostgresServer):
        def _cmd(self, *args: str) -> list[str]:
            return super()._cmd(*("fsync=on" if a == "fsync=off" else a for a in args))

    return DurablePostgres(bindir)


@dataclass
class Server:
    """``tvote serve`` on loopback with a fresh data directory, an open election and its roll."""

    tmp: Path
    residents: Sequence[Any]
    ca: Any
    now: dt.datetime
    database_url: str | None
    workers: int = 1
    trustees: int = 2
    checkpoint_interval: int | None = None  # None: the server's default
    proc: Any = None
    base: str = ""
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    manifest: dict[str, Any] = field(default_factory=dict)
    log_key: str = ""
    #: production's set-up: witnesses (``tvote witness run``, 2 of 3) and the observers' oversight key
    witnesses: bool = True
    witness_procs: list[Any] = field(default_factory=list)
    _demo_witnesses: Any = None  # voting.testing.DemoWitnesses: their directories and quorum
    _witness_keys: list[dict[str, str]] = field(default_factory=list)

    @property
    def witness_interval(self) -> int:
        """Seconds between the witnesses' rounds: the operator guide's ``--interval 60``, or the checkpoint
        interval when a run sets a shorter one (the tiny run: 1 s)."""
        return min(WITNESS_INTERVAL, self.checkpoint_interval or WITNESS_INTERVAL)

    def _make_witnesses(self) -> None:
        """The ledger's key before the election (``data_dir/ledger-signing.key``, the file ``tvote serve``
        reads: what an operator copies to a second machine) and 3 witness directories pinned to it."""
        from ledger.record import LogSigner
        from voting.testing import DEMO_WITNESSES, DemoWitnesses

        data = self.tmp / "data"
        data.mkdir(mode=0o700)
        key = data / "ledger-signing.key"
        signer = LogSigner.generate(f"tvote/{ELECTION_ID}")
        key.write_text(signer.skey + "\n", encoding="ascii")
        key.chmod(0o600)
        self._demo_witnesses, self._witness_keys = DemoWitnesses.create(
            self.tmp / "witnesses", signer.public.vkey, DEMO_WITNESSES
        )

    def start_witnesses(self) -> None:
        """Each witness runs ``tvote witness run`` against the server, a round every
        :attr:`witness_interval` (in production each on a machine of its own; here they share the 2 cores
        at the lowest priority, ``nice -n 19``, and their CPU is counted apart from the server's)."""
        from _serve_util import BIN

        for d in self._demo_witnesses.directories.values():
            self.witness_procs.append(
                subprocess.Popen(
                    ["nice", "-n", "19", str(BIN / "tvote"), "witness", "run", "--dir", str(d),
                     "--server", self.base + API, "--interval", str(self.witness_interval)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip

    def stop_witnesses(self) -> None:
        for p in self.witness_procs:
            p.terminate()
            p.wait(timeout=30)
        self.witness_procs.clear()

    def cosign_latest(self, size: int) -> None:
        """After the windows: stop the witnesses' loops, wait for the scheduled checkpoint of the whole
        ledger (``size`` entries) and have the witnesses cosign it, so that every receipt verifies against a
        witnessed checkpoint (a receipt's own checkpoint may have been superseded before a round)."""
        self.stop_witnesses()
        deadline = time.monotonic() + (self.checkpoint_interval or 10) * 3 + 60
        with httpx.Client(base_url=self.base, timeout=60) as http:
            while _checkpoint_size(http) < size:
                if time.monotonic() > deadline:
                    raise SystemExit(f"no checkpoint of the {size} entries was issued")
                time.sleep(0.2)
        self._demo_witnesses.cosign(self.base)

    def witness_cpu(self) -> float:
        return sum(tree_cpu(p.pid) for p in self.witness_procs)

    def start(self) -> None:
        from _serve_util import (
            Cli,
            free_port,
            jpki_files,
            server_env,
            stop_server,
            wait_until_serving,
            write_config,
        )

        self.tmp.mkdir(parents=True)
        if self.witnesses:
            self._make_witnesses()
        anchors, crls = jpki_files(self.tmp, self.ca, self.now)
        self.anchors, self.crls = anchors, crls
        every = {}
        if self.checkpoint_interval is not None:
            every["checkpoint_interval"] = str(self.checkpoint_interval)
        config = write_config(self.tmp / "tvote.toml", anchors, crls, rate_limit=1_000_000_000, **every)
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = {
            "TVOTE_ADMIN_TOKEN": self.admin_token,
            "TVOTE_PUBLIC_URL": self.base,
            # the benchmark's client is one address standing for many voters: the per-address limit (1,200
            # requests a minute by default) would refuse its challenge fetches at the full size
            "TVOTE_RATE_LIMIT_PER_ADDRESS": "1000000000",
            "PYTHONWARNINGS": "ignore",
        }
        if self.database_url is not None:
            env["TVOTE_DATABASE_URL"] = self.database_url
        self._log = open(self.tmp / "server.log", "w")
        argv = ["serve", "--port", str(port), "--data-dir", str(self.tmp / "data"), "--config", str(config)]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        self.proc = Cli(server_env(**env)).start(*argv, output=self._log)
        try:
            wait_until_serving(self.proc, self.base)
        except BaseException:
            stop_server(self.proc)
            raise

    def stop(self) -> None:
        from _serve_util import stop_server

        self.stop_witnesses()
        if self.proc is not None:
            stop_server(self.proc)
            self.proc = None
            self._log.close()

    def open_election(self) -> None:
        from _serve_util import wait_for_phase

        from voting.testing import roll_csv, run_key_ceremony, tsukuba_manifest

        self.manifest = production_like(
            tsukuba_manifest(
                self.now, election_id=ELECTION_ID, trustees=self.trustees, threshold=self.trustees
            ),
            self._witness_keys,
            self._demo_witnesses.quorum if self.witnesses else 0,
        )
        with httpx.Client(base_url=self.base, timeout=120) as http:
            tok = self.admin_token
            created = _admin(http, tok, "POST", "/election", json=self.manifest).json()
            csv = {"Content-Type": "text/csv"}
            _admin(http, tok, "PUT", "/roll", content=roll_csv(self.residents), headers=csv)
            _admin(http, tok, "POST", "/roll/publish")
            run_key_ceremony(http, {int(i): c for i, c in created["invitations"].items()}, admin_token=tok)
            wait_for_phase(self.base, "voting")  # the server opens voting by itself (the period has begun)
            self.log_key = http.get(API + "/ledger/witnesses").json()["log_key"]
        if self.witnesses:
            self.start_witnesses()


def production_like(
    manifest: dict[str, Any], witness_keys: Sequence[Mapping[str, str]], quorum: int = 0
) -> dict[str, Any]:
    """``manifest`` with what production requires: the observers' oversight key (each cast's evidence is
    sealed to it) and, when ``witness_keys`` are given, the witnesses with their ``quorum`` (production: at
    least 2 of 3; each checkpoint a receipt names carries their BLS cosignatures)."""
    from nacl.public import PrivateKey

    out = {**manifest, "oversight": {"x25519_public_key": bytes(PrivateKey.generate().public_key).hex()}}
    if witness_keys:
        out["witnesses"] = {"quorum": quorum, "keys": list(witness_keys)}
    return out


def _admin(
    http: httpx.Client,
    token: str,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    **kw: Any,
) -> httpx.Response:
    """``/api/v1/admin{path}`` with the admin token; an error answer stops the benchmark."""
    auth = {"Authorization": f"Bearer {token}", **(headers or {})}
    r = http.request(method, API + "/admin" + path, headers=auth, **kw)
    if r.status_code >= 400:
        raise RuntimeError(f"admin {method} {path}: HTTP {r.status_code}: {r.text[:500]}")
    return r


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        server.open_election()
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------------- a run


@dataclass
class Prepared:
    voter: int
    ballot_hash: bytes
    ballot: dict[str, Any]
    certificate: bytes
    signature: bytes
    challenge: bytes
    body: bytes


@dataclass
class RunResult:
    db: str
    processes: int
    clients: int
    sent: int
    accepted: int
    rejected: Counter[str]
    wall: float
    latencies: list[float]
    server_cpu: float
    db_cpu: float
    client_cpu: float
    receipts: list[Any]
    prepare_s: float
    body_bytes: float = 0.0
    witness_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.accepted / self.wall

    @property
    def cores_busy(self) -> float:
        """Cores the whole run kept busy in its window: server, database, client threads and witnesses."""
        return (self.server_cpu + self.db_cpu + self.client_cpu + self.witness_cpu) / self.wall


def fetch_challenges(base: str, n: int) -> list[bytes]:
    def some(k: int) -> list[bytes]:
        with httpx.Client(base_url=base, timeout=60) as http:
            out = []
            for _ in range(k):
                r = http.post(API + "/voter/challenge")
                r.raise_for_status()
                out.append(bytes.fromhex(r.json()["challenge"]))
            return out

    parts = [n // 4 + (1 if i < n % 4 else 0) for i in range(4)]
    with cf.ThreadPoolExecutor(4) as pool:
        return [c for part in pool.map(some, parts) for c in part]


def prepare(
    server: Server, base_hash: bytes, encrypted: list[tuple[dict[str, Any], bytes]], voters: list[int]
) -> list[Prepared]:
    challenges = fetch_challenges(server.base, len(encrypted))
    out = []
    for (ballot, bh), v, ch in zip(encrypted, voters, challenges, strict=True):
        card = server.residents[v].card
        sub = card.sign_ballot(base_hash, bh, ch)
        body = {
            "ballot": ballot,
            "auth": {
                "method": "jpki",
                "certificate": sub.certificate_der.hex(),
                "intermediates": [],
                "signature": sub.signature.hex(),
                "challenge": ch.hex(),
            },
        }
        out.append(Prepared(v, bh, ballot, sub.certificate_der, sub.signature, ch, json.dumps(body).encode()))
    return out


def submit(server: Server, db_root: int | None, items: list[Prepared], clients: int, db: str) -> RunResult:
    """Send ``items`` from ``clients`` threads; the CPU of the server's whole process tree (its workers)."""
    from voting.clients.voter import Receipt

    results: list[tuple[int, bytes, float] | None] = [None] * len(items)
    nxt = iter(range(len(items)))
    lock = threading.Lock()
    headers = {"Content-Type": "application/json"}
    # the load generator: the standard library's HTTP/1.1 client, one keep-alive connection per thread (a
    # client as light as can be: it shares the 2 cores with the server; httpx cost about 3x its CPU)
    target = urlsplit(server.base)
    host = target.hostname or "127.0.0.1"
    conns = [http.client.HTTPConnection(host, target.port, timeout=300) for _ in range(clients)]
    for c in conns:  # open the connections before the window
        c.request("GET", "/healthz")
        answer = c.getresponse()
        answer.read()
        if answer.status != 200:
            raise SystemExit(f"/healthz answered {answer.status}")

    def work(conn: http.client.HTTPConnection) -> None:
        while True:
            with lock:
                i = next(nxt, None)
            if i is None:
                return
            t = time.perf_counter()
            try:
                conn.request("POST", API + "/voter/ballots", body=items[i].body, headers=headers)
                answer = conn.getresponse()
                results[i] = (answer.status, answer.read(), time.perf_counter() - t)
            except (OSError, http.client.HTTPException) as e:  # counted as refused, never retried
                results[i] = (0, json.dumps({"error": {"code": type(e).__name__}}).encode(), 0.0)
                conn.close()

    threads = [threading.Thread(target=work, args=(c,)) for c in conns]
    s0, d0, c0, w0 = tree_cpu(server.proc.pid), tree_cpu(db_root), self_cpu(), server.witness_cpu()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    s1, d1, c1, w1 = tree_cpu(server.proc.pid), tree_cpu(db_root), self_cpu(), server.witness_cpu()
    for c in conns:
        c.close()

    rejected: Counter[str] = Counter()
    receipts, lat = [], []
    for item, res in zip(items, results, strict=True):
        assert res is not None
        status, content, seconds = res
        if status != 200:
            try:
                code = json.loads(content)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "?"
            rejected[f"{status} {code}"] += 1
            continue
        r = Receipt.from_dict(json.loads(content))
        if r.kind != "cast" or r.ballot_hash != item.ballot_hash.hex():
            raise SystemExit(f"receipt for another ballot: {r}")
        receipts.append(r)
        lat.append(seconds)
    return RunResult(
        db,
        server.workers,
        clients,
        len(items),
        len(receipts),
        rejected,
        wall,
        lat,
        s1 - s0,
        d1 - d0,
        c1 - c0,
        receipts,
        0.0,
        witness_cpu=w1 - w0,
    )


# -------------------------------------------------------------------------------------------- ledger check


def _checkpoint_size(http: httpx.Client) -> int:
    """The size of the newest checkpoint the server serves; 0 while it has issued none (a run shorter than
    the checkpoint interval: the server answers 404 until it has issued one)."""
    answer = http.get(API + "/ledger/checkpoint")
    if answer.status_code != 200:
        return 0
    return int(answer.json().get("size", 0))


def check_ledger(server: Server, receipts: list[Any], sample: int = 5) -> tuple[int, int]:
    """Every acknowledged ballot is on the ledger at its receipt's leaf; returns (cast entries, size)."""
    from voting.clients.voter import VoterClient

    cast: dict[int, str] = {}
    size = 0
    with httpx.Client(base_url=server.base, timeout=120) as http:
        while True:
            page = http.get(API + "/ledger/entries", params={"start": size, "stop": size + 1000})
            page.raise_for_status()
            entries = page.json()["entries"]
            if not entries:
                break
            for e in entries:
                entry = json.loads(e["entry"])
                if entry["type"] == "ballot.cast":
                    cast[int(e["index"])] = entry["payload"]["ballot_hash"]
            size += len(entries)
    if server.witnesses:
        server.cosign_latest(size)
    missing = [r for r in receipts if cast.get(r.leaf_index) != r.ballot_hash]
    if missing:
        raise SystemExit(f"LOST BALLOTS: {len(missing)} acknowledged ballots are not on the ledger")
    if len(cast) != len(receipts):
        raise SystemExit(
            f"the ledger holds {len(cast)} ballot.cast entries, {len(receipts)} were acknowledged"
        )
    with VoterClient(server.base, log_key=server.log_key) as v:
        for r in random.Random(1).sample(receipts, min(sample, len(receipts))):
            v.verify_receipt(r)
    return len(cast), size


# ---------------------------------------------------------------------------------------------- CPU split


def phase_split(
    tmp: Path, residents: Sequence[Any], ca: Any, now: dt.datetime, n: int, workers: int
) -> tuple[dict[str, float], int]:
    """CPU ms per ballot of each step of a cast, measured in-process: the same service code
    (``IntakeService.cast_jpki`` of an app built like ``tvote serve``'s, SQLite), one thread, no HTTP.
    Each step is timed with ``time.process_time`` (all threads, so the ledger's sequencer is included)
    by wrapping the service's own methods on the instance; nothing in ``voting/`` is changed.
    Returns (ms per ballot by step, manifest base-hash computations per cast)."""
    from voting.testing import start_election, tsukuba_manifest

    man = production_like(
        tsukuba_manifest(now, election_id="tsukuba-bench-inproc", trustees=2, threshold=2), ()
    )
    acc: defaultdict[str, float] = defaultdict(float)  # CPU seconds by step

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                acc[name] += time.process_time() - t

        return wrapper

    with start_election(tmp, residents, ca, man, real_http=False) as e:
        intake, svc = e.intake, e.service
        ctx = intake.context()
        rnd = random.Random("bench-intake/in-process")
        encrypted = encrypt_all(ctx, [_random_choices(rnd, man) for _ in range(n)], workers)
        items = []
        for i, (ballot, bh) in enumerate(encrypted):
            ch = intake.issue_challenge().challenge
            items.append((ballot, residents[i % len(residents)].card.sign_ballot(ctx.base_hash, bh, ch), ch))
        intake._parse_ballot = timed("parse", intake._parse_ballot)
        intake._auth_jpki = timed("auth", intake._auth_jpki)
        intake._commit_cast = timed("commit", intake._commit_cast)
        intake._receipt = timed("receipt", intake._receipt)
        svc.append_entry = timed("append", svc.append_entry)
        calls: Counter[str] = Counter()
        Manifest = type(svc.manifest)  # the service's manifest class (voting's own, private)
        prop = Manifest.__dict__["base_hash"]  # a cached_property (computed once per manifest object)
        inner = prop.func if isinstance(prop, cached_property) else prop.fget

        def counting(m: Any) -> bytes:  # counts computations, not cached reads
            calls["base_hash"] += 1
            return inner(m)  # type: ignore[no-any-return]

        cached = isinstance(prop, cached_property)
        replacement: Any = cached_property(counting) if cached else property(counting)
        if cached:
            replacement.__set_name__(Manifest, "base_hash")
        Manifest.base_hash = replacement
        try:
            t = time.process_time()
            for ballot, sub, ch in items:
                intake.cast_jpki(json.loads(json.dumps(ballot)), sub, ch)
            total = time.process_time() - t
        finally:
            Manifest.base_hash = prop
        per_cast = round(calls["base_hash"] / n)
        t = time.process_time()
        for _ in range(50):
            svc.manifest.base_hash  # noqa: B018 - what each access costs
        one = (time.process_time() - t) / 50
    ms = {k: v / n * 1e3 for k, v in acc.items()}
    out = {
        "total": total / n * 1e3,
        "parse": ms["parse"],
        "auth": ms["auth"],
        "commit": ms["commit"] - ms["append"] - ms["receipt"],
        "append": ms["append"],
        "receipt": ms["receipt"],
        "base_hash": one * per_cast * 1e3,
    }
    out["other"] = out["total"] - ms["parse"] - ms["auth"] - ms["commit"]
    return out, per_cast


# --------------------------------------------------------------------------------------------------- main


def _ms(x: float) -> str:
    return f"{x * 1e3:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ballots", type=int, default=600, help="ballots per concurrency level")
    ap.add_argument(
        "--voters", type=int, default=300, help="distinct voters (ballot i is voter i mod voters)"
    )
    ap.add_argument("--clients", default="1,4,16", help="concurrency levels (comma-separated)")
    ap.add_argument(
        "--db",
        default="sqlite,postgres,postgres:2",
        help="databases: sqlite, postgres, postgres:N (N server processes: tvote serve --workers N)",
    )
    ap.add_argument("--split", type=int, default=100, help="in-process casts for the CPU split (0: skip)")
    ap.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="client-side encryption processes"
    )
    ap.add_argument(
        "--checkpoint-interval",
        type=int,
        help="the server's checkpoint_interval in seconds (default: the server's, 10 s); receipts are "
        "pending until the next scheduled checkpoint, and the ledger check after the window waits for "
        "them: the tiny run uses 1 s",
    )
    args = ap.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    dbs = [d.strip() for d in args.db.split(",")]
    load0 = os.getloadavg()
    t_start = time.monotonic()

    from voting.clients.voter import VoterClient
    from voting.testing import JpkiTestCa, RsaKeyPool, make_residents

    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(args.voters, ca, now, pool=RsaKeyPool(16))
    tmp = Path(tempfile.mkdtemp(prefix="tvote-bench-intake-"))
    runs: list[RunResult] = []
    checks: dict[str, tuple[int, int]] = {}
    skipped: list[str] = []
    for spec in dbs:
        db, _, procs = spec.partition(":")
        workers = int(procs or "1")
        if workers > 1 and db != "postgres":
            raise SystemExit(f"{spec}: several server processes need PostgreSQL")
        pg = None
        url = None
        if db == "postgres":
            from _pg import find_bindir

            bindir = find_bindir()
            if bindir is None:
                skipped.append("PostgreSQL: skipped (no server binaries)")
                continue
            pg = durable_postgres(bindir).start()
            url = "postgresql://" + pg.create_database().split("://", 1)[1]
        elif db != "sqlite":
            raise SystemExit(f"unknown database {db!r}")
        try:
            print(f"[{spec}] starting tvote serve and opening the election …", file=sys.stderr, flush=True)
            server = Server(
                tmp / spec.replace(":", "-"), residents, ca, now, url, workers,
                checkpoint_interval=args.checkpoint_interval,
            )  # fmt: skip
            with running(server):
                with VoterClient(server.base, log_key=server.log_key) as vc:
                    info = vc.election()
                rnd = random.Random(f"bench-intake/{db}")
                total = args.ballots * len(levels)
                print(f"[{db}] encrypting {total} ballots (client side) …", file=sys.stderr, flush=True)
                choices = [_random_choices(rnd, server.manifest) for _ in range(total)]
                encrypted = encrypt_all(info.context, choices, args.workers)
                acked: list[Any] = []
                for k, c in enumerate(levels):
                    chunk = encrypted[k * args.ballots : (k + 1) * args.ballots]
                    voters = [i % args.voters for i in range(len(chunk))]
                    t = time.perf_counter()
                    items = prepare(server, info.base_hash, chunk, voters)
                    prep = time.perf_counter() - t
                    print(f"[{db}] C={c}: submitting {len(items)} ballots …", file=sys.stderr, flush=True)
                    res = submit(server, pg.proc.pid if pg is not None and pg.proc else None, items, c, db)
                    res.prepare_s = prep
                    res.body_bytes = statistics.fmean(len(it.body) for it in items)
                    print(
                        f"[{db}] C={c}: {res.accepted} accepted in {res.wall:.1f}s ({res.rate:.1f}/s), "
                        f"rejected {dict(res.rejected)}",
                        file=sys.stderr,
                        flush=True,
                    )
                    runs.append(res)
                    acked += res.receipts
                checks[spec] = check_ledger(server, acked)
        finally:
            if pg is not None:
                pg.stop()
    split: dict[str, float] = {}
    if args.split:
        print(
            f"[in-process] {args.split} casts through IntakeService.cast_jpki …", file=sys.stderr, flush=True
        )
        split, base_hash_calls = phase_split(tmp / "in-process", residents, ca, now, args.split, args.workers)
    load1 = os.getloadavg()
    elapsed = time.monotonic() - t_start

    cmd = " ".join(["bench/bench_intake.py", *sys.argv[1:]])
    print("### Ballot intake (`tvote serve`, `POST /api/v1/voter/ballots`, JPKI)\n")
    print(f"- command: `.venv/bin/python {cmd}`; Python {platform.python_version()}, {os.cpu_count()} cores")
    print(
        f"- load average (1 min) when the run started: {load0[0]:.2f}, when it ended: {load1[0]:.2f} "
        f"(2 cores: server, PostgreSQL and the benchmark's client threads share them); "
        f"whole run {elapsed:.0f}s"
    )
    print(
        f"- demo ballot (mayor 1 of 4, referendum yes/no, subsidy up to 3 of 8); {args.ballots} ballots per "
        f"row from {args.voters} voters (every voter casts {args.ballots // args.voters}× per row, "
        "later rows "
        "are all re-votes); SQLite: `synchronous=FULL` (WAL); PostgreSQL: the tests' server with `fsync=on`"
    )
    rounds = min(WITNESS_INTERVAL, args.checkpoint_interval or WITNESS_INTERVAL)
    wcpu = sum(r.witness_cpu for r in runs)
    wn = max(sum(r.accepted for r in runs), 1)
    print(
        "- production's set-up: the observers' oversight key (each cast's evidence sealed to it) and 3 "
        f"witnesses, quorum 2, each running `tvote witness run --interval {rounds}` "
        "at `nice -n 19` (the operator guide's interval; the server verifies each cosignature with py_ecc, "
        "about 0.35 s of CPU each, and every receipt's checkpoint carries them); "
        f"in production each witness is a machine of its own, here they share the 2 cores and used "
        f"{_ms(wcpu / wn)} ms of CPU per ballot in the windows, counted in no column"
    )
    print(
        "- inside the window: the client threads' HTTP send/receive of pre-built bodies and the whole "
        "server-side cast; outside: encryption, challenge fetch, card signature, JSON encoding, "
        "receipt checks\n"
    )
    print(
        "| database | clients | accepted / sent | ballots/s | median ms | p95 ms | server CPU ms/ballot | "
        "server cores busy | PostgreSQL CPU ms/ballot | client CPU ms/ballot | server processes |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        lat = sorted(r.latencies)
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))] if lat else float("nan")
        med = statistics.median(lat) if lat else float("nan")
        n = max(r.accepted, 1)
        dbc = _ms(r.db_cpu / n) if r.db == "postgres" else "–"
        rej = (
            ""
            if not r.rejected
            else " (rejected: " + ", ".join(f"{k} ×{v}" for k, v in r.rejected.items()) + ")"
        )
        print(
            f"| {'PostgreSQL' if r.db == 'postgres' else 'SQLite'} | {r.clients} | "
            f"{r.accepted} / {r.sent}{rej} | {r.rate:.1f} | {_ms(med)} | {_ms(p95)} | "
            f"{_ms(r.server_cpu / n)} | {r.server_cpu / r.wall:.2f} | {dbc} | {_ms(r.client_cpu / n)} | "
            f"{r.processes} |"
        )
    print()
    for s in skipped:
        print(f"- {s}")
    if split:
        tot = split["total"]
        sq = [r for r in runs if r.db == "sqlite" and r.clients == 1]
        pg1 = {r.clients: r for r in runs if r.db == "postgres" and r.processes == 1}
        pg2 = {r.clients: r for r in runs if r.db == "postgres" and r.processes == 2}
        print(
            f"Server CPU per cast, split: {args.split} casts through `IntakeService.cast_jpki` "
            "in this process "
            "(the server's code and settings, SQLite, one thread, no HTTP), each step timed with "
            "`time.process_time` by wrapping the service's methods:\n"
        )
        print("| step | CPU ms/ballot | share |\n|---|---:|---:|")
        for label, key in (
            ("decode + hash + verify the ballot's proofs (`_parse_ballot`)", "parse"),
            ("JPKI: challenge check, chain + CRL + RSA, roll lookup (`_auth_jpki`)", "auth"),
            (
                "pending-evidence commit + private-state commit (`_commit_cast` less append, receipt)",
                "commit",
            ),
            ("ledger append (canonical entry, hash, group commit)", "append"),
            ("receipt: checkpoint + inclusion proof (`_receipt`)", "receipt"),
            ("phase check, duplicate check, the rest of `cast_jpki`", "other"),
        ):
            print(f"| {label} | {split[key]:.1f} | {split[key] / tot:.0%} |")
        print(f"| **whole cast, in-process** | **{tot:.1f}** | 100% |")
        print(
            f"\n- across those steps the manifest's base hash is re-derived {base_hash_calls}× per cast "
            f"(pydantic dump + RFC 8785 each time, uncached): {split['base_hash']:.1f} ms/ballot"
        )
        if sq:
            served = sq[0].server_cpu / max(sq[0].accepted, 1) * 1e3
            extra = served - tot
            what = (
                f"≈ {extra:.1f} ms more than the in-process cast: the HTTP stack (uvicorn, FastAPI, "
                "pydantic), the server's own background work (checkpoints) and the cost of sharing the 2 "
                "cores with the clients (the in-process split runs alone)"
                if extra >= 2.0
                else "the same as the in-process cast within measurement noise: HTTP, JSON and request "
                "validation (uvicorn, FastAPI, pydantic) add little"
            )
            print(
                f"- `tvote serve` on SQLite with 1 client used {served:.1f} ms of CPU per ballot, {what} "
                f"for the {sq[0].body_bytes / 1e3:.0f} kB request body"
            )
        busy = max((r.server_cpu / r.wall for r in runs), default=0.0)
        print(
            f"- at {tot:.1f} ms of CPU per cast one core serves ≈ {1e3 / tot:.0f} ballots/s; `tvote serve` "
            f"kept at most {busy:.2f} cores busy (per process, its Python code runs on one core at a time, "
            "only libsodium and database calls overlap; the 2 cores are shared with the client threads, "
            "PostgreSQL and the load above), so the rates above are bound by server CPU"
        )
        cores = os.cpu_count() or 1
        for c in sorted(set(pg1) & set(pg2)):
            one, two = pg1[c], pg2[c]
            busy1 = one.cores_busy
            print(
                f"- PostgreSQL, {c} client threads: 1 → 2 server processes "
                f"{one.rate:.1f} → {two.rate:.1f} ballots/s (ratio {two.rate / one.rate:.2f}); server CPU "
                f"{_ms(one.server_cpu / max(one.accepted, 1))} → "
                f"{_ms(two.server_cpu / max(two.accepted, 1))} ms/ballot. The 1-process run already kept "
                f"{busy1:.2f} of the {cores} cores busy (server, "
                f"PostgreSQL, clients, witnesses): on these {cores} cores no number of processes can go "
                f"beyond {cores / busy1:.2f}× its rate; the 2 processes kept {two.cores_busy:.2f} busy"
            )
        print()
    for spec, (cast, size) in checks.items():
        name = "SQLite" if spec == "sqlite" else "PostgreSQL"
        if ":" in spec:
            name += f", {spec.partition(':')[2]} server processes"
        print(
            f"- ledger check ({name}): all {cast} acknowledged ballots are `ballot.cast` entries at their "
            f"receipts' leaves (ledger size {size}, no other ballot entry); 5 receipts verified with "
            "`VoterClient.verify_receipt`"
        )
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
