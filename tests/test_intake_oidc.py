"""Digital-ID casting over real HTTP: a real local OIDC provider (code flow + PKCE), the nonce bound to the
ballot hash, the face-match hook; the record keeps only the decision and the engine id."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from _service_util import start_election_on

from voting._cli_demo import DemoElection, demo_live_capture, login_as, make_residents, tsukuba_manifest
from voting._testca import JpkiTestCa, RsaKeyPool
from voting.client import ServerError

pytestmark = pytest.mark.xdist_group("intake-oidc")

CHOICE = {"mayor": ["cand-1"], "referendum": ["yes"], "subsidy": ["proj-2"]}


@pytest.fixture(scope="module")
def election(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Any:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    everyone = make_residents(6, ca, now, pool=RsaKeyPool(2))
    on_roll, outsider = everyone[:5], everyone[5]
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    with start_election_on(
        module_database_url,
        tmp_path_factory.mktemp("oidc"),
        on_roll,
        ca,
        manifest,
        oidc_residents=[*on_roll, outsider],
    ) as e:
        e.outsider = outsider  # type: ignore[attr-defined]
        yield e


def test_oidc_cast_records_decision_and_engine_only(election: DemoElection) -> None:
    e = election
    r = e.residents[0]
    login_as(e.oidc_provider, r)
    with e.client() as c:
        receipt = c.cast_oidc(CHOICE, face=demo_live_capture(r))
        c.verify_receipt(receipt)
    entry = e.service.ledger.entry(receipt.leaf_index)
    auth = entry.payload["auth"]
    assert auth["method"] == "oidc+face"
    assert auth["face"] == {"decision": True, "engine": "tvote-deterministic-test-matcher/1"}
    assert set(auth) == {"method", "evidence_hash", "face"}
    text = entry.canonical.decode()
    assert r.person.name not in text and r.person.address not in text and "eyJ" not in text  # no ID token
    ev = e.http.get(
        f"/api/v1/voter/evidence/{auth['evidence_hash']}",
        headers={"Authorization": f"Bearer {e.admin_token}"},
    ).json()
    assert ev["method"] == "oidc+face" and ev["id_token"].startswith("eyJ")
    assert ev["face"]["liveness"] is True and "image" not in ev["face"]


def test_login_bound_to_another_ballot_is_refused(election: DemoElection) -> None:
    e = election
    r = e.residents[1]
    login_as(e.oidc_provider, r)
    with e.client() as c:
        a, b = c.prepare(CHOICE), c.prepare({"mayor": [], "referendum": [], "subsidy": []})
        start = c._call("POST", "/voter/oidc/start", json={"ballot_hash": a.ballot_hash.hex()})
        cb = c._follow_provider(start["authorization_url"])
        code = cb.split("code=")[1].split("&")[0]
        before = e.ledger_size()
        body = {
            "ballot": b.ballot.to_dict(),
            "auth": {
                "method": "oidc+face",
                "state": start["state"],
                "code": code,
                "face": demo_live_capture(r),
            },
        }
        resp = e.http.post("/api/v1/voter/ballots", json=body)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "oidc.nonce"
        assert e.ledger_size() == before
        # the same login still works for the ballot it was bound to, once
        body["ballot"] = a.ballot.to_dict()
        assert e.http.post("/api/v1/voter/ballots", json=body).status_code == 200
        body["ballot"] = b.ballot.to_dict()
        resp = e.http.post("/api/v1/voter/ballots", json=body)
        assert resp.status_code == 401 and resp.json()["error"]["code"] in ("oidc.state", "oidc.nonce")


@pytest.mark.parametrize(
    ("face", "code"),
    [
        (
            {"media_type": "image/png", "image": b"someone else".hex(), "liveness_evidence": "aa"},
            "face.rejected",
        ),
        ({"media_type": "image/png", "image": None, "liveness_evidence": ""}, "face.rejected"),
    ],
)
def test_face_mismatch_or_no_liveness_is_refused(
    election: DemoElection, face: dict[str, Any], code: str
) -> None:
    e = election
    r = e.residents[2]
    if face["image"] is None:  # the right face but no liveness evidence
        face = {**demo_live_capture(r), "liveness_evidence": ""}
    login_as(e.oidc_provider, r)
    before = e.ledger_size()
    with e.client() as c, pytest.raises(ServerError) as err:
        c.cast_oidc(CHOICE, face=face)
    assert err.value.status == 401 and err.value.code == code
    assert e.ledger_size() == before


def test_digital_id_of_someone_not_on_the_roll_is_refused(election: DemoElection) -> None:
    e = election
    outsider = e.outsider  # type: ignore[attr-defined]
    login_as(e.oidc_provider, outsider)
    before = e.ledger_size()
    with e.client() as c, pytest.raises(ServerError) as err:
        c.cast_oidc(CHOICE, face=demo_live_capture(outsider))
    assert err.value.status == 403 and err.value.code == "voter.not_on_roll"
    assert e.ledger_size() == before
