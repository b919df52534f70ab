"""The workers read slices of entries.jsonl (verifier._slices): the lines they cut are the main process's,
the slices cover the file, and the report is the one of a run in which the main process reads every entry
itself, for the valid record and tampered ones (including a context that changes after the first ballot,
which the main process then checks again itself)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifier_fixture import Election, build_election

from verifier import Options, _ledger, _shards, _slices, verify_record
from verifier._report import Report
from verifier._source import _MAX_LINE, RecordSource


@pytest.fixture(scope="module")
def election() -> Election:
    return build_election()


def _lines_of(data: bytes, tmp: Path) -> list[tuple[int, bytes]]:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "entries.jsonl").write_bytes(data)
    return list(RecordSource(tmp, origin=tmp).lines())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.binary(max_size=20), st.sampled_from([b"x" * (_MAX_LINE + 3), b"y" * _MAX_LINE])),
        max_size=8,
    ),
    st.booleans(),
)
def test_slice_lines_cut_as_the_record_source_does(
    tmp_path_factory: pytest.TempPathFactory, parts: list[bytes], terminated: bool
) -> None:
    data = b"\n".join(p.replace(b"\n", b"") for p in parts) + (b"\n" if terminated and parts else b"")
    want = _lines_of(data, tmp_path_factory.mktemp("lines"))
    got = list(_slices.slice_lines(data, 0))
    assert [(e, line) for _, e, line in got] == want
    assert [s for s, _, _ in got] == ([0] + [e for _, e, _ in got[:-1]])[: len(got)]


def test_slices_cover_the_file_at_line_boundaries(
    monkeypatch: pytest.MonkeyPatch, election: Election, tmp_path: Path
) -> None:
    rec = election.write(tmp_path / "record")
    data = (rec / "entries.jsonl").read_bytes()
    monkeypatch.setattr(_slices, "MIN_SLICE", 1000)
    monkeypatch.setattr(_slices, "MAX_SLICE", 1000)
    start = data.index(b"\n") + 1
    with (rec / "entries.jsonl").open("rb") as f:
        slices = list(_slices.plan_slices(f, start, 1, len(data), 2))
    assert len(slices) > 3
    assert b"".join(d for _, _, d in slices) == data[start:]
    for first, pos, d in slices:
        assert d.endswith(b"\n") and data[pos - 1 : pos] == b"\n"
        assert first == data[:pos].count(b"\n")
        assert json.loads(d.split(b"\n", 1)[0])["index"] == first


def _same(a: Report, b: Report) -> None:
    assert a.statuses == b.statuses and a.summary == b.summary and a.results == b.results
    assert a.entries == b.entries and a.suppressed == b.suppressed
    assert [f.to_dict() for f in a.failures] == [f.to_dict() for f in b.failures]


def _tampered(el: Election) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    def evs() -> list[tuple[str, dict[str, Any]]]:
        return copy.deepcopy(el.events)

    casts = [j for j, (t, _) in enumerate(el.events) if t == "ballot.cast"]
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    e = evs()  # a bad proof: a failure found by the worker
    proof = e[casts[5]][1]["ballot"]["contests"][1]["proof"]
    proof["challenges"][0], proof["challenges"][1] = proof["challenges"][1], proof["challenges"][0]
    out["bad-proof"] = el.retally(e)
    e = evs()  # a replayed ballot and a copied pad: V15 across slices
    e.insert(casts[4] + 1, copy.deepcopy(e[casts[1]]))
    out["replay"] = e
    e = evs()
    c = e[casts[3]][1]["ballot"]["contests"][0]["selections"]
    c[1]["ciphertext"] = copy.deepcopy(e[casts[0]][1]["ballot"]["contests"][0]["selections"][0]["ciphertext"])
    out["copied-pad"] = e
    e = evs()  # the roll commitment after the first ballot: the worker's context is not the ballot's
    roll = next(j for j, (t, _) in enumerate(e) if t == "roll.commitment")
    moved = e.pop(roll)
    e.insert(casts[2] - 1, moved)
    out["roll-after-ballots"] = e
    e = evs()  # a ballot of another election
    e[casts[6]][1]["election_id"] = "another"
    out["binding"] = e
    e = evs()  # a pad repeated within one ballot, and a spoiled ballot replayed (V15 within one slice too)
    c = e[casts[3]][1]["ballot"]["contests"][0]["selections"]
    c[1]["ciphertext"] = copy.deepcopy(c[0]["ciphertext"])
    spoiled = next(j for j, (t, _) in enumerate(e) if t == "ballot.spoiled")
    e.insert(spoiled + 2, copy.deepcopy(e[spoiled]))
    out["within-and-spoiled-replay"] = e
    e = evs()  # evidence reused; a replay's evidence is not recorded (the later reuse names the original)
    ev = e[casts[1]][1]["auth"]["evidence_hash"]
    e[casts[5]][1]["auth"]["evidence_hash"] = e[casts[2]][1]["auth"]["evidence_hash"]
    e[casts[6]][1]["auth"]["evidence_hash"] = ev
    e.insert(casts[4] + 1, copy.deepcopy(e[casts[1]]))
    del e[casts[-1] + 1][1]["voter_alias"]  # and a cast ballot without a voter alias (V14, no counting row)
    out["evidence"] = e
    return out


@pytest.mark.parametrize(
    "case",
    [
        "valid",
        "bad-proof",
        "replay",
        "copied-pad",
        "roll-after-ballots",
        "binding",
        "within-and-spoiled-replay",
        "evidence",
    ],
)
def test_slices_give_the_report_of_the_main_process_reading_everything(
    monkeypatch: pytest.MonkeyPatch, election: Election, tmp_path: Path, case: str
) -> None:
    evs = election.events if case == "valid" else _tampered(election)[case]
    rec = election.write(tmp_path / "record", evs, declare=case == "valid")
    opts = dict(pdf_trust_roots=(election.root_certificate,), batch_size=3)
    with monkeypatch.context() as m:  # the main process reads every entry itself (no slices)
        m.setattr(_slices, "is_ballot_line", lambda line: False)
        reference = verify_record(rec, Options(**opts))
    assert (not reference.failures) == (case == "valid"), reference.failures
    _same(reference, verify_record(rec, Options(**opts)))  # one slice, one V15 shard
    monkeypatch.setattr(_shards, "shard_count", lambda size: 3)  # the values of V15 in three shards
    monkeypatch.setattr(_slices, "MIN_SLICE", 1)  # every line its own slice, then a few lines a slice
    monkeypatch.setattr(_slices, "MAX_SLICE", 1)
    _same(reference, verify_record(rec, Options(**opts)))
    monkeypatch.setattr(_slices, "MAX_SLICE", 3000)
    monkeypatch.setattr(_slices, "MIN_SLICE", 3000)
    _same(reference, verify_record(rec, Options(workers=2, **opts)))


def _tamper_structure(rec: Path, case: str) -> int:
    """Edit ``entries.jsonl`` of the record at ``rec`` for ``case``; the entry the ledger's check names."""
    from ledger.record import canonical_json

    path = rec / "entries.jsonl"
    lines = path.read_bytes().split(b"\n")[:-1]
    casts = [j for j, line in enumerate(lines) if b'"type":"ballot.cast"' in line]
    if case == "chain-link":  # a canonical entry whose prev names another entry: with one line a slice, the
        j = casts[3]  # link crosses a slice boundary
        obj = json.loads(lines[j])
        obj["prev"] = json.loads(lines[j - 1])["prev"]
    elif case == "non-canonical":  # the same entry with JSON's default spaces: inside a slice
        j = casts[4]
        lines[j] = json.dumps(json.loads(lines[j])).encode()
        path.write_bytes(b"\n".join(lines) + b"\n")
        return j
    else:  # "merkle-root": the last entry changed (no successor names its hash): the final root differs
        j = len(lines) - 1
        obj = json.loads(lines[j])
        obj["payload"]["checkpoint_hash"] = "00" * 32
    lines[j] = canonical_json(obj)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return j


