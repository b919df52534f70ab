"""The trustees' proofs (V9 Schnorr proofs of the Feldman commitments, V19 Chaum–Pedersen proofs of the
partial decryptions) through both engines: ``--engine native`` checks them in one batch
(``BallotEngine.verify_proofs``) and the reference words a refused one, ``--engine python`` checks them one
at a time; on a record with a forged proof both give the same report. Skipped without the extension, except
under ``TVOTE_REQUIRE_ALL=1`` (CI)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
from verifier_fixture import Election, build_election

from crypto import native_available
from verifier import Options, verify_record
from verifier._report import Report


@pytest.fixture(scope="module")
def election() -> Election:
    if not native_available():
        why = "the native engine (tvote_native) is not installed: `make native` builds it"
        if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
            pytest.fail(f"required (TVOTE_REQUIRE_ALL=1): {why}")
        pytest.skip(why)
    return build_election()


def _forged(el: Election, case: str) -> list[tuple[str, dict[str, Any]]]:
    events = copy.deepcopy(el.events)
    if case == "schnorr":  # trustee 2's second coefficient carries the first one's proof
        p = next(p for t, p in events if t == "trustee.registered" and p["trustee"] == 2)
        proofs = p["commitments"]["proofs"]
        proofs[1] = copy.deepcopy(proofs[0])
    else:  # trustee 3's partial decryptions of two selections swap their proofs
        p = next(p for t, p in events if t == "tally.partial" and p["trustee"] == 3)
        contest = next(iter(p["partials"].values()))
        a, b = list(contest)[:2]
        contest[a]["proof"], contest[b]["proof"] = contest[b]["proof"], contest[a]["proof"]
    return events


def _same(a: Report, b: Report) -> None:
    assert a.statuses == b.statuses and a.summary == b.summary and a.results == b.results
    assert [f.to_dict() for f in a.failures] == [f.to_dict() for f in b.failures]


@pytest.mark.parametrize(("case", "step"), [("schnorr", 9), ("partial", 19)])
def test_both_engines_report_a_forged_trustee_proof_alike(
    election: Election, tmp_path: Path, case: str, step: int
) -> None:
    rec = election.write(tmp_path / "record", _forged(election, case))
    opts: dict[str, Any] = dict(pdf_trust_roots=(election.root_certificate,))
    python = verify_record(rec, Options(engine="python", **opts))
    native = verify_record(rec, Options(engine="native", **opts))
    assert (python.engine, native.engine) == ("python", "native")
    assert step in python.failed_steps(), python.failures
    _same(python, native)


def test_both_engines_pass_the_valid_record(election: Election, tmp_path: Path) -> None:
    rec = election.write(tmp_path / "record")
    opts: dict[str, Any] = dict(pdf_trust_roots=(election.root_certificate,))
    native = verify_record(rec, Options(engine="native", **opts))
    assert not native.failures, native.failures
    _same(verify_record(rec, Options(engine="python", **opts)), native)
