"""V29 booth.published: the booth's digest is on the record before voting opens, well formed, and the report
states it (issue 13). Each mutation is re-sealed, so only the booth's checks fail."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
from verifier_fixture import BOOTH_FILES, Election, booth_payload, build_election

from verifier import Options, Report, verify_record

pytestmark = pytest.mark.xdist_group("verifier")

Events = list[tuple[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def election() -> Election:
    return build_election()


def _run(el: Election, tmp: Path, evs: Events, **kw: Any) -> Report:
    path = el.write(tmp / "record", evs, **kw)
    return verify_record(path, Options(pdf_trust_roots=(el.root_certificate,)))


def _events(el: Election) -> Events:
    return copy.deepcopy(el.events)


def _at(evs: Events, etype: str) -> int:
    return next(i for i, (t, _) in enumerate(evs) if t == etype)


def _messages(r: Report, step: int) -> list[str]:
    return [f.message for f in r.failures if f.step == step]


def test_the_valid_record_states_its_booth(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    r = _run(election, tmp_path, evs)
    assert r.ok and r.statuses[29] == "pass"
    booth = _at(evs, "booth.published")
    assert booth < _at(evs, "voting.opened")
    assert r.booth_digest == booth_payload()["digest"] and r.booth_entry == booth
    assert r.to_dict()["booth"] == {"digest": r.booth_digest, "entry": booth}


def test_voting_opened_without_a_booth_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    del evs[_at(evs, "booth.published")]
    r = _run(election, tmp_path, evs)
    assert r.failed_steps() == [29]
    assert _messages(r, 29) == ["voting opened without a booth.published entry before it"]
    assert r.failures[0].entry == _at(evs, "voting.opened") and r.booth_digest is None


def test_a_booth_after_voting_opened_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    booth = evs.pop(_at(evs, "booth.published"))
    evs.insert(_at(evs, "voting.opened") + 1, booth)
    r = _run(election, tmp_path, evs)
    assert r.failed_steps() == [8, 29]
    assert "booth.published after voting opened" in _messages(r, 8)[0]
    assert _messages(r, 29) == ["the booth was published after voting opened"]


def test_a_second_booth_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    i = _at(evs, "booth.published")
    evs.insert(i + 1, copy.deepcopy(evs[i]))
    r = _run(election, tmp_path, evs)
    assert r.failed_steps() == [8] and "a second booth.published entry" in _messages(r, 8)[0]


def _booth(evs: Events) -> dict[str, Any]:
    return evs[_at(evs, "booth.published")][1]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("digest"), "exactly {assets (a list), digest}"),
        (lambda p: p.update(extra=1), "exactly {assets (a list), digest}"),
        (lambda p: p.update(assets={}), "exactly {assets (a list), digest}"),
        (lambda p: p["assets"][0].update(path="https://cdn.example.com/x.js"), "assets[0] is not exactly"),
        (lambda p: p["assets"][1].update(path="/static/../secret"), "assets[1] is not exactly"),
        (lambda p: p["assets"][0].update(sha256="AB" * 32), "assets[0] is not exactly"),
        (lambda p: p["assets"][0].update(bytes=-1), "assets[0] is not exactly"),
        (lambda p: p["assets"][0].update(bytes=True), "assets[0] is not exactly"),
        (lambda p: p["assets"][0].pop("bytes"), "assets[0] is not exactly"),
        (lambda p: p["assets"].append(p["assets"][0]), "strictly increasing order"),
        (lambda p: p["assets"].reverse(), "strictly increasing order"),
        (lambda p: p.update(digest="ab" * 32), "is not the listed assets' digest"),
        (lambda p: p.update(digest="AB" * 32), "digest is not 64 lowercase hex"),
    ],
)
def test_a_malformed_booth_fails(election: Election, tmp_path: Path, mutate: Any, message: str) -> None:
    evs = _events(election)
    mutate(_booth(evs))
    r = _run(election, tmp_path, evs)
    assert r.failed_steps() == [29], [f.operator_message for f in r.failures]
    assert message in _messages(r, 29)[0] and r.booth_digest is None


def test_a_listed_asset_changed_without_its_digest_fails(election: Election, tmp_path: Path) -> None:
    """Someone rewrites one hash in the list (to match a substituted script) but cannot fix the digest."""
    evs = _events(election)
    p = _booth(evs)
    p["assets"][1]["sha256"] = hashlib.sha256(b"sendChoicesElsewhere()").hexdigest()
    r = _run(election, tmp_path, evs)
    assert r.failed_steps() == [29] and "is not the listed assets' digest" in _messages(r, 29)[0]


def test_another_booth_with_its_own_digest_passes_and_is_reported(election: Election, tmp_path: Path) -> None:
    """The record cannot know what the server served: it states the digest for observers to compare."""
    evs = _events(election)
    other = booth_payload({**BOOTH_FILES, "/static/extra.js": b"1;\n"})
    _booth(evs).update(other)
    r = _run(election, tmp_path, evs)
    assert r.ok and r.booth_digest == other["digest"] != booth_payload()["digest"]


def test_a_record_before_voting_opens_without_a_booth_is_not_applicable(
    election: Election, tmp_path: Path
) -> None:
    evs = _events(election)
    evs = [e for e in evs[: _at(evs, "voting.opened")] if e[0] != "booth.published"]
    path = election.write(tmp_path / "record", evs, declare=False)
    r = verify_record(path, Options(partial=True))
    assert 29 not in r.failed_steps() and r.statuses[29] == "n/a" and r.booth_digest is None


def test_the_cli_states_the_booth_digest(election: Election, tmp_path: Path) -> None:
    from rich.console import Console

    from verifier.cli import print_report

    r = _run(election, tmp_path, _events(election))
    console = Console(record=True, width=300)
    print_report(r, console)
    text = console.export_text()
    assert f"booth published at entry {r.booth_entry}: digest {r.booth_digest}" in text
