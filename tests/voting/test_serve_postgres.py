"""The REAL ``tvote serve`` process on PostgreSQL (``--database-url postgresql://…``), driven over HTTP.

A short election against the session's test PostgreSQL server (tests/_pg.py): ``tvote admin`` commands, two
trustees (quorum 2) through ``tvote trustee``, JPKI voters through :class:`voting.clients.voter.VoterClient`
(a re-vote, a kiosk override, a revoked card, concurrent ballots of one voter), a server restart in the middle
of voting (the state lives in PostgreSQL only), close / tally / decrypt / publish / export, and
``tvote-verify`` on the exported record. The database itself is read afterwards: the ledger rows in
PostgreSQL are exactly the exported record, and no SQLite file was created.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import json
import re
import secrets
import subprocess
import tarfile
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
    kiosk_cast,
    server_env,
    stop_server,
    wait_for_phase,
    wait_until_serving,
    write_config,
)

from voting.clients.kiosk import KioskApi, KioskKey
from voting.clients.voter import ServerError, VoterClient
from voting.testing import JpkiTestCa, RsaKeyPool, make_residents, tsukuba_manifest

#: the test manifests name no witnesses (quorum 0): tvote-verify accepts that only when told
UNWITNESSED = ("--unsafe-allow-unwitnessed",)

pytestmark = pytest.mark.postgres


class Server:
    """``tvote serve … --database-url postgresql://…`` as a subprocess that can be restarted."""

    def __init__(self, cli: Cli, argv: list[str], base: str) -> None:
        self.cli, self.argv, self.base = cli, argv, base
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = self.cli.start(*self.argv)
        try:
            wait_until_serving(self.proc, self.base)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc is not None:
            proc, self.proc = self.proc, None
            stop_server(proc)


