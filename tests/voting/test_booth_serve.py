"""The booth is served from its web root, and only from there (issue 13): pages, static files with the right
types and caching, the security headers on every response, the interactive API docs off; and the attacks:
traversal (plain and encoded, on a real server too), symbolic links, a FIFO, a huge path, HEAD and OPTIONS.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _booth_util import SCRIPT, page, real_server, sri, subresource_problems, write_web_root
from _service_util import ADMIN_TOKEN, error_code
from fastapi.testclient import TestClient

from voting._booth import PACKAGE_WEB_ROOT, PAGES, served_assets
from voting._headers import CONTENT_SECURITY_POLICY, PERMISSIONS_POLICY
from voting._settings import Settings
from voting.app import create_app
from voting.service import ElectionService

SECRET = b"the roll key is 00112233"


def _settings(tmp: Path, web_root: Path | None, **kw: object) -> Settings:
    return Settings(
        environment="test", data_dir=tmp / "data", admin_token=ADMIN_TOKEN, web_root=web_root, **kw
    )


@contextmanager
def _client(tmp: Path, web_root: Path | None, **kw: object) -> Iterator[TestClient]:
    settings = _settings(tmp, web_root, **kw)
    service = ElectionService.from_settings(settings)
    try:
        with TestClient(create_app(settings, service=service), raise_server_exceptions=False) as client:
            yield client
    finally:
        service.close()


@pytest.fixture()
def web(tmp_path: Path) -> Path:
    root = write_web_root(tmp_path / "web")
    (root / "secret.txt").write_bytes(SECRET)  # inside the web root, outside static/
    (tmp_path / "outside.js").write_bytes(SECRET)
    return root


@pytest.fixture()
def client(tmp_path: Path, web: Path) -> Iterator[TestClient]:
    with _client(tmp_path, web) as c:
        yield c


def _security_headers_ok(r, *, hsts: bool = False) -> None:
    h = r.headers
    assert h["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["permissions-policy"] == PERMISSIONS_POLICY
    assert h["cross-origin-opener-policy"] == "same-origin"
    assert h["cross-origin-resource-policy"] == "same-origin"
    assert ("strict-transport-security" in h) is hsts


def test_the_csp_allows_no_inline_script_eval_or_other_origin() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'" and directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'none'"
    for value in directives.values():
        assert "unsafe" not in value and "http" not in value and "*" not in value
    assert PERMISSIONS_POLICY.startswith("camera=(self), ")
    assert all(p.endswith("=()") for p in PERMISSIONS_POLICY.split(", ")[1:])


def test_pages_are_served_as_html_and_revalidated(client: TestClient, web: Path) -> None:
    for address, name in PAGES.items():
        r = client.get(address)
        assert r.status_code == 200 and r.content == (web / "pages" / name).read_bytes()
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
        _security_headers_ok(r)
        again = client.get(address, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        _security_headers_ok(again)
    # the digital-ID redirect target is the one the operator guide registers
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operator-guide.md").read_text(encoding="utf-8")
    assert 'oidc_redirect_uri = "https://vote.example.jp/vote/oidc-callback"' in guide
    assert client.get("/vote/oidc-callback?code=abc&state=xyz").status_code == 200


def test_static_files_have_their_types_and_caching(client: TestClient) -> None:
    expected = {
        "/static/booth-IJKLMNOP.js": ("text/javascript; charset=utf-8", "immutable"),
        "/static/booth-ABCDEFGH.css": ("text/css; charset=utf-8", "immutable"),
        "/static/booth.webmanifest": ("application/manifest+json", "no-cache"),
        "/static/img/logo.svg": ("image/svg+xml", "no-cache"),
        "/static/assets.json": ("application/json", "no-cache"),
    }
    for address, (ctype, cache) in expected.items():
        r = client.get(address)
        assert r.status_code == 200, address
        assert r.headers["content-type"] == ctype
        assert (
            r.headers["cache-control"] == "public, max-age=31536000, immutable"
            if cache == "immutable"
            else r.headers["cache-control"] == "no-cache"
        )
        _security_headers_ok(r)
    assert client.get("/static/booth-IJKLMNOP.js").content == SCRIPT


def test_text_goes_out_gzipped_to_a_browser_that_accepts_it(tmp_path: Path, web: Path) -> None:
    """A script over 1 KiB: gzip when accepted (its own ETag, Vary), the same decoded bytes; identity when
    gzip is not accepted or refused with q=0; a small file or an image is never compressed."""
    big = b"export const x = [" + b",".join(str(i).encode() for i in range(3000)) + b"];\n"
    (web / "static" / "big-QRSTUVWX.js").write_bytes(big)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    (web / "static" / "img" / "photo.png").write_bytes(png)
    with _client(tmp_path, web) as client:
        address = "/static/big-QRSTUVWX.js"
        r = client.get(address, headers={"Accept-Encoding": "br, gzip;q=0.8"})
        assert r.status_code == 200 and r.content == big  # decoded by the client
        assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
        assert int(r.headers["content-length"]) == r.num_bytes_downloaded < len(big) // 2
        digest = hashlib.sha256(big).hexdigest()
        assert r.headers["etag"] == f'"{digest}-gzip"'
        again = client.get(address, headers={"Accept-Encoding": "gzip", "If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        head = client.head(address, headers={"Accept-Encoding": "gzip"})
        assert head.headers["content-length"] == r.headers["content-length"] and head.content == b""
        for refused in ("identity", "gzip;q=0", "br", "gzip;q=zero", ""):
            plain = client.get(address, headers={"Accept-Encoding": refused})
            assert "content-encoding" not in plain.headers, refused
            assert plain.content == big and plain.headers["etag"] == f'"{digest}"'
            assert plain.headers["vary"] == "Accept-Encoding"
        gzip_etag = {"Accept-Encoding": "identity", "If-None-Match": r.headers["etag"]}
        stale = client.get(address, headers=gzip_etag)
        assert stale.status_code == 200 and stale.content == big  # the gzip ETag is not the plain file's
        for small_or_image in ("/static/booth-IJKLMNOP.js", "/static/img/photo.png"):
            r = client.get(small_or_image, headers={"Accept-Encoding": "gzip"})
            assert r.status_code == 200 and "content-encoding" not in r.headers, small_or_image
            assert "vary" not in r.headers
        assert client.get("/static/img/photo.png").content == png


def test_what_is_listed_is_exactly_what_is_served(client: TestClient, web: Path) -> None:
    listing = served_assets(web)
    files = ("assets.json", "booth-ABCDEFGH.css", "booth-IJKLMNOP.js", "booth.webmanifest", "img/logo.svg")
    assert [a.path for a in listing.assets] == sorted([*PAGES, *(f"/static/{n}" for n in files)])
    for a in listing.assets:
        r = client.get(a.path)
        assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == a.sha256
        assert len(r.content) == a.bytes


def test_assets_json_matches_the_served_files(client: TestClient) -> None:
    _assets_json_matches(client)


def _assets_json_matches(client: TestClient) -> None:
    assets = client.get("/static/assets.json").json()
    assert assets, "assets.json lists no file"
    for name, want in assets.items():
        r = client.get(f"/static/{name}")
        assert r.status_code == 200, name
        assert hashlib.sha256(r.content).hexdigest() == want["sha256"] and len(r.content) == want["bytes"]
        assert sri(r.content) == "sha384-" + want["sha384"].removeprefix("sha384-")


def test_every_test_page_loads_only_same_origin_subresources_with_integrity(client: TestClient) -> None:
    for address in PAGES:
        assert subresource_problems(client, address) == []


def test_the_subresource_check_catches_what_the_csp_or_sri_would_refuse(tmp_path: Path, web: Path) -> None:
    bad = {
        "index.html": page(
            "x", extra='<script>alert(1)</script><script src="https://cdn.example.com/x.js"></script>'
        ),
        "vote.html": page("x", extra='<button onclick="go()">go</button>'),
        "check.html": page("x", script=b"something else"),
        "oidc-callback.html": page("x", extra='<link rel="stylesheet" href="/static/booth-ABCDEFGH.css">'),
    }
    for name, data in bad.items():
        (web / "pages" / name).write_bytes(data)
    with _client(tmp_path, web) as c:
        found = {address: subresource_problems(c, address) for address in PAGES}
    assert "inline <script>" in found["/"][0]
    assert "inline event handler onclick" in found["/vote"][0]
    assert "integrity does not match" in found["/check"][0]
    assert any("not a same-origin" in problem for problem in found["/"]), found["/"]
    assert "no integrity attribute" in found["/vote/oidc-callback"][0]


def test_the_packages_pages_load_only_same_origin_subresources_with_integrity(tmp_path: Path) -> None:
    """Once the build has put the booth's pages into the package (``voting/web/pages``), every one of them."""
    listing = served_assets(PACKAGE_WEB_ROOT)
    pages = [a.path for a in listing.assets if a.path in PAGES]
    with _client(tmp_path, None) as c:
        if not pages:
            for address in PAGES:  # no booth built into the package yet: a clean 404, not a crash
                assert error_code(c.get(address), 404) == "booth.not_found"
            pytest.skip("the package has no booth pages yet (voting/web/pages)")
        for address in pages:
            assert subresource_problems(c, address) == []
            _security_headers_ok(c.get(address))
        if (PACKAGE_WEB_ROOT / "static" / "assets.json").is_file():
            _assets_json_matches(c)