@pytest.mark.parametrize("case", ["chain-link", "non-canonical", "merkle-root"])
def test_structure_from_the_workers_line_facts_is_the_ledgers_check(
    monkeypatch: pytest.MonkeyPatch, election: Election, tmp_path: Path, case: str
) -> None:
    """V1-V6 from the facts the slice workers return (verifier._ledger.StructureCheck, with slices of one
    line, then of a few in --workers 2) fails where ledger.record.check_sequence over the whole file fails,
    with the same message, and the rest of the report is a serial run's."""
    rec = election.write(tmp_path / "record")
    j = _tamper_structure(rec, case)
    ledger_only = Report(record=str(rec))
    _ledger.check_structure(RecordSource(rec, origin=rec), ledger_only)
    want = [f.to_dict() for f in ledger_only.failures]
    step = {"chain-link": 2, "non-canonical": 1, "merkle-root": 3}[case]
    assert [(f["step"], f["entry"]) for f in want] == [(step, j)], want
    opts = dict(pdf_trust_roots=(election.root_certificate,), batch_size=3)
    with monkeypatch.context() as m:  # the main process reads every entry itself, and V1-V6 with it
        m.setattr(_slices, "is_ballot_line", lambda line: False)
        reference = verify_record(rec, Options(**opts))
    assert all(f in [g.to_dict() for g in reference.failures] for f in want)
    # slices of one line in this process (every link crosses a slice boundary), then of a few lines in two
    # worker processes (the facts cross a process boundary too)
    for size, workers in ((1, 1), (3000, 2)):
        monkeypatch.setattr(_slices, "MIN_SLICE", size)
        monkeypatch.setattr(_slices, "MAX_SLICE", size)
        _same(reference, verify_record(rec, Options(workers=workers, **opts)))