@pytest.fixture
def world(tmp_path: Path, postgres_url: str) -> Iterator[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(5, ca, now, pool=RsaKeyPool(5))
    revoked = residents[4]
    anchors, crls = jpki_files(tmp_path, ca, now, revoked=[revoked.card.certificate.serial_number])
    config = write_config(tmp_path / "tvote.toml", anchors, crls, rate_limit=100000)
    # the URL as an operator writes it (plain postgresql://, no driver): the server picks psycopg 3
    assert postgres_url.startswith("postgresql+psycopg://")
    dsn = "postgresql://" + postgres_url.split("://", 1)[1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cli = Cli(
        server_env(
            TVOTE_ADMIN_TOKEN=secrets.token_urlsafe(32),
            TVOTE_PUBLIC_URL=base,
            PW="a long trustee passphrase",
            PYTHONWARNINGS="ignore",
        )
    )
    data = tmp_path / "data"
    argv = ["serve", "--port", str(port), "--data-dir", str(data), "--config", str(config)]
    server = Server(cli, [*argv, "--database-url", dsn], base)
    server.start()
    try:
        yield {
            "cli": cli,
            "server": server,
            "base": base,
            "now": now,
            "residents": residents,
            "revoked": revoked,
            "data": data,
            "tmp": tmp_path,
            "dsn": dsn,
        }
    finally:
        server.stop()


def test_serve_on_postgres_end_to_end(world: dict[str, Any]) -> None:
    cli: Cli = world["cli"]
    base, tmp, residents = world["base"], world["tmp"], world["residents"]
    srv = ["--server", base]

    manifest = tsukuba_manifest(world["now"], election_id="tsukuba-pg", trustees=2, threshold=2, small=True)
    codes = create_election_by_cli(cli, base, tmp, manifest, residents)
    assert len(codes) == 2
    cli.run("admin", "load-roll", *srv, "--roll", str(tmp / "roll.csv"))
    cli.run("admin", "publish-roll", *srv)

    files = key_ceremony_by_cli(cli, base, tmp, codes)
    common = [*srv, "--passphrase-env", "PW"]
    assert "qualified trustees [1, 2]" in cli.run("admin", "finalize-keys", *srv)
    wait_for_phase(base, "voting")  # the server opens voting by itself

    log_key = httpx.get(base + "/api/v1/ledger/witnesses").json()["log_key"]
    counts = {c["id"]: {s["id"]: 0 for s in c["selections"]} for c in manifest["contests"]}
    a = {"mayor": ["cand-1"], "referendum": ["yes"], "subsidy": ["proj-1", "proj-2"]}
    b = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": []}

    def counted(choice: dict[str, list[str]]) -> None:
        for contest, sels in choice.items():
            for s in sels:
                counts[contest][s] += 1

    # a polling-place kiosk, enrolled by the commission's CLI and opened with its poll-worker PIN
    key = KioskKey.generate()
    enrolled = cli.run(
        "admin", "kiosk", "enrol", *srv, "--kiosk-id", "pg-hall-1", "--public-key", key.public_key_hex,
        "--polling-place", "Test hall",
    )  # fmt: skip
    pin = re.search(r"poll-worker PIN .*: ([0-9]{8})$", enrolled, re.M)
    assert pin is not None, enrolled
    kiosk_http = httpx.Client(base_url=base, timeout=60)
    kiosk = KioskApi(kiosk_http, key, "pg-hall-1")
    kiosk.open(1, pin.group(1))

    receipts = []
    with VoterClient(base, log_key=log_key) as v:
        receipts.append(v.cast_jpki(residents[0].card, a))
        counted(a)
        v.cast_jpki(residents[1].card, a)  # internet, then overridden at the kiosk
        receipts.append(kiosk_cast(kiosk, v, residents[1].card, b))
        counted(b)
        with pytest.raises(ServerError) as err:
            v.cast_jpki(world["revoked"].card, a)
        assert err.value.code == "jpki.revoked"

    # the server restarts mid-vote: everything it knows is in PostgreSQL
    world["server"].stop()
    world["server"].start()

    with VoterClient(base, log_key=log_key) as v:
        for r in receipts:
            v.verify_receipt(r)
        with pytest.raises(ServerError) as err:  # the kiosk rule survived the restart
            v.cast_jpki(residents[1].card, a)
        assert err.value.code == "voter.kiosk_voted"
        # and so did the kiosk: its open session, its count, and its last accepted request time
        status = kiosk.status()
        assert (status["kiosk_id"], status["state"], status["session"], status["ballots_cast"]) == (
            "pg-hall-1", "open", 1, 1,
        )  # fmt: skip
        assert kiosk.close(1, 1, pin.group(1))["entry"]["ballots_cast"] == 1
    kiosk_http.close()

    # concurrent ballots of one voter through the real server (several uvicorn worker threads)
    def cast(choice: dict[str, list[str]]) -> Any:
        with VoterClient(base, log_key=log_key) as c:
            return c.cast_jpki(residents[2].card, choice)

    choices = [a, b, a, b]
    with cf.ThreadPoolExecutor(max_workers=len(choices)) as pool:
        concurrent = list(pool.map(cast, choices))
    assert sorted(r.seq for r in concurrent) == [1, 2, 3, 4]
    by_index = sorted(range(len(choices)), key=lambda i: concurrent[i].leaf_index)
    assert [concurrent[i].seq for i in by_index] == [1, 2, 3, 4]  # seq order is ledger order
    counted(choices[by_index[-1]])  # the voter's last ballot counts
    with VoterClient(base, log_key=log_key) as v:
        receipts.append(v.cast_jpki(residents[3].card, b))
        counted(b)

    cli.run("admin", "close", *srv, *CLOSE_EARLY_ARGS)
    tally = json.loads(cli.run("admin", "tally", *srv))
    assert (tally["cast"], tally["counted"], tally["superseded"], tally["overridden"]) == (8, 4, 3, 1)
    cli.all([["trustee", "decrypt", *common, "--secret-file", str(f)] for f in files])
    cli.run("admin", "publish", *srv)
    result = httpx.get(base + "/api/v1/election/result").json()
    assert result["results"] == counts and result["trustees_used"] == [1, 2]
    archive = tmp / "record.tar.gz"
    cli.run("admin", "export", *srv, "--out", str(archive))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp / "export", filter="data")
    (record,) = (tmp / "export").iterdir()
    root = world["data"] / "commission-chain.pem"
    # the test manifest names no witnesses: accepted here as unwitnessed (V5 fails without the flag)
    cli.run(str(record), "--trust-root", str(root), "--log-key", log_key, *UNWITNESSED, prog="tvote-verify")

    # the record the auditor verified is what PostgreSQL holds; the server never fell back to SQLite
    lines = (record / "entries.jsonl").read_bytes().splitlines()
    with psycopg.connect(world["dsn"]) as conn:
        rows = conn.execute("SELECT idx, body FROM ledger_entry ORDER BY idx").fetchall()
        (phase,) = conn.execute("SELECT phase FROM tv_election").fetchone()
        cast_rows = conn.execute("SELECT count(*) FROM intake_ballot WHERE kind = 'cast'").fetchone()
    assert [r[0] for r in rows] == list(range(len(lines)))
    assert [bytes(r[1]) for r in rows] == lines
    assert phase == "declared" and cast_rows == (8,)
    assert not list(world["data"].glob("*.sqlite3*"))
