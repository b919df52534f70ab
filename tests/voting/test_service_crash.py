"""Nothing acknowledged is ever lost: the REAL ``tvote serve`` is killed with SIGKILL while voters cast.

A configured server (test JPKI CA + CRL, SQLite in a temporary data directory) runs as a subprocess. The
election is set up over HTTP (in-process key ceremony, one enrolled polling-place kiosk opened), then several
concurrent voter clients (:class:`voting.clients.voter.VoterClient`, JPKI test cards, re-votes, one kiosk
ballot through :class:`voting.clients.kiosk.KioskApi`) cast while the test
sends SIGKILL to the server at random moments and restarts it each time (start-up reconciliation runs before
it serves). Every receipt a client got back is recorded. At the end:

* every acknowledged ballot is on the ledger and its receipt verifies (inclusion, entry, consistency with the
  newest checkpoint); per voter the ledger's ``seq`` values are exactly 1, 2, …, k (no counter was lost);
* a full reconciliation finds nothing to repair and no difference between private state and ledger;
* voting closes, the tally's counts equal the counting rule applied to the ledger, 2 of 3 trustees decrypt,
  the result equals the choices of the counted ballots, and ``tvote-verify`` accepts the exported record.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import random
import re
import secrets
import signal
import tarfile
import threading
import time
from collections import Counter
from typing import Any

import httpx
from _serve_util import (
    Cli,
    enrol_kiosk,
    free_port,
    jpki_files,
    kiosk_cast,
    server_env,
    start_server,
    stop_server,
    wait_for_phase,
    write_config,
)
from _service_util import CLOSE_EARLY

from voting.clients.kiosk import KioskApiError
from voting.clients.voter import Receipt, ServerError, VoterClient
from voting.service import count_ballots
from voting.testing import (
    JpkiTestCa,
    RsaKeyPool,
    make_residents,
    roll_csv,
    run_decryption,
    run_key_ceremony,
    tsukuba_manifest,
)

#: the test manifests name no witnesses (quorum 0): tvote-verify accepts that only when told
UNWITNESSED = ("--unsafe-allow-unwitnessed",)

KILLS = 6
VOTERS = 4  # concurrent clients
PER_CLIENT = 2  # residents per client (each re-votes several times)
CHOICES = (
    {"mayor": ["cand-1"], "referendum": ["yes"], "subsidy": ["proj-1", "proj-2"]},
    {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": []},
    {"mayor": [], "referendum": ["yes"], "subsidy": ["proj-3"]},
)


class Server:
    """The ``tvote serve`` subprocess, killed and restarted on the same port and data directory."""

    def __init__(self, cli: Cli, port: int, data: Any, config: Any, log: Any) -> None:
        self.cli, self.port, self.data, self.config, self.log = cli, port, data, config, log
        self.proc = start_server(cli, port, data, config, output=log)

    def kill_and_restart(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = start_server(self.cli, self.port, self.data, self.config, output=self.log)

    def stop(self) -> None:
        stop_server(self.proc)


def _admin(http: httpx.Client, token: str, method: str, path: str, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    r = http.request(method, "/api/v1/admin" + path, headers=headers, **kw)
    assert r.status_code < 300, r.text
    return r


def test_sigkill_during_voting_loses_no_acknowledged_ballot(tmp_path):
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    n = VOTERS * PER_CLIENT
    residents = make_residents(n, ca, now, pool=RsaKeyPool(n))
    anchors, crls = jpki_files(tmp_path, ca, now)
    config = write_config(tmp_path / "tvote.toml", anchors, crls, rate_limit=1000000)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    admin_token = secrets.token_urlsafe(32)
    cli = Cli(server_env(TVOTE_ADMIN_TOKEN=admin_token, TVOTE_PUBLIC_URL=base, PYTHONWARNINGS="ignore"))
    data = tmp_path / "data"
    log = open(tmp_path / "server.log", "w", encoding="utf-8")
    server = Server(cli, port, data, config, log)
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            _run(http, server, cli, base, admin_token, residents, tmp_path)
    finally:
        server.stop()
        log.close()
    found = re.findall(
        r"reconciled with the ledger: (\d+) entries recorded .*?, (\d+) orphan rows removed",
        (tmp_path / "server.log").read_text(encoding="utf-8"),
    )
    ahead, orphans = sum(int(a) for a, _ in found), sum(int(b) for _, b in found)
    print(
        f"\n{KILLS} SIGKILLs; start-up reconciliation recorded {ahead} ledger entries ahead of the private "
        f"state and removed {orphans} orphan pending rows"
    )


def _run(
    http: httpx.Client,
    server: Server,
    cli: Cli,
    base: str,
    admin_token: str,
    residents: list[Any],
    tmp_path: Any,
) -> None:
    # -- setup over HTTP: manifest, roll, in-process key ceremony (3 trustees, quorum 2); voting opens
    manifest = tsukuba_manifest(
        dt.datetime.now(dt.UTC), election_id="tsukuba-crash", trustees=3, threshold=2, small=True
    )
    created = _admin(http, admin_token, "POST", "/election", json=manifest).json()
    csv = {"Content-Type": "text/csv"}
    _admin(http, admin_token, "PUT", "/roll", content=roll_csv(residents), headers=csv)
    _admin(http, admin_token, "POST", "/roll/publish")
    codes = {int(i): c for i, c in created["invitations"].items()}
    trustees = run_key_ceremony(http, codes, admin_token=admin_token)
    wait_for_phase(base, "voting")  # the period has begun: the server's period keeper opens voting
    log_key = http.get("/api/v1/ledger/witnesses").json()["log_key"]
    kiosk_http = httpx.Client(base_url=base, timeout=30)  # the polling place's own connection
    kiosk, _ = enrol_kiosk(kiosk_http, admin_token, "crash-hall-1")

    # -- concurrent voters; SIGKILLs at random moments
    lock = threading.Lock()
    acked: list[Receipt] = []
    attempts: dict[str, dict[str, list[str]]] = {}  # ballot hash -> choices, acknowledged or not
    refused: Counter[str] = Counter()
    stop = threading.Event()
    errors: list[BaseException] = []

    def voter(k: int) -> None:
        rnd = random.Random(k)
        mine = residents[k * PER_CLIENT : (k + 1) * PER_CLIENT]
        kiosk_done: set[int] = set()
        try:
            with VoterClient(base, log_key=log_key, self_check=False, timeout=30) as v:
                while not stop.is_set():
                    j = rnd.randrange(len(mine))
                    if j in kiosk_done:
                        continue
                    choices = CHOICES[rnd.randrange(len(CHOICES))]
                    at_kiosk = k == 0 and j == 1 and rnd.random() < 0.1  # one voter ends at a kiosk
                    try:
                        p = v.prepare(choices)
                        with lock:
                            attempts[p.ballot_hash.hex()] = choices
                        if at_kiosk:
                            r = kiosk_cast(kiosk, v, mine[j].card, p)
                        else:
                            r = v.cast_jpki(mine[j].card, p)
                    except (httpx.TransportError, ServerError, KioskApiError) as e:
                        code = getattr(e, "code", type(e).__name__)
                        with lock:
                            refused[code] += 1
                        if code == "voter.kiosk_voted":  # the kiosk ballot was appended, its answer lost
                            kiosk_done.add(j)
                        time.sleep(0.05)
                        continue
                    with lock:
                        acked.append(r)
                    if r.channel == "kiosk":
                        kiosk_done.add(j)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=voter, args=(k,), daemon=True) for k in range(VOTERS)]
    for t in threads:
        t.start()
    rnd = random.Random(int.from_bytes(os.urandom(4), "big"))
    before = 0
    try:
        for _ in range(KILLS):
            time.sleep(rnd.uniform(0.4, 1.4))
            server.kill_and_restart()
            with lock:
                assert len(acked) >= before  # clients keep going across restarts
                before = len(acked)
        deadline = time.monotonic() + 30  # the server serves again after the last restart
        after_last = 0
        while after_last < VOTERS and time.monotonic() < deadline:
            time.sleep(0.2)
            with lock:
                after_last = len(acked) - before
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        kiosk_http.close()
    assert not errors, errors
    assert after_last > 0, f"no ballot acknowledged after the last restart: {dict(refused)}"
    assert "service.diverged" not in refused

    # -- every acknowledged ballot is on the ledger; its receipt verifies against the newest checkpoint
    with VoterClient(base, log_key=log_key) as v:
        for r in acked:
            entry = v.verify_receipt(r)  # signature, inclusion, entry, consistency with the newest checkpoint
            assert entry.payload["seq"] == r.seq and entry.payload["channel"] == r.channel
    entries = _entries(http)
    cast = [(i, p) for i, t, p in entries if t == "ballot.cast"]
    hashes = [p["ballot_hash"] for _, p in cast]
    assert len(hashes) == len(set(hashes))
    assert {r.ballot_hash for r in acked} <= set(hashes)
    seqs: dict[str, list[int]] = {}
    for _, p in cast:
        seqs.setdefault(p["voter_alias"], []).append(p["seq"])
    for alias, got in seqs.items():  # no counter was lost or reused across the crashes
        assert got == list(range(1, len(got) + 1)), (alias, got)
    assert len(acked) >= KILLS

    # -- the private state agrees with the ledger (a full replay repairs nothing and finds no difference)
    report = _admin(http, admin_token, "POST", "/reconcile", params={"full": "true"}).json()
    assert report["repaired"] == [] and report["problems"] == [] and report["orphans_removed"] == 0

    # -- close, tally (counted set per the counting rule), decrypt 2 of 3, publish, export, verify
    _admin(http, admin_token, "POST", "/close", json=CLOSE_EARLY)
    tally = _admin(http, admin_token, "POST", "/tally").json()
    counting = count_ballots((i, p["ballot_hash"], p["voter_alias"], p["channel"]) for i, p in cast)
    assert (tally["cast"], tally["counted"]) == (len(cast), len(counting.counted))
    assert (tally["superseded"], tally["overridden"]) == (counting.superseded, counting.overridden)
    run_decryption(http, [trustees[1], trustees[2]])
    _admin(http, admin_token, "POST", "/result")
    _admin(http, admin_token, "POST", "/declaration")
    expected = {c["id"]: {s["id"]: 0 for s in c["selections"]} for c in manifest["contests"]}
    for bh in counting.counted:
        for contest, sels in attempts[bh].items():
            for sel in sels:
                expected[contest][sel] += 1
    assert http.get("/api/v1/election/result").json()["results"] == expected
    archive = _admin(http, admin_token, "GET", "/export").content
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp_path / "export", filter="data")
    (record,) = (tmp_path / "export").iterdir()
    root = server.data / "commission-chain.pem"
    # the test manifest names no witnesses: accepted here as unwitnessed (V5 fails without the flag)
    cli.run(str(record), "--trust-root", str(root), "--log-key", log_key, *UNWITNESSED, prog="tvote-verify")


def _entries(http: httpx.Client) -> list[tuple[int, str, dict[str, Any]]]:
    out: list[tuple[int, str, dict[str, Any]]] = []
    while True:
        page = http.get("/api/v1/ledger/entries", params={"start": len(out), "stop": len(out) + 500})
        got = page.json().get("entries") if page.status_code == 200 else None
        if not got:
            return out
        for e in got:
            d = json.loads(e["entry"])
            out.append((e["index"], d["type"], d["payload"]))
