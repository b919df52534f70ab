"""V5 and a ledger nobody witnessed (issue 11, attack 3: "the verifier passes V5 with no cosignatures").

A manifest with no witnesses (quorum 0) used to pass V5: no checkpoint needed a cosignature, so a server
showing different ledgers to different voters, and a third one to the auditor, went unnoticed. Such a record
now fails V5 as *unwitnessed*; only the UNSAFE development flag turns the failure into a note."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner
from verifier_fixture import Election, build_election

from verifier import Options, verify_record
from verifier.cli import app

pytestmark = pytest.mark.xdist_group("verifier")


@pytest.fixture(scope="module")
def election() -> Election:
    return build_election(witnessed=False)


@pytest.fixture(scope="module")
def unwitnessed(election: Election, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return election.write(tmp_path_factory.mktemp("unwitnessed") / "record")


def _opts(el: Election, **kw: bool) -> Options:
    return Options(pdf_trust_roots=(el.root_certificate,), **kw)


def test_a_record_without_witnesses_fails_v5_as_unwitnessed(election: Election, unwitnessed: Path) -> None:
    r = verify_record(unwitnessed, _opts(election))
    assert r.failed_steps() == [5], [f.operator_message for f in r.failures]
    assert any("unwitnessed" in f.operator_message for f in r.failures)


def test_the_unsafe_flag_turns_it_into_a_note(election: Election, unwitnessed: Path) -> None:
    r = verify_record(unwitnessed, _opts(election, unsafe_allow_unwitnessed=True))
    assert r.ok, [f.operator_message for f in r.failures]
    assert any("UNWITNESSED" in n for n in r.notes)


def test_cli_fails_closed_and_warns_when_told_to_accept(unwitnessed: Path) -> None:
    runner = CliRunner()
    root = ["--trust-root", str(unwitnessed.parent / "record-root.pem")]
    strict = runner.invoke(app, [str(unwitnessed), *root])
    assert strict.exit_code == 1 and "unwitnessed" in strict.output
    lax = runner.invoke(app, [str(unwitnessed), *root, "--unsafe-allow-unwitnessed"])
    assert lax.exit_code == 0, lax.output
    assert "warning" in lax.output and "UNWITNESSED" in lax.output
