"""Helpers for tests that run the REAL ``tvote serve`` process (tests/system/test_serve_e2e.py,
tests/voting/test_service_crash.py): a free loopback port, the JPKI test CA's trust anchor and CRL files, the
HTTP face matcher, a CLI runner, and starting / waiting for / stopping the server subprocess."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import httpx
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from voting._roll import voter_alias
from voting.auth import DeterministicTestMatcher, LiveCapture, ReferenceImageSource
from voting.clients.kiosk import KioskApi, KioskKey
from voting.receipt import Receipt
from voting.testing import JpkiTestCa, demo_face_image

BIN = Path(sys.executable).parent
ENGINE_ID = "tvote-deterministic-test-matcher/1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def face_matcher_app(photos: dict[str, bytes] | None = None) -> Starlette:
    """A tiny face-match service: ``POST /match`` (HttpFaceMatcher wire format) and ``GET /reference``, the
    authoritative reference photos ``photos`` (voter alias hex → image; fill it once the roll exists)."""
    engine = DeterministicTestMatcher(ENGINE_ID)
    photos = {} if photos is None else photos

    async def match(request: Request) -> Response:
        body = await request.json()
        ref, live = body["reference"], body["live"]
        res = engine.match(
            ReferenceImageSource(base64.b64decode(ref["data"]), ref["media_type"]),
            LiveCapture(
                base64.b64decode(live["data"]),
                live["media_type"],
                base64.b64decode(live["liveness_evidence"]),
            ),
        )
        return JSONResponse(
            {
                "decision": res.decision,
                "score": res.score,
                "threshold": res.threshold,
                "liveness": res.liveness,
                "engine_id": res.engine_id,
            }
        )

    async def reference(request: Request) -> Response:
        image = photos.get(request.query_params.get("voter_alias", ""))
        if image is None:
            return JSONResponse({"error": "no such resident"}, status_code=404)
        return Response(image, media_type="image/png")

    return Starlette(routes=[Route("/match", match, methods=["POST"]), Route("/reference", reference)])


def reference_photos(roll_key: bytes, election_id: str, residents: Iterable[Any]) -> dict[str, bytes]:
    """The roll residents' reference photos keyed by voter alias (what the commission exports)."""
    return {
        voter_alias(roll_key, election_id, r.resident_id).hex(): demo_face_image(r.resident_id)
        for r in residents
    }