def test_a_missing_page_or_file_is_a_documented_404(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with _client(tmp_path, empty) as c:
        for address in (*PAGES, "/static/booth.js", "/static/"):
            r = c.get(address)
            assert error_code(r, 404) == "booth.not_found", address
            _security_headers_ok(r)
        assert served_assets(empty).assets == ()
    with _client(tmp_path, tmp_path / "does-not-exist") as c:
        assert error_code(c.get("/"), 404) == "booth.not_found"


TRAVERSALS = [
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/secret.txt",
    "/static/..%2fsecret.txt",
    "/static/%2e%2e%2fsecret.txt",
    "/static/%2e%2e%2f%2e%2e%2foutside.js",
    "/static/%2fetc%2fpasswd",
    "/static//etc/passwd",
    "/static/img/%2e%2e/%2e%2e/secret.txt",
    "/static/..%5csecret.txt",
    "/static/%5c..%5csecret.txt",
    "/static/assets.json%00.js",
    "/static/.%2e/pages/index.html",
    "/static/img",
    "/static/img/",
    "/static/.hidden.js",
    "/static/booth-IJKLMNOP.JS.py",
    "/static/%252e%252e/secret.txt",
]


def test_traversal_is_refused(client: TestClient, web: Path) -> None:
    (web / "static" / ".hidden.js").write_bytes(SECRET)
    (web / "static" / "booth-IJKLMNOP.JS.py").write_bytes(SECRET)  # exists, but not a type the booth serves
    for address in TRAVERSALS:
        r = client.get(address)
        assert r.status_code == 404, address
        assert SECRET not in r.content and error_code(r, 404) in ("booth.not_found", "not_found"), address
        _security_headers_ok(r)
    assert all(SECRET.decode() not in a.path for a in served_assets(web).assets)
    assert not any(a.path.endswith((".py", ".hidden.js")) for a in served_assets(web).assets)


def test_symlinks_and_special_files_are_neither_served_nor_listed(client: TestClient, web: Path) -> None:
    static = web / "static"
    (static / "inside.js").symlink_to(static / "booth-IJKLMNOP.js")  # even to a file that is served
    (static / "outside.js").symlink_to(web.parent / "outside.js")
    (static / "linked").symlink_to(web / "pages", target_is_directory=True)
    (static / "root").symlink_to("/", target_is_directory=True)
    os.mkfifo(static / "pipe.js")
    (web / "pages" / "check.html").unlink()
    (web / "pages" / "check.html").symlink_to(web / "pages" / "vote.html")
    for address in (
        "/static/inside.js",
        "/static/outside.js",
        "/static/linked/index.html",
        "/static/root/etc/hostname.txt",
        "/static/pipe.js",
        "/check",
    ):
        r = client.get(address)
        assert error_code(r, 404) == "booth.not_found", address
    listed = {a.path for a in served_assets(web).assets}
    assert not listed & {"/static/inside.js", "/static/outside.js", "/static/pipe.js", "/check"}
    assert not any(p.startswith(("/static/linked", "/static/root")) for p in listed)
    assert "/vote" in listed and "/static/booth-IJKLMNOP.js" in listed


def test_a_symlinked_web_root_itself_is_followed_once(tmp_path: Path, web: Path) -> None:
    """The operator may point ``web_root`` at a symbolic link (a release folder); below it, no link counts."""
    link = tmp_path / "current"
    link.symlink_to(web, target_is_directory=True)
    with _client(tmp_path, link) as c:
        assert c.get("/").status_code == 200
    assert served_assets(link).digest == served_assets(web).digest


def test_head_options_and_other_methods(client: TestClient) -> None:
    for address in ("/", "/static/booth-IJKLMNOP.js"):
        got = client.get(address)
        r = client.head(address)
        assert r.status_code == 200 and r.content == b""
        assert r.headers["content-length"] == str(len(got.content))
        assert r.headers["etag"] == got.headers["etag"]
        assert r.headers["content-type"] == got.headers["content-type"]
        _security_headers_ok(r)
        for method in ("OPTIONS", "POST", "PUT", "DELETE"):
            r = client.request(method, address)
            assert error_code(r, 405) == "method_not_allowed", (method, address)
            _security_headers_ok(r)
    assert client.head("/static/nope.js").status_code == 404


def test_a_huge_path_is_a_cheap_404(client: TestClient) -> None:
    # (the test client's URLs stop at 64 KiB; longer request lines are the real server's, below)
    long = ("/static/" + "a" * 60_000 + ".js", "/static/" + "a/" * 5_000 + "x.js", "/" + "v" * 50_000)
    for address in long:
        t0 = time.monotonic()
        r = client.get(address)
        assert r.status_code == 404 and time.monotonic() - t0 < 2
        _security_headers_ok(r)


def test_every_response_carries_the_security_headers(tmp_path: Path, web: Path) -> None:
    settings = _settings(tmp_path, web)
    service = ElectionService.from_settings(settings)
    app = create_app(settings, service=service)

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a bug")

    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            responses = [
                c.get("/api/v1/election"),  # 404 election.none
                c.get("/healthz"),
                c.get("/openapi.json"),
                c.post("/api/v1/admin/election", json={}),  # 401
                c.post("/api/v1/ledger/cosignature", content=b"x" * (2 << 20)),  # 413 before any route
                c.get("/boom"),  # 500 from the outermost error handler
                c.get("/nothing-here"),
            ]
            assert [r.status_code for r in responses] == [404, 200, 200, 401, 413, 500, 404]
            for r in responses:
                _security_headers_ok(r)
    finally:
        service.close()


def test_hsts_is_sent_in_production_only(tmp_path: Path, web: Path) -> None:
    with _client(tmp_path, web) as c:
        assert "strict-transport-security" not in c.get("/").headers
    settings = _settings(tmp_path, web)
    service = ElectionService.from_settings(settings)
    app = create_app(settings, service=service)
    # what production serves (its start-up checks are tested elsewhere): the headers follow the environment
    app.state.settings = settings.with_(environment="production")
    try:
        with TestClient(app) as c:
            r = c.get("/")
            _security_headers_ok(r, hsts=True)
            assert r.headers["strict-transport-security"] == "max-age=31536000"
    finally:
        service.close()


def test_the_interactive_docs_are_off_and_the_schema_is_local(client: TestClient) -> None:
    for address in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert error_code(client.get(address), 404) == "not_found"
    schema = client.get("/openapi.json")
    assert schema.status_code == 200 and "cdn" not in schema.text.lower()
    paths = schema.json()["paths"]
    assert "/api/v1/election/booth" in paths and "/api/v1/voter/check/{tracking_code}" in paths
    assert "/static/{name}" not in paths and "/" not in paths


# ------------------------------------------------------------------------------------- a real server


def _raw(port: int, target: bytes, method: bytes = b"GET") -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:  # the server refused the request line and dropped the connection
            return 0, data
    if not data:
        return 0, b""
    return int(data.split(b" ", 2)[1]), data


def test_raw_traversal_on_a_real_server(tmp_path: Path, web: Path) -> None:
    """What a client that does not normalise the path sends (``..`` as it is), over a real socket."""
    app_py = (Path(__file__).resolve().parents[2] / "voting" / "app.py").read_bytes()
    with real_server(_settings(tmp_path, web)) as port:
        status, data = _raw(port, b"/static/booth-IJKLMNOP.js")
        assert status == 200 and data.endswith(SCRIPT)
        for target in (
            b"/static/../secret.txt",
            b"/static/../../outside.js",
            b"/static/../voting/app.py",
            b"/static/../../../../../../etc/passwd",
            b"/static/%2e%2e/%2e%2e/voting/app.py",
            b"/static/..\\..\\secret.txt",
            b"/static/img/../../secret.txt",
            b"/static/./../pages/index.html",
        ):
            status, data = _raw(port, target)
            assert status in (400, 404), (target, status)
            assert SECRET not in data and app_py[:200] not in data, target
        # a request line far longer than any address: refused before (or by) the app, never served
        status, data = _raw(port, b"/static/" + b"a" * 200_000 + b".js")
        assert status in (0, 400, 404, 414, 431) and SECRET not in data
        status, data = _raw(port, b"/", method=b"OPTIONS")
        assert status == 405 and b"content-security-policy" in data.lower()
        assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "method_not_allowed"
