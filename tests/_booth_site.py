"""The booth site for the browser tests (tests/web/): a tiny server that serves the booth's page sources
(``web/pages/``) and ES modules (``web/src/booth/``) unbundled, under the strict Content-Security-Policy the
booth must live with, and passes ``/api/`` through to a real election server; and the Chromium that
Playwright drives (Debian's, never a downloaded one). Once ``tvote serve`` serves the built booth itself
(``voting/web/``), the ``booth`` fixtures of tests/web/conftest.py yield that server's address instead.

The steps the flows share: choosing and encrypting (:func:`choose_and_encrypt`), the receipt verified in
the browser (:func:`receipt_verified`, :func:`cosigned_in_the_browser`), Chromium with a fake camera that
sees a picture (:func:`camera_browser`), the digital-ID provider's redirect sent to the booth's callback
page (:func:`route_provider_to_booth`), and the end: the election closed, tallied, decrypted, declared,
exported and checked by the Python verifier (:func:`count_and_verify`).
"""

from __future__ import annotations

import concurrent.futures
import http.server
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
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


# ------------------------------------------------------------------------------------- the flows' steps

#: a tracking code as the booth shows it
TRACKING_CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")
#: Chromium's fake camera and its automatic "allow" (``--use-file-for-fake-video-capture`` names the video)
FAKE_CAMERA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def watch_page_problems(page: Any, problems: list[str]) -> None:
    """Collect into ``problems`` every Content-Security-Policy violation and page error of ``page``."""

    def console(msg: Any) -> None:
        if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text:
            problems.append(msg.text)

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))


def tracking_code(page: Any) -> str:
    """The tracking code the page shows (checked for its shape)."""
    code = "-".join(page.locator(".tracking-code .group").all_inner_texts())
    assert TRACKING_CODE.match(code), code
    return code


def choose_and_encrypt(page: Any, site: BoothSite, choices: Mapping[str, Sequence[str]]) -> str:
    """Open the booth in English, tick ``choices`` ({contest: [selection, …]}), review, encrypt; the
    tracking code."""
    from playwright.sync_api import expect

    page.goto(site.url + "/vote?lang=en")
    page.get_by_role("button", name="Start").click()
    for contest, picked in choices.items():
        for selection in picked:
            page.locator(f"#contest-{contest}-{selection}").check()
    page.get_by_role("button", name="Review my choices").click()
    page.get_by_role("button", name="Encrypt my ballot").click()
    expect(page.locator("#step-heading")).to_have_accessible_name("Your ballot is encrypted", timeout=30_000)
    return tracking_code(page)


def receipt_verified(page: Any, code: str, *, witnessed: bool = False) -> None:
    """The receipt of the ballot ``code``, its inclusion proof verified in the browser. With ``witnessed``
    (the manifest names witnesses), a fresh receipt is under a checkpoint the log signed that the witnesses
    have not cosigned yet, and the booth says so; :func:`cosigned_in_the_browser` checks it later."""
    from playwright.sync_api import expect

    expect(page.locator("#step-heading")).to_have_accessible_name("Your receipt", timeout=30_000)
    assert tracking_code(page) == code
    if witnessed:
        expect(page.get_by_text("have not cosigned it yet")).to_be_visible(timeout=30_000)
        for step in ("signed by the election's log", "inside the signed tree", "The entry is this ballot"):
            expect(page.locator(".checks")).to_contain_text(step)
    else:
        expect(page.get_by_text("Verified on this device")).to_be_visible(timeout=30_000)


def cosigned_in_the_browser(page: Any, site: BoothSite, code: str) -> str:
    """Check my ballot for ``code`` once the witnesses have cosigned: the page verifies their signatures in
    the browser; returns what it says."""
    from playwright.sync_api import expect

    page.goto(site.url + f"/check?code={code}&lang=en")
    said = page.locator("#result")
    expect(said).to_contain_text("Cosigned by the independent witnesses", timeout=30_000)
    # the witnesses' step is drawn before the page has asked which ballot counts: wait for the end
    expect(said).not_to_contain_text("Checking…", timeout=30_000)
    return str(said.inner_text())


@contextmanager
def camera_browser(browser_type: Any, video: Path | None = None) -> Iterator[Any]:
    """Debian's Chromium with a fake camera: Chromium's own test pattern, or with ``video`` (a ``.mjpeg`` file
    from ``voting.testing.write_fake_camera_video``) that picture; camera access is granted without asking."""
    args = [*CHROMIUM_ARGS, *FAKE_CAMERA_ARGS]
    if video is not None:
        args.append(f"--use-file-for-fake-video-capture={video}")
    browser = browser_type.launch(executable_path=str(CHROMIUM), args=args)
    try:
        yield browser
    finally:
        browser.close()


def route_provider_to_booth(context: Any, election: Any, site: BoothSite) -> None:
    """Send the development digital-ID provider's redirect to the booth's callback page: the demo's provider
    has another address registered (``election.intake.oidc.config.redirect_uri``), so its answer's
    ``Location`` is rewritten to ``<booth>/vote/oidc-callback`` with the same query (code and state)."""
    registered = election.intake.oidc.config.redirect_uri

    def provider(route: Any) -> None:
        answer = route.fetch(max_redirects=0)
        location = answer.headers["location"]
        assert location.startswith(registered + "?"), location
        back = f"{site.url}/vote/oidc-callback?{location.split('?', 1)[1]}"
        route.fulfill(status=302, headers={"Location": back})

    context.route(re.compile(r"/authorize\?"), provider)


def count_and_verify(election: Any, out: Path) -> Any:
    """The end of the election: close it, tally, let every trustee decrypt, declare the result, let the
    witnesses cosign, export the public record to ``out/record`` and check it with the Python verifier (the
    result PDF against the commission's root). Asserts the verifier found nothing wrong; returns its report
    (``report.results``: the counts it checked)."""
    from cryptography import x509

    from verifier import Options, verify_record
    from voting.testing import run_decryption

    election.close_early()
    election.admin("/tally")
    election.service.ledger.checkpoint()
    if election.witnesses is not None:
        election.cosign()  # trustees decrypt only a tally under a witnessed checkpoint
    run_decryption(election.http, list(election.trustees.values()))
    election.admin("/result")
    election.admin("/declaration")
    election.service.ledger.checkpoint()
    if election.witnesses is not None:
        election.cosign()
    election.service.ledger.export(out / "record")
    (out / "record" / "result.pdf").write_bytes(election.service.result_pdf())  # the signed declaration
    signer = election.service.commission_signer()
    root: x509.Certificate = signer.chain[-1] if signer.chain else signer.certificate
    options = Options(pdf_trust_roots=(root,), unsafe_allow_unwitnessed=election.witnesses is None)
    # in a thread of its own: Playwright's sync API keeps an event loop running in this one, and the result
    # PDF's signature check (pyHanko) starts its own
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        report = pool.submit(verify_record, out / "record", options).result()
    assert [(f.check, f.message) for f in report.failures] == [], report.failures
    assert report.results is not None
    return report


def expected_counts(
    manifest: Mapping[str, Any], ballots: Sequence[Mapping[str, Sequence[str]]]
) -> dict[str, dict[str, int]]:
    """The counts ``ballots`` (each {contest: [selection, …]}) make, every selection of the manifest named."""
    return {
        c["id"]: {s["id"]: sum(s["id"] in b.get(c["id"], ()) for b in ballots) for s in c["selections"]}
        for c in manifest["contests"]
    }
