"""``tvote demo --serve``, as a person uses it: the command runs the simulated voters, then keeps voting open
and prints the booth's address; a person votes in Chromium (challenge, cast with a test card on the Digital
Authentication App emulator's phone page, a re-vote in Japanese, Check my ballot), presses Enter, and the demo
finishes the election with the browser's ballot counted; the record then verifies with the official pins."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from _booth_site import CHROMIUM, tracking_code
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENCRYPTED = "Your ballot is encrypted"
JA = json.loads((ROOT / "web" / "src" / "booth" / "i18n" / "ja.json").read_text(encoding="utf-8"))


def ja(key: str) -> str:
    """A Japanese text of the booth as its accessible name reads (the kanji without their readings)."""
    return re.sub(r"\[\[([^|\]]+)\|[^\]]+\]\]", r"\1", JA[key])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Demo:
    """The running command: its output, collected line by line in a thread."""

    def __init__(self, out: Path, port: int) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "tvote"), "demo", "--serve", "--port", str(port), "--voters", "6", "--out", str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={"PATH": str(BIN) + ":/usr/bin:/bin", "COLUMNS": "100", "HOME": str(out.parent)},
        )
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never printed; the demo said:\n{self.output}")
            time.sleep(0.2)

    def finish(self, timeout: float) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.close()
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _approve_in_the_app(page: Page, open_app: str, card: str, pin: str) -> None:
    """The booth's app link opens the emulator's phone page in a new tab: choose the card, type the PIN."""
    with page.context.expect_page() as opened:
        page.get_by_role("link", name=open_app).click()
    phone = opened.value
    phone.get_by_label("Card").select_option(label=card)
    phone.get_by_label("Signing PIN (6-16 letters and digits)").fill(pin)
    phone.get_by_role("button", name="Approve / 署名する").click()
    expect(phone.get_by_role("status")).to_have_text("Signed.")
    phone.close()


def _receipt(page: Page, heading: str, code: str) -> None:
    expect(page.locator("#step-heading")).to_have_accessible_name(heading, timeout=60_000)
    assert tracking_code(page) == code


def test_a_person_votes_in_the_browser_and_the_demo_counts_it(tmp_path: Path, browser: Browser) -> None:
    if not CHROMIUM.exists():
        pytest.skip("no Chromium")  # the browser fixture has already failed or skipped (conftest.py)
    port, out = _free_port(), tmp_path / "demo-out"
    demo = _Demo(out, port)
    try:
        demo.wait_for("press Enter here when you are done", timeout=600)
        said = demo.output
        booth = f"http://127.0.0.1:{port}/"
        assert f"the booth is open: {booth}" in said, said
        cards = re.search(r"cards (R\d+), (R\d+), (R\d+), signing PIN (\w+)", said)
        assert cards is not None, said
        card, pin = cards.group(1), cards.group(4)
        camera = re.search(r"--use-file-for-fake-video-capture=(\S+\.mjpeg) ", said)
        assert camera is not None and Path(camera.group(1)).is_file(), said

        page = browser.new_page()
        # 1. English: choose, encrypt, check the encryption (Benaloh), encrypt afresh, cast with the card
        page.goto(booth + "vote?lang=en")
        page.get_by_role("button", name="Start").click()
        page.locator("#contest-mayor-cand-2").check()
        page.locator("#contest-subsidy-proj-1").check()
        page.get_by_role("button", name="Review my choices").click()
        page.get_by_role("button", name="Encrypt my ballot").click()
        expect(page.locator("#step-heading")).to_have_accessible_name(
            "Your ballot is encrypted", timeout=60_000
        )
        spoiled = tracking_code(page)
        page.get_by_role("button", name="Check the encryption").click()
        expect(page.get_by_text("These are the choices you made")).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="Encrypt afresh and continue").click()
        expect(page.locator("#step-heading")).to_have_accessible_name(
            "Your ballot is encrypted", timeout=60_000
        )
        first = tracking_code(page)
        page.get_by_role("button", name="Cast this ballot").click()
        page.get_by_role("button", name="My Number card (Digital Authentication App)").click()
        _approve_in_the_app(page, "Open the Digital Authentication App", card, pin)
        _receipt(page, "Your receipt", first)

        # 2. Japanese (the default): the same resident votes again; this ballot is the one that counts
        page.goto(booth + "vote")
        page.get_by_role("button", name=ja("vote.start")).click()
        page.locator("#contest-mayor-cand-4").check()
        page.locator("#contest-referendum-no").check()
        page.get_by_role("button", name=ja("choose.review")).click()
        page.get_by_role("button", name=ja("review.encrypt")).click()
        expect(page.locator(".tracking-code")).to_be_visible(timeout=60_000)
        second = tracking_code(page)
        page.get_by_role("button", name=ja("tracking.cast")).click()
        page.get_by_role("button", name=ja("auth.jpki")).click()
        _approve_in_the_app(page, ja("jpki.open_app"), card, pin)
        _receipt(page, ja("receipt.heading"), second)

        # 3. Check my ballot: the first ballot was replaced by the re-vote, the second counts, both under a
        # checkpoint the witnesses cosigned (they cosign every few seconds: look again until they have)
        page.goto(booth + f"check?code={first}&lang=en")
        expect(page.locator("#result")).to_contain_text("This ballot does not count", timeout=60_000)
        deadline = time.monotonic() + 90
        while True:
            page.goto(booth + f"check?code={second}&lang=en")
            result = page.locator("#result")
            expect(result).to_contain_text("This is the ballot that counts", timeout=60_000)
            expect(result).not_to_contain_text("Checking…", timeout=60_000)
            if "Cosigned by the independent witnesses" in result.inner_text():
                break
            assert time.monotonic() < deadline, result.inner_text()
            time.sleep(2)
        page.goto(booth + f"check?spoiled={spoiled}&lang=en")
        expect(page.get_by_text("opened for checking (spoiled)")).to_be_visible(timeout=60_000)
        page.close()

        # 4. Enter: voting closes, the trustees decrypt; the browser's ballot is counted, the record verifies
        assert demo.finish(timeout=600) == 0, demo.output
    finally:
        demo.kill()
    said = demo.output
    assert "ballots cast in the browser and counted: 1\n" in said, said
    assert "what they add to the simulated tally: mayor/cand-4 +1, referendum/no +1\n" in said, said
    assert "plus the browser's ballots" in said, said
    verify = subprocess.run(
        [str(BIN / "tvote-verify"), str(out / "record"), "--pins", str(out / "pins.json")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
