"""ledger.files: the one atomic, durable write for keys, state and output files (issue 12, point 6).

The file has its final mode from creation, a failure half-way leaves the old content and no temporary file,
and no other module writes a file its own way (os.replace, mkstemp, fsync live in ledger/files.py only).
"""

from __future__ import annotations

import ast
import datetime as dt
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import ledger.files
from ledger.files import atomic_writer, write_atomic

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_writes_and_replaces(tmp_path: Path) -> None:
    p = tmp_path / "state.json"
    write_atomic(p, b"one")
    write_atomic(p, "two \N{BALLOT BOX WITH CHECK}")
    assert p.read_text(encoding="utf-8") == "two \N{BALLOT BOX WITH CHECK}"
    assert sorted(tmp_path.iterdir()) == [p]


def test_a_secret_has_its_mode_from_creation(tmp_path: Path, umask_022: None) -> None:
    """Before the first byte is written, the only file in the directory is the temporary one, mode 0600."""
    p = tmp_path / "key"
    with atomic_writer(p, mode=0o600) as f:
        (tmp,) = tmp_path.iterdir()
        assert tmp != p and _mode(tmp) == 0o600 == stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        f.write(b"secret")
    assert _mode(p) == 0o600 and p.read_bytes() == b"secret"


def test_the_mode_is_exact_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "public", b"x", mode=0o644)
        write_atomic(tmp_path / "default", b"x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "public") == 0o644
    assert _mode(tmp_path / "default") == 0o600  # like open(path, "w"): 0o666 less the umask


def test_replacing_narrows_a_wider_old_file(tmp_path: Path, umask_022: None) -> None:
    p = tmp_path / "token"
    p.write_text("old")
    p.chmod(0o644)
    write_atomic(p, "new", mode=0o600)
    assert _mode(p) == 0o600


def test_a_failure_mid_write_keeps_the_old_content(tmp_path: Path) -> None:
    p = tmp_path / "witness-state.json"
    write_atomic(p, b"old state", mode=0o644)
    with pytest.raises(RuntimeError), atomic_writer(p, mode=0o644) as f:
        f.write(b"half a new st")
        raise RuntimeError("disk full")
    assert p.read_bytes() == b"old state"
    assert sorted(tmp_path.iterdir()) == [p]  # no temporary file left behind


def test_a_failing_fsync_keeps_the_old_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "commission-signer.key"
    write_atomic(p, b"old key", mode=0o600)

    def fail(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(ledger.files.os, "fsync", fail)
    with pytest.raises(OSError, match="Input/output"):
        write_atomic(p, b"new key", mode=0o600)
    assert p.read_bytes() == b"old key"
    assert sorted(tmp_path.iterdir()) == [p]


def test_no_overwrite_refuses_an_existing_file(tmp_path: Path) -> None:
    p = tmp_path / "ledger-signing.key"
    write_atomic(p, "first", mode=0o600, overwrite=False)
    with pytest.raises(FileExistsError):
        write_atomic(p, "second", mode=0o600, overwrite=False)
    assert p.read_text() == "first"
    assert sorted(tmp_path.iterdir()) == [p]


def test_a_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("untouched")
    link = tmp_path / "out.json"
    link.symlink_to(elsewhere)
    write_atomic(link, "new")
    assert not link.is_symlink() and link.read_text() == "new"
    assert elsewhere.read_text() == "untouched"


def test_a_crash_while_writing_the_commission_set_regenerates_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is written last and atomically: a failure leaves no key, so the next start makes the set."""
    from voting._commission_key import KEY_FILE, commission_key_problems, ensure_test_commission_signer
    from voting._settings import Settings

    settings = Settings(environment="test", data_dir=tmp_path / "data", admin_token="a" * 40)
    real_fsync, calls = os.fsync, []

    def fsync_failing_on_the_third_file(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 5:  # cert (file, dir), chain (file, dir), key (file)
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(ledger.files.os, "fsync", fsync_failing_on_the_third_file)
    with pytest.raises(OSError, match="No space"):
        ensure_test_commission_signer(settings)
    assert not (settings.data_dir / KEY_FILE).exists()
    assert not [p for p in settings.data_dir.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(ledger.files.os, "fsync", real_fsync)
    assert ensure_test_commission_signer(settings)
    assert commission_key_problems(settings, dt.datetime.now(dt.UTC)) == []
    assert _mode(settings.data_dir / KEY_FILE) == 0o600


# the helper is the one way to replace a file: no module keeps its own copy (os.replace, mkstemp, fsync)
_OWN_WRITES = {("os", "replace"), ("os", "rename"), ("os", "fsync"), ("tempfile", "mkstemp")}
_ALLOWED = {
    "ledger/files.py",
    "ledger/record/_counting.py",  # a scratch SQLite database, deleted after the run
}


def test_files_are_replaced_through_the_helper_only() -> None:
    bad = []
    for package in ("crypto", "ledger", "voting", "verifier", "kiosk"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in _ALLOWED:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and (node.value.id, node.attr) in _OWN_WRITES
                ):
                    bad.append(f"{rel}:{node.lineno} {node.value.id}.{node.attr}")
    assert not bad, "use ledger.files.write_atomic / atomic_writer:\n" + "\n".join(bad)
