"""Helpers for the kiosk device's tests: the kiosk service on loopback in front of a real election server,
a local-API client that behaves like the kiosk page (same origin, JSON), SoftHSM2 cards for residents, the
text and QR code of a printed PDF, and a TCP proxy that cuts the network between kiosk and server."""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kiosk._app import create_app
from kiosk._printing import Printer
from kiosk._service import KioskService
from kiosk._state import KioskConfig, StateDir
from kiosk.card import CardReader
from kiosk.testing import SoftHsm2
from voting.clients.kiosk import KioskApi, KioskKey
from voting.clients.voter import VoterClient
from voting.testing import LoopbackServer

PIN = "ABC123XYZ"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_state(root: Path, kiosk_id: str, server: str) -> tuple[StateDir, KioskKey]:
    """What ``tvote-kiosk init`` makes: the state directory, kiosk.json and the kiosk's key."""
    state = StateDir(root)
    key = KioskKey.generate()
    state.create(KioskConfig(kiosk_id, server), key.save)
    return state, key


@dataclass
class Kiosk:
    """A running kiosk service: ``local`` talks to its local API as the kiosk page does."""

    url: str
    service: KioskService
    state: StateDir
    local: httpx.Client

    def post(self, path: str, body: Mapping[str, Any]) -> httpx.Response:
        return self.local.post(f"/kiosk/api/{path}", json=dict(body))

    def ok(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        r = self.post(path, body)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def error(self, path: str, body: Mapping[str, Any], status: int | None = None) -> dict[str, Any]:
        r = self.post(path, body)
        assert r.status_code >= 400, r.text
        if status is not None:
            assert r.status_code == status, r.text
        err: dict[str, Any] = r.json()["error"]
        assert set(err) >= {"code", "message", "message_ja", "message_en"}, err
        assert err["message_ja"] and err["message_en"]
        return err

    def state_now(self) -> dict[str, Any]:
        r = self.local.get("/kiosk/api/state")
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out


@contextmanager
def run_kiosk(
    state: StateDir,
    key: KioskKey,
    server: str,
    hsm: SoftHsm2,
    *,
    public_url: str = "https://vote.example.jp",
    idle_seconds: float = 90.0,
    clock: Any = None,
) -> Iterator[Kiosk]:
    """The kiosk service (as ``tvote-kiosk serve`` builds it) on a free loopback port, talking to
    ``server`` (the election server, or a proxy in front of it)."""
    config = state.config()
    http = httpx.Client(base_url=server, timeout=httpx.Timeout(20.0, connect=5.0))
    voter = VoterClient(server, timeout=20.0)
    extra = {"clock": clock} if clock is not None else {}
    service = KioskService(
        state,
        api=KioskApi(http, key, config.kiosk_id),
        election=voter.election,
        reader=CardReader(hsm.library, state.root),
        printer=Printer(None),
        public_url=public_url,
        idle_seconds=idle_seconds,
        idle_grace=0.0,
        lookup_pause=0.05,
        **extra,
    )
    port = free_port()
    app = create_app(service, port=port, server_get=lambda p: http.get(p), tick_seconds=0.05)
    loop = LoopbackServer(app, port=port, lifespan=True)
    url = loop.start()
    local = httpx.Client(base_url=url, headers={"Origin": url}, timeout=60)
    try:
        yield Kiosk(url, service, state, local)
    finally:
        local.close()
        loop.stop()
        http.close()
        voter.close()


def encrypt(server: str, choices: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The ballot the kiosk page would post: encrypted with the voter client's preparation code."""
    with VoterClient(server) as v:
        return dict(v.prepare(choices).ballot.to_dict())


# ------------------------------------------------------------------------------------------------ PDFs


def pdf_text(path: Path) -> str:
    """The text drawn in Latin fonts (Helvetica, Courier) in an uncompressed reportlab PDF: every
    ``(...) Tj`` string. The Japanese strings (the CID font) are hex strings and not read here."""
    raw = path.read_bytes()
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", raw, re.S)
    text = []
    for s in streams:
        try:
            s = zlib.decompress(s)
        except zlib.error:
            pass
        text += [_unescape(m) for m in re.findall(rb"\(((?:[^()\\]|\\.)*)\) Tj", s)]
    return "\n".join(text)


def _unescape(literal: bytes) -> str:
    """A PDF literal string's bytes (ISO 32000 7.3.4.2 escapes: \\( \\) \\\\ and octal) as Latin-1 text."""
    return re.sub(
        rb"\\([0-7]{1,3}|.)",
        lambda m: bytes([int(m[1], 8)]) if m[1][:1].isdigit() else m[1],
        literal,
    ).decode("latin-1")


def pdf_qr_matrix(path: Path) -> list[list[bool]]:
    """The QR code drawn on a slip (one filled square per dark module), read back as a module matrix."""
    raw = path.read_bytes()
    rects = [
        tuple(float(x) for x in m)
        for m in re.findall(rb"([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) re f", raw)
        if abs(float(m[2]) - float(m[3])) < 1e-6
    ]
    assert rects, "no QR code on the page"
    cell = rects[0][2]
    x0 = min(r[0] for r in rects)
    top = max(r[1] for r in rects)
    cols = round((max(r[0] for r in rects) - x0) / cell) + 1
    rows = round((top - min(r[1] for r in rects)) / cell) + 1
    m = [[False] * cols for _ in range(rows)]
    for x, y, _, _ in rects:
        m[round((top - y) / cell)][round((x - x0) / cell)] = True
    return m


# ------------------------------------------------------------------------------------------- network


class CutProxy:
    """A TCP proxy between the kiosk and the server. ``mode``: ``forward``; ``drop_cast_answer`` (the
    kiosk's cast reaches the server, the server's answer is thrown away and the connection closed);
    ``cut_at_cast`` (the cast never reaches the server, and from then on every connection is refused);
    ``refuse`` (every connection is closed at once)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode = "forward"
        self.casts_seen = 0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop = True
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            if self.mode in ("refuse",):
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        swallow = threading.Event()

        def closed() -> None:
            for s in (client, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

        def up() -> None:
            while True:
                try:
                    data = client.recv(65536)
                except OSError:
                    return
                if not data:
                    closed()
                    return
                if data.startswith(b"POST /api/v1/kiosk/ballots"):
                    self.casts_seen += 1
                    if self.mode == "cut_at_cast":
                        self.mode = "refuse"
                        closed()
                        return
                    if self.mode == "drop_cast_answer":
                        swallow.set()
                if self.mode == "refuse":
                    closed()
                    return
                try:
                    upstream.sendall(data)
                except OSError:
                    return

        def down() -> None:
            while True:
                try:
                    data = upstream.recv(65536)
                except OSError:
                    return
                if not data or swallow.is_set():
                    closed()  # the server answered (or hung up): the kiosk never sees it
                    return
                try:
                    client.sendall(data)
                except OSError:
                    return

        threading.Thread(target=up, daemon=True).start()
        threading.Thread(target=down, daemon=True).start()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