def write_config(path: Path, anchors: Path, crls: Path, *, rate_limit: int, **settings: str) -> Path:
    """A ``tvote.toml`` for a test server: the JPKI test CA's files (test policy), the rate limit, and the
    string ``settings`` given (e.g. ``face_matcher_url``). It asks for the ``test``
    environment explicitly: ``tvote serve`` is production by default and would refuse the test policy."""
    lines = [
        'environment = "test"',
        f'jpki_trust_anchors = "{anchors}"',
        f'jpki_crl_dir = "{crls}"',
        "jpki_test_policy = true",
        *(f'{k} = "{v}"' for k, v in settings.items()),
        f"rate_limit = {rate_limit}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def enrol_kiosk(
    http: httpx.Client, admin_token: str, kiosk_id: str = "test-hall-1", *, open_session: bool = True
) -> tuple[KioskApi, str]:
    """Enrol a polling-place kiosk with a fresh key (``POST /admin/kiosks``) and, with ``open_session``
    (voting must be open), open its session 1 with the poll-worker PIN; its :class:`KioskApi` on ``http``
    (whose ``base_url`` is the server root) and the PIN."""
    key = KioskKey.generate()
    r = http.post(
        "/api/v1/admin/kiosks",
        json={"kiosk_id": kiosk_id, "public_key": key.public_key_hex, "polling_place": "Test hall"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert r.status_code == 201, r.text
    api, pin = KioskApi(http, key, kiosk_id), str(r.json()["poll_worker_pin"])
    if open_session:
        api.open(1, pin)
    return api, pin


def kiosk_cast(api: KioskApi, voter: Any, card: Any, choices: Any, session: int = 1) -> Receipt:
    """One voter at the kiosk ``api``: ``voter`` (a :class:`voting.clients.voter.VoterClient`) encrypts
    ``choices`` (or takes a prepared ballot), the test ``card`` signs, the kiosk signs and casts."""
    p = choices if hasattr(choices, "ballot_hash") else voter.prepare(choices)
    challenge = api.challenge()
    submission = card.sign_ballot(api.base_hash, p.ballot_hash, challenge)
    return Receipt.from_dict(api.cast(p.ballot.to_dict(), submission, challenge, session))


def jpki_files(
    tmp_path: Path, ca: JpkiTestCa, now: dt.datetime, revoked: Iterable[int] = ()
) -> tuple[Path, Path]:
    """Write the test CA as the trust anchor and its CRL (listing the ``revoked`` serial numbers)."""
    anchors, crls = tmp_path / "anchors", tmp_path / "crls"
    anchors.mkdir()
    crls.mkdir()
    (anchors / "jpki-test-root.der").write_bytes(ca.certificate.public_bytes(serialization.Encoding.DER))
    crl = ca.build_crl(list(revoked), now - dt.timedelta(hours=1), now + dt.timedelta(days=1))
    (crls / "test.crl").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return anchors, crls


def server_env(**tvote: str) -> dict[str, str]:
    """The test process's environment without any ``TVOTE_*`` variable, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TVOTE_")}
    env.update(tvote)
    return env


class Cli:
    """Runs ``tvote`` / ``tvote-verify`` as subprocesses with a fixed environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def start(self, *args: str, prog: str = "tvote", output: IO[Any] | None = None) -> subprocess.Popen[str]:
        """Start a command; its output is piped, or written to ``output`` (a file) for long-running ones."""
        return subprocess.Popen(
            [str(BIN / prog), *args],
            env=self.env,
            stdout=output if output is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT if output is not None else subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def wait(p: subprocess.Popen[str], code: int = 0) -> str:
        out, err = p.communicate(timeout=120)
        assert p.returncode == code, (p.args, p.returncode, out[-2000:], err[-2000:])
        return out

    def run(self, *args: str, code: int = 0, prog: str = "tvote") -> str:
        return self.wait(self.start(*args, prog=prog), code)

    def all(self, argvs: list[list[str]]) -> list[str]:
        """Run several commands at once (one per trustee, each on its own machine in real life)."""
        procs = [self.start(*a) for a in argvs]
        return [self.wait(p) for p in procs]


def create_election_by_cli(
    cli: Cli, base: str, tmp: Path, manifest: dict[str, Any], residents: Any
) -> list[str]:
    """``tvote admin create`` with ``manifest`` (written to ``tmp/manifest.json``; the residents' roll is
    written to ``tmp/roll.csv`` for ``load-roll``); returns the trustees' one-time registration codes."""
    from voting.testing import roll_csv

    (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    (tmp / "roll.csv").write_bytes(roll_csv(residents))
    out = cli.run("admin", "create", "--server", base, "--manifest", str(tmp / "manifest.json"))
    codes = [ln.split(": ", 1)[1] for ln in out.splitlines() if ln.strip().startswith("trustee ")]
    assert len(codes) == manifest["trustees"]["n"], out
    return codes


def key_ceremony_by_cli(cli: Cli, base: str, tmp: Path, codes: list[str]) -> list[Path]:
    """Every trustee (one per registration code, concurrent processes) runs ``tvote trustee init / register /
    deal / verify-shares`` with the passphrase in ``$PW``; asserts every trustee found its shares valid.
    Returns the trustees' secret files (``trustee1.secret`` ... in ``tmp``)."""
    common = ["--server", base, "--passphrase-env", "PW"]
    files = [tmp / f"trustee{i}.secret" for i in range(1, len(codes) + 1)]
    init = ["trustee", "init", *common, "--kdf", "interactive"]
    pairs = enumerate(zip(codes, files, strict=True), 1)
    cli.all([[*init, "--invitation", c, "--name", f"T{i}", "--secret-file", str(f)] for i, (c, f) in pairs])
    cli.all([["trustee", "register", *common, "--secret-file", str(f)] for f in files])
    cli.all([["trustee", "deal", *common, "--secret-file", str(f)] for f in files])
    for out in cli.all([["trustee", "verify-shares", *common, "--secret-file", str(f)] for f in files]):
        assert "valid" in out
    return files


def wait_for_phase(base: str, phase: str, timeout: float = 60.0) -> None:
    """Wait until the election is in ``phase``: the server's period keeper opens voting by itself once the
    manifest's voting period has begun and the key ceremony and the roll commitment are done."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(base + "/api/v1/election", timeout=5)
        if r.status_code == 200 and r.json()["phase"] == phase:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the election did not reach phase {phase!r}: {r.text}")
        time.sleep(0.05)


#: ``tvote admin close`` before the manifest's end (the demo manifest's period runs for days)
CLOSE_EARLY_ARGS = ("--override-reason", "test: closed before the end of the voting period")


def wait_until_serving(server: subprocess.Popen[str], base: str, timeout: float = 60.0) -> None:
    """Poll ``/healthz`` until the server answers; fail if it exits or does not start in time."""
    deadline = time.monotonic() + timeout
    while True:
        assert server.poll() is None, f"server exited with {server.returncode}"
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)


def start_server(
    cli: Cli, port: int, data: Path, config: Path, *, output: IO[Any] | None = None
) -> subprocess.Popen[str]:
    """``tvote serve`` on 127.0.0.1:``port`` (data dir, TOML config), returned once it answers."""
    server = cli.start(
        "serve", "--port", str(port), "--data-dir", str(data), "--config", str(config), output=output
    )
    try:
        wait_until_serving(server, f"http://127.0.0.1:{port}")
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: subprocess.Popen[str]) -> None:
    """Terminate the server (SIGTERM, then SIGKILL after 10 s) and reap it."""
    if server.poll() is None:
        server.terminate()
    try:
        server.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.communicate()
