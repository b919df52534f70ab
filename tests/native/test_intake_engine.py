"""The server's intake verifies ballots with the native engine when it is installed, and refuses a bad
ballot with the reference's own code and message. Skipped without the extension, except under
``TVOTE_REQUIRE_ALL=1`` (CI)."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import httpx
import pytest
from _service_util import start_election_on

from crypto import EncryptedBallot, Scalar, VerificationError, native_available, verify_ballot
from voting.testing import DemoElection, JpkiTestCa, make_residents, tsukuba_manifest

pytestmark = pytest.mark.xdist_group("intake")

CHOICE = {"mayor": ["cand-2"], "referendum": ["no"], "subsidy": ["proj-1", "proj-3"]}


@pytest.fixture(scope="module")
def election(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Any:
    if not native_available():
        why = "the native engine (tvote_native) is not installed: `make native` builds it"
        if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
            pytest.fail(f"required (TVOTE_REQUIRE_ALL=1): {why}")
        pytest.skip(why)
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(4, ca, now)
    manifest = tsukuba_manifest(now, small=True, trustees=3, threshold=2)
    with start_election_on(
        module_database_url, tmp_path_factory.mktemp("intake-native"), residents, ca, manifest
    ) as e:
        yield e


def _body(e: DemoElection, card: Any, ballot: dict[str, Any]) -> dict[str, Any]:
    challenge = bytes.fromhex(e.http.post("/api/v1/voter/challenge").json()["challenge"])
    sub = card.sign_ballot(e.service.base_hash, EncryptedBallot.from_dict(ballot).ballot_hash(), challenge)
    return {
        "ballot": ballot,
        "auth": {
            "method": "jpki",
            "certificate": sub.certificate_der.hex(),
            "intermediates": [],
            "signature": sub.signature.hex(),
            "challenge": challenge.hex(),
        },
    }


def test_intake_checks_cast_ballots_natively(election: DemoElection, monkeypatch: pytest.MonkeyPatch) -> None:
    import crypto._ballot_verify as reference

    e = election
    with e.client() as c:
        ballot = c.prepare(CHOICE).ballot.to_dict()
    calls: list[int] = []
    real = reference.verify_membership

    def counting(*a: Any, **kw: Any) -> None:
        calls.append(1)
        real(*a, **kw)

    monkeypatch.setattr(reference, "verify_membership", counting)
    r = e.http.post("/api/v1/voter/ballots", json=_body(e, e.residents[0].card, ballot))
    assert r.status_code == 200, r.text
    assert calls == []  # the proofs were checked by the native engine, not one by one by the reference

    # a mauled response: refused with the reference's code and message (the reference names it)
    bad = json.loads(json.dumps(ballot))
    proof = bad["contests"][1]["selections"][0]["proof"]
    proof["responses"][0] = (Scalar.from_hex(proof["responses"][0]) + 1).hex()
    with pytest.raises(VerificationError) as ref:
        verify_ballot(e.intake.context(), EncryptedBallot.from_dict(bad))
    before = e.ledger_size()
    r: httpx.Response = e.http.post("/api/v1/voter/ballots", json=_body(e, e.residents[1].card, bad))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == f"ballot.{ref.value.check}" == "ballot.selection-proof"
    assert r.json()["error"]["message"] == ref.value.operator_message
    assert e.ledger_size() == before
