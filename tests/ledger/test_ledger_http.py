"""The ledger's HTTP API (real FastAPI app, real SQLite ledger): reads, proofs, admin append, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _ledger_util import Clock, log_signer, policy, witnesses
from fastapi.testclient import TestClient

from ledger import Ledger, LedgerConfig, merkle
from ledger.record import Entry, SignedCheckpoint
from voting._ledger_api import create_app

TOKEN = "http-test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Ledger]]:
    with Ledger(
        f"sqlite:///{tmp_path / 'l.db'}", LedgerConfig(log_signer(), policy(1), clock=Clock())
    ) as led:
        yield TestClient(create_app(led, TOKEN)), led


def test_append_checkpoint_and_proofs_verify_offline(client: tuple[TestClient, Ledger]) -> None:
    c, led = client
    for i in range(6):
        r = c.post("/ledger/append", json={"type": "ballot.cast", "payload": {"i": i}}, headers=AUTH)
        assert r.status_code == 200 and r.json()["index"] == i
    assert c.post("/ledger/checkpoint", headers=AUTH).status_code == 200
    cp = c.get("/ledger/checkpoint").json()
    signed = SignedCheckpoint.verify(cp["note"], led.log_key)
    assert signed.checkpoint.size == 6 and cp["witnessed"] is False
    ents = c.get("/ledger/entries", params={"start": 0, "stop": 100}).json()["entries"]
    hashes = [Entry.from_bytes(e["entry"].encode()).hash for e in ents]
    assert [h.hex() for h in hashes] == [e["hash"] for e in ents]
    p = c.get("/ledger/proof/inclusion", params={"index": 4, "tree_size": 6}).json()
    merkle.verify_inclusion(hashes[4], 4, 6, [bytes.fromhex(h) for h in p["proof"]], signed.checkpoint.root)
    q = c.get("/ledger/proof/consistency", params={"old_size": 2, "new_size": 6}).json()
    merkle.verify_consistency(
        2, 6, merkle.root(hashes[:2]), signed.checkpoint.root, [bytes.fromhex(h) for h in q["proof"]]
    )
    w = witnesses()[0]
    r = c.post(
        "/ledger/cosignature", json={"witness": w.name, "size": 6, "signature": w.cosign(signed.body).hex()}
    )
    assert r.status_code == 200 and r.json()["witnessed"] is True
    assert c.get("/ledger/witnesses").json()["quorum"] == 1


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"type": "x"}',
        b'{"type": "x", "payload": {"f": 0.5}}',
        b'{"type": "BAD", "payload": {}}',
        b'{"type": "x", "payload": [], "extra": 1}',
        b'{"type": "x", "payload": {"a": 1, "a": 2}}',
    ],
)
def test_bad_appends_get_400_and_change_nothing(client: tuple[TestClient, Ledger], body: bytes) -> None:
    c, led = client
    r = c.post("/ledger/append", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert _code(r) == "ledger.invalid" and r.json()["error"]["message"]
    assert led.size == 0


def _code(r: Any) -> str:
    """The code of an error answer, asserting the one documented shape (docs/api.md)."""
    body = r.json()
    assert r.headers["content-type"].startswith("application/json"), r.text
    assert set(body) == {"error"} and set(body["error"]) >= {"code", "message"}, body
    return str(body["error"]["code"])


def test_every_error_has_the_documented_shape(client: tuple[TestClient, Ledger]) -> None:
    """The standalone ledger server answered ``{"detail", "error": "<class>"}`` and ``{"detail"}``, the
    election server ``{"error": {"code", "message"}}``: one shape now, as docs/api.md says."""
    c, led = client
    assert _code(c.get("/ledger/checkpoint")) == "ledger.not_found"
    assert _code(c.post("/ledger/append", json={"type": "x", "payload": {}})) == "auth.required"
    r = c.post("/ledger/append", json={"type": "x", "payload": {}}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and _code(r) == "auth.invalid"
    assert _code(c.get("/ledger/nothing")) == "not_found"
    r = c.post("/ledger/cosignature", json={"witness": "w"})
    assert r.status_code == 422 and _code(r) == "request.invalid"
    assert led.size == 0


@pytest.mark.parametrize(
    "path",
    [
        "/ledger/checkpoint/99999999999999999999999",
        "/ledger/checkpoint/9007199254740992",
        "/ledger/checkpoint/-1",
        "/ledger/checkpoint/abc",
        "/ledger/checkpoint/1e3",
        "/ledger/entries?start=0&stop=99999999999999999999999",
        "/ledger/entries?start=-5&stop=1",
        "/ledger/proof/inclusion?index=99999999999999999999999&tree_size=1",
        "/ledger/proof/inclusion?index=0&tree_size=0",
        "/ledger/proof/consistency?old_size=1&new_size=99999999999999999999999",
        "/ledger/proof/consistency?old_size=x&new_size=1",
    ],
)
def test_numbers_that_do_not_fit_are_422_not_500(client: tuple[TestClient, Ledger], path: str) -> None:
    """``GET /ledger/checkpoint/99999999999999999999999`` answered a plain-text 500 (the database could not
    hold the number): every ledger number is an integer from 0 to 2^53 - 1, else 422 ``request.invalid``."""
    c, led = client
    led.append("x", {})
    led.checkpoint()
    r = c.get(path)
    assert r.status_code == 422 and _code(r) == "request.invalid", (path, r.status_code, r.text[:200])


def test_admin_endpoints_need_the_token(client: tuple[TestClient, Ledger]) -> None:
    c, led = client
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = c.post("/ledger/append", json={"type": "x", "payload": {}}, headers=headers)
        assert r.status_code == 401 and _code(r).startswith("auth.")
        assert c.post("/ledger/checkpoint", headers=headers).status_code == 401
    assert led.size == 0


def test_errors_map_to_http(client: tuple[TestClient, Ledger]) -> None:
    c, led = client
    assert c.get("/ledger/checkpoint").status_code == 404
    led.append("x", {})
    led.checkpoint()
    assert c.get("/ledger/proof/inclusion", params={"index": 3, "tree_size": 1}).status_code == 404
    assert c.get("/ledger/proof/consistency", params={"old_size": 0, "new_size": 9}).status_code == 404
    bad = c.post("/ledger/cosignature", json={"witness": "witness-0", "size": 1, "signature": "00" * 96})
    assert bad.status_code in (400, 422)
    assert (
        c.post("/ledger/cosignature", json={"witness": "witness-0", "size": 1, "signature": "zz"}).status_code
        == 400
    )
    r = c.post("/ledger/cosignature", json={"witness": "witness-0", "size": 2**63, "signature": "00" * 96})
    assert r.status_code == 422 and _code(r) == "request.invalid"
    assert led.latest_checkpoint().cosignatures is None
    with pytest.raises(ValueError):
        create_app(led, "short")


def test_oversized_append_is_refused_413_and_changes_nothing(client: tuple[TestClient, Ledger]) -> None:
    c, led = client
    body = b'{"type": "x", "payload": {"s": "' + b"a" * (2 * 1024 * 1024) + b'"}}'
    r = c.post("/ledger/append", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request.too_large"
    assert led.size == 0
