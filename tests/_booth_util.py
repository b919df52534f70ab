"""Helpers for the booth tests: a temporary web root with test pages, and the subresource check that every
served page must pass (same-origin scripts and style sheets, each with a matching ``integrity``; no inline
script, style or event handler, which the Content-Security-Policy would refuse anyway)."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from voting._settings import Settings
from voting.app import create_app
from voting.service import ElectionService

SCRIPT = b"document.documentElement.dataset.booth = 'ready';\n"
STYLE = b"body { font-family: sans-serif; }\n"
MANIFEST = b'{"name": "tvote", "start_url": "/"}\n'


def sri(data: bytes) -> str:
    """The ``integrity`` value of ``data`` (SHA-384, as the build writes it)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def page(title: str, *, script: bytes = SCRIPT, style: bytes = STYLE, extra: str = "") -> bytes:
    return (
        "<!doctype html>\n<html lang=ja><head><meta charset=utf-8>"
        f"<title>{title}</title>"
        f'<link rel="stylesheet" href="/static/booth-ABCDEFGH.css" integrity="{sri(style)}">'
        '<link rel="manifest" href="/static/booth.webmanifest">'
        f'<script type="module" src="/static/booth-IJKLMNOP.js" integrity="{sri(script)}"></script>'
        f"</head><body><main><h1>{title}</h1>{extra}</main></body></html>\n"
    ).encode()


def write_web_root(root: Path) -> Path:
    """A web root as the build lays it out: the four pages, a hashed script and style sheet, an image, the
    web manifest and ``static/assets.json``."""
    (root / "pages").mkdir(parents=True)
    static = root / "static"
    (static / "img").mkdir(parents=True)
    for name, title in (
        ("index", "tvote"),
        ("vote", "vote"),
        ("check", "check"),
        ("oidc-callback", "login"),
    ):
        (root / "pages" / f"{name}.html").write_bytes(page(title))
    files = {
        "booth-IJKLMNOP.js": SCRIPT,
        "booth-ABCDEFGH.css": STYLE,
        "booth.webmanifest": MANIFEST,
        "img/logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>\n',
    }
    for name, data in files.items():
        (static / name).write_bytes(data)
    assets = {
        name: {"sha256": hashlib.sha256(d).hexdigest(), "sha384": sri(d)[7:], "bytes": len(d)}
        for name, d in files.items()
    }
    (static / "assets.json").write_text(json.dumps(assets, indent=1) + "\n")
    return root


class _Subresources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.loads: list[tuple[str, str, str | None]] = []  # (tag, url, integrity)
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name, _ in attrs:
            if name.lower().startswith("on"):
                self.problems.append(f"<{tag}> has an inline event handler {name}")
            if name.lower() == "style":
                self.problems.append(f"<{tag}> has an inline style attribute")
        if tag == "style":
            self.problems.append("an inline <style> element")
        if tag == "script":
            self._in_script = True
            if a.get("src") is None:
                self.problems.append("an inline <script> (no src)")
            else:
                self.loads.append(("script", a["src"] or "", a.get("integrity")))
        if tag == "link" and "stylesheet" in (a.get("rel") or "").lower().split():
            self.loads.append(("stylesheet", a.get("href") or "", a.get("integrity")))
        if tag == "link" and "modulepreload" in (a.get("rel") or "").lower().split():
            self.loads.append(("modulepreload", a.get("href") or "", a.get("integrity")))
        if tag == "base":
            self.problems.append("a <base> element")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("a <script> with inline content")


def subresource_problems(client: Any, address: str) -> list[str]:
    """What is wrong with the page at ``address`` (empty: every script and style sheet it loads is same-origin
    under ``/static/`` and carries an ``integrity`` equal to the SHA-384 of the bytes the server serves)."""
    r = client.get(address)
    assert r.status_code == 200, (address, r.status_code)
    parser = _Subresources()
    parser.feed(r.text)
    problems = [f"{address}: {p}" for p in parser.problems]
    for tag, url, integrity in parser.loads:
        u = urlsplit(url)
        if u.scheme or u.netloc or not u.path.startswith("/static/"):
            problems.append(f"{address}: {tag} {url!r} is not a same-origin /static/ address")
            continue
        if not integrity:
            problems.append(f"{address}: {tag} {url!r} has no integrity attribute")
            continue
        served = client.get(u.path)
        if served.status_code != 200:
            problems.append(f"{address}: {tag} {url!r} is not served ({served.status_code})")
        elif sri(served.content) not in integrity.split():
            problems.append(f"{address}: {tag} {url!r}: integrity does not match the served bytes")
    return problems


@contextmanager
def real_server(settings: Settings) -> Iterator[int]:
    """The app for ``settings`` behind uvicorn on a free loopback port (in a thread); yields the port."""
    service = ElectionService.from_settings(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(settings, service=service), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.05)
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        service.close()
