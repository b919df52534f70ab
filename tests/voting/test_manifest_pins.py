"""The manifest's pins on the server side: validation, ``tvote admin pins``, the start-up check
``manifest_pins`` and trustee enrolment at registration.

Attacks tried: a manifest pinning a log key, a commission root or JPKI roots other than the server's (so a
second ledger or another root could be shown), production without pins, and the commission registering a
trustee itself with the (commission-issued) registration code but a key nobody enrolled.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from _service_util import ADMIN, EXAMPLE_MANIFEST, error_code, manifest_dict, ok, running_app
from nacl.signing import SigningKey
from typer.testing import CliRunner

from crypto import TrusteeEnrolment, TrusteeKeyGen
from ledger.record import LogSigner
from voting._errors import ManifestError
from voting._manifest import load_manifest, parse_manifest
from voting._pins import official_pins, pin_problems, server_pins
from voting._settings import Settings
from voting._startup import CHECKS
from voting.cli import app as cli
from voting.clients.trustee import (
    Trustee,
    TrusteeApi,
    create_enrolment_key,
    enrolment_public_key,
    read_enrolment_key,
)
from voting.testing import run_key_ceremony

LONG = "t" * 40
SEEDS = {i: bytes([i]) * 32 for i in (1, 2, 3)}
KEYS = [enrolment_public_key(SEEDS[i]) for i in (1, 2, 3)]


def _manifest(**pins: Any) -> dict[str, Any]:
    m = manifest_dict(3, 2)
    m["auth_methods"] = ["oidc+face"]  # running_app configures no JPKI anchors
    if pins:
        m["pins"] = pins
    return m


def _env(tmp_path: Path) -> dict[str, str]:
    return {"TVOTE_ENVIRONMENT": "test", "TVOTE_DATA_DIR": str(tmp_path / "data"), "TVOTE_ADMIN_TOKEN": LONG}


def _settings(data_dir: Path) -> Settings:
    return Settings(environment="test", data_dir=data_dir, admin_token=LONG)


def _valid_pins() -> dict[str, Any]:
    return {
        "log_key": LogSigner.generate("tvote/tsukuba-2027-mayor", seed=b"\x01" * 32).public.vkey,
        "jpki_roots_sha256": ["ab" * 32],
        "commission_root_sha256": "cd" * 32,
        "trustee_enrolment_keys": KEYS,
    }


# --------------------------------------------------------------------------------------------- the model


def test_manifest_without_pins_publishes_no_pins_key() -> None:
    m = parse_manifest(_manifest())
    assert m.pins is None and "pins" not in m.to_dict()


def test_pins_enter_the_base_hash() -> None:
    a = parse_manifest(_manifest(**_valid_pins()))
    other = _valid_pins()
    other["commission_root_sha256"] = "ce" * 32
    b = parse_manifest(_manifest(**other))
    assert a.to_dict()["pins"] == _valid_pins() and a.base_hash != b.base_hash


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"trustee_enrolment_keys": KEYS[:2]}, "one enrolment key per trustee"),
        ({"trustee_enrolment_keys": [KEYS[0], KEYS[0], KEYS[1]]}, "distinct"),
        ({"log_key": "tvote+0000+AAAA"}, "verifier key"),
        ({"commission_root_sha256": "CD" * 32}, "commission_root_sha256"),
        ({"jpki_roots_sha256": ["ab" * 32, "ab" * 32]}, "repeat"),
    ],
)
def test_bad_pins_are_refused_with_the_field_named(change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ManifestError) as e:
        parse_manifest(_manifest(**{**_valid_pins(), **change}))
    assert fragment in e.value.message


def test_jpki_voting_needs_pinned_jpki_roots() -> None:
    m = _manifest(**{**_valid_pins(), "jpki_roots_sha256": []})
    m["auth_methods"] = ["jpki"]
    with pytest.raises(ManifestError) as e:
        parse_manifest(m)
    assert "jpki_roots_sha256 is empty" in e.value.message


# --------------------------------------------------------------------- admin pins, start-up check, create


def test_admin_pins_prints_the_block_that_creates_the_election(tmp_path: Path) -> None:
    """The operator flow: `tvote admin pins` on the server machine before the manifest exists (it creates
    the ledger key), paste the block, create; the ledger then runs under the pinned key."""
    env = _env(tmp_path)
    args = ["admin", "pins", "--election-id", "tsukuba-2027-mayor"]
    for k in KEYS:
        args += ["--trustee-key", k]
    res = CliRunner().invoke(cli, args, env=env)
    assert res.exit_code == 0, res.output
    block = json.loads(res.stdout)["pins"]
    assert block["trustee_enrolment_keys"] == KEYS and (tmp_path / "data" / "ledger-signing.key").exists()
    assert "fingerprint" in res.output
    with running_app(tmp_path) as (client, service):
        out = ok(client.post("/api/v1/admin/election", json=_manifest(**block), headers=ADMIN), 201)
        assert service.ledger.log_key.vkey == block["log_key"]
        assert service.manifest.pins is not None
        pins_file = official_pins(service.manifest)
        assert pins_file["base_hash"] == out["base_hash"] and pins_file["pins"] == block


def _yaml_manifest(path: Path) -> Path:
    """The example manifest as a file: 3 trustees, digital ID only (no JPKI anchors configured here)."""
    text = EXAMPLE_MANIFEST.read_text(encoding="utf-8")
    text = text.replace("  n: 5\n  threshold: 3", "  n: 3\n  threshold: 2")
    text = text.replace("auth_methods: [jpki, oidc+face]", "auth_methods: [oidc+face]")
    path.write_text(text, encoding="utf-8")
    return path


def test_admin_pins_writes_the_block_into_the_manifest(tmp_path: Path) -> None:
    """`--manifest FILE --write`: the election id is the manifest's, the block is appended to the YAML (its
    comments stay), and the file then creates the election under the pinned key; a second write, another
    election id or a block the manifest refuses changes nothing."""
    env = _env(tmp_path)
    path = _yaml_manifest(tmp_path / "manifest.yaml")
    before = path.read_text(encoding="utf-8")
    keys = [a for k in KEYS for a in ("--trustee-key", k)]
    res = CliRunner().invoke(cli, ["admin", "pins", "--manifest", str(path), "--write", *keys], env=env)
    assert res.exit_code == 0, res.output
    block = json.loads(res.stdout)["pins"]
    after = path.read_text(encoding="utf-8")
    assert after.startswith(before) and "# Sample election manifest" in after
    m = load_manifest(path)
    assert m.pins is not None and m.pins.model_dump(mode="json") == block
    assert list(tmp_path.glob(".manifest.yaml.*")) == []  # no temporary file left
    with running_app(tmp_path) as (client, service):
        ok(client.post("/api/v1/admin/election", json=m.to_dict(), headers=ADMIN), 201)
        assert service.ledger.log_key.vkey == block["log_key"]

    refusals = [
        (["--manifest", str(path), "--write", *keys], "pins.exists"),
        (["--manifest", str(path), "--election-id", "other", *keys], "pins.election_id"),
        (["--write", "--election-id", "x", *keys], "pins.manifest"),
        (keys, "pins.election_id"),
    ]
    for args, code in refusals:
        res = CliRunner().invoke(cli, ["admin", "pins", *args], env=env)
        assert res.exit_code != 0 and code in res.output, (args, res.output)
    assert path.read_text(encoding="utf-8") == after

    # two keys for three trustees: the manifest with these pins is invalid, the file stays as it was
    fresh = _yaml_manifest(tmp_path / "fresh.yaml")
    text = fresh.read_text(encoding="utf-8")
    res = CliRunner().invoke(cli, ["admin", "pins", "--manifest", str(fresh), "--write", *keys[:4]], env=env)
    assert res.exit_code != 0 and "pins.invalid" in res.output
    assert fresh.read_text(encoding="utf-8") == text

    # a JSON manifest gets the key set
    js = tmp_path / "manifest.json"
    js.write_text(json.dumps(load_manifest(fresh).to_dict()), encoding="utf-8")
    res = CliRunner().invoke(cli, ["admin", "pins", "--manifest", str(js), "--write", *keys], env=env)
    assert res.exit_code == 0, res.output
    assert json.loads(js.read_text(encoding="utf-8"))["pins"] == block


def test_admin_pins_refuses_a_malformed_trustee_key(tmp_path: Path) -> None:
    env = _env(tmp_path)
    res = CliRunner().invoke(cli, ["admin", "pins", "--election-id", "x", "--trustee-key", "zz"], env=env)
    assert res.exit_code == 2 and "pins.trustee_key" in res.output


@pytest.mark.parametrize("field", ["log_key", "jpki_roots_sha256", "commission_root_sha256"])
def test_pins_other_than_the_servers_are_refused(tmp_path: Path, field: str) -> None:
    settings = _settings(tmp_path / "data")
    good = server_pins(settings, "tsukuba-2027-mayor", KEYS)
    bad = copy.deepcopy(good)
    bad[field] = {
        "log_key": LogSigner.generate("tvote/tsukuba-2027-mayor", seed=b"\x05" * 32).public.vkey,
        "jpki_roots_sha256": ["ab" * 32],
        "commission_root_sha256": "cd" * 32,
    }[field]
    with running_app(tmp_path) as (client, _):
        r = client.post("/api/v1/admin/election", json=_manifest(**bad), headers=ADMIN)
        assert error_code(r, 422) == "election.preflight"
        assert f"pins.{field}" in r.text
        assert error_code(client.get("/api/v1/election"), 404) == "election.none"


def test_production_requires_pins(tmp_path: Path) -> None:
    assert "manifest_pins" in {c.name for c in CHECKS if c.per_election}
    settings = _settings(tmp_path)
    problems = pin_problems(settings, parse_manifest(_manifest()), production=True)
    assert len(problems) == 1 and "pins nothing" in problems[0]
    assert pin_problems(settings, parse_manifest(_manifest()), production=False) == []


def test_a_restarted_server_with_another_ledger_key_is_refused(tmp_path: Path) -> None:
    """The key file is swapped after the election was created (a second ledger under another key): the
    per-election start-up check names it."""
    settings = _settings(tmp_path / "data")
    block = server_pins(settings, "tsukuba-2027-mayor", KEYS)
    m = parse_manifest(_manifest(**block))
    assert pin_problems(settings, m, production=True) == []
    other = LogSigner.generate("tvote/tsukuba-2027-mayor")
    (tmp_path / "data" / "ledger-signing.key").write_text(other.skey + "\n")
    problems = pin_problems(settings, m, production=True)
    assert len(problems) == 1 and "pins.log_key" in problems[0]


# ------------------------------------------------------------------------------------- trustee enrolment


def _pinned_election(client: Any, service: Any, tmp_path: Path) -> dict[int, str]:
    block = server_pins(service.settings, "tsukuba-2027-mayor", KEYS)
    out = ok(client.post("/api/v1/admin/election", json=_manifest(**block), headers=ADMIN), 201)
    return {int(k): v for k, v in out["invitations"].items()}


def test_registration_must_be_signed_by_the_pinned_enrolment_key(tmp_path: Path) -> None:
    with running_app(tmp_path) as (client, service):
        codes = _pinned_election(client, service, tmp_path)
        api = TrusteeApi(client)
        e = api.election()
        base_hash = bytes.fromhex(e["base_hash"])
        gen = TrusteeKeyGen.generate(2, threshold=2, trustees=3, base_hash=base_hash)
        commitments = gen.commitments.to_dict()
        body = {"invitation": codes[2], "name": "Observer party", "commitments": commitments}
        # the commission holds the code: without an enrolment it cannot register trustee 2
        r = client.post("/api/v1/trustee/register", json=body)
        assert error_code(r, 422) == "trustee.enrolment"

        def signed(seed: bytes, name: str = "Observer party") -> dict[str, str]:
            return TrusteeEnrolment.sign(
                seed, base_hash=base_hash, trustee=2, name=name, commitments=gen.commitments
            ).to_dict()

        # a sock puppet: signed by a key of the commission's own
        puppet = signed(bytes(SigningKey.generate()))
        r = client.post("/api/v1/trustee/register", json={**body, "enrolment": puppet})
        assert error_code(r, 422) == "trustee.enrolment"
        # trustee 1's genuine key is not trustee 2's
        r = client.post("/api/v1/trustee/register", json={**body, "enrolment": signed(SEEDS[1])})
        assert error_code(r, 422) == "trustee.enrolment"
        # trustee 2's signature over another name
        r = client.post("/api/v1/trustee/register", json={**body, "enrolment": signed(SEEDS[2], "Other")})
        assert error_code(r, 422) == "trustee.enrolment"
        assert service.ledger.size == 1  # nothing but the manifest
        # the enrolled trustee registers, and the entry carries the enrolment
        ok(client.post("/api/v1/trustee/register", json={**body, "enrolment": signed(SEEDS[2])}), 201)
        entry = json.loads(service.ledger.entry(1).canonical)
        assert entry["type"] == "trustee.registered"
        assert entry["payload"]["enrolment"]["public_key"] == KEYS[1]


def test_the_whole_ceremony_with_enrolment_keys(tmp_path: Path) -> None:
    with running_app(tmp_path) as (client, service):
        codes = _pinned_election(client, service, tmp_path)
        token = ADMIN["Authorization"].removeprefix("Bearer ")
        trustees = run_key_ceremony(client, codes, admin_token=token, enrolment_keys=SEEDS)
        assert sorted(trustees) == [1, 2, 3] and service.ceremony_state()["joint_key"] is not None


def test_unpinned_election_refuses_an_enrolment(tmp_path: Path) -> None:
    with running_app(tmp_path) as (client, _):
        out = ok(client.post("/api/v1/admin/election", json=_manifest(), headers=ADMIN), 201)
        t = Trustee.init(TrusteeApi(client), out["invitations"]["1"], "University", enrolment_key=SEEDS[1])
        with pytest.raises(Exception, match=r"trustee\.enrolment"):
            t.register(client)


def test_enrolment_key_file_round_trip_and_cli(tmp_path: Path) -> None:
    from voting.clients.trustee import KdfLimits

    pub = create_enrolment_key(tmp_path / "k", "pw", KdfLimits.interactive())
    assert enrolment_public_key(read_enrolment_key(tmp_path / "k", "pw")) == pub
    env = {"PW": "pw"}
    args = ["trustee", "enrol", "--key-file", str(tmp_path / "k2"), "--passphrase-env", "PW"]
    args += ["--kdf", "interactive"]
    res = CliRunner().invoke(cli, args, env=env)
    assert res.exit_code == 0 and "fingerprint" in res.output
    res = CliRunner().invoke(cli, args, env=env)
    assert res.exit_code != 0 and "exists" in res.output
