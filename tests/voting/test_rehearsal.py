"""The rehearsal kit (``tvote rehearsal``, issue 10): the operator guide's "Rehearsal" commands run as
written, and what an attacker or a careless operator would try against the kit.

``test_operator_guide_rehearsal_runs_as_written`` reads the ```sh block(s) of the guide's Rehearsal section
and runs them, in order, in one ``bash -euo pipefail``, changing only the documented variables ``DIR`` (a
temporary directory) and ``PORT`` (a free port). If the guide changes, the test follows it."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from _serve_util import BIN, Cli, free_port, server_env
from typer.testing import CliRunner

from voting._manifest import load_manifest
from voting.cli import app

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operator-guide.md"

runner = CliRunner()


def rehearsal_script(guide: str) -> str:
    """The ```sh blocks of the guide's Rehearsal section (its ``## `` heading to the next one)."""
    m = re.search(r"^## [^\n]*Rehearsal[^\n]*\n(.*?)(?=^## )", guide, re.M | re.S)
    assert m, "docs/operator-guide.md has no Rehearsal section"
    blocks = re.findall(r"^```sh\n(.*?)^```", m.group(1), re.M | re.S)
    assert blocks, "the Rehearsal section has no ```sh block"
    return "\n".join(blocks)


FIRST_LINE = re.compile(r'^export DIR="[^"\n]*" PORT=\d+ OIDC_PORT=\d+ FACE_PORT=\d+$', re.M)


def substitute(script: str, directory: Path) -> str:
    """Only the documented variables of the first line: ``DIR`` and the three loopback ports."""
    ports = [free_port() for _ in range(3)]
    assert len(set(ports)) == 3
    line = f'export DIR="{directory}" PORT={ports[0]} OIDC_PORT={ports[1]} FACE_PORT={ports[2]}'
    script, n = FIRST_LINE.subn(line, script, count=1)
    assert n == 1, 'the guide\'s first line must be: export DIR="…" PORT=… OIDC_PORT=… FACE_PORT=…'
    return script


@pytest.mark.slow
@pytest.mark.xdist_group("rehearsal")
def test_operator_guide_rehearsal_runs_as_written(tmp_path: Path) -> None:
    kit = tmp_path / "kit"
    script = substitute(rehearsal_script(GUIDE.read_text(encoding="utf-8")), kit)
    env = server_env(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", HOME=str(tmp_path))
    # its own session: whatever the script leaves running (a server, if it failed half-way) is ended below
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=420)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait()
    log = (kit / "serve.log").read_text(errors="replace") if (kit / "serve.log").exists() else ""
    assert proc.returncode == 0, (out[-3000:], err[-3000:], log[-3000:])
    assert "VALID" in out and "INVALID" not in out, out[-2000:]
    assert out.count("tracking code: ") == 4 and out.count("receipt verified") == 4
    assert "challenged: tracking code" in out and "cast (kiosk)" in out
    # step 0 was rehearsed: the election pinned what it trusts, the trustees registered with their enrolment
    # keys (V28), and the auditor verified in official mode (V27: no "not an official verification" note)
    manifest = load_manifest(kit / "manifest.yaml")
    assert manifest.pins is not None and len(manifest.pins.trustee_enrolment_keys) == 3
    published = json.loads((kit / "official-pins.json").read_text(encoding="utf-8"))
    assert published["pins"] == manifest.pins.model_dump(mode="json")
    assert "not an official verification" not in out

    # no personal data of the (synthetic) residents in the server's log or the public record
    with tarfile.open(kit / "record.tar.gz") as tar:
        public = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]
    rows = (kit / "roll.csv").read_text(encoding="utf-8").splitlines()[1:]
    for row in rows:
        _, name, birth, address = row.split(",")
        for value in (name, birth, address):
            assert value not in log and value.encode() not in public, "personal data leaked"


# ------------------------------------------------------------------------------ what an attacker would try


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("kit") / "rehearsal"
    r = runner.invoke(app, ["rehearsal", "init", str(d), "--voters", "2", "--digital-id-voters", "1"])
    assert r.exit_code == 0, r.output
    return d


