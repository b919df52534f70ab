"""The polling place end to end, every program as it runs in production, over real HTTP and PKCS#11:

the REAL ``tvote serve`` (subprocess, TOML config, test JPKI CA) → ``tvote admin create / load-roll /
publish-roll``, one trustee's key ceremony, ``finalize-keys`` → ``tvote-kiosk init`` (the kiosk's key) →
``tvote admin kiosk enrol`` (the commission; prints the poll-worker PIN) → ``tvote-kiosk serve``
(subprocess) with a SoftHSM2 token holding a resident's test My Number card → through the kiosk's local
API, as the kiosk page calls it: open polls (the zero report says 0), unlock for one voter, read the card,
cast (the ballot encrypted with the voter client's code, signed by the card through PKCS#11 with the
voter's PIN), the receipt slip printed to a file (tracking code, QR code of the Check my ballot address),
close polls (the closing report says 1 and 1) → ``tvote admin close / tally``, ``tvote trustee decrypt``,
``publish``, ``export`` → ``tvote-verify`` on the exported record.

Needs SoftHSM2; skips without it, unless ``TVOTE_REQUIRE_ALL=1`` (CI)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from _kiosk_device import PIN, encrypt, free_port, now, pdf_qr_matrix, pdf_text
from _serve_util import (
    CLOSE_EARLY_ARGS,
    Cli,
    create_election_by_cli,
    jpki_files,
    key_ceremony_by_cli,
    server_env,
    start_server,
    stop_server,
    wait_for_phase,
    write_config,
)
from cryptography import x509

from kiosk._printing import check_url, qr_matrix
from kiosk.testing import SoftHsm2, find_softhsm2_library
from verifier import Options, verify_record
from voting.testing import JpkiTestCa, RsaKeyPool, make_residents, tsukuba_manifest

pytestmark = pytest.mark.slow

UNWITNESSED = ("--unsafe-allow-unwitnessed",)
CHOICES = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": ["proj-1"]}


@pytest.fixture
def softhsm(tmp_path: Path) -> SoftHsm2:
    lib = find_softhsm2_library()
    if lib is None or shutil.which("softhsm2-util") is None:
        why = "SoftHSM2 (libsofthsm2.so and softhsm2-util; Debian: softhsm2) is not installed"
        if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
            pytest.fail(f"required (TVOTE_REQUIRE_ALL=1): {why}")
        pytest.skip(why)
    return SoftHsm2(tmp_path / "hsm", lib)


def wait_for_kiosk(kiosk: subprocess.Popen[str], local: httpx.Client, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        assert kiosk.poll() is None, f"tvote-kiosk serve exited: {log.read_text()[-2000:]}"
        try:
            r = local.get("/kiosk/api/state")
            if r.status_code == 200:
                out: dict[str, Any] = r.json()
                return out
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "tvote-kiosk serve did not start"
        time.sleep(0.1)


def test_polling_place_end_to_end(tmp_path: Path, softhsm: SoftHsm2) -> None:
    t = now()
    ca = JpkiTestCa.generate(t)
    residents = make_residents(2, ca, t, pool=RsaKeyPool(2))
    anchors, crls = jpki_files(tmp_path, ca, t)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path / "tvote.toml", anchors, crls, rate_limit=100000)
    admin_token = "a-test-admin-token-" + "x" * 24
    env = server_env(TVOTE_ADMIN_TOKEN=admin_token, TVOTE_PUBLIC_URL=base, PW="a long trustee passphrase")
    env["PYTHONWARNINGS"] = "ignore"
    cli = Cli(env)
    srv = ["--server", base]
    server = start_server(cli, port, tmp_path / "data", config, output=(tmp_path / "server.log").open("w"))
    kiosk: subprocess.Popen[str] | None = None
    try:
        # -- the election, open for voting
        manifest = tsukuba_manifest(t, election_id="kiosk-e2e", trustees=1, threshold=1, small=True)
        manifest["auth_methods"] = ["jpki"]
        codes = create_election_by_cli(cli, base, tmp_path, manifest, residents)
        cli.run("admin", "load-roll", *srv, "--roll", str(tmp_path / "roll.csv"))
        cli.run("admin", "publish-roll", *srv)
        files = key_ceremony_by_cli(cli, base, tmp_path, codes)
        cli.run("admin", "finalize-keys", *srv)
        wait_for_phase(base, "voting")

        # -- the kiosk makes its key; the commission enrols it and gets the poll-worker PIN
        state_dir = tmp_path / "kiosk"
        out = cli.run(
            "init",
            "--state-dir",
            str(state_dir),
            "--kiosk-id",
            "hall-1",
            "--server",
            base,
            prog="tvote-kiosk",
        )
        public_key = re.search(r"public key:\s+([0-9a-f]{64})", out)
        fingerprint = re.search(r"fingerprint:\s+([0-9a-f ]{39})", out)
        assert public_key and fingerprint, out
        assert (state_dir.stat().st_mode & 0o777) == 0o700
        assert ((state_dir / "kiosk-key").stat().st_mode & 0o777) == 0o600
        out = cli.run(
            "admin", "kiosk", "enrol", *srv, "--kiosk-id", "hall-1", "--public-key", public_key[1],
            "--polling-place", "つくば市役所 1階 期日前投票所",
        )  # fmt: skip
        assert fingerprint[1] in out  # the commission reads the fingerprint back
        pw = re.search(r"poll-worker PIN.*: (\d{8})", out)
        assert pw, out
        poll_worker_pin = pw[1]
        # a second init into the same directory never replaces the key
        cli.run("init", "--state-dir", str(state_dir), "--kiosk-id", "hall-1", "--server", base,
                prog="tvote-kiosk", code=2)  # fmt: skip

        # -- the kiosk service, with the voter's card in the reader (SoftHSM2 through PKCS#11)
        voter = residents[0]
        softhsm.add_card(PIN, voter.card.private_key, voter.card.certificate)
        kport = free_port()
        kurl = f"http://127.0.0.1:{kport}"
        log = tmp_path / "kiosk.log"
        kiosk = Cli({**env, **softhsm.environ()}).start(
            "serve", "--state-dir", str(state_dir), "--port", str(kport),
            "--pkcs11-module", str(softhsm.library), "--public-url", base, "--idle-seconds", "60",
            prog="tvote-kiosk", output=log.open("w"),
        )  # fmt: skip
        local = httpx.Client(base_url=kurl, headers={"Origin": kurl}, timeout=120)
        st = wait_for_kiosk(kiosk, local, log)
        assert (st["state"], st["kiosk_id"], st["session"]) == ("closed", "hall-1", 0)
        assert st["polling_place"] == "つくば市役所 1階 期日前投票所"

        def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
            r = local.post(f"/kiosk/api/{path}", json=body)
            assert r.status_code == 200, r.text
            answer: dict[str, Any] = r.json()
            return answer

        # -- open polls: kiosk.opened on the ledger, the zero report printed (to a file: no printer)
        opened = call("open", {"pin": poll_worker_pin})
        zero = Path(opened["report"]["path"])
        assert zero.parent == state_dir / "reports" and opened["report"]["printer"] is None
        text = pdf_text(zero)
        assert "Zero report" in text and "hall-1" in text
        assert re.search(r"Ballots cast\n0\n", text), text

        # -- one voter
        session = call("unlock", {"pin": poll_worker_pin})["voter_session"]
        assert call("card", {"voter_session": session}) == {"present": True}
        ballot = encrypt(base, CHOICES)
        cast = call("cast", {"voter_session": session, "ballot": ballot, "card_pin": PIN})
        receipt = cast["receipt"]
        assert cast["state"] == "locked" and receipt["channel"] == "kiosk"
        found = httpx.get(f"{base}/api/v1/voter/ballots/{receipt['tracking_code']}").json()
        assert (found["leaf_index"], found["ballot_hash"]) == (
            receipt["ledger_index"],
            receipt["ballot_hash"],
        )
        slip = Path(cast["printed"]["path"])
        assert slip.parent == state_dir / "receipts"
        text = pdf_text(slip)
        assert receipt["tracking_code"] in text and str(receipt["ledger_index"]) in text
        assert pdf_qr_matrix(slip) == qr_matrix(f"{base}/check?code={receipt['tracking_code']}")
        assert check_url(base, receipt["tracking_code"]) == f"{base}/check?code={receipt['tracking_code']}"
        # the voter's session is spent
        r = local.post("/kiosk/api/card", json={"voter_session": session})
        assert r.status_code == 403 and r.json()["error"]["code"] == "kiosk.voter_session"

        # -- close polls: the closing report with the kiosk's count and the server's
        closed = call("close", {"pin": poll_worker_pin})
        assert (closed["kiosk_count"], closed["server_count"]) == (1, 1)
        text = pdf_text(Path(closed["report"]["path"]))
        assert "Closing report" in text
        assert re.search(r"Ballots cast \(kiosk's count\)\n1\n", text), text
        assert re.search(r"Ballots cast \(server's count\)\n1\n", text), text
        # no personal data in the kiosk's log or on its printouts
        kiosk_log = log.read_text()
        for secret in (voter.person.name, voter.resident_id, PIN, poll_worker_pin):
            assert secret not in kiosk_log
            for pdf in (state_dir / "receipts").iterdir():
                assert secret not in pdf_text(pdf)

        # -- count and verify the exported record
        cli.run("admin", "close", *srv, *CLOSE_EARLY_ARGS)
        tally = json.loads(cli.run("admin", "tally", *srv))
        assert (tally["cast"], tally["counted"]) == (1, 1)
        cli.all(
            [["trustee", "decrypt", *srv, "--passphrase-env", "PW", "--secret-file", str(f)] for f in files]
        )
        cli.run("admin", "publish", *srv)
        result = httpx.get(base + "/api/v1/election/result").json()["results"]
        assert result["mayor"]["cand-2"] == 1 and result["referendum"]["no"] == 1
        archive = tmp_path / "record.tar.gz"
        cli.run("admin", "export", *srv, "--out", str(archive))
        with tarfile.open(archive) as tar:
            tar.extractall(tmp_path / "export", filter="data")
        (record,) = (tmp_path / "export").iterdir()
        published = b"".join(p.read_bytes() for p in record.rglob("*") if p.is_file())
        for event in ("kiosk.enrolled", "kiosk.opened", "kiosk.closed"):
            assert event.encode() in published
        root = tmp_path / "data" / "commission-chain.pem"
        cli.run(str(record), "--trust-root", str(root), *UNWITNESSED, prog="tvote-verify")
        # through the verifier's API too: the kiosk checks (V30 enrolment, V31 kiosk ballots) ran, passed
        chain = x509.load_pem_x509_certificates(root.read_bytes())
        report = verify_record(record, Options(pdf_trust_roots=(chain[-1],), unsafe_allow_unwitnessed=True))
        assert report.ok, report.failures
        assert (report.statuses[30], report.statuses[31]) == ("pass", "pass")
    finally:
        if kiosk is not None:
            kiosk.terminate()
            try:
                kiosk.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kiosk.kill()
                kiosk.wait()
        stop_server(server)
