"""Issue 10, "Production by default": client addresses, rate-limit keys, body limits, slow uploads and path
numbers, each against the REAL ``tvote serve`` process (uvicorn on loopback), as an attacker would send them.

* A client rotating ``X-Forwarded-For`` (or ``Forwarded``) did not share a bucket with itself, because
  uvicorn believed the header from 127.0.0.1: now a header is believed only from ``TVOTE_TRUSTED_PROXIES``.
* Behind a trusted proxy, many voters share one address (carrier NAT, polling place): the per-address
  ceiling is generous, and the tight limit is per voting session / credential, which rotating addresses
  does not escape.
* Each route's body limit is what the route accepts (the face image allowed 8 MB of hex inside a 1 MiB
  body); a body that trickles in is cut with 408; numbers in paths that do not fit are 422, never a
  plain-text 500.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _serve_util import Cli, free_port, server_env, start_server, stop_server
from _service_util import manifest_dict

from voting.api.voter import BODY_LIMITS, MAX_FACE_IMAGE_BYTES, MAX_LIVENESS_BYTES

pytestmark = pytest.mark.xdist_group("serve")

API = "/api/v1"
ADMIN_TOKEN = secrets.token_urlsafe(32)


class Server:
    def __init__(self, base: str, port: int, log: Path) -> None:
        self.base, self.port, self.log = base, port, log
        self.http = httpx.Client(base_url=base + API, timeout=60)

    def code(self, r: httpx.Response) -> str:
        """The error code, asserting the one documented shape (docs/api.md)."""
        assert r.headers.get("content-type", "").startswith("application/json"), (r.status_code, r.text[:300])
        body = r.json()
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
        return str(body["error"]["code"])


def _serve(tmp: Path, **settings: Any) -> Iterator[Server]:
    lines = ['environment = "test"', *(f"{k} = {json.dumps(v)}" for k, v in settings.items())]
    config = tmp / "tvote.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    port = free_port()
    cli = Cli(server_env(TVOTE_ADMIN_TOKEN=ADMIN_TOKEN))
    log = tmp / "server.log"
    with log.open("w") as out:
        proc = start_server(cli, port, tmp / "data", config, output=out)
        try:
            server = Server(f"http://127.0.0.1:{port}", port, log)
            # an election exists, so every route reaches its service (and the ledger its database)
            r = server.http.post(
                "/admin/election", json=manifest_dict(), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            assert r.status_code == 201, r.text
            yield server
        finally:
            stop_server(proc)


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No proxy configured: every client is its TCP peer."""
    yield from _serve(tmp_path_factory.mktemp("direct"), rate_limit_per_address=5)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Behind a reverse proxy on 127.0.0.1 that sets X-Forwarded-For."""
    yield from _serve(
        tmp_path_factory.mktemp("proxied"),
        trusted_proxies=["127.0.0.1"],
        rate_limit_per_address=6,
        rate_limit=2,
    )


@pytest.fixture(scope="module")
def limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Generous rate limits and a 2 s body timeout."""
    yield from _serve(
        tmp_path_factory.mktemp("limits"), rate_limit=100_000, rate_limit_per_address=100_000, body_timeout=2
    )


def _jpki_cast(certificate: bytes) -> dict[str, Any]:
    """A well-formed cast request with a card certificate (the signature need not verify: the limits run
    before any check)."""
    return {
        "ballot": {},
        "auth": {
            "method": "jpki",
            "certificate": certificate.hex(),
            "intermediates": [],
            "signature": "00" * 256,
            "challenge": "00" * 32,
        },
    }


def _oidc_cast(image_bytes: int, liveness_bytes: int = 0) -> dict[str, Any]:
    return {
        "ballot": {},
        "auth": {
            "method": "oidc+face",
            "state": "s" * 32,
            "code": "c",
            "face": {
                "media_type": "image/jpeg",
                "image": "ab" * image_bytes,
                "liveness_evidence": "cd" * liveness_bytes,
            },
        },
    }


# ------------------------------------------------------------------------------------- client addresses


def test_rotating_forwarded_headers_do_not_escape_the_address_limit(direct: Server) -> None:
    """No proxy is configured, so X-Forwarded-For and Forwarded are the client's own words: ignored."""
    statuses = []
    for i in range(9):
        headers = {"X-Forwarded-For": f"198.51.100.{i}", "Forwarded": f"for=203.0.113.{i}"}
        r = direct.http.post("/voter/challenge", headers=headers)
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert direct.code(r) == "rate_limited" and int(r.headers["retry-after"]) >= 1
    assert 429 not in statuses[:5] and set(statuses[5:]) == {429}, statuses
    # the spoofed addresses are nowhere in the server's output
    log = direct.log.read_text()
    assert "198.51.100." not in log and "203.0.113." not in log


def test_a_trusted_proxys_header_is_believed_and_read_from_the_right(proxied: Server) -> None:
    # the proxy reports distinct clients: each has its own bucket
    for i in range(10):
        r = proxied.http.post("/voter/challenge", headers={"X-Forwarded-For": f"198.51.100.{i}"})
        assert r.status_code != 429, (i, r.text)
    # one client, whatever it writes to the left of what the proxy appended (and whatever Forwarded says)
    statuses = []
    for i in range(8):
        headers = {"X-Forwarded-For": f"10.9.9.{i}, 192.0.2.77", "Forwarded": f"for=10.8.8.{i}"}
        statuses.append(proxied.http.post("/voter/challenge", headers=headers).status_code)
    assert 429 not in statuses[:6] and set(statuses[6:]) == {429}, statuses
    # IPv6 clients count per /64: rotating the interface identifier does not help
    statuses = []
    for i in range(8):
        headers = {"X-Forwarded-For": f"2001:db8:1:2::{i + 1:x}"}
        statuses.append(proxied.http.post("/voter/challenge", headers=headers).status_code)
    assert set(statuses[6:]) == {429}, statuses
    assert "192.0.2.77" not in proxied.log.read_text()


