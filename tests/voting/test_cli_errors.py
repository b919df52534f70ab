"""Issue 10, "CLI": the REAL ``tvote`` command (a subprocess) against the REAL ``tvote serve``.

An expected failure prints one ``error: <code>: <message>`` line on stderr and exits non-zero, never a
traceback: a second ``tvote trustee register``, a server that went away or refuses connections, a file that
does not exist, an error answer. ``tvote admin`` reads the admin token from ``TVOTE_ADMIN_TOKEN_FILE`` as the
operator guide says, and refuses a file its group or others may read.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _serve_util import BIN, free_port, server_env, start_server, stop_server
from _service_util import EXAMPLE_MANIFEST, EXAMPLE_ROLL

pytestmark = pytest.mark.xdist_group("serve")

ADMIN_TOKEN = secrets.token_urlsafe(32)
PASSPHRASE = "a long trustee passphrase"


def tvote(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "tvote"), *args], env=env, capture_output=True, text=True, timeout=120)


def one_error_line(p: subprocess.CompletedProcess[str], code: str, status: int = 1) -> str:
    """The command failed with ``status`` and said exactly one ``error: <code>: ...`` line, no traceback."""
    assert p.returncode == status, (p.args, p.returncode, p.stdout[-1000:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr[-2000:]
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {code}: "), p.stderr[-2000:]
    return errors[0]


def token_file(tmp: Path, mode: int, token: str = ADMIN_TOKEN) -> Path:
    f = tmp / f"admin-token-{mode:o}"
    f.write_text(token + "\n")
    f.chmod(mode)
    return f


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("cli")
    config = tmp / "tvote.toml"
    config.write_text('environment = "test"\n')
    port = free_port()
    env = server_env(TVOTE_ADMIN_TOKEN=ADMIN_TOKEN)
    from _serve_util import Cli

    with (tmp / "server.log").open("w") as out:
        proc = start_server(Cli(env), port, tmp / "data", config, output=out)
        try:
            yield {"base": f"http://127.0.0.1:{port}", "tmp": tmp, "proc": proc}
        finally:
            stop_server(proc)


def test_admin_token_file_is_honoured_and_must_be_private(server: dict[str, Any]) -> None:
    base, tmp = server["base"], server["tmp"]
    # a group-readable token file is refused before anything is sent
    env = server_env(TVOTE_ADMIN_TOKEN_FILE=str(token_file(tmp, 0o640)))
    line = one_error_line(tvote("admin", "publish-roll", "--server", base, env=env), "config.secret_file", 2)
    assert "chmod 600" in line and ADMIN_TOKEN not in line
    env = server_env(TVOTE_ADMIN_TOKEN_FILE=str(token_file(tmp, 0o604)))
    one_error_line(tvote("admin", "publish-roll", "--server", base, env=env), "config.secret_file", 2)
    env = server_env(TVOTE_ADMIN_TOKEN_FILE=str(tmp / "no-such-token"))
    one_error_line(tvote("admin", "publish-roll", "--server", base, env=env), "config.secret_file", 2)
    # neither variable: one line saying what to set
    one_error_line(
        tvote("admin", "publish-roll", "--server", base, env=server_env()), "config.admin_token", 2
    )
    # a private file with the wrong token reaches the server, which refuses it
    env = server_env(TVOTE_ADMIN_TOKEN_FILE=str(token_file(tmp, 0o600, "w" * 40)))
    one_error_line(tvote("admin", "publish-roll", "--server", base, env=env), "auth.invalid")
    # a private file with the right token works (it used to be ignored: "set TVOTE_ADMIN_TOKEN")
    env = server_env(TVOTE_ADMIN_TOKEN_FILE=str(token_file(tmp, 0o400)))
    p = tvote("admin", "create", "--server", base, "--manifest", str(EXAMPLE_MANIFEST), env=env)
    assert p.returncode == 0, p.stderr
    (tmp / "codes.txt").write_text(p.stdout)
    # a second create: the server's answer, in one line
    p = tvote("admin", "create", "--server", base, "--manifest", str(EXAMPLE_MANIFEST), env=env)
    one_error_line(p, "election.exists")


def test_expected_failures_are_one_line_never_a_traceback(server: dict[str, Any]) -> None:
    base, tmp = server["base"], server["tmp"]
    env = server_env(TVOTE_ADMIN_TOKEN=ADMIN_TOKEN, PW=PASSPHRASE)
    # files that do not exist
    one_error_line(
        tvote("admin", "load-roll", "--server", base, "--roll", str(tmp / "missing.csv"), env=env),
        "file.not_found",
    )
    p = tvote("admin", "create", "--server", base, "--manifest", str(tmp / "missing.yaml"), env=env)
    assert p.returncode != 0 and "Traceback" not in p.stderr and p.stderr.startswith("error: "), p.stderr
    # nobody listens there
    dead = f"http://127.0.0.1:{free_port()}"
    line = one_error_line(tvote("admin", "open", "--server", dead, env=env), "server.unreachable")
    assert dead in line
    # a second `tvote trustee register`
    if not (tmp / "codes.txt").exists():
        p = tvote("admin", "create", "--server", base, "--manifest", str(EXAMPLE_MANIFEST), env=env)
        assert p.returncode == 0, p.stderr
        (tmp / "codes.txt").write_text(p.stdout)
    codes = [
        ln.split(": ", 1)[1]
        for ln in (tmp / "codes.txt").read_text().splitlines()
        if ln.strip().startswith("trustee ")
    ]
    secret = tmp / "t1.secret"
    common = ["--server", base, "--passphrase-env", "PW", "--secret-file", str(secret)]
    p = tvote(
        "trustee", "init", *common, "--invitation", codes[0], "--name", "T1", "--kdf", "interactive", env=env
    )
    assert p.returncode == 0, p.stderr
    p = tvote("trustee", "register", *common, env=env)
    assert p.returncode == 0, p.stderr
    one_error_line(tvote("trustee", "register", *common, env=env), "trustee.registered")
    # the roll upload against a live server, then the server goes away mid-ceremony
    p = tvote("admin", "load-roll", "--server", base, "--roll", str(EXAMPLE_ROLL), env=env)
    assert p.returncode == 0, p.stderr
    stop_server(server["proc"])
    one_error_line(tvote("trustee", "deal", *common, env=env), "server.unreachable")
    one_error_line(tvote("admin", "publish-roll", "--server", base, env=env), "server.unreachable")
