"""Eligibility audited independently (issue 11, attack 2: "ballots for abstainers pass").

An election through the real service (real HTTP, JPKI test cards, the development OIDC provider) whose
manifest names the observers' oversight key. Intake keeps the private evidence only sealed to that key; the
observers' ``tvote audit-evidence`` re-verifies it from the record, the sealed export and their key alone.
Then a dishonest operator appends ballots for abstainers, a card re-used under a second alias, and evidence of
another election: ``tvote-verify`` still says VALID (it cannot see evidence), the audit names each of them.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel
from typer.testing import CliRunner

from crypto import ElectionContext, encrypt_ballot
from verifier import Options, verify_record
from voting._audit import audit_evidence
from voting._intake_db import AuthEvidence
from voting._oversight import generate_oversight_key, save_oversight_secret, sealed_evidence
from voting._roll import voter_alias
from voting.auth import JpkiEvidence, load_crl, new_challenge
from voting.cli import app as tvote_app
from voting.clients.trustee import KdfLimits
from voting.testing import (
    DEMO_WITNESSES,
    DemoElection,
    JpkiTestCa,
    RsaKeyPool,
    demo_live_capture,
    login_as,
    make_residents,
    start_election,
    tsukuba_manifest,
)

pytestmark = pytest.mark.xdist_group("audit-evidence")

CHOICE = {"mayor": ["cand-1"], "referendum": ["yes"], "subsidy": ["proj-2"]}
JPKI_VOTERS, OIDC_VOTERS = (0, 1, 2, 3), (4, 5)
ABSTAINERS = (6, 7, 8, 9)


class _World:
    def __init__(self, e: DemoElection, data_dir: Path, key: Any) -> None:
        self.e, self.data_dir, self.key = e, data_dir, key
        self.honest: dict[str, Any] = {}

    def alias(self, i: int) -> str:
        s = self.e.service
        return voter_alias(s.roll_key, s.election_id, self.e.residents[i].resident_id).hex()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self.e.oidc_provider.jwks_keys]}

    def crls(self) -> list[x509.CertificateRevocationList]:
        return [load_crl(f.read_bytes()) for f in sorted((self.data_dir / "jpki-crls").iterdir())]

    def snapshot(self, out: Path) -> tuple[Path, Path]:
        """What the observers receive: the sealed export (the admin route) and then the record."""
        export = self.e.admin("/evidence/export")
        (out / "evidence.json").write_text(json.dumps(export), encoding="utf-8")
        self.e.service.ledger.checkpoint()
        self.e.cosign()  # the witnesses' round: the record's newest checkpoint is witnessed (V5)
        self.e.service.ledger.export(out / "record")
        return out / "record", out / "evidence.json"

    def audit(self, record: Path, export: Path) -> Any:
        return audit_evidence(
            record,
            export,
            self.key,
            jpki_roots=[self.e.ca.certificate],
            crls=self.crls(),
            oidc_jwks=self.jwks(),
            accept_test_policy=True,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(10, ca, now, pool=RsaKeyPool(2))
    key = generate_oversight_key()
    manifest = tsukuba_manifest(now, small=True, trustees=1, threshold=1)
    manifest["oversight"] = {"x25519_public_key": bytes(key.public_key).hex()}
    data_dir = tmp_path_factory.mktemp("audit")
    oidc = [residents[i] for i in OIDC_VOTERS]
    with start_election(
        data_dir, residents, ca, manifest, now=now, oidc_residents=oidc, witnesses=DEMO_WITNESSES
    ) as e:
        w = _World(e, data_dir, key)
        with e.client() as c:
            for i in JPKI_VOTERS:
                w.honest[f"jpki-{i}"] = c.cast_jpki(residents[i].card, CHOICE)
            w.honest["revote-0"] = c.cast_jpki(
                residents[0].card, {"mayor": [], "referendum": [], "subsidy": []}
            )
            for i in OIDC_VOTERS:
                login_as(e.oidc_provider, residents[i])
                w.honest[f"oidc-{i}"] = c.cast_oidc(CHOICE, face=demo_live_capture(residents[i]))
        yield w


def test_the_server_keeps_no_plaintext_evidence(world: _World) -> None:
    e = world.e
    r = e.residents[JPKI_VOTERS[0]]
    cert_hex = r.card.certificate_der.hex()
    clear = (r.person.name, r.person.address, cert_hex, "eyJ")
    with Session(e.service.engine) as s:
        rows = s.exec(sa_select(AuthEvidence)).scalars().all()
        assert rows and all(row.sealed and row.evidence == "" for row in rows)
        for table in SQLModel.metadata.sorted_tables:
            for row in s.execute(sa_select(table)):
                text = " ".join(str(v) for v in row)
                assert not any(x in text for x in clear), table.name
    # the admin token no longer reads the evidence back: the server cannot open the sealed box
    evh = e.service.ledger.entry(world.honest["jpki-1"].leaf_index).payload["auth"]["evidence_hash"]
    got = e.http.get(f"/api/v1/voter/evidence/{evh}", headers={"Authorization": f"Bearer {e.admin_token}"})
    assert got.status_code == 409 and got.json()["error"]["code"] == "evidence.sealed"


def test_honest_election_passes_the_audit_and_the_export_is_logged(world: _World, tmp_path: Path) -> None:
    before = world.e.service.ledger.size
    record, export = world.snapshot(tmp_path)
    logged = world.e.service.ledger.entry(before)
    assert logged.type == "evidence.exported"
    assert logged.payload["evidence_count"] == len(world.honest)
    report = world.audit(record, export)
    assert report.ok, report.human()
    assert (report.ballots, report.justified) == (len(world.honest), len(world.honest))
    assert verify_record(record, Options(partial=True)).ok
    # the commission's command line writes the same kind of export (and logs it too)
    cli = CliRunner().invoke(
        tvote_app,
        ["admin", "export-evidence", "--server", world.e.base_url, "--out", str(tmp_path / "cli.json")],
        env={"TVOTE_ADMIN_TOKEN": world.e.admin_token},
    )
    assert cli.exit_code == 0, cli.output
    assert len(json.loads((tmp_path / "cli.json").read_text())["evidence"]) == len(world.honest)
    assert world.e.service.ledger.entry(world.e.service.ledger.size - 1).type == "evidence.exported"
    # an export nobody logged on the ledger (here: one sealed item dropped) is named, with the ballot
    tampered = json.loads(export.read_text())
    tampered["evidence"] = tampered["evidence"][1:]
    (tmp_path / "dropped.json").write_text(json.dumps(tampered))
    bad = world.audit(record, tmp_path / "dropped.json")
    assert {p.check for p in bad.problems} == {"export.not_logged", "evidence.missing"}


def _cast_entry(w: _World, alias: str, evidence_hash: str, rng: random.Random) -> tuple[int, str]:
    """What a dishonest operator can do: append a ``ballot.cast`` for ``alias`` straight to the ledger."""
    s = w.e.service
    ctx = ElectionContext(s.base_hash, s.joint_key().public_key, tuple(s.manifest.contest_specs()))
    ballot, _ = encrypt_ballot(ctx, CHOICE, rng=rng)
    bh = ballot.ballot_hash().hex()
    appended = s.ledger.append(
        "ballot.cast",
        {
            "election_id": s.election_id,
            "base_hash": s.base_hash.hex(),
            "ballot": ballot.to_dict(),
            "ballot_hash": bh,
            "tracking_code": ballot.tracking_code(),
            "voter_alias": alias,
            "roll_proof": s.roll_proof(bytes.fromhex(alias)).to_dict(),
            "channel": "internet",
            "auth": {"method": "jpki", "evidence_hash": evidence_hash},
            "seq": 1,
        },
    )
    return int(appended.index), bh


def _sealed_row(w: _World, alias: str, card: Any, base_hash: bytes, rng: random.Random) -> int:
    s = w.e.service
    ctx = ElectionContext(s.base_hash, s.joint_key().public_key, tuple(s.manifest.contest_specs()))
    ballot, _ = encrypt_ballot(ctx, CHOICE, rng=rng)
    bh = ballot.ballot_hash()
    challenge = new_challenge()
    sub = card.sign_ballot(base_hash, bh, challenge)
    ev = JpkiEvidence(
        base_hash, bh, challenge, sub.signature, sub.certificate_der, tuple(sub.intermediates_der)
    )
    evh = ev.digest.hex()
    appended = s.ledger.append(
        "ballot.cast",
        {
            "election_id": s.election_id,
            "base_hash": s.base_hash.hex(),
            "ballot": ballot.to_dict(),
            "ballot_hash": bh.hex(),
            "tracking_code": ballot.tracking_code(),
            "voter_alias": alias,
            "roll_proof": s.roll_proof(bytes.fromhex(alias)).to_dict(),
            "channel": "internet",
            "auth": {"method": "jpki", "evidence_hash": evh},
            "seq": 1,
        },
    )
    evidence = {
        "method": "jpki",
        "election_base_hash": base_hash.hex(),
        "ballot_hash": bh.hex(),
        "challenge": challenge.hex(),
        "signature": sub.signature.hex(),
        "certificate": sub.certificate_der.hex(),
        "intermediates": [d.hex() for d in sub.intermediates_der],
    }
    sealed = sealed_evidence(
        s.manifest.oversight.x25519_public_key,
        election_id=s.election_id,
        base_hash=s.base_hash,
        ballot_hash=bh.hex(),
        voter_alias=alias,
        evidence_hash=evh,
        method="jpki",
        verified_at=dt.datetime.now(dt.UTC),
        evidence=evidence,
    )
    with Session(s.engine) as db:
        db.add(
            AuthEvidence(
                evidence_hash=evh,
                election_id=s.election_id,
                voter_alias=alias,
                ballot_hash=bh.hex(),
                method="jpki",
                sealed=sealed,
                challenge=challenge.hex(),
                created_at=dt.datetime.now(dt.UTC),
                status="final",
                ledger_index=int(appended.index),
            )
        )
        db.commit()
    return int(appended.index)


def test_a_dishonest_operator_is_named_by_the_audit_not_by_the_verifier(
    world: _World, tmp_path: Path
) -> None:
    from voting.testing import run_decryption

    e, rng = world.e, random.Random(11)
    fabricated = {}
    # 1. ballots for two abstainers: plausible aliases (on the roll), invented evidence hashes
    for i in ABSTAINERS[:2]:
        fabricated[_cast_entry(world, world.alias(i), rng.randbytes(32).hex(), rng)[0]] = "evidence.missing"
    # 2. a card that voted (resident 1) signs again, cast under an abstainer's alias
    card = e.residents[JPKI_VOTERS[1]].card
    fabricated[_sealed_row(world, world.alias(ABSTAINERS[2]), card, e.service.base_hash, rng)] = "voter.alias"
    # 3. evidence from another election (another base hash) attached to a ballot of this one
    other = bytes(32 * [7])
    own = e.residents[ABSTAINERS[3]].card
    fabricated[_sealed_row(world, world.alias(ABSTAINERS[3]), own, other, rng)] = "evidence.other_election"
    e.close_early()
    e.admin("/tally")
    e.service.ledger.checkpoint()
    e.cosign()  # trustees decrypt only a tally under a witnessed checkpoint
    run_decryption(e.http, list(e.trustees.values()))
    e.admin("/result")
    record, export = world.snapshot(tmp_path)

    # the public verifier cannot see the evidence: every check passes
    report = verify_record(record, Options(partial=True))
    assert report.ok, [str(f) for f in report.failures]

    audit = world.audit(record, export)
    assert not audit.ok
    named = {p.entry: p.check for p in audit.problems}
    assert named == fabricated, audit.human()
    honest = {r.leaf_index for r in world.honest.values()}
    assert not honest & set(named)
    assert audit.justified == audit.ballots - len(fabricated)

    # the observers' command line: secret file, JSON report, exit status 1
    secret = tmp_path / "observers.key"
    save_oversight_secret(secret, world.key, "observer passphrase", KdfLimits.interactive())
    roots = tmp_path / "roots.pem"
    from cryptography.hazmat.primitives import serialization

    roots.write_bytes(e.ca.certificate.public_bytes(serialization.Encoding.PEM))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(world.jwks()))
    args = [
        "audit-evidence",
        str(record),
        "--evidence",
        str(export),
        "--secret-file",
        str(secret),
        "--jpki-roots",
        str(roots),
        "--crl",
        str(world.data_dir / "jpki-crls"),
        "--oidc-jwks",
        str(jwks),
        "--unsafe-accept-test-policy",
        "--json",
        "--passphrase-env",
        "TVOTE_TEST_OBSERVER_PW",
    ]
    result = CliRunner().invoke(tvote_app, args, env={"TVOTE_TEST_OBSERVER_PW": "observer passphrase"})
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    assert out["result"] == "FAIL"
    assert {p["entry"]: p["check"] for p in out["problems"]} == fabricated

    # the verifier accepts an evidence.exported entry only with the manifest's oversight key
    s = e.service
    bad = {
        "election_id": s.election_id,
        "base_hash": s.base_hash.hex(),
        "oversight_key": "ab" * 32,
        "evidence_count": 0,
        "export_hash": "cd" * 32,
    }
    index = int(s.ledger.append("evidence.exported", bad).index)
    s.ledger.checkpoint()
    e.cosign()
    s.ledger.export(tmp_path / "bad-record")
    failed = verify_record(tmp_path / "bad-record", Options(partial=True)).failures
    assert [(f.check, f.entry) for f in failed] == [("ledger.phases", index)]


# ------------------------------------------------------------------------------ key, manifest, start-up


def test_production_refuses_an_election_without_the_oversight_key(tmp_path: Path) -> None:
    from voting._manifest import parse_manifest
    from voting._settings import Settings
    from voting._startup import run_checks

    s = Settings(environment="production", data_dir=tmp_path / "d", admin_token="a" * 48)
    m = tsukuba_manifest(dt.datetime.now(dt.UTC), small=True)
    assert "oversight" in {p.check for p in run_checks(s, parse_manifest(m))}
    m["oversight"] = {"x25519_public_key": bytes(generate_oversight_key().public_key).hex()}
    assert "oversight" not in {p.check for p in run_checks(s, parse_manifest(m))}


def test_a_manifest_without_oversight_keeps_its_base_hash_and_a_bad_key_is_refused() -> None:
    from voting._errors import ManifestError
    from voting._manifest import parse_manifest

    m = tsukuba_manifest(dt.datetime(2027, 4, 1, tzinfo=dt.UTC), small=True)
    assert "oversight" not in parse_manifest(m).to_dict()  # no null: earlier base hashes are unchanged
    with pytest.raises(ManifestError):
        parse_manifest({**m, "oversight": {"x25519_public_key": "AB" * 32}})


def test_keygen_writes_an_owner_only_passphrase_file_and_refuses_to_overwrite(tmp_path: Path) -> None:
    from voting._oversight import load_oversight_secret

    secret = tmp_path / "observers.key"
    env = {"PW": "a long observer passphrase"}
    runner = CliRunner()
    result = runner.invoke(
        tvote_app, ["observers", "keygen", "--secret-file", str(secret), "--passphrase-env", "PW"], env=env
    )
    assert result.exit_code == 0, result.output
    public = json.loads(result.stdout)["oversight"]["x25519_public_key"]
    assert secret.stat().st_mode & 0o777 == 0o600
    key = load_oversight_secret(secret, env["PW"])
    assert bytes(key.public_key).hex() == public
    assert bytes(key).hex() not in secret.read_text()  # the secret half is only under the passphrase
    again = runner.invoke(
        tvote_app, ["observers", "keygen", "--secret-file", str(secret), "--passphrase-env", "PW"], env=env
    )
    assert again.exit_code != 0
