"""The voter client and the manifest's pins (issue 11): a device that was given nothing out of band takes the
log key the manifest pins (bound by the base hash), not the one the server announces; a device given the
election's base hash refuses any other election; a log key given to the device that contradicts the
manifest's pin is refused."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import httpx
import pytest

from ledger.record import LogSigner, SignedCheckpoint
from voting.clients.voter import ElectionDataError, ReceiptError, VoterClient
from voting.testing import (
    DemoElection,
    JpkiTestCa,
    RsaKeyPool,
    make_residents,
    start_election,
    tsukuba_manifest,
)

pytestmark = pytest.mark.xdist_group("client")

CHOICE = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": []}


@pytest.fixture(scope="module")
def election(tmp_path_factory: pytest.TempPathFactory) -> Any:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(2, ca, now, pool=RsaKeyPool(2))
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    with start_election(tmp_path_factory.mktemp("pins"), residents, ca, manifest, pinned=True) as e:
        yield e


class _AnnouncesKey(httpx.BaseTransport):
    """The real server, except that ``GET /ledger/witnesses`` announces another log key."""

    def __init__(self, vkey: str) -> None:
        self.inner, self.vkey = httpx.HTTPTransport(), vkey

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.path == "/api/v1/ledger/witnesses":
            response.read()
            return httpx.Response(200, json={**json.loads(response.content), "log_key": self.vkey})
        return response


def test_without_a_key_the_device_uses_the_manifests_pin(election: DemoElection) -> None:
    e = election
    pinned = e.election_info().manifest["pins"]["log_key"]
    assert pinned == e.service.ledger.log_key.vkey
    with VoterClient(e.base_url) as c:
        r = c.complete_receipt(c.cast_jpki(e.residents[0].card, CHOICE))
        c.verify_receipt(r)
        assert c.key_source == "manifest" and c.log_key().vkey == pinned

    # a server that signs with another key (its receipts re-signed, that key announced) is refused: the
    # device never asks the server for the key when the manifest pins one
    real = SignedCheckpoint.verify(r.checkpoint, e.service.ledger.log_key).checkpoint
    evil = LogSigner.generate(real.origin)
    forged = dataclasses.replace(r, checkpoint=SignedCheckpoint.sign(real, evil).note)
    with VoterClient(e.base_url, transport=_AnnouncesKey(evil.public.vkey)) as c:
        with pytest.raises(ReceiptError) as err:
            c.verify_receipt(forged, check_latest=False)
        assert err.value.check == "checkpoint-signature"
        assert c.key_source == "manifest"


def test_a_key_given_to_the_device_must_be_the_manifests(election: DemoElection) -> None:
    e = election
    other = LogSigner.generate(e.service.ledger.log_key.name).public
    with VoterClient(e.base_url, log_key=other) as c, pytest.raises(ElectionDataError) as err:
        c.election()
    assert "pins the log key" in str(err.value)
    with VoterClient(e.base_url, log_key=e.service.ledger.log_key.vkey) as c:
        c.election()
        assert c.key_source == "pinned"


def test_a_device_given_the_base_hash_refuses_another_election(election: DemoElection) -> None:
    e = election
    base_hash = e.service.base_hash
    with VoterClient(e.base_url, base_hash=base_hash.hex()) as c:
        assert c.election().base_hash == base_hash
        with c.second_device() as phone:  # the second device inherits what this one was given
            assert phone.election().base_hash == base_hash
    wrong = bytes(b ^ 1 for b in base_hash)
    with VoterClient(e.base_url, base_hash=wrong) as c, pytest.raises(ElectionDataError) as err:
        c.election()
    assert "is not the one this device was given" in str(err.value)
    for bad in ("ab" * 31, "zz" * 32, b"\x00" * 31):
        with pytest.raises(ElectionDataError):
            VoterClient(e.base_url, base_hash=bad)
