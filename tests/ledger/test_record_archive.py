"""The record's one writer and one reader (issue 12): the archive is deterministic, every writer's record
opens, and a hostile archive is refused the same way by ``ledger.record`` and by ``tvote-verify``.

The archive rules are ``ledger/record/_open.py``'s docstring (docs/record.md §1): regular files and
directories only, no absolute path and no ``..``, only the record's files, each within its bound.
"""

from __future__ import annotations

import io
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _ledger_util import Clock, log_signer, policy, witnesses
from typer.testing import CliRunner

from ledger import Ledger, LedgerConfig
from ledger.record import (
    ARCHIVE_PREFIX,
    MAX_ENTRY_BYTES,
    InvalidEncoding,
    RecordError,
    RecordWriter,
    _open,
    archive_record,
    check_record,
    open_record,
    read_record,
    seal_record,
)
from verifier.cli import EXIT_UNREADABLE, app


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small witnessed record exported by the running log (the writer's first user)."""
    base = tmp_path_factory.mktemp("archive")
    with Ledger(f"sqlite:///{base / 'l.db'}", LedgerConfig(log_signer(), policy(2), clock=Clock())) as led:
        led.append_many([("ev", {"i": i}) for i in range(6)])
        cp = led.checkpoint()
        for w in witnesses()[:2]:
            led.add_cosignature(w.name, cp.size, w.cosign(cp.signed.body))
        return led.export(base / "rec", {"result.pdf": b"%PDF-1.7 (not checked by the record format)"})


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Unpacking happens under this test's own temporary directory, so leftovers and escapes are seen."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setitem(_open.MAX_FILE_BYTES, "result.pdf", _PDF_BOUND)
    yield scratch
    assert list(scratch.iterdir()) == [], "an unpacked copy was left behind"


def test_archive_is_deterministic_and_reads_back(record: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.tar.gz", io.BytesIO()
    archive_record(record, a)
    archive_record(record, b)
    assert a.read_bytes() == b.getvalue()
    with tarfile.open(a) as tar:
        assert [(m.name, m.mtime) for m in tar] == [
            (ARCHIVE_PREFIX, 0),
            *((f"{ARCHIVE_PREFIX}/{n}", 0) for n in ("record.json", "checkpoints.jsonl", "entries.jsonl")),
            (f"{ARCHIVE_PREFIX}/result.pdf", 0),
        ]
    assert check_record(a) == check_record(record)
    rec = read_record(a)
    assert [e.index for e in rec.entries()] == list(range(6))
    with open_record(a) as opened:
        assert (opened.directory / "result.pdf").read_bytes() == (record / "result.pdf").read_bytes()
        unpacked = opened.directory
    assert not unpacked.exists()
    del rec  # its unpacked copy goes with it


def _zip(src: Path, out: Path, prefix: str) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(src.iterdir()):
            zf.write(p, f"{prefix}{p.name}")
    return out


def _tar(src: Path, out: Path, arcname: str) -> Path:
    with tarfile.open(out, "w") as tf:
        tf.add(src, arcname=arcname)
    return out


@pytest.mark.parametrize(
    "pack",
    [
        lambda src, d: _zip(src, d / "r.zip", "any-name/"),
        lambda src, d: _zip(src, d / "r.zip", ""),
        lambda src, d: _tar(src, d / "r.tar", "."),
        lambda src, d: _tar(src, d / "r.tar", "election-7-record"),
    ],
    ids=["zip-in-a-directory", "zip-top-level", "tar-dot", "tar-other-name"],
)
def test_every_archive_form_opens(record: Path, tmp_path: Path, pack: Callable[[Path, Path], Path]) -> None:
    assert check_record(pack(record, tmp_path)) == check_record(record)


def test_writer_refuses_what_would_disagree_with_record_json(record: Path, tmp_path: Path) -> None:
    rec = read_record(record)
    lines = [line.removesuffix(b"\n") for line in rec.entry_lines()]
    with pytest.raises(ValueError, match="announce"):
        seal_record(tmp_path / "short", rec.header, rec.checkpoints, lines[:-1])
    assert not (tmp_path / "short" / "record.json").exists()
    assert [p.name for p in (tmp_path / "short").iterdir()] == []  # no half-written file is left
    with pytest.raises(ValueError, match="not a file of the record"):
        RecordWriter(tmp_path / "other").add_file("notes.txt", b"")
    with pytest.raises(FileExistsError):
        RecordWriter(record)  # never into a directory that holds something
    assert check_record(seal_record(tmp_path / "ok", rec.header, rec.checkpoints, lines)) == check_record(
        record
    )


# ------------------------------------------------------------------------------------------ hostile


def _member(tar: tarfile.TarFile, name: str, data: bytes = b"x", **kw: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


def _hostile_tar(record: Path, out: Path, extra: Callable[[tarfile.TarFile], None]) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        for name in ("record.json", "checkpoints.jsonl", "entries.jsonl"):
            tar.add(record / name, arcname=f"{ARCHIVE_PREFIX}/{name}")
        extra(tar)
    return out


_PDF = f"{ARCHIVE_PREFIX}/result.pdf"
#: the bound on result.pdf while these tests run (64 MiB in earnest; the rule is the same)
_PDF_BOUND = 4096


def _directories(tar: tarfile.TarFile, n: int) -> None:
    for k in range(n):
        _member(tar, f"d{k}/", type=tarfile.DIRTYPE)


HOSTILE_TAR: dict[str, Callable[[tarfile.TarFile], None]] = {
    "dot-dot": lambda t: _member(t, f"{ARCHIVE_PREFIX}/../escaped.txt"),
    "absolute": lambda t: _member(t, "/tmp/tvote-escaped.txt"),
    "symlink": lambda t: _member(
        t, f"{ARCHIVE_PREFIX}/result.pdf", type=tarfile.SYMTYPE, linkname="/etc/passwd"
    ),
    "hardlink": lambda t: _member(
        t, f"{ARCHIVE_PREFIX}/result.pdf", type=tarfile.LNKTYPE, linkname=f"{ARCHIVE_PREFIX}/record.json"
    ),
    "device": lambda t: _member(
        t, f"{ARCHIVE_PREFIX}/result.pdf", type=tarfile.CHRTYPE, devmajor=1, devminor=3
    ),
    "fifo": lambda t: _member(t, f"{ARCHIVE_PREFIX}/result.pdf", type=tarfile.FIFOTYPE),
    "unknown-file": lambda t: _member(t, f"{ARCHIVE_PREFIX}/notes.txt"),
    "twice": lambda t: _member(t, f"{ARCHIVE_PREFIX}/entries.jsonl"),
    "second-directory": lambda t: _member(t, "other/result.pdf"),
    "nested": lambda t: _member(t, f"{ARCHIVE_PREFIX}/sub/result.pdf"),
    "oversize-pdf": lambda t: _member(t, f"{ARCHIVE_PREFIX}/result.pdf", b"\0" * (_PDF_BOUND + 1)),
    "many-members": lambda t: _directories(t, 20),
}


def _refused_by_both(archive: Path, escape: Path) -> None:
    with pytest.raises(InvalidEncoding):
        open_record(archive)
    with pytest.raises(RecordError) as err:
        check_record(archive)
    assert err.value.check == "record-format"
    res = CliRunner().invoke(app, [str(archive)])
    assert res.exit_code == EXIT_UNREADABLE, res.output
    assert not escape.exists()


@pytest.mark.parametrize("kind", sorted(HOSTILE_TAR))
def test_hostile_tar_is_refused(record: Path, tmp_path: Path, private_tmp: Path, kind: str) -> None:
    archive = _hostile_tar(record, tmp_path / f"{kind}.tar.gz", HOSTILE_TAR[kind])
    _refused_by_both(archive, private_tmp / "escaped.txt")


def test_oversize_record_json_is_refused(record: Path, tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "big.tar.gz", "w:gz") as tar:
        _member(tar, f"{ARCHIVE_PREFIX}/record.json", b" " * (MAX_ENTRY_BYTES + 1))
        for name in ("checkpoints.jsonl", "entries.jsonl"):
            tar.add(record / name, arcname=f"{ARCHIVE_PREFIX}/{name}")
    _refused_by_both(tmp_path / "big.tar.gz", tmp_path / "none")


def test_archive_lacking_a_file_is_refused(record: Path, tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "short.tar.gz", "w:gz") as tar:
        tar.add(record / "entries.jsonl", arcname=f"{ARCHIVE_PREFIX}/entries.jsonl")
    _refused_by_both(tmp_path / "short.tar.gz", tmp_path / "none")


def _hostile_zip(record: Path, out: Path, name: str, mode: int = stat.S_IFREG | 0o644) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for n in ("record.json", "checkpoints.jsonl", "entries.jsonl"):
            zf.write(record / n, f"{ARCHIVE_PREFIX}/{n}")
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        zf.writestr(info, b"/etc/passwd")
    return out


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("../escaped.txt", stat.S_IFREG | 0o644),
        ("/escaped.txt", stat.S_IFREG | 0o644),
        (f"{ARCHIVE_PREFIX}/..\\..\\escaped.txt", stat.S_IFREG | 0o644),
        (f"{ARCHIVE_PREFIX}/result.pdf", stat.S_IFLNK | 0o777),
    ],
    ids=["dot-dot", "absolute", "backslash", "symlink"],
)
def test_hostile_zip_is_refused(
    record: Path, tmp_path: Path, private_tmp: Path, name: str, mode: int
) -> None:
    _refused_by_both(_hostile_zip(record, tmp_path / "r.zip", name, mode), private_tmp / "escaped.txt")


def test_a_directory_lacking_a_file_is_refused(record: Path, tmp_path: Path) -> None:
    d = Path(shutil.copytree(record, tmp_path / "rec"))
    (d / "checkpoints.jsonl").unlink()
    with pytest.raises(InvalidEncoding, match=r"lacks checkpoints\.jsonl"):
        open_record(d)
