"""The voter client and witnesses (issue 11, attack 3: a split view). The server holds the log key, so it can
sign any tree it likes; what it cannot forge is the witnesses' cosignatures. A malicious server here is the
real server behind a transport that rewrites its checkpoint answers, signed with the real log key."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _service_util import start_election_on

from ledger.record import Checkpoint, SignedCheckpoint
from voting.clients.voter import ReceiptError, VoterClient
from voting.testing import (
    DEMO_WITNESSES,
    DemoElection,
    JpkiTestCa,
    RsaKeyPool,
    make_residents,
    tsukuba_manifest,
)

pytestmark = pytest.mark.xdist_group("client")

CHOICE = {"mayor": ["cand-1"], "referendum": ["no"], "subsidy": []}


@pytest.fixture(scope="module")
def election(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Any:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(4, ca, now, pool=RsaKeyPool(4))
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    with start_election_on(
        module_database_url,
        tmp_path_factory.mktemp("witnessed"),
        residents,
        ca,
        manifest,
        witnesses=DEMO_WITNESSES,
    ) as e:
        yield e


Rewrite = Callable[[str, dict[str, Any]], dict[str, Any]]


class Rewriting(httpx.BaseTransport):
    """The real server, except that every checkpoint it serves goes through ``rewrite(path, body)``."""

    def __init__(self, rewrite: Rewrite) -> None:
        self.inner, self.rewrite = httpx.HTTPTransport(), rewrite

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.path.startswith("/api/v1/ledger/checkpoint"):
            response.read()
            body = self.rewrite(request.url.path, json.loads(response.content))
            return httpx.Response(200, json=body)
        return response


def _evil_client(e: DemoElection, rewrite: Rewrite) -> VoterClient:
    return VoterClient(e.base_url, log_key=e.service.ledger.log_key, transport=Rewriting(rewrite))


def _forged(e: DemoElection, size: int, root: bytes, like: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint the server signs with its own log key (it holds it), claimed witnessed."""
    signer = e.service.ledger.config.signer
    note = SignedCheckpoint.sign(Checkpoint(signer.name, size, root, like["issued_at"]), signer).note
    return {**like, "size": size, "root": root.hex(), "note": note, "witnessed": True}


def test_a_receipt_counts_only_under_the_witness_quorum(election: DemoElection) -> None:
    e = election
    with e.client() as c:
        r = c.cast_jpki(e.residents[0].card, CHOICE)
        assert c.witness_policy().quorum == 2
        with pytest.raises(ReceiptError) as err:
            c.verify_receipt(r)
        assert err.value.check == "checkpoint-unwitnessed"
        assert e.http.get("/api/v1/ledger/checkpoint").json()["witnessed"] is False
        e.cosign(["w1"])  # one of the quorum of two
        with pytest.raises(ReceiptError) as err:
            c.verify_receipt(r)
        assert err.value.check == "checkpoint-unwitnessed"
        e.cosign(["w3"])  # w2 is down: two of three still make the quorum
        latest = e.http.get("/api/v1/ledger/checkpoint").json()
        assert latest["witnessed"] is True and latest["cosignatures"]["signers"] == ["demo-w1", "demo-w3"]
        entry = c.verify_receipt(r)
        assert entry.payload["ballot_hash"] == r.ballot_hash


def test_a_checkpoint_no_witness_signed_is_refused(election: DemoElection) -> None:
    """The server extends its tree in private (a checkpoint signed with its log key, never shown to the
    witnesses) and serves it with the cosignatures of another checkpoint and "witnessed": true."""
    e = election
    with e.client() as c:
        r = c.cast_jpki(e.residents[1].card, CHOICE)
        r = c.complete_receipt(r)  # the scheduled checkpoint covers it before the witnesses' round
    e.cosign(["w1", "w2"])
    real = e.http.get("/api/v1/ledger/checkpoint").json()
    assert real["witnessed"] is True

    def private_tree(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return _forged(e, body["size"], b"\x42" * 32, body)  # same size, another root; cosignatures copied

    with _evil_client(e, private_tree) as evil, pytest.raises(ReceiptError) as err:
        evil.verify_receipt(r)
    assert err.value.check in ("checkpoint-cosignature", "consistency", "fork")
    with e.client() as honest:  # the same receipt from the honest server verifies
        honest.verify_receipt(r)


def test_a_fork_shown_to_one_device_is_refused(election: DemoElection) -> None:
    """The device saw the witnessed tree; later the server shows it another tree of the same size."""
    e = election
    with e.client() as c:
        r = c.cast_jpki(e.residents[2].card, CHOICE)
        r = c.complete_receipt(r)  # the scheduled checkpoint covers it before the witnesses' round
    e.cosign(["w1", "w2"])
    forked = {"on": False}

    def fork(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return _forged(e, body["size"], b"\x13" * 32, body) if forked["on"] else body

    with _evil_client(e, fork) as c:
        c.verify_receipt(r)  # the honest, witnessed view
        forked["on"] = True
        with pytest.raises(ReceiptError) as err:
            c.verify_receipt(r)
        assert err.value.check == "fork"


def test_a_larger_tree_that_does_not_extend_the_seen_one_is_refused(election: DemoElection) -> None:
    e = election
    with e.client() as c:
        r = c.cast_jpki(e.residents[3].card, CHOICE)
        r = c.complete_receipt(r)  # the scheduled checkpoint covers it before the witnesses' round
    e.cosign(["w2", "w3"])
    grown = {"on": False}

    def other_history(path: str, body: dict[str, Any]) -> dict[str, Any]:
        if not grown["on"] or path != "/api/v1/ledger/checkpoint":
            return body
        return _forged(e, body["size"] + 3, b"\x77" * 32, body)

    with _evil_client(e, other_history) as c:
        c.verify_receipt(r)
        grown["on"] = True
        with pytest.raises(ReceiptError) as err:
            c.verify_receipt(r)
        assert err.value.check == "consistency"
