"""Digital-ID casting over real HTTP: a real local OIDC provider (code flow + PKCE), the nonce bound to the
ballot hash, the face-match hook; the record keeps only the decision and the engine id. One digital-ID
account votes as one roll resident (both ways, persisted); the face is compared with the photo of the
roll resident; a provider key rotation does not lock voters out; what the evidence table stores is pinned."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from typing import Any

import pytest
from _service_util import start_election_on
from cryptography import x509
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, select

from voting._errors import Conflict
from voting._intake_db import AuthEvidence, OidcSubjectBinding
from voting._roll import voter_alias
from voting.auth import LiveCapture, RollKey, subject_key
from voting.clients.voter import ServerError
from voting.testing import (
    TEST_FACE_ENGINE_ID,
    DemoElection,
    DevSubject,
    JpkiTestCa,
    RsaKeyPool,
    demo_claims,
    demo_live_capture,
    login_as,
    make_residents,
    tsukuba_manifest,
)

pytestmark = pytest.mark.xdist_group("intake-oidc")

CHOICE = {"mayor": ["cand-1"], "referendum": ["yes"], "subsidy": ["proj-2"]}


@pytest.fixture(scope="module")
def election(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Any:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    everyone = make_residents(13, ca, now, pool=RsaKeyPool(2))
    on_roll, outsider = everyone[:12], everyone[12]
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    with start_election_on(
        module_database_url,
        tmp_path_factory.mktemp("oidc"),
        on_roll,
        ca,
        manifest,
        oidc_residents=[*on_roll, outsider],
        oidc_jwks_min_refresh=1,
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
    assert auth["face"] == {"decision": True, "engine": TEST_FACE_ENGINE_ID}
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


# ----------------------------------------------------------------- one digital-ID account, one roll resident


def _as_account(e: DemoElection, sub: str, resident: Any) -> None:
    """The provider approves account ``sub``, whose verified claims are those of ``resident``."""
    e.oidc_provider.subject = DevSubject(sub, demo_claims(resident))


def _refused(e: DemoElection, face: dict[str, str], status: int, code: str) -> None:
    before = e.ledger_size()
    with e.client() as c, pytest.raises(ServerError) as err:
        c.cast_oidc(CHOICE, face=face)
    assert (err.value.status, err.value.code) == (status, code)
    assert e.ledger_size() == before


def test_one_account_votes_as_one_resident(election: DemoElection, caplog: pytest.LogCaptureFixture) -> None:
    e = election
    a, b = e.residents[3], e.residents[4]
    _as_account(e, "account-of-a-3", a)
    with e.client() as c:
        c.cast_oidc(CHOICE, face=demo_live_capture(a))
        c.cast_oidc(CHOICE, face=demo_live_capture(a))  # a re-vote with the same account is fine
    caplog.set_level(logging.WARNING, logger="tvote.intake")
    # the same account, now releasing (say, after a provider-side merge) the verified identity of b
    _as_account(e, "account-of-a-3", b)
    _refused(e, demo_live_capture(b), 409, "oidc.subject_bound")
    # another account for a, even with a's verified identity and a's face
    _as_account(e, "second-account-of-a-3", a)
    _refused(e, demo_live_capture(a), 409, "oidc.alias_bound")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "oidc.subject_bound" in logged and "oidc.alias_bound" in logged
    for secret in (
        "account-of-a-3",
        a.person.name,
        b.person.name,
        a.person.address,
        a.resident_id,
        a.person.birth_date.isoformat(),
    ):
        assert secret not in logged
    # b is still free to vote with b's own account
    _as_account(e, "account-of-b-4", b)
    with e.client() as c:
        c.cast_oidc(CHOICE, face=demo_live_capture(b))


def test_binding_is_in_the_database_and_survives_a_new_intake(election: DemoElection) -> None:
    """A freshly built intake (what a restarted server builds) knows the bindings from the database."""
    e = election
    a, b = e.residents[5], e.residents[6]
    _as_account(e, "account-of-a-5", a)
    with e.client() as c:
        c.cast_oidc(CHOICE, face=demo_live_capture(a))
    key = subject_key(RollKey(e.service.roll_key), e.oidc_provider.issuer, "account-of-a-5").hex()
    with Session(e.service.engine) as s:
        row = s.exec(select(OidcSubjectBinding).where(OidcSubjectBinding.subject_key == key)).one()
    assert row.election_id == e.service.election_id and row.issuer == e.oidc_provider.issuer
    assert row.voter_alias == voter_alias(e.service.roll_key, e.service.election_id, a.resident_id).hex()
    fresh = e.app.state.intake_provider.config.build(e.service)
    assert fresh is not e.intake
    _as_account(e, "account-of-a-5", b)
    with e.client() as c:
        prepared = c.prepare(CHOICE)
        start = fresh.begin_oidc(prepared.ballot_hash)
        callback = c._follow_provider(start.authorization_url)
    code = callback.split("code=")[1].split("&")[0]
    live = LiveCapture(bytes.fromhex(demo_live_capture(b)["image"]), "image/png", b"blink")
    before = e.ledger_size()
    with pytest.raises(Conflict) as err:
        fresh.cast_oidc(prepared.ballot.to_dict(), state=start.state, code=code, live=live)
    assert err.value.code == "oidc.subject_bound"
    assert e.ledger_size() == before


def test_face_is_compared_with_the_roll_residents_photo(election: DemoElection) -> None:
    """Account A, holding B's verified identity, tries to vote as roll resident B with A's own face. (The
    old hook fetched the reference by the caller's own account, so A's face matched A's photo.)"""
    e = election
    a, b = e.residents[7], e.residents[8]
    _as_account(e, a.resident_id, b)
    _refused(e, demo_live_capture(a), 401, "face.rejected")
    # the same account in front of the camera as B would pass: the check is about B's photo
    with e.client() as c:
        c.cast_oidc(CHOICE, face=demo_live_capture(b))


def test_unverified_identity_claims_do_not_reach_the_roll(election: DemoElection) -> None:
    e = election
    victim = e.residents[9]
    e.oidc_provider.subject = DevSubject(
        "self-asserted", {}, trust_framework=None, unverified_claims=demo_claims(victim)
    )
    _refused(e, demo_live_capture(victim), 403, "voter.unmatched")
    e.oidc_provider.subject = DevSubject("other-framework", demo_claims(victim), trust_framework="selfie_kyc")
    _refused(e, demo_live_capture(victim), 403, "voter.unmatched")
    e.oidc_provider.subject = DevSubject("weak-login", demo_claims(victim), acr="urn:tvote:dev:acr:low")
    _refused(e, demo_live_capture(victim), 401, "oidc.acr")
    e.oidc_provider.subject = DevSubject("old-login", demo_claims(victim), auth_age=3600)
    _refused(e, demo_live_capture(victim), 401, "oidc.auth_time")


def test_provider_key_rotation_mid_election(election: DemoElection) -> None:
    e = election
    r = e.residents[10]
    login_as(e.oidc_provider, r)
    with e.client() as c:
        c.cast_oidc(CHOICE, face=demo_live_capture(r))
    time.sleep(1.1)  # the configured minimum JWKS refresh interval of this election (1 s)
    e.oidc_provider.rotate_key()
    with e.client() as c:
        receipt = c.cast_oidc(CHOICE, face=demo_live_capture(r))
        c.verify_receipt(receipt)


# ---------------------------------------------------------------------- what the evidence table stores


def _jwt_claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def test_what_is_stored_where(election: DemoElection) -> None:
    """Pins docs/authentication.md "What is stored where": the evidence row holds the whole JPKI
    certificate (basic four, sex included) and the whole ID token (verified name, birth date, address);
    no table holds any of them in the clear."""
    e = election
    r = e.residents[11]
    login_as(e.oidc_provider, r)
    with e.client() as c:
        oidc_receipt = c.cast_oidc(CHOICE, face=demo_live_capture(r))
        jpki_receipt = c.cast_jpki(r.card, CHOICE)
    rows = {}
    with Session(e.service.engine) as s:
        for receipt in (oidc_receipt, jpki_receipt):
            entry = e.service.ledger.entry(receipt.leaf_index)
            auth = entry.payload["auth"]
            rows[auth["method"]] = s.get(AuthEvidence, auth["evidence_hash"])
    oidc_ev = json.loads(rows["oidc+face"].evidence)
    assert set(oidc_ev) == {
        "method",
        "election_base_hash",
        "ballot_hash",
        "nonce_salt",
        "issuer",
        "id_token",
        "face",
    }
    assert set(oidc_ev["face"]) == {"decision", "score", "threshold", "liveness", "engine_id"}
    claims = _jwt_claims(oidc_ev["id_token"])
    verified = claims["verified_claims"]["claims"]
    assert verified["name"] == r.person.name and verified["birthdate"] == r.person.birth_date.isoformat()
    assert verified["address"]["formatted"] == r.person.address
    assert "sex" not in json.dumps(claims) and "gender" not in json.dumps(claims)
    jpki_ev = json.loads(rows["jpki"].evidence)
    assert set(jpki_ev) == {
        "method",
        "election_base_hash",
        "ballot_hash",
        "challenge",
        "signature",
        "certificate",
        "intermediates",
        "trust_anchor_key_id",
    }
    cert = x509.load_der_x509_certificate(bytes.fromhex(jpki_ev["certificate"]))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    oids = {n.type_id.dotted_string for n in san.get_values_for_type(x509.OtherName)}
    assert {
        "1.2.392.200149.8.5.5.1",
        "1.2.392.200149.8.5.5.3",
        "1.2.392.200149.8.5.5.4",
        "1.2.392.200149.8.5.5.5",
    } <= oids  # name, sex, birth date, address: the whole certificate
    # nowhere in the clear: every column of every table of the server's database
    clear = (r.person.name, r.person.address)
    with Session(e.service.engine) as s:
        for table in SQLModel.metadata.sorted_tables:
            for row in s.execute(sa_select(table)):
                text = " ".join(str(v) for v in row)
                assert not any(x in text for x in clear), table.name


def test_binding_of_a_submission_never_appended_is_dropped_by_reconciliation(election: DemoElection) -> None:
    """A crash after the pending evidence (and the account's binding) was committed but before the ledger
    append: reconciliation deletes both, so the binding does not lock the resident out."""
    e = election
    alias = voter_alias(e.service.roll_key, e.service.election_id, "crashed-attempt").hex()
    now = dt.datetime.now(dt.UTC)
    orphan = "ab" * 32
    bound_to_alias = select(OidcSubjectBinding).where(OidcSubjectBinding.voter_alias == alias)
    with Session(e.service.engine) as s:
        assert s.exec(bound_to_alias).first() is None
        s.add(
            AuthEvidence(
                evidence_hash=orphan,
                election_id=e.service.election_id,
                voter_alias=alias,
                ballot_hash="cd" * 32,
                method="oidc+face",
                evidence="{}",
                created_at=now,
                status="pending",
            )
        )
        s.add(
            OidcSubjectBinding(
                election_id=e.service.election_id,
                subject_key="ef" * 32,
                voter_alias=alias,
                issuer=e.oidc_provider.issuer,
                evidence_hash=orphan,
                created_at=now,
            )
        )
        s.commit()
    e.service.reconcile()
    with Session(e.service.engine) as s:
        assert s.exec(bound_to_alias).first() is None
        assert s.get(AuthEvidence, orphan) is None


def test_new_codes_are_registered_and_documented() -> None:
    from pathlib import Path

    from voting.auth import ERROR_CODES
    from voting.service._intake_checks import ALIAS_BOUND, SUBJECT_BOUND

    docs = Path(__file__).resolve().parents[2] / "docs"
    voting_md, auth_md = (docs / "voting.md").read_text(), (docs / "authentication.md").read_text()
    for code in ("oidc.acr", "oidc.auth_time", "face.reference"):
        assert code in ERROR_CODES and f"`{code}`" in voting_md and f"`{code}`" in auth_md
    for code in (SUBJECT_BOUND, ALIAS_BOUND):
        assert code not in ERROR_CODES  # a service decision (409), not an authentication failure
        assert f"`{code}`" in voting_md and f"`{code}`" in auth_md
