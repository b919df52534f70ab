"""The kiosk device's own parts without a server: the state directory and ``tvote-kiosk init``, the CLI's
refusals, the printouts (their text and QR code) and printing through ``lp`` (a stand-in ``lp`` program
that records its arguments, or fails)."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from _kiosk_device import pdf_qr_matrix, pdf_text
from _poppler import poppler
from typer.testing import CliRunner

from kiosk._printing import Printer, check_url, closing_report_pdf, qr_matrix, receipt_pdf, zero_report_pdf
from kiosk._state import KioskConfig, StateDir, StateError
from kiosk.cli import app
from voting.clients.kiosk import KioskKey

WHEN = dt.datetime(2027, 4, 20, 1, 15, 3, tzinfo=dt.UTC)


def test_init_writes_key_and_config_and_never_replaces_them(tmp_path: Path) -> None:
    d = tmp_path / "state"
    r = CliRunner().invoke(
        app, ["init", "--state-dir", str(d), "--kiosk-id", "hall-1", "--server", "https://v.example"]
    )
    assert r.exit_code == 0, r.output
    key = KioskKey.load(d / "kiosk-key")
    assert key.public_key_hex in r.output and key.fingerprint in r.output
    assert f"tvote admin kiosk enrol --kiosk-id hall-1 --public-key {key.public_key_hex}" in r.output
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((d / "kiosk-key").stat().st_mode) == 0o600
    assert StateDir(d).config() == KioskConfig("hall-1", "https://v.example")
    again = CliRunner().invoke(
        app, ["init", "--state-dir", str(d), "--kiosk-id", "hall-2", "--server", "https://v.example"]
    )
    assert again.exit_code == 2 and "not overwritten" in again.output
    assert KioskKey.load(d / "kiosk-key").public_key_hex == key.public_key_hex


@pytest.mark.parametrize(
    ("kiosk_id", "server"),
    [
        ("Hall-1", "https://v.example"),
        ("-hall", "https://v.example"),
        ("hall-1", "ftp://v.example"),
        ("hall-1", "v.example"),
    ],
)
def test_init_refuses_bad_ids_and_urls(tmp_path: Path, kiosk_id: str, server: str) -> None:
    r = CliRunner().invoke(
        app, ["init", "--state-dir", str(tmp_path / "s"), "--kiosk-id", kiosk_id, "--server", server]
    )
    assert r.exit_code == 2
    assert not (tmp_path / "s" / "kiosk-key").exists()


def test_state_files_are_checked(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "s")
    state.create(KioskConfig("hall-1", "http://127.0.0.1:8000"), KioskKey.generate().save)
    state.config_path.write_text(json.dumps({"format": "tvote-kiosk/1", "kiosk_id": "hall-1"}))
    with pytest.raises(StateError, match="not a tvote-kiosk/1 file"):
        state.config()
    state.session_path.write_text('{"session": 1, "open": "yes", "count": 0}')
    with pytest.raises(StateError, match="not a kiosk session file"):
        state.session()
    os.chmod(state.root, 0o755)
    with pytest.raises(StateError, match="must be 0700"):
        state.check_permissions()


def test_serve_refuses_a_non_loopback_host_and_a_readable_state_dir(tmp_path: Path) -> None:
    d = tmp_path / "s"
    CliRunner().invoke(
        app, ["init", "--state-dir", str(d), "--kiosk-id", "hall-1", "--server", "http://127.0.0.1:9"]
    )
    r = CliRunner().invoke(app, ["serve", "--state-dir", str(d), "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "loopback" in r.output
    os.chmod(d, 0o755)
    r = CliRunner().invoke(app, ["serve", "--state-dir", str(d)])
    assert r.exit_code == 2 and "0700" in r.output


# ---------------------------------------------------------------------------------------------- printouts


def test_receipt_slip_text_and_qr_code(tmp_path: Path) -> None:
    code = "ABCD-EFGH-JKMN-PQRS"
    pdf = receipt_pdf(
        election_name=("つくば市長選挙", "Tsukuba mayoral election"),
        tracking_code=code,
        ledger_index=42,
        cast_at=WHEN,
        kiosk_id="hall-1",
        public_url="https://vote.example.jp/",
    )
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    text = pdf_text(path)
    for shown in (
        code,
        "42",
        "2027-04-20 10:15:03 JST",
        "hall-1",
        "Tsukuba mayoral election",
        "https://vote.example.jp/check",
    ):
        assert shown in text
    assert check_url("https://vote.example.jp/", code) == f"https://vote.example.jp/check?code={code}"
    assert pdf_qr_matrix(path) == qr_matrix(f"https://vote.example.jp/check?code={code}")
    assert pdf_qr_matrix(path) != qr_matrix(f"https://vote.example.jp/check?code={code[:-1]}T")


def test_the_japanese_labels_use_an_embedded_font(tmp_path: Path) -> None:
    """The slip's Japanese labels are in IPAex Gothic, subset-embedded: they print on a kiosk without a
    Japanese system font (Helvetica and Courier, the Latin text, are the printer's standard fonts)."""
    path = tmp_path / "r.pdf"
    path.write_bytes(
        receipt_pdf(
            election_name=("つくば市長選挙", "Tsukuba mayoral election"),
            tracking_code="ABCD-EFGH-JKMN-PQRS",
            ledger_index=42,
            cast_at=WHEN,
            kiosk_id="hall-1",
            public_url="https://vote.example.jp/",
        )
    )
    out = subprocess.run(
        [poppler("pdffonts"), str(path)], capture_output=True, text=True, check=True, timeout=60
    )
    header, _rule, *rows = out.stdout.splitlines()
    emb = header.index(" emb ") + 1
    japanese = [row for row in rows if "IPAexGothic" in row.split()[0]]
    assert japanese, out.stdout
    assert all(row[emb : emb + 3] == "yes" for row in japanese), out.stdout
    assert not any("Heisei" in row for row in rows), out.stdout


def test_reports_say_the_counts(tmp_path: Path) -> None:
    common = {
        "kiosk_id": "hall-1",
        "polling_place": "テスト投票所",
        "session": 3,
        "ledger_index": 7,
        "entry_hash": "ab" * 32,
    }
    zero = tmp_path / "z.pdf"
    zero.write_bytes(zero_report_pdf(opened_at=WHEN, **common))
    assert "Zero report" in pdf_text(zero) and "Ballots cast\n0\n" in pdf_text(zero)
    closing = tmp_path / "c.pdf"
    closing.write_bytes(closing_report_pdf(closed_at=WHEN, kiosk_count=4, server_count=5, **common))
    text = pdf_text(closing)
    assert "Ballots cast (kiosk's count)\n4\n" in text and "Ballots cast (server's count)\n5\n" in text
    assert "The counts differ" in text
    assert "ab" * 16 in text  # the entry hash, on two lines


def fake_lp(tmp_path: Path, status: int) -> tuple[Path, Path]:
    log = tmp_path / "lp-args"
    lp = tmp_path / "lp"
    lp.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > "{log}"\necho "lp: printer on fire" >&2\nexit {status}\n'
    )
    lp.chmod(0o755)
    return lp, log


