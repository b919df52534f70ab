"""The booth site for the browser tests (tests/web/): a tiny server that serves the booth's page sources
(``web/pages/``) and ES modules (``web/src/booth/``) unbundled, under the strict Content-Security-Policy the
booth must live with, and passes ``/api/`` through to a real election server; and the Chromium that
Playwright drives (Debian's, never a downloaded one). Once ``tvote serve`` serves the built booth itself
(``voting/web/``), the ``booth`` fixtures of tests/web/conftest.py yield that server's address instead."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "web" / "pages"
BOOTH_SRC = ROOT / "web" / "src" / "booth"
#: the built booth (web/build.mjs): the pages with their SRI attributes and the bundles, as tvote serve
#: serves them
BUILT_PAGES = ROOT / "voting" / "web" / "pages"
BUILT_STATIC = ROOT / "voting" / "web" / "static"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: what the booth must run under (booth-serve sends the same): no inline script or style, no eval,
#: no other origin
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; media-src 'self' blob:; worker-src 'self'; manifest-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_ROUTES = {
    "/": "index.html",
    "/vote": "vote.html",
    "/check": "check.html",
    "/vote/oidc-callback": "oidc-callback.html",
}
#: axe-core's rule sets for WCAG 2.2 AA
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json"}


@dataclass
class BoothSite:
    """The booth's address and the election's published manifest (what the pages must show)."""

    url: str
    manifest: dict[str, Any]


class _Handler(http.server.BaseHTTPRequestHandler):
    upstream: str = ""
    pages: Path = PAGES
    static: Path = BOOTH_SRC
    built: bool = False

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _static(self, path: str) -> None:
        if path in PAGE_ROUTES:
            page = (self.pages / PAGE_ROUTES[path]).read_bytes()
            if not self.built:  # the sources' placeholders, which the build replaces with the real values
                page = page.replace(b' integrity="sha384-BUILD"', b"")
            self._send(200, page, "text/html; charset=utf-8")
            return
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
            # the sources: the booth's modules, else the built library and worker they import
            for root in (self.static,) if self.built else (self.static, BUILT_STATIC.resolve()):
                target = (root / name).resolve()
                if target.is_relative_to(root) and target.is_file() and target.suffix in TYPES:
                    self._send(200, target.read_bytes(), TYPES[target.suffix] + "; charset=utf-8")
                    return
        self._send(404, b"not found", "text/plain")

    def _proxy(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
        try:
            r = httpx.request(method, self.upstream + self.path, content=body, headers=headers, timeout=60)
        except httpx.HTTPError:
            self._send(502, b'{"error": {"code": "proxy", "message": "upstream"}}', "application/json")
            return
        self._send(r.status_code, r.content, r.headers.get("content-type", "application/json"))

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/api/"):
            self._proxy("GET")
        else:
            self._static(path)

    def do_POST(self) -> None:
        if self.path.startswith("/api/"):
            self._proxy("POST")
        else:
            self._send(405, b"", "text/plain")


@contextmanager
def serve_booth(upstream: str, *, built: bool = False) -> Iterator[str]:
    """Serve the booth on a free loopback port, ``/api/`` passed to ``upstream``; yield its URL. The sources
    unbundled (``web/pages``, ``web/src/booth``, with the built library and worker they import from
    ``/static/``), or with ``built`` the build's output (``voting/web/``)."""
    where = {"pages": BUILT_PAGES, "static": BUILT_STATIC.resolve(), "built": True} if built else {}
    handler = type("Handler", (_Handler,), {"upstream": upstream, **where})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def axe_violations(page: Any, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.2 AA violations on the page as it is now (id, impact, the elements), injected from
    ``axe_source`` (the page's context must bypass the CSP for that: ``new_context(bypass_csp=True)``)."""
    page.add_script_tag(content=axe_source)
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        AXE_TAGS,
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
    ]
