"""The trustee secret file and the ``tvote trustee`` / ``tvote admin`` commands against a real uvicorn server
on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from _service_util import ADMIN_TOKEN, EXAMPLE_MANIFEST, EXAMPLE_ROLL
from typer.testing import CliRunner

from voting._settings import Settings
from voting.app import create_app
from voting.cli import app as tvote
from voting.clients.trustee import KdfLimits, Trustee, TrusteeFileError, read_secret_file, write_secret_file
from voting.service import ElectionService


def test_secret_file_roundtrip_and_refusals(tmp_path):
    p = tmp_path / "t.secret"
    write_secret_file(p, {"format": "x", "secret": "00ff" * 8}, "correct horse", KdfLimits.interactive())
    raw = p.read_text()
    assert "00ff00ff" not in raw and json.loads(raw)["format"] == "tvote-trustee-secret/1"
    assert (p.stat().st_mode & 0o777) == 0o600
    assert read_secret_file(p, "correct horse") == {"format": "x", "secret": "00ff" * 8}
    with pytest.raises(TrusteeFileError, match="wrong passphrase"):
        read_secret_file(p, "wrong")
    doc = json.loads(raw)
    doc["ciphertext"] = doc["ciphertext"][:-2] + ("00" if doc["ciphertext"][-2:] != "00" else "01")
    p.write_text(json.dumps(doc))
    with pytest.raises(TrusteeFileError):
        read_secret_file(p, "correct horse")
    doc["kdf"]["opslimit"] = 1
    p.write_text(json.dumps(doc))
    with pytest.raises(TrusteeFileError, match="below the minimum"):
        read_secret_file(p, "correct horse")


@pytest.fixture
def server(tmp_path):
    settings = Settings(environment="test", data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN)
    service = ElectionService.from_settings(settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(settings, service=service), host="127.0.0.1", port=port,
                                        log_level="warning"))  # fmt: skip
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/healthz")
            break
        except httpx.TransportError:
            time.sleep(0.05)
    yield url, service
    srv.should_exit = True
    th.join(10)
    service.close()


def test_cli_key_ceremony(server, tmp_path, monkeypatch):
    url, service = server
    monkeypatch.setenv("TVOTE_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("PW", "a long trustee passphrase")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        r = runner.invoke(tvote, list(args))
        assert r.exit_code == code, (args, r.output)
        return r.output

    # a 3-trustee variant of the example manifest
    m = tmp_path / "m.yaml"
    m.write_text(EXAMPLE_MANIFEST.read_text(encoding="utf-8").replace("n: 5", "n: 3").replace("threshold: 3",
                 "threshold: 2"), encoding="utf-8")  # fmt: skip
    out = run("admin", "create", "--server", url, "--manifest", str(m))
    codes = [line.split(": ", 1)[1] for line in out.splitlines() if line.strip().startswith("trustee ")]
    assert len(codes) == 3
    run("admin", "load-roll", "--server", url, "--roll", str(EXAMPLE_ROLL))
    run("admin", "publish-roll", "--server", url)
    files = [tmp_path / f"t{i}.secret" for i in (1, 2, 3)]
    common = ["--server", url, "--passphrase-env", "PW"]
    for code, f in zip(codes, files, strict=True):
        run("trustee", "init", *common, "--invitation", code, "--name", "Trustee", "--secret-file", str(f),
            "--kdf", "interactive")  # fmt: skip
        run("trustee", "init", *common, "--invitation", code, "--name", "T", "--secret-file", str(f), code=2)
    for f in files:
        run("trustee", "register", *common, "--secret-file", str(f))
    for f in files:
        run("trustee", "deal", *common, "--secret-file", str(f))
    for f in files:
        assert "valid" in run("trustee", "verify-shares", *common, "--secret-file", str(f))
        run("trustee", "answer", *common, "--secret-file", str(f))
    assert "qualified trustees [1, 2, 3]" in run("admin", "finalize-keys", "--server", url)
    # the secret file holds the token and received shares; the wrong passphrase is refused
    t = Trustee.load(files[0], "a long trustee passphrase")
    assert t.token and len(t.received) == 2
    monkeypatch.setenv("BAD", "nope")
    run("trustee", "deal", "--server", url, "--passphrase-env", "BAD", "--secret-file", str(files[0]), code=2)
    assert service.joint_key().qualified == (1, 2, 3)


def test_trustee_commands_report_an_unreachable_server(tmp_path, monkeypatch):
    """No traceback when the server cannot be reached: one error line naming the server, exit status 1."""
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PW", "a long trustee passphrase")
    server = f"http://127.0.0.1:{port}"
    args = ["trustee", "init", "--server", server, "--invitation", "1-" + "x" * 16, "--name", "T1"]
    args += ["--secret-file", str(tmp_path / "t.secret"), "--passphrase-env", "PW", "--kdf", "interactive"]
    result = CliRunner().invoke(tvote, args)
    assert result.exit_code == 1, result.output
    assert f"error: server.unreachable: cannot reach {server}: " in result.output, result.output
    assert not (tmp_path / "t.secret").exists()
    args[args.index("--invitation") + 1] = "not-a-code"  # a malformed code: a clear error, not a traceback
    result = CliRunner().invoke(tvote, args)
    assert result.exit_code == 1, result.output
    assert "error: trustee.invitation_format: a registration code looks like" in result.output