def test_printing_through_lp(tmp_path: Path) -> None:
    lp, log = fake_lp(tmp_path, 0)
    out = Printer("receipt-printer", lp=str(lp)).deliver(b"%PDF-1.4 test", tmp_path / "receipts" / "a.pdf")
    assert (out.error, out.printer) == (None, "receipt-printer")
    assert log.read_text().splitlines() == ["-d", "receipt-printer", str(tmp_path / "receipts" / "a.pdf")]
    assert out.path.read_bytes() == b"%PDF-1.4 test"
    assert stat.S_IMODE(out.path.stat().st_mode) == 0o600


def test_a_failing_lp_is_reported_and_the_pdf_kept(tmp_path: Path) -> None:
    lp, _ = fake_lp(tmp_path, 3)
    out = Printer("receipt-printer", lp=str(lp)).deliver(b"%PDF-1.4 test", tmp_path / "a.pdf")
    assert out.error is not None and "exit 3" in out.error and "printer on fire" in out.error
    assert out.path.exists()
    missing = Printer("receipt-printer", lp=str(tmp_path / "no-such-lp")).deliver(b"%PDF", tmp_path / "b.pdf")
    assert missing.error is not None and "not installed" in missing.error and missing.path.exists()
    assert Printer(None).deliver(b"%PDF", tmp_path / "c.pdf").to_dict() == {
        "path": str(tmp_path / "c.pdf"),
        "printer": None,
        "error": None,
    }


# ------------------------------------------------------------------------------------------------ errors


def test_every_error_has_japanese_and_english_text() -> None:
    from kiosk._errors import KIOSK_MESSAGES, SERVER_MESSAGES, KioskError
    from kiosk.card import WrongPinError

    for code, (status, en, ja) in KIOSK_MESSAGES.items():
        body = KioskError(code).to_body()["error"]
        assert (body["code"], body["message"], body["message_en"], body["message_ja"]) == (code, en, en, ja)
        assert 400 <= status < 600 and ja and en and not ja.isascii()
    for en, ja in SERVER_MESSAGES.values():
        assert en and ja and not ja.isascii()
    with pytest.raises(ValueError, match="unregistered"):
        KioskError("kiosk.no_such_code")
    card = KioskError.from_card(WrongPinError(2))
    assert (card.code, card.status, card.extra) == ("card.pin_wrong", 409, {"tries_left": 2})
    assert "2" in card.message_ja and "2 tries left" in card.message_en
    server = KioskError.from_server(403, "kiosk.poll_worker", "wrong PIN", {"tries_left": 3})
    assert (server.status, server.extra["tries_left"]) == (403, 3) and "残り3回" in server.message_ja
    other = KioskError.from_server(0, "kiosk.answer", "not JSON")  # no HTTP answer of the documented shape
    assert other.status == 502 and other.message_ja and other.extra["server_message"] == "not JSON"


def test_a_slip_that_cannot_be_written_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "receipts").write_text("a file where the directory should be")
    out = Printer(None).deliver(b"%PDF", tmp_path / "receipts" / "a.pdf")
    assert out.error is not None and "could not be written" in out.error
