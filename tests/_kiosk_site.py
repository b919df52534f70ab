"""The polling-place kiosk for the browser tests (tests/web/test_kiosk_ui.py): the kiosk device as it is set
up and run (``tvote-kiosk init``, the commission's enrolment on a real election server, ``tvote-kiosk serve``
as a process of its own, serving the built kiosk page from ``kiosk/web/``) with a SoftHSM2 token as the card
in the reader (``kiosk.testing.SoftHsm2``, the same PKCS#11 code path as a real card through OpenSC).

Without SoftHSM2 (Debian: softhsm2) the tests skip, unless ``TVOTE_REQUIRE_ALL=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the built kiosk page (web/build.mjs → kiosk/web/), what ``tvote-kiosk serve`` serves
KIOSK_WEB = ROOT / "kiosk" / "web"
#: the signing password of every test card (6–16 upper-case letters and digits, as JPKI's)
CARD_PIN = "ABC123XYZ"


def unavailable(why: str) -> None:
    if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
        pytest.fail(f"required (TVOTE_REQUIRE_ALL=1): {why}")
    pytest.skip(why)


def _tvote_kiosk() -> list[str]:
    """The ``tvote-kiosk`` command of this environment (its console script, else ``python -m``)."""
    script = Path(sys.executable).with_name("tvote-kiosk")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from kiosk.cli import app; app()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class KioskSite:
    """A running kiosk: its page's address, the poll workers' PIN, its state directory (printed PDFs under
    ``receipts/`` and ``reports/``) and the card reader (:meth:`insert`, :meth:`remove_card`)."""

    url: str
    kiosk_id: str
    poll_worker_pin: str
    state_dir: Path
    hsm: Any  # kiosk.testing.SoftHsm2

    def insert(self, resident: Any, pin: str = CARD_PIN) -> None:
        """Put ``resident``'s card in the reader (the one token labelled JPKI), instead of any other."""
        self.hsm.remove_tokens()
        self.hsm.add_card(pin, resident.card.private_key, resident.card.certificate)

    def remove_card(self) -> None:
        self.hsm.remove_tokens()

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = httpx.get(self.url + "kiosk/api/state", timeout=30).json()
        return out

    def receipts(self) -> list[Path]:
        return sorted((self.state_dir / "receipts").glob("*.pdf"))

    def reports(self) -> list[Path]:
        return sorted((self.state_dir / "reports").glob("*.pdf"))


def softhsm_available() -> None:
    """Skip (or fail under TVOTE_REQUIRE_ALL=1) unless SoftHSM2 is installed."""
    from kiosk.testing import find_softhsm2_library

    if find_softhsm2_library() is None or shutil.which("softhsm2-util") is None:
        unavailable("SoftHSM2 (libsofthsm2.so and softhsm2-util; Debian: softhsm2) is not installed")
    if not (KIOSK_WEB / "pages" / "kiosk.html").exists():
        unavailable("the kiosk page is not built (make web writes kiosk/web/)")


@contextmanager
def start_kiosk(
    election: Any,
    root: Path,
    kiosk_id: str,
    *,
    idle_seconds: float = 90.0,
    polling_place: str = "つくば市役所 1階 期日前投票所",
    server: str | None = None,
) -> Iterator[KioskSite]:
    """``tvote-kiosk init`` under ``root``, the kiosk enrolled on ``election`` (a ``DemoElection``), and
    ``tvote-kiosk serve`` on a free loopback port with a SoftHSM2 reader (empty until
    :meth:`KioskSite.insert`); stopped afterwards. ``server``: the address the kiosk talks to (default the
    election's own; a :func:`cut_proxy` in front of it to cut the network)."""
    from kiosk.testing import SoftHsm2

    softhsm_available()
    hsm = SoftHsm2(root / "hsm")
    state = root / "state"
    init = subprocess.run(
        [
            *_tvote_kiosk(),
            "init",
            "--state-dir",
            str(state),
            "--kiosk-id",
            kiosk_id,
            "--server",
            server or election.base_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    found = re.search(r"public key:\s+([0-9a-f]{64})", init.stdout)
    assert found, init.stdout
    enrolled = election.admin(
        "/kiosks", json={"kiosk_id": kiosk_id, "public_key": found[1], "polling_place": polling_place}
    )
    port = _free_port()
    log = (root / "kiosk.log").open("wb")
    proc = subprocess.Popen(
        [
            *_tvote_kiosk(),
            "serve",
            "--state-dir",
            str(state),
            "--port",
            str(port),
            "--pkcs11-module",
            str(hsm.library),
            "--idle-seconds",
            str(idle_seconds),
        ],
        env={**os.environ, **hsm.environ()},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (root / "kiosk.log").read_text(errors="replace")
            try:
                if httpx.get(url + "kiosk/api/state", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "tvote-kiosk serve did not start"
            time.sleep(0.2)
        with hsm.active():  # this process writes the test cards into the reader's token directory
            yield KioskSite(url, kiosk_id, str(enrolled["poll_worker_pin"]), state, hsm)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def cut_proxy(upstream: str) -> Any:
    """The kiosk device tests' TCP proxy that cuts the network between the kiosk and ``upstream`` (the
    election server's address): ``tests/_kiosk_device.CutProxy`` (one copy).
    ``mode``: ``forward``, ``cut_at_cast`` (the cast never arrives, then every connection is refused),
    ``drop_cast_answer``, ``refuse``; ``close()`` afterwards."""
    from _kiosk_device import CutProxy

    port = int(upstream.rsplit(":", 1)[1].rstrip("/"))
    return CutProxy(port)
