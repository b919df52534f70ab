"""``tvote demo`` end to end (40 residents instead of 200, to keep the suite fast): the record directory and
the signed PDF exist at the documented paths, the printed result equals the tally of the simulated choices,
and the exported record's ``tally.result`` entry is that result."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from rich.console import Console
from typer.testing import CliRunner

from voting.cli import app
from voting.testing import run_demo

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]


def test_demo_writes_record_and_pdf_and_prints_the_tally(tmp_path: Path) -> None:
    buf = io.StringIO()
    outcome = run_demo(tmp_path / "out", voters=40, seed=7, console=Console(file=buf, width=200))
    text = buf.getvalue()
    assert outcome.exit_code == 0, text
    assert outcome.results == outcome.expected
    assert (tmp_path / "out" / "record").is_dir()
    pdf = (tmp_path / "out" / "result.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/ByteRange" in pdf  # a signed PDF
    # its link and QR code name the server the demo ran, as the demo printed it (not a port it did not use)
    server = re.search(r"server (http://127\.0\.0\.1:\d+)", text)
    assert server is not None, text
    names = PdfFileReader(io.BytesIO(pdf)).root["/Names"]["/EmbeddedFiles"]["/Names"]
    declaration = json.loads(names[3]["/EF"]["/F"].data)  # tvote-result.json (after checkpoint.txt)
    assert declaration["record_url"] == server[1] + "/"
    assert f"the declaration's link and QR code: {server[1]}/" in text
    # the printed table shows every count of the published result
    for contest in outcome.results.values():
        for count in contest.values():
            assert f" {count} " in text or f"{count} │" in text
    assert "equals the tally of the simulated choices" in text
    # the record's tally.result entry is what was printed; the counting rule was exercised
    entries = [
        json.loads(line)
        for line in (tmp_path / "out" / "record").glob("*.jsonl").__next__().read_text().splitlines()
    ]
    types = [e["type"] for e in entries]
    assert "ballot.spoiled" in types and "result.declaration" in types
    # the observers' key is in the manifest, the evidence export is logged, and their audit passed
    assert "oversight" in entries[0]["payload"]["manifest"] and "evidence.exported" in types
    assert "observers' evidence audit: PASS" in text
    (res,) = [e["payload"] for e in entries if e["type"] == "tally.result"]
    assert res["results"] == outcome.results
    assert res["overridden"] >= 1 and res["spoiled"] >= 1
    casts = [e["payload"] for e in entries if e["type"] == "ballot.cast"]
    assert {c["channel"] for c in casts} == {"internet", "kiosk"}
    # the polling place: two enrolled kiosks, both opened; the second revoked halfway (its next request
    # refused), the first closed with the server's count of its ballots
    kiosk = {t: [e["payload"] for e in entries if e["type"] == t] for t in ("kiosk.enrolled", "kiosk.opened",
             "kiosk.revoked", "kiosk.closed")}  # fmt: skip
    k1, k2 = "tsukuba-city-hall-1", "tsukuba-city-hall-2"
    assert [k["kiosk_id"] for k in kiosk["kiosk.enrolled"]] == [k1, k2]
    assert [k["kiosk_id"] for k in kiosk["kiosk.opened"]] == [k1, k2]
    assert [k["kiosk_id"] for k in kiosk["kiosk.revoked"]] == [k2]
    assert [(k["kiosk_id"], k["session"]) for k in kiosk["kiosk.closed"]] == [(k1, 1)]
    at_kiosk = [c["kiosk"]["kiosk_id"] for c in casts if c["channel"] == "kiosk"]
    assert kiosk["kiosk.closed"][0]["ballots_cast"] == at_kiosk.count(k1) and at_kiosk.count(k2) >= 1
    assert "its next request was refused: kiosk.revoked" in text
    assert f"{k1} cast {at_kiosk.count(k1)} ballot(s) and was closed" in text
    assert {c["auth"]["method"] for c in casts} == {"jpki", "oidc+face"}
    # and the independent verifier accepts the record in official mode (against the pins the commission
    # publishes out of band), PDF signature and trustee enrolment included
    (manifest,) = [e["payload"]["manifest"] for e in entries if e["type"] == "election.manifest"]
    assert set(manifest["pins"]) == {
        "log_key",
        "jpki_roots_sha256",
        "commission_root_sha256",
        "trustee_enrolment_keys",
    }
    assert all("enrolment" in e["payload"] for e in entries if e["type"] == "trustee.registered")
    cmd = [
        sys.executable,
        "-c",
        "from verifier.cli import main; main()",
        str(tmp_path / "out" / "record"),
        "--pins",
        str(tmp_path / "out" / "pins.json"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # witnessed (issue 11): three witnesses, quorum 2, and the final checkpoint carries two cosignatures
    header = json.loads((tmp_path / "out" / "record" / "record.json").read_text())
    assert header["quorum"] == 2 and len(header["witnesses"]) == 3
    last = json.loads((tmp_path / "out" / "record" / "checkpoints.jsonl").read_text().splitlines()[-1])
    assert last["cosignatures"]["signers"] == ["demo-w1", "demo-w2"]
    assert "UNWITNESSED" not in done.stdout
    assert "VALID (official" in " ".join(done.stdout.split())


def test_cli_command_is_wired(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["demo", "--help"])
    assert r.exit_code == 0 and "--out" in r.output
