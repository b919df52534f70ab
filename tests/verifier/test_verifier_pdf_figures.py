"""V22 through the whole verifier: every figure of the result declaration is checked against the record.

Each case re-signs, with the test commission's key, a declaration whose one figure is forged on the page and
in the attached JSON alike (``Election.write(pdf_tamper=...)``); the record is otherwise valid. The verifier
must call the record INVALID (exit status 1) and name V22 (``result.pdf``), and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.verifier_fixture import Election, build_election
from verifier import Options, Report, verify_record
from verifier._report import INVALID

pytestmark = pytest.mark.xdist_group("verifier")


@pytest.fixture(scope="module")
def election() -> Election:
    return build_election()


def run(el: Election, path: Path) -> Report:
    return verify_record(path, Options(pdf_trust_roots=(el.root_certificate,)))


def _set(path: str, value: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = doc
        for p in parents:
            node = node[p]
        node[last] = value(node[last])

    return mutate


FORGERIES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "roll size": (_set("figures/roll_size", lambda n: n + 1), "pdf.figures"),
    "ballots counted": (_set("figures/counted", lambda n: n - 1), "pdf.figures"),
    "turnout": (_set("figures/turnout", lambda t: "99.99%"), "pdf.figures"),
    "blank ballots (mayor)": (_set("figures/contests/mayor/blank", lambda n: n + 1), "pdf.figures"),
    "blank ballots (referendum)": (_set("figures/contests/referendum/blank", lambda n: n + 1), "pdf.figures"),
    "a candidate's count": (_set("result/results/mayor/cand-1", lambda n: n + 1), "pdf.result"),
}


def test_honest_declaration_passes_v22(election: Election, tmp_path: Path) -> None:
    r = run(election, election.write(tmp_path / "record", pdf_tamper=lambda doc: None))
    assert r.ok and r.statuses[22] == "pass", [f.operator_message for f in r.failures]


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_each_forged_figure_makes_v22_fail(name: str, election: Election, tmp_path: Path) -> None:
    tamper, code = FORGERIES[name]
    r = run(election, election.write(tmp_path / "record", pdf_tamper=tamper))
    assert not r.ok and r.verdict == INVALID  # exit status 1 (docs/verifier.md, "Exit statuses")
    assert set(r.failed_steps()) == {22}, [f.operator_message for f in r.failures]
    assert code in r.failures[0].message