def test_init_refuses_a_non_empty_directory_unless_forced(tmp_path: Path) -> None:
    d = tmp_path / "busy"
    d.mkdir()
    (d / "election-office-notes.txt").write_text("keep me")
    r = runner.invoke(app, ["rehearsal", "init", str(d), "--voters", "1"])
    assert r.exit_code == 2
    assert "error: rehearsal.dir:" in r.output and "not empty" in r.output
    assert (d / "election-office-notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in d.iterdir()) == ["election-office-notes.txt"]
    # a file where the directory should be
    f = tmp_path / "file"
    f.write_text("x")
    r = runner.invoke(app, ["rehearsal", "init", str(f)])
    assert r.exit_code == 2 and "error: rehearsal.dir:" in r.output


def test_init_refuses_bad_options(tmp_path: Path) -> None:
    for args, code in (
        (["--trustees", "2", "--threshold", "3"], "rehearsal.trustees"),
        (["--voters", "0"], "rehearsal.voters"),
        (["--opens", "2027-04-18T09:00:00"], "rehearsal.period"),
        (["--opens", "2030-01-02T00:00:00Z", "--closes", "2030-01-01T00:00:00Z"], "rehearsal.period"),
        (["--closes", "2001-01-01T00:00:00Z", "--opens", "2000-01-01T00:00:00Z"], "rehearsal.period"),
    ):
        r = runner.invoke(app, ["rehearsal", "init", str(tmp_path / "k"), *args])
        assert r.exit_code == 2 and f"error: {code}:" in r.output, (args, r.output)
        assert not (tmp_path / "k").exists() or not any((tmp_path / "k").iterdir())


def test_force_replaces_the_old_kit(kit: Path, tmp_path: Path) -> None:
    d = tmp_path / "again"
    assert runner.invoke(app, ["rehearsal", "init", str(d), "--voters", "1"]).exit_code == 0
    old_key = (d / "log-key.txt").read_text()
    again = ["rehearsal", "init", str(d), "--voters", "1", "--digital-id-voters", "0", "--force"]
    r = runner.invoke(app, again)
    assert r.exit_code == 0, r.output
    assert (d / "log-key.txt").read_text() != old_key
    # without digital-ID residents the kit leaves digital ID out of the manifest and the settings
    from voting._manifest import load_manifest
    from voting._settings import Settings

    assert load_manifest(d / "manifest.yaml").auth_methods == ["jpki"]
    assert Settings.from_env({}, config_file=d / "tvote.toml").oidc_issuer is None
    assert not (d / "digital-id").exists()
    r = runner.invoke(app, ["rehearsal", "oidc", str(d)])
    assert r.exit_code == 2 and "error: rehearsal.digital_id:" in r.output


def test_secret_files_are_private(kit: Path) -> None:
    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    for d in (
        kit,
        kit / "server-data",
        kit / "cards",
        kit / "witnesses",
        kit / "witnesses" / "w1",
        kit / "digital-id",
    ):
        assert mode(d) == 0o700, d
    secrets = [
        kit / "admin-token",
        kit / "kiosk-key",
        kit / "roll.csv",
        kit / "server-data" / "ledger-signing.key",
        kit / "server-data" / "commission-signer.key",
        kit / "cards" / "PINS.txt",
        kit / "roll-key",
        kit / "digital-id" / "client-secret",
        kit / "digital-id" / "provider.json",
        *(kit / "digital-id" / "reference-photos").iterdir(),
        *(kit / "witnesses" / w / "witness-key.json" for w in ("w1", "w2", "w3")),
        *(kit / "cards").glob("*.p12"),
    ]
    assert len(secrets) == 16
    for p in secrets:
        assert mode(p) == 0o600, p
    assert "REHEARSAL ONLY" in (kit / "cards" / "PINS.txt").read_text()
    assert "NOT FOR A REAL ELECTION" in (kit / "README.txt").read_text()


def test_the_kit_is_consistent(kit: Path) -> None:
    from voting._manifest import load_manifest
    from voting._settings import Settings

    m = load_manifest(kit / "manifest.yaml")
    assert m.witnesses.quorum == 2 and len(m.witnesses.keys) == 3
    assert m.auth_methods == ["jpki", "oidc+face"]
    s = Settings.from_env({}, config_file=kit / "tvote.toml")
    assert s.environment == "test" and s.jpki_test_policy and s.admin_token
    assert s.oidc_issuer == "http://127.0.0.1:8701" and s.face_matcher_url == "http://127.0.0.1:8702/match"
    assert s.oidc_client_secret and s.roll_key() is not None
    # the reference photo is named by the digital-ID resident's voter alias under the kit's roll key
    from voting._roll import voter_alias

    alias = voter_alias(s.roll_key() or b"", m.election_id, "R000003")
    assert [p.name for p in (kit / "digital-id" / "reference-photos").iterdir()] == [f"{alias.hex()}.png"]
    assert s.data_dir == kit.resolve() / "server-data"
    # the roll: 2 card residents, 1 digital-ID resident, the resident with the revoked card
    assert len((kit / "roll.csv").read_text(encoding="utf-8").splitlines()) == 1 + 4
    log_key = (kit / "log-key.txt").read_text().strip()
    for w in ("w1", "w2", "w3"):
        assert log_key in (kit / "witnesses" / w / "witness-state.json").read_text()


def test_a_wrong_pin_is_refused_locally(kit: Path) -> None:
    # the server URL is unreachable: a wrong PIN must stop before anything is sent
    dead = f"http://127.0.0.1:{free_port()}"
    card = str(kit / "cards" / "0001.p12")
    args = ["rehearsal", "vote", "--server", dead, "--card", card, "--pin-env", "P"]
    r = runner.invoke(app, args, env={"P": "WRONG123"})
    assert r.exit_code == 1
    assert r.output.strip() == (
        "error: card.pin: the PIN does not open 0001.p12 (wrong PIN, or not a PKCS#12 card file)"
    )
    r = runner.invoke(app, args, env={"P": ""})
    assert r.exit_code == 2 and "error: card.pin: set the environment variable P" in r.output
    # the right PIN opens the card; then the unreachable server is the (one-line) error
    pins = (kit / "cards" / "PINS.txt").read_text().splitlines()
    pin = next(line.split()[2] for line in pins if line.startswith("0001.p12"))
    r = runner.invoke(app, args, env={"P": pin})
    assert r.exit_code == 1 and r.output.startswith("error: server.unreachable:"), r.output


def test_production_refuses_the_settings_file(kit: Path) -> None:
    cli = Cli(server_env(TVOTE_ENVIRONMENT="production"))
    p = cli.start("serve", "--config", str(kit / "tvote.toml"), "--port", str(free_port()))
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == 2
    assert stderr.strip() == "error: config.unsafe: the JPKI test certificate policy is refused in production"


def test_production_refuses_the_test_ca_even_without_the_test_policy(kit: Path, tmp_path: Path) -> None:
    """An operator who deletes the test-policy line "to make it work" still cannot run production on it."""
    text = (kit / "tvote.toml").read_text()
    edited = tmp_path / "edited.toml"
    edited.write_text(text.replace("jpki_test_policy = true\n", "").replace('"test"', '"production"'))
    cli = Cli(server_env())
    p = cli.start("serve", "--config", str(edited), "--port", str(free_port()))
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == 2, stderr
    assert stderr.startswith("error: config.startup:")
    assert "jpki_anchor_pins" in stderr, stderr


def test_vote_refuses_unclear_or_unknown_credentials(kit: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    card = str(kit / "cards" / "0001.p12")
    cases = (
        (["--card", card, "--digital-id", "R000003", "--kit", str(kit)], "rehearsal.vote", 2),
        ([], "rehearsal.vote", 2),
        (["--card", card], "card.pin", 2),
        (["--digital-id", "R000003"], "rehearsal.vote", 2),
        (["--digital-id", "R000001", "--kit", str(kit)], "rehearsal.vote", 2),  # a card resident
        (["--card", str(kit / "roll.csv"), "--pin-env", "P"], "card.pin", 1),  # not a card file
    )
    for args, code, status in cases:
        r = runner.invoke(app, ["rehearsal", "vote", "--server", dead, *args], env={"P": "ABCDEFGH"})
        assert r.exit_code == status and r.output.startswith(f"error: {code}:"), (args, r.output)
        assert len(r.output.strip().splitlines()) == 1, r.output
    # a digital-ID resident of the kit gets as far as the network (here: no server)
    did = ["--digital-id", "R000003", "--kit", str(kit)]
    r = runner.invoke(app, ["rehearsal", "vote", "--server", dead, *did])
    assert r.exit_code == 1 and r.output.startswith("error: server.unreachable:"), r.output


def test_admin_checkpoint_covers_every_entry_and_needs_the_admin_token(tmp_path: Path) -> None:
    """``POST /admin/checkpoint`` (``tvote admin checkpoint``): what the witnesses cosign before export."""
    from _service_util import ADMIN, create_election, error_code, ok, running_app

    with running_app(tmp_path) as (client, service):
        assert error_code(client.post("/api/v1/admin/checkpoint", headers=ADMIN), 404) == "election.none"
        create_election(client, 3, 2)
        assert error_code(client.post("/api/v1/admin/checkpoint"), 401) == "auth.required"
        bad = {"Authorization": "Bearer " + "y" * 48}
        assert error_code(client.post("/api/v1/admin/checkpoint", headers=bad), 401) == "auth.invalid"
        cp = ok(client.post("/api/v1/admin/checkpoint", headers=ADMIN))
        assert cp["size"] == service.ledger.size == 2  # election.manifest, roll.commitment
        assert cp["witnessed"] is False  # the test manifest lists no witnesses (quorum 0): never witnessed
        again = ok(client.post("/api/v1/admin/checkpoint", headers=ADMIN))
        assert again == cp  # nothing new: the newest checkpoint already covers every entry
        assert ok(client.get("/api/v1/ledger/checkpoint")) == cp