def test_limits_are_per_credential_not_per_address(proxied: Server) -> None:
    """Many voters behind one address (carrier NAT, polling place) are not each other's limit; one card
    hammering the server is refused from any address."""
    nat = {"X-Forwarded-For": "198.51.100.200"}
    cards = [secrets.token_bytes(600) for _ in range(3)]
    for card in cards:  # three voters behind one address: 2 tries each is within the per-credential limit
        for _ in range(2):
            r = proxied.http.post("/voter/ballots", json=_jpki_cast(card), headers=nat)
            assert r.status_code != 429, r.text
    # a fourth voter from the same address is over the address ceiling (6): the ceiling still holds
    r = proxied.http.post("/voter/ballots", json=_jpki_cast(secrets.token_bytes(600)), headers=nat)
    assert r.status_code == 429 and proxied.code(r) == "rate_limited"
    # one card from rotating addresses: the third try is refused for the card
    card = secrets.token_bytes(600)
    codes = []
    for i in range(3):
        r = proxied.http.post(
            "/voter/ballots", json=_jpki_cast(card), headers={"X-Forwarded-For": f"192.0.2.{i}"}
        )
        codes.append(proxied.code(r) if r.status_code == 429 else r.status_code)
    assert codes[:2] != ["session.rate_limited"] * 2 and codes[2] == "session.rate_limited", codes


# ------------------------------------------------------------------------------------------- body limits


def test_body_limits_agree_with_what_the_route_accepts(limits: Server) -> None:
    # the largest face capture the validator accepts is not refused for its size (it used to be: 413)
    r = limits.http.post("/voter/ballots", json=_oidc_cast(MAX_FACE_IMAGE_BYTES, MAX_LIVENESS_BYTES))
    assert r.status_code not in (413, 422) or limits.code(r) not in (
        "request.too_large",
        "request.invalid",
    ), r.text
    # one byte more is refused by the validator, naming the field
    r = limits.http.post("/voter/ballots", json=_oidc_cast(MAX_FACE_IMAGE_BYTES + 1))
    assert r.status_code == 422 and limits.code(r) == "request.invalid", r.text[:300]
    assert any(p["loc"][-1] == "image" for p in r.json()["error"]["details"]), r.text[:300]
    # a body larger than anything the route accepts is refused before it is read
    limit = BODY_LIMITS[("POST", "/voter/ballots")]
    r = limits.http.post(
        "/voter/ballots", content=b" " * (limit + 1), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and limits.code(r) == "request.too_large"
    # a small route does not read a megabyte (it used to accept up to 1 MiB on every route)
    big = {"ballot_hash": "00" * 32, "redirect_uri": "x" * 100_000}
    r = limits.http.post("/voter/oidc/start", json=big)
    assert r.status_code == 413 and limits.code(r) == "request.too_large"
    r = limits.http.post("/ledger/cosignature", json={"witness": "w" * 5000, "size": 1, "signature": "00"})
    assert r.status_code == 413 and limits.code(r) == "request.too_large"
    # a GET takes no body
    r = limits.http.request("GET", "/election", content=b"x" * 10)
    assert r.status_code == 413 and limits.code(r) == "request.too_large"


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_a_body_that_trickles_in_is_cut_with_408(limits: Server) -> None:
    """A slow-loris upload: headers, then a byte now and then. Cut after ``body_timeout`` (2 s here)."""
    with socket.create_connection(("127.0.0.1", limits.port), timeout=15) as sock:
        sock.sendall(
            b"POST /api/v1/voter/ballots HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
        )
        started = time.monotonic()
        sock.settimeout(0.4)
        response = b""
        for _ in range(30):  # keep trickling for up to about 12 s
            try:
                sock.sendall(b" ")
                response += sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if response:
                break
        sock.settimeout(15)
        try:
            response += _read_response(sock)
        except (ConnectionResetError, TimeoutError):
            pass
    elapsed = time.monotonic() - started
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), response[:300]
    assert json.loads(body)["error"]["code"] == "request.timeout"
    assert 1.5 <= elapsed < 10, elapsed
    # the server is fine
    assert limits.http.get("/election").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/ledger/checkpoint/99999999999999999999999",
        "/ledger/checkpoint/-1",
        "/ledger/checkpoint/one",
        "/ledger/entries?start=0&stop=99999999999999999999999",
        "/ledger/proof/inclusion?index=99999999999999999999999&tree_size=1",
        "/ledger/proof/consistency?old_size=-1&new_size=1",
    ],
)
def test_numbers_in_paths_that_do_not_fit_are_422_in_the_error_shape(limits: Server, path: str) -> None:
    """``GET /api/v1/ledger/checkpoint/99999999999999999999999`` answered a plain-text 500."""
    r = limits.http.get(path)
    assert r.status_code == 422 and limits.code(r) == "request.invalid", (path, r.status_code, r.text[:200])
