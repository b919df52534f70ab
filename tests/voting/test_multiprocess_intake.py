"""Intake that scales out: several REAL ``tvote serve`` processes on one PostgreSQL database and one ledger.

* Two servers on two ports (same data directory: one ledger key, one commission key) run the whole
  election between them: created through one, the roll published and the key ceremony finished through
  the other (each sees the other's phase changes), then ballots are cast concurrently through both, with
  re-votes of the same voters racing on the two servers and the same ballot submitted to both at once.
  Every acknowledged ballot is in the exported record exactly once, every voter's ``seq`` runs 1..k in
  ledger order, every receipt verifies, and after close, tally, decryption and publication
  ``tvote-verify`` says VALID; the tally counts exactly each voter's last acknowledged ballot.
* ``tvote serve --workers 2`` serves from two worker processes; on SQLite it is refused.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import json
import os
import random
import secrets
import subprocess
import tarfile
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from _serve_util import (
    CLOSE_EARLY_ARGS,
    Cli,
    create_election_by_cli,
    free_port,
    jpki_files,
    key_ceremony_by_cli,
    server_env,
    stop_server,
    wait_for_phase,
    wait_until_serving,
    write_config,
)

from voting.clients.voter import ServerError, VoterClient
from voting.receipt import Receipt
from voting.testing import JpkiTestCa, RsaKeyPool, make_residents, tsukuba_manifest

pytestmark = pytest.mark.slow

UNWITNESSED = ("--unsafe-allow-unwitnessed",)
CHOICES = [
    {"mayor": ["cand-1"], "referendum": ["yes"], "subsidy": ["proj-1", "proj-2"]},
    {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": []},
    {"mayor": ["cand-3"], "referendum": ["yes"], "subsidy": ["proj-3"]},
]
VOTERS = 6


def _dsn(postgres_url: str) -> str:
    assert postgres_url.startswith("postgresql+psycopg://")
    return "postgresql://" + postgres_url.split("://", 1)[1]


@pytest.fixture
def two_servers(tmp_path: Path, postgres_url: str) -> Iterator[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(VOTERS, ca, now, pool=RsaKeyPool(VOTERS))
    anchors, crls = jpki_files(tmp_path, ca, now)
    # checkpoints on a 1 s schedule in both servers: each signs checkpoints of the one shared tree
    config = write_config(tmp_path / "tvote.toml", anchors, crls, rate_limit=100000)
    with config.open("a") as f:
        f.write("checkpoint_interval = 1\n")
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    cli = Cli(
        server_env(
            TVOTE_ADMIN_TOKEN=secrets.token_urlsafe(32),
            TVOTE_PUBLIC_URL=bases[0],
            PW="a long trustee passphrase",
            PYTHONWARNINGS="ignore",
        )
    )
    data = tmp_path / "data"
    procs: list[subprocess.Popen[str]] = []
    logs = []
    try:
        for i, port in enumerate(ports):  # one after the other: the first creates the data directory
            log = open(tmp_path / f"server{i}.log", "w")
            logs.append(log)
            argv = ["serve", "--port", str(port), "--data-dir", str(data), "--config", str(config)]
            p = cli.start(*argv, "--database-url", _dsn(postgres_url), output=log)
            procs.append(p)
            wait_until_serving(p, bases[i])
        yield {"cli": cli, "bases": bases, "now": now, "residents": residents, "data": data, "tmp": tmp_path,
               "dsn": _dsn(postgres_url), "procs": procs}  # fmt: skip
    finally:
        for p in procs:
            stop_server(p)
        for log in logs:
            log.close()


def _duplicate_submission(bases: list[str], log_key: str, card: Any, choice: Any) -> list[Any]:
    """The same ballot body (one challenge, one card signature) posted to both servers at the same moment:
    a list of two answers, each a Receipt or the error code."""
    with VoterClient(bases[0], log_key=log_key) as v:
        p = v.prepare(choice)
        info = v.election()
    ch = bytes.fromhex(httpx.post(bases[0] + "/api/v1/voter/challenge").json()["challenge"])
    sub = card.sign_ballot(info.base_hash, p.ballot_hash, ch)
    body = json.dumps(
        {
            "ballot": p.ballot.to_dict(),
            "auth": sub.auth_body(ch),
        }
    ).encode()
    go = threading.Barrier(2)

    def post(base: str) -> Any:
        with httpx.Client(base_url=base, timeout=120) as http:
            go.wait()
            r = http.post("/api/v1/voter/ballots", content=body, headers={"content-type": "application/json"})
        if r.status_code == 200:
            return Receipt.from_dict(r.json())
        return r.json()["error"]["code"]

    with cf.ThreadPoolExecutor(2) as pool:
        return list(pool.map(post, bases))


def _copied_submission(bases: list[str], log_key: str, cards: list[Any], choice: Any) -> list[Any]:
    """One ballot (same ciphertexts, nonce and hash) cast by two DIFFERENT voters, each with their own card
    and challenge, one through each server at the same moment: the two answers (Receipt or error code)."""
    with VoterClient(bases[0], log_key=log_key) as v:
        p = v.prepare(choice)
        info = v.election()
    bodies = []
    for base, card in zip(bases, cards, strict=True):
        ch = bytes.fromhex(httpx.post(base + "/api/v1/voter/challenge").json()["challenge"])
        sub = card.sign_ballot(info.base_hash, p.ballot_hash, ch)
        auth = sub.auth_body(ch)
        bodies.append(json.dumps({"ballot": p.ballot.to_dict(), "auth": auth}).encode())
    go = threading.Barrier(2)

    def post(item: tuple[str, bytes]) -> Any:
        with httpx.Client(base_url=item[0], timeout=120) as http:
            go.wait()
            r = http.post(
                "/api/v1/voter/ballots", content=item[1], headers={"content-type": "application/json"}
            )
        if r.status_code == 200:
            return Receipt.from_dict(r.json())
        return r.json()["error"]["code"]

    with cf.ThreadPoolExecutor(2) as pool:
        return list(pool.map(post, zip(bases, bodies, strict=True)))


@pytest.mark.postgres
def test_two_servers_share_one_election_and_ledger(two_servers: dict[str, Any]) -> None:
    w = two_servers
    cli: Cli = w["cli"]
    a, b = w["bases"]
    tmp, residents = w["tmp"], w["residents"]

    manifest = tsukuba_manifest(w["now"], election_id="tsukuba-mp", trustees=2, threshold=2, small=True)
    codes = create_election_by_cli(cli, a, tmp, manifest, residents)
    cli.run("admin", "load-roll", "--server", b, "--roll", str(tmp / "roll.csv"))
    cli.run("admin", "publish-roll", "--server", a)
    files = key_ceremony_by_cli(cli, b, tmp, codes)
    assert "qualified trustees [1, 2]" in cli.run("admin", "finalize-keys", "--server", a)
    for base in (a, b):
        wait_for_phase(base, "voting")  # either keeper may open it; both see it
    log_key = httpx.get(a + "/api/v1/ledger/witnesses").json()["log_key"]
    assert httpx.get(b + "/api/v1/ledger/witnesses").json()["log_key"] == log_key  # one log key

    # every voter casts 3 ballots, alternating servers, all voters at once (re-votes of one voter race
    # on the two servers); plus the same ballot submitted to both servers at once, twice
    rnd = random.Random(7)
    tasks = [
        (v, k, (a, b)[(v + k) % 2], rnd.randrange(len(CHOICES))) for v in range(VOTERS) for k in range(3)
    ]
    rnd.shuffle(tasks)

    def cast(task: tuple[int, int, str, int]) -> tuple[int, int, Receipt]:
        v, _, base, c = task
        with VoterClient(base, log_key=log_key) as client:
            return v, c, client.cast_jpki(residents[v].card, CHOICES[c])

    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        acked = list(pool.map(cast, tasks))
    dupes = [_duplicate_submission([a, b], log_key, residents[v].card, CHOICES[0]) for v in (0, 1)]
    for answers in dupes:
        got = [x for x in answers if isinstance(x, Receipt)]
        assert len(got) == 1, answers  # exactly one acknowledged, the other refused
        (refused,) = [x for x in answers if not isinstance(x, Receipt)]
        assert refused in ("ballot.duplicate", "challenge.used"), answers
    for v, answers in zip((0, 1), dupes, strict=True):
        acked += [(v, 0, x) for x in answers if isinstance(x, Receipt)]
    # one voter's re-votes all at once, half through each server
    burst = [(2, k, (a, b)[k % 2], k % len(CHOICES)) for k in range(6)]
    with cf.ThreadPoolExecutor(max_workers=6) as pool:
        acked += list(pool.map(cast, burst))
    # two different voters cast one copied ballot through the two servers at once: the database takes
    # its values once (casts of different voters are no longer serialised by one election lock)
    for pair in ((3, 4), (5, 1)):
        answers = _copied_submission([a, b], log_key, [residents[v].card for v in pair], CHOICES[1])
        got = [(v, x) for v, x in zip(pair, answers, strict=True) if isinstance(x, Receipt)]
        assert len(got) == 1, answers
        assert next(x for x in answers if not isinstance(x, Receipt)) in (
            "ballot.duplicate",
            "ballot.duplicate_nonce",
            "ballot.duplicate_ciphertext",
        ), answers
        acked += [(v, 1, x) for v, x in got]

    # every voter's seq runs 1..k, in ledger order
    by_voter: dict[int, list[tuple[int, Receipt]]] = defaultdict(list)
    for v, c, r in acked:
        by_voter[v].append((c, r))
    for v, rs in by_voter.items():
        rs.sort(key=lambda x: x[1].leaf_index)
        assert [r.seq for _, r in rs] == list(range(1, len(rs) + 1)), (v, [r.seq for _, r in rs])
    # receipts complete and verify, through either server
    with VoterClient(b, log_key=log_key) as vb, VoterClient(a, log_key=log_key) as va:
        for i, (_, _, r) in enumerate(acked):
            client = (va, vb)[i % 2]
            client.verify_receipt(client.complete_receipt(r, timeout=30))

    # every voter casts once more, through both servers, while the commission closes voting on one: every
    # cast is wholly before the close or refused
    late = [(v, 9, (a, b)[v % 2], v % len(CHOICES)) for v in range(VOTERS)]

    def late_cast(task: tuple[int, int, str, int]) -> tuple[int, int, Receipt] | str:
        try:
            return cast(task)
        except ServerError as e:
            return e.code

    with cf.ThreadPoolExecutor(max_workers=VOTERS + 1) as pool:
        racing = [pool.submit(late_cast, task) for task in late]
        cli.run("admin", "close", "--server", b, *CLOSE_EARLY_ARGS)
        late_answers = [f.result() for f in racing]
    for x in late_answers:
        if isinstance(x, str):
            assert x in ("voting.closed", "voting.not_open"), late_answers
        else:
            acked.append(x)
            by_voter[x[0]].append((x[1], x[2]))
    for rs in by_voter.values():
        rs.sort(key=lambda x: x[1].leaf_index)
        assert [r.seq for _, r in rs] == list(range(1, len(rs) + 1))
    wait_for_phase(a, "closed")

    counts = {c["id"]: {s["id"]: 0 for s in c["selections"]} for c in manifest["contests"]}
    for rs in by_voter.values():
        for contest, sels in CHOICES[rs[-1][0]].items():  # each voter's last acknowledged ballot counts
            for s in sels:
                counts[contest][s] += 1
    with VoterClient(a, log_key=log_key) as v, pytest.raises(ServerError) as err2:
        v.cast_jpki(residents[0].card, CHOICES[0])  # the other server saw the close
    assert err2.value.code in ("voting.closed", "voting.not_open")
    tally = json.loads(cli.run("admin", "tally", "--server", a))
    assert (tally["cast"], tally["counted"]) == (len(acked), VOTERS)
    common = ["--server", b, "--passphrase-env", "PW"]
    cli.all([["trustee", "decrypt", *common, "--secret-file", str(f)] for f in files])
    cli.run("admin", "publish", "--server", b)
    assert httpx.get(a + "/api/v1/election/result").json()["results"] == counts
    archive = tmp / "record.tar.gz"
    cli.run("admin", "export", "--server", a, "--out", str(archive))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp / "export", filter="data")
    (record,) = (tmp / "export").iterdir()
    root = w["data"] / "commission-chain.pem"
    verify = [str(record), "--trust-root", str(root), "--log-key", log_key, *UNWITNESSED]
    out = cli.run(*verify, prog="tvote-verify")
    assert "VALID" in out

    # every acknowledged ballot is in the record exactly once, at its receipt's index
    lines = (record / "entries.jsonl").read_bytes().splitlines()
    entries = [json.loads(x) for x in lines]
    casts = [(i, e) for i, e in enumerate(entries) if e["type"] == "ballot.cast"]
    assert len(casts) == len(acked)
    (closed,) = [i for i, e in enumerate(entries) if e["type"] == "voting.closed"]
    assert all(i < closed for i, _ in casts)  # no cast after the close
    for _, _, r in acked:
        e = entries[r.leaf_index]
        assert e["type"] == "ballot.cast" and e["payload"]["ballot_hash"] == r.ballot_hash
        assert sum(1 for _, x in casts if x["payload"]["ballot_hash"] == r.ballot_hash) == 1
    with psycopg.connect(w["dsn"]) as conn:
        rows = conn.execute("SELECT idx FROM ledger_entry ORDER BY idx").fetchall()
        (cps,) = conn.execute("SELECT count(*) FROM ledger_checkpoint").fetchone()  # type: ignore[misc]
    assert [r[0] for r in rows] == list(range(len(lines))) and cps >= 2


# ------------------------------------------------------------------------------------------ --workers


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def _socket_owners(pids: list[int], port: int) -> dict[int, int]:
    """client port → the pid whose open files hold the server side of that TCP connection (Linux /proc)."""
    by_inode: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    by_inode[target[8:-1]] = pid
        except OSError:
            continue
    owners = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        local, remote, inode = f[1], f[2], f[9]
        if int(local.split(":")[1], 16) == port and inode in by_inode:
            owners[int(remote.split(":")[1], 16)] = by_inode[inode]
    return owners


@pytest.mark.postgres
def test_workers_serve_from_several_processes(tmp_path: Path, postgres_url: str) -> None:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    anchors, crls = jpki_files(tmp_path, ca, now)
    config = write_config(tmp_path / "tvote.toml", anchors, crls, rate_limit=100000)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cli = Cli(server_env(TVOTE_ADMIN_TOKEN=secrets.token_urlsafe(32), PYTHONWARNINGS="ignore"))
    argv = ["serve", "--port", str(port), "--data-dir", str(tmp_path / "d"), "--config", str(config)]
    with open(tmp_path / "server.log", "w") as log:
        proc = cli.start(*argv, "--workers", "2", "--database-url", _dsn(postgres_url), output=log)
        try:
            wait_until_serving(proc, base)
            children = _children(proc.pid)
            workers = [p for p in children if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
            assert len(workers) == 2
            # many connections held open at once: the kernel hands them to both workers' accept loops
            clients = [httpx.Client(base_url=base, timeout=30) for _ in range(24)]
            try:
                owners: dict[int, int] = {}
                for _ in range(5):
                    for c in clients:
                        assert c.get("/api/v1/election").status_code == 404  # no election yet: election.none
                    owners = _socket_owners(workers, port)
                    if len(set(owners.values())) == 2:
                        break
                assert set(owners.values()) == set(workers), owners
            finally:
                for c in clients:
                    c.close()
        finally:
            stop_server(proc)
    assert not [p for p in workers if Path(f"/proc/{p}").exists()]  # the workers went with the parent


def test_workers_on_sqlite_are_refused(tmp_path: Path) -> None:
    cli = Cli(server_env(TVOTE_ADMIN_TOKEN=secrets.token_urlsafe(32)))
    out = subprocess.run(
        [*cli_argv("serve"), "--dev", "--data-dir", str(tmp_path / "d"), "--workers", "2"],
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out
    assert "config.workers" in out.stderr and "PostgreSQL" in out.stderr
    assert not (tmp_path / "d").exists() or not list((tmp_path / "d").glob("*.sqlite3"))


def cli_argv(*args: str) -> list[str]:
    from _serve_util import BIN

    return [str(BIN / "tvote"), *args]
