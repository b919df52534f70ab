"""``tvote admin kiosk enrol | pin | list | revoke`` against an election served by uvicorn on loopback (the
commands talk HTTP to it, with the admin token from the environment, as an operator runs them), and the
kiosk key file of ``voting.clients.kiosk``."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from _kiosk_util import kiosk_election
from typer.testing import CliRunner

from voting.cli import app as tvote
from voting.clients.kiosk import KioskApi, KioskApiError, KioskKey
from voting.testing import DemoElection

pytestmark = pytest.mark.xdist_group("kiosk")


@pytest.fixture(scope="module")
def e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoElection]:
    with kiosk_election(tmp_path_factory.mktemp("kiosk-cli"), voters=2) as election:
        yield election


def _tvote(e: DemoElection, *args: str, code: int = 0) -> str:
    res = CliRunner().invoke(tvote, list(args), env={"TVOTE_ADMIN_TOKEN": e.admin_token})
    assert res.exit_code == code, res.output
    return res.output


def test_the_commission_enrols_lists_renews_the_pin_and_revokes(e: DemoElection) -> None:
    key = KioskKey.generate()
    srv = ["--server", e.base_url]
    out = _tvote(e, "admin", "kiosk", "enrol", *srv, "--kiosk-id", "tsukuba-city-hall-1", "--public-key",
                 key.public_key_hex.upper(), "--polling-place", "つくば市役所 1階 期日前投票所")  # fmt: skip
    assert re.search(r"kiosk tsukuba-city-hall-1 enrolled at ledger entry \d+", out), out
    assert f"key fingerprint (compare with the kiosk's): {key.fingerprint}" in out
    pin = re.search(r"poll-worker PIN .*shown once\): ([0-9]{8})$", out, re.M)
    assert pin is not None, out
    api = KioskApi(e.http, key, "tsukuba-city-hall-1")
    assert api.open(1, pin.group(1))["entry"]["session"] == 1

    out = _tvote(e, "admin", "kiosk", "list", *srv)
    assert "tsukuba-city-hall-1  open  session 1  ballots 0  PIN issued" in out
    assert key.fingerprint in out and "つくば市役所 1階 期日前投票所" in out and pin.group(1) not in out

    out = _tvote(e, "admin", "kiosk", "pin", *srv, "tsukuba-city-hall-1")
    new = re.search(
        r"new poll-worker PIN for kiosk tsukuba-city-hall-1 \(shown once\): ([0-9]{8})$", out, re.M
    )
    assert new is not None, out
    assert api.close(1, 0, new.group(1))["entry"]["ballots_cast"] == 0

    out = _tvote(e, "admin", "kiosk", "revoke", *srv, "tsukuba-city-hall-1", "--reason", "kiosk stolen")
    index = int(re.search(r"revoked at ledger entry (\d+)", out).group(1))  # type: ignore[union-attr]
    assert e.service.ledger.entry(index).payload["reason"] == "kiosk stolen"
    assert "tsukuba-city-hall-1  revoked" in _tvote(e, "admin", "kiosk", "list", *srv)
    with pytest.raises(KioskApiError) as err:
        api.status()
    assert err.value.code == "kiosk.revoked"

    # refusals: one line with the server's code, exit status 1, nothing appended
    size = e.ledger_size()
    out = _tvote(e, "admin", "kiosk", "revoke", *srv, "tsukuba-city-hall-1", "--reason", "again", code=1)
    assert "error: kiosk.revoked:" in out
    out = _tvote(e, "admin", "kiosk", "enrol", *srv, "--kiosk-id", "hall-2", "--public-key", "00" * 32,
                 "--polling-place", "x", code=1)  # fmt: skip
    assert "error: kiosk.public_key:" in out
    out = _tvote(e, "admin", "kiosk", "pin", *srv, "no-such-kiosk", code=1)
    assert "error: kiosk.unknown:" in out
    assert e.ledger_size() == size


def test_the_kiosk_key_file_is_private_and_checked(tmp_path: Path) -> None:
    key = KioskKey.generate()
    path = tmp_path / "kiosk-key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_bytes()) == 32
    loaded = KioskKey.load(path)
    assert loaded.public_key_hex == key.public_key_hex and loaded.fingerprint == key.fingerprint
    assert re.fullmatch(r"([0-9a-f]{4} ){7}[0-9a-f]{4}", key.fingerprint)
    with pytest.raises(FileExistsError):  # never replaced: a kiosk keeps the key it was enrolled with
        KioskKey.generate().save(path)
    os.chmod(path, 0o644)
    with pytest.raises(KioskApiError) as err:
        KioskKey.load(path)
    assert err.value.code == "kiosk.key_file" and "readable by others" in err.value.message
    short = tmp_path / "short"
    short.write_bytes(b"\x00" * 31)
    short.chmod(0o600)
    with pytest.raises(KioskApiError) as err:
        KioskKey.load(short)
    assert "not a 32-byte Ed25519 seed" in err.value.message
    with pytest.raises(KioskApiError) as err:
        KioskKey.load(tmp_path / "missing")
    assert err.value.code == "kiosk.key_file"
    with pytest.raises(ValueError):
        KioskApi(None, key, "Not An Id")  # type: ignore[arg-type]
