"""``tvote-verify --engine``: both engines give the same report on a real record (valid, and with tampered
cast ballots); the report names the engine; ``--engine native`` without the extension exits 2 with the hint.

The native half skips when the extension is not installed, except under ``TVOTE_REQUIRE_ALL=1`` (CI)."""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from verifier_fixture import Election, build_election

from crypto import EncryptedBallot, Scalar, native_available
from verifier import Options, Report, verify_record
from verifier.cli import EXIT_INVALID, EXIT_OK, EXIT_UNREADABLE, app

pytestmark = pytest.mark.xdist_group("verifier")


@pytest.fixture(scope="module")
def election() -> Election:
    return build_election(seed=3)


@pytest.fixture(scope="module")
def valid(election: Election, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return election.write(tmp_path_factory.mktemp("valid-engines") / "record")


def need_native() -> None:
    if not native_available():
        why = "the native engine (tvote_native) is not installed: `make native` builds it"
        if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
            pytest.fail(f"required (TVOTE_REQUIRE_ALL=1): {why}")
        pytest.skip(why)


def report_without_engine(r: Report) -> dict[str, Any]:
    d = r.to_dict()
    d.pop("elapsed_seconds")
    d.pop("engine")
    return d


def both(election: Election, path: Path, **kw: Any) -> tuple[Report, Report]:
    opts = {"pdf_trust_roots": (election.root_certificate,), **kw}
    py = verify_record(path, Options(engine="python", **opts))
    nat = verify_record(path, Options(engine="native", **opts))
    assert (py.engine, nat.engine) == ("python", "native")
    assert report_without_engine(py) == report_without_engine(nat)
    return py, nat


def test_same_report_on_a_valid_record(election: Election, valid: Path) -> None:
    need_native()
    py, _ = both(election, valid, batch_size=3)
    assert py.ok


def _cast_indices(el: Election) -> list[int]:
    return [i for i, (t, _) in enumerate(el.events) if t == "ballot.cast"]


def _tampered(el: Election, tmp: Path) -> Path:
    """Five cast ballots spoiled five ways (re-sealed, so only the ballot checks fail): a mauled response
    with its hash recomputed (V13), a pad that is not a point (V13, does not decode), a wrong ballot_hash
    (V14), a roll proof with a flipped bit (V12: not on the roll) and another voter's roll proof (V12)."""
    evs = copy.deepcopy(el.events)
    first, second, third, fourth, fifth = _cast_indices(el)[:5]
    path = evs[fourth][1]["roll_proof"]["path"]
    path[-1] = path[-1][:-1] + ("0" if path[-1][-1] != "0" else "1")
    evs[fifth][1]["roll_proof"] = copy.deepcopy(evs[first][1]["roll_proof"])
    p = evs[first][1]
    proof = p["ballot"]["contests"][0]["selections"][1]["proof"]
    proof["responses"][1] = (Scalar.from_hex(proof["responses"][1]) + 1).hex()
    b = EncryptedBallot.from_dict(p["ballot"])
    p["ballot_hash"], p["tracking_code"] = b.ballot_hash().hex(), b.tracking_code()
    evs[second][1]["ballot"]["contests"][0]["selections"][0]["ciphertext"]["a"] = "ff" * 32
    evs[third][1]["ballot_hash"] = "00" * 32
    return el.write(tmp / "record", evs)


def test_same_report_on_tampered_ballots(election: Election, tmp_path: Path) -> None:
    need_native()
    rec = _tampered(election, tmp_path)
    for batch_size in (1, 4, 256):
        py, _ = both(election, rec, batch_size=batch_size)
        assert 13 in py.failed_steps() and 14 in py.failed_steps()
        first, second, third = _cast_indices(election)[:3]
        v13 = {f.entry for f in py.failures if f.step == 13}
        assert {first, second} <= v13
        assert any(f.entry == third and f.step == 14 for f in py.failures)
        fourth, fifth = _cast_indices(election)[3:5]
        assert {f.entry for f in py.failures if f.step == 12} == {fourth, fifth}


def test_same_report_on_non_canonical_lines(election: Election, valid: Path, tmp_path: Path) -> None:
    """V1 in the workers: the native engine vouches only for canonical lines (``Entry.parse_canonical``);
    ballot lines written another way (a space after each separator; the keys of one entry out of order; an
    entry of another version; a float) are the reference's to judge, with the same report."""
    need_native()
    lines = (valid / "entries.jsonl").read_bytes().splitlines(keepends=True)
    first, second, third, fourth = _cast_indices(election)[:4]
    entry = json.loads(lines[second])
    lines[first] = json.dumps(json.loads(lines[first])).encode() + b"\n"
    lines[second] = json.dumps(dict(reversed(entry.items())), separators=(",", ":")).encode() + b"\n"
    lines[third] = lines[third].replace(b'"version":1}', b'"version":2}')
    lines[fourth] = lines[fourth].replace(b'"version":1}', b'"version":1.0}')
    rec = tmp_path / "record"
    rec.mkdir()
    for f in valid.iterdir():
        (rec / f.name).write_bytes(f.read_bytes())
    (rec / "entries.jsonl").write_bytes(b"".join(lines))
    for workers in (1, 2):
        py, _ = both(election, rec, batch_size=2, workers=workers)
        assert 1 in py.failed_steps()


def test_same_report_with_worker_processes(election: Election, tmp_path: Path) -> None:
    need_native()
    both(election, _tampered(election, tmp_path), batch_size=2, workers=2)


def test_cli_names_the_engine(election: Election, valid: Path, tmp_path: Path) -> None:
    roots = ["--trust-root", str(valid.parent / "record-root.pem")]
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, [str(valid), "--engine", "python", "--json", str(out), *roots])
    assert res.exit_code == EXIT_OK, res.output
    assert "Ballot engine: python" in res.output
    assert json.loads(out.read_text())["engine"] == "python"
    res = CliRunner().invoke(app, [str(valid), "--engine", "python", "--lang", "ja", *roots])
    assert "投票の検証エンジン: python" in res.output
    res = CliRunner().invoke(app, [str(valid), "--engine", "auto", "--json", str(out), *roots])
    assert res.exit_code == EXIT_OK, res.output
    assert json.loads(out.read_text())["engine"] == ("native" if native_available() else "python")
    if native_available():
        rec = _tampered(election, tmp_path)
        res = CliRunner().invoke(app, [str(rec), "--engine", "native", "--json", str(out), *roots])
        assert res.exit_code == EXIT_INVALID, res.output
        assert "Ballot engine: native" in res.output


def test_engine_native_without_the_extension_exits_2(
    valid: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crypto import _native

    monkeypatch.setitem(sys.modules, "tvote_native", None)  # `import tvote_native` raises ImportError
    _native._module.cache_clear()
    try:
        out = tmp_path / "r.json"
        res = CliRunner().invoke(app, [str(valid), "--engine", "native", "--json", str(out)])
        assert res.exit_code == EXIT_UNREADABLE, res.output
        assert "--engine native" in res.output and "make native" in res.output
        assert not out.exists()  # nothing verified
        res = CliRunner().invoke(app, [str(valid), "--engine", "auto", "--json", str(out)])
        assert json.loads(out.read_text())["engine"] == "python"
    finally:
        monkeypatch.undo()
        _native._module.cache_clear()


def test_engine_is_a_choice(valid: Path) -> None:
    res = CliRunner().invoke(app, [str(valid), "--engine", "rust"])
    assert res.exit_code == EXIT_UNREADABLE  # a wrong command line is exit 2
