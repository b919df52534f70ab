"""The verifier (verifier/): every numbered check is broken on purpose in an otherwise valid record.

The record is a real small election (tests/verifier_fixture.py), built once per session. Semantic
mutations are re-sealed with the test log and witness keys, so the chain, tree, checkpoints and
cosignatures stay valid and only the targeted check fails; raw byte edits are not re-sealed.
"""

from __future__ import annotations

import copy
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
from verifier_fixture import Election, build_election

from crypto._ballot import ElectionContext, encrypt_ballot
from crypto._group import G, Scalar
from verifier import Options, RecordUnreadable, Report, verify_record

pytestmark = pytest.mark.xdist_group("verifier")


@pytest.fixture(scope="session")
def election() -> Election:
    return build_election()


@pytest.fixture(scope="session")
def valid(election: Election, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return election.write(tmp_path_factory.mktemp("valid") / "record")


def run(el: Election, path: Path, **kw: Any) -> Report:
    return verify_record(path, Options(pdf_trust_roots=(el.root_certificate,), **kw))


def failed(r: Report) -> set[int]:
    return set(r.failed_steps())


def events(el: Election) -> list[tuple[str, dict[str, Any]]]:
    return copy.deepcopy(el.events)


def index_of(evs: list[tuple[str, dict[str, Any]]], etype: str, nth: int = 0) -> int:
    return [i for i, (t, _) in enumerate(evs) if t == etype][nth]


def seal(el: Election, tmp: Path, evs: list[tuple[str, dict[str, Any]]], **kw: Any) -> Report:
    return run(el, el.write(tmp / "record", evs, **kw))


# ---------------------------------------------------------------------------------------------- valid


def test_valid_record_passes_every_check(election: Election, valid: Path) -> None:
    r = run(election, valid)
    assert r.ok, [f.operator_message for f in r.failures]
    assert {s for s, st in r.statuses.items() if st == "pass"} == set(range(1, 24))
    assert r.summary == {"cast": 7, "counted": 5, "superseded": 1, "overridden": 1, "spoiled": 1}
    assert r.results is not None
    assert sum(r.results["mayor"].values()) <= 5


def test_valid_archive_passes(election: Election, valid: Path, tmp_path: Path) -> None:
    arc = tmp_path / "record.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        tf.add(valid, arcname="tvote-record")
    shutil.copy(valid / "result.pdf", tmp_path / "result.pdf")
    r = run(election, arc, pdf_path=valid / "result.pdf")
    assert r.ok, [f.operator_message for f in r.failures]


def test_unreadable_record_raises(tmp_path: Path) -> None:
    with pytest.raises(RecordUnreadable):
        verify_record(tmp_path / "missing")
    (tmp_path / "junk.bin").write_bytes(b"not an archive")
    with pytest.raises(RecordUnreadable):
        verify_record(tmp_path / "junk.bin")


def test_no_trust_root_fails_pdf_check_closed(valid: Path) -> None:
    r = verify_record(valid)
    assert failed(r) == {22}


# ------------------------------------------------------------------------------- raw edits: V1-V6


def _copy(valid: Path, tmp: Path) -> Path:
    dst = tmp / "record"
    shutil.copytree(valid, dst)
    return dst


def test_flipped_byte_in_a_ballot_breaks_the_chain(election: Election, valid: Path, tmp_path: Path) -> None:
    rec = _copy(valid, tmp_path)
    lines = (rec / "entries.jsonl").read_bytes().split(b"\n")
    i = index_of(election.events, "ballot.cast", 2)
    pos = lines[i].index(b'"response')
    line = bytearray(lines[i])
    j = pos + 20
    line[j] = ord("0") if line[j] != ord("0") else ord("1")
    lines[i] = bytes(line)
    (rec / "entries.jsonl").write_bytes(b"\n".join(lines))
    r = run(election, rec)
    assert 2 in failed(r)
    assert any(f.step == 2 and f.entry in (i - 1, i) for f in r.failures)


def test_dropped_entry_is_named(election: Election, valid: Path, tmp_path: Path) -> None:
    rec = _copy(valid, tmp_path)
    lines = (rec / "entries.jsonl").read_bytes().split(b"\n")
    del lines[10]
    (rec / "entries.jsonl").write_bytes(b"\n".join(lines))
    r = run(election, rec)
    assert 2 in failed(r)


def test_reordered_entries_are_named(election: Election, valid: Path, tmp_path: Path) -> None:
    rec = _copy(valid, tmp_path)
    lines = (rec / "entries.jsonl").read_bytes().split(b"\n")
    lines[10], lines[11] = lines[11], lines[10]
    (rec / "entries.jsonl").write_bytes(b"\n".join(lines))
    r = run(election, rec)
    assert 2 in failed(r)
    assert any(f.step == 2 and f.entry == 10 for f in r.failures)


def test_forged_checkpoint_signature(election: Election, valid: Path, tmp_path: Path) -> None:
    from ledger.record import Checkpoint, LogSigner, SignedCheckpoint

    rec = _copy(valid, tmp_path)
    cps = (rec / "checkpoints.jsonl").read_bytes().split(b"\n")
    cp = json.loads(cps[0])
    other = LogSigner.generate(election.log.name, seed=b"\x07" * 32)  # same name, another key
    body = Checkpoint.from_body(cp["note"].split("\n\n")[0] + "\n")
    cp["note"] = SignedCheckpoint.sign(body, other).note
    import rfc8785

    cps[0] = rfc8785.dumps(cp)
    (rec / "checkpoints.jsonl").write_bytes(b"\n".join(cps))
    r = run(election, rec)
    assert 4 in failed(r)


def test_missing_cosignature_fails_quorum(election: Election, tmp_path: Path) -> None:
    r = seal(election, tmp_path, events(election), cosign_final=election.witnesses[:1])
    assert failed(r) == {5}


def test_whitespace_edit_of_record_json_is_detected(election: Election, valid: Path, tmp_path: Path) -> None:
    rec = _copy(valid, tmp_path)
    raw = (rec / "record.json").read_bytes()
    (rec / "record.json").write_bytes(raw.replace(b"  ", b"\t", 1))
    assert 1 in failed(run(election, rec))


def test_witnesses_must_be_the_manifests(election: Election, tmp_path: Path) -> None:
    from ledger.record import WitnessSigner

    rogue = WitnessSigner.generate("witness-1", random=lambda n: b"\x05" * n)
    el = copy.copy(election)
    el.witnesses = [rogue, election.witnesses[1]]
    el.witness_keys = [rogue.public, election.witness_keys[1]]
    r = seal(el, tmp_path, events(election))
    assert failed(r) == {5}


# -------------------------------------------------------------------------------- manifest, phases


def test_wrong_base_hash(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    evs[0][1]["base_hash"] = "00" * 32
    assert 7 in failed(seal(election, tmp_path, evs))


def test_payload_of_another_election(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    i = index_of(evs, "voting.opened")
    evs[i][1]["election_id"] = "another-election"
    r = seal(election, tmp_path, evs)
    assert failed(r) == {7}
    assert any(f.step == 7 and f.entry == i for f in r.failures)


def test_ballot_after_voting_closed(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    i = index_of(evs, "ballot.cast", 6)
    j = index_of(evs, "voting.closed")
    evs.insert(j, evs.pop(i))  # the last ballot moves just after voting.closed
    assert evs[j - 1][0] == "voting.closed" and evs[j][0] == "ballot.cast"
    r = seal(election, tmp_path, election.retally(evs))
    assert 8 in failed(r)


def test_incomplete_record_needs_partial(election: Election, tmp_path: Path) -> None:
    evs = events(election)[: index_of(election.events, "voting.closed")]
    rec = election.write(tmp_path / "record", evs)
    assert failed(run(election, rec)) == {8}
    r = run(election, rec, partial=True)
    assert r.ok, [f.operator_message for f in r.failures]
    assert r.summary["cast"] == 7


# ---------------------------------------------------------------------------------- key ceremony


def test_broken_trustee_commitment_proof(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    i = index_of(evs, "trustee.registered", 1)
    proof = evs[i][1]["commitments"]["proofs"][0]
    proof["response"] = (Scalar.from_hex(proof["response"]) + 1).hex()
    r = seal(election, tmp_path, evs)
    assert 9 in failed(r)
    assert any(f.step == 9 and f.entry == i for f in r.failures)


def test_disqualification_without_cause(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    j = index_of(evs, "election.joint-key")
    evs.insert(j, ("trustee.disqualified", election.bind({"dealer": 2, "reason": "no reason"})))
    r = seal(election, tmp_path, evs)
    assert 10 in failed(r)


def test_wrong_joint_key(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    i = index_of(evs, "election.joint-key")
    evs[i][1]["joint_key"] = (Scalar(12345) * G).hex()
    r = seal(election, tmp_path, evs)
    assert 11 in failed(r)
    assert any(f.step == 11 and f.entry == i for f in r.failures)


def test_roll_smaller_than_voters(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    evs[index_of(evs, "roll.commitment")][1]["size"] = 3
    assert failed(seal(election, tmp_path, evs)) == {12}


# ------------------------------------------------------------------------------------------ ballots


def test_flipped_proof_byte_resealed(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    i = index_of(evs, "ballot.cast", 4)
    p = evs[i][1]
    sel = p["ballot"]["contests"][0]["selections"][1]["proof"]
    sel["responses"][0] = (Scalar.from_hex(sel["responses"][0]) + 1).hex()
    # keep hash and tracking code consistent with the altered ballot: only the proof is wrong
    from crypto._ballot import EncryptedBallot

    b = EncryptedBallot.from_dict(p["ballot"])
    old = p["ballot_hash"]
    p["ballot_hash"], p["tracking_code"] = b.ballot_hash().hex(), b.tracking_code()
    for t, q in evs:
        if t == "tally.encrypted":
            q["counted"] = [p["ballot_hash"] if h == old else h for h in q["counted"]]
    r = seal(election, tmp_path, evs)
    assert failed(r) == {13}
    assert [f.entry for f in r.failures] == [i]


def test_proof_from_another_ballot(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    a, b = index_of(evs, "ballot.cast", 3), index_of(evs, "ballot.cast", 4)
    ca, cb = evs[a][1]["ballot"]["contests"][0], evs[b][1]["ballot"]["contests"][0]
    ca["proof"] = copy.deepcopy(cb["proof"])
    r = seal(election, tmp_path, election.retally(evs))
    assert 13 in failed(r)
    assert any(f.step == 13 and f.entry == a for f in r.failures)


def test_ballot_bound_to_another_election(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    i = index_of(evs, "ballot.cast", 5)
    other = ElectionContext(b"\x01" * 32, election.ctx.public_key, election.ctx.contests)
    b, _ = encrypt_ballot(other, {"mayor": ["cand-1"], "referendum": ["yes"]})
    p = evs[i][1]
    p["ballot"], p["ballot_hash"], p["tracking_code"] = b.to_dict(), b.ballot_hash().hex(), b.tracking_code()
    r = seal(election, tmp_path, election.retally(evs))
    assert 14 in failed(r)
    assert any(f.step == 14 and f.entry == i for f in r.failures)


def test_wrong_tracking_code(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    i = index_of(evs, "ballot.cast", 1)
    evs[i][1]["tracking_code"] = "0000-0000-0000-0000"
    r = seal(election, tmp_path, evs)
    assert failed(r) == {14}


def test_auth_method_not_allowed(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    i = index_of(evs, "ballot.cast", 0)
    evs[i][1]["auth"]["method"] = "password"
    assert failed(seal(election, tmp_path, evs)) == {14}


def test_duplicated_ballot_is_a_replay(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    i = index_of(evs, "ballot.cast", 4)
    dup = copy.deepcopy(evs[i])
    dup[1]["seq"] += 1
    evs.insert(index_of(evs, "voting.closed"), dup)
    r = seal(election, tmp_path, election.retally(evs))
    assert 15 in failed(r)
    assert any(f.step == 15 and f.entry == index_of(evs, "voting.closed") - 1 for f in r.failures)


def test_spoiled_ballot_plaintext_changed(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    i = index_of(evs, "ballot.spoiled")
    sel = evs[i][1]["revealed"]["contests"][0]["selections"][0]
    sel["plaintext"] = 1 - sel["plaintext"]
    r = seal(election, tmp_path, evs)
    assert failed(r) == {16}
    assert [f.entry for f in r.failures] == [i]


# ---------------------------------------------------------------------------------- counting, tally


def test_tally_includes_a_superseded_ballot(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    first = evs[index_of(evs, "ballot.cast", 0)][1]["ballot_hash"]
    enc = evs[index_of(evs, "tally.encrypted")][1]
    enc["counted"] = [
        first if h == evs[index_of(evs, "ballot.cast", 2)][1]["ballot_hash"] else h for h in enc["counted"]
    ]
    assert 17 in failed(seal(election, tmp_path, evs))


def test_tally_ciphertexts_omit_a_counted_ballot(election: Election, tmp_path: Path) -> None:
    from crypto._ballot import EncryptedBallot

    evs = events(election)
    enc = evs[index_of(evs, "tally.encrypted")][1]
    last = EncryptedBallot.from_dict(evs[index_of(evs, "ballot.cast", 6)][1]["ballot"])
    from crypto._elgamal import Ciphertext

    for c in last.contests:
        for s in c.selections:
            old = Ciphertext.from_dict(enc["ciphertexts"][c.contest_id][s.selection_id])
            enc["ciphertexts"][c.contest_id][s.selection_id] = Ciphertext(
                old.a - s.ciphertext.a, old.b - s.ciphertext.b
            ).to_dict()
    r = seal(election, tmp_path, evs)
    assert 18 in failed(r)
    assert 17 not in failed(r)


def test_wrong_published_counts(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    evs[index_of(evs, "tally.result")][1]["superseded"] = 0
    r = seal(election, tmp_path, evs)
    assert failed(r) == {17}


def test_wrong_partial_decryption(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    i = index_of(evs, "tally.partial", 1)
    pd = evs[i][1]["partials"]["mayor"]["cand-2"]
    pd["decryption_share"] = (Scalar(99) * G).hex()
    r = seal(election, tmp_path, evs)
    assert 19 in failed(r)
    assert any(f.step == 19 and f.entry == i for f in r.failures)


def test_excluded_trustee_with_valid_partial(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    j = index_of(evs, "tally.result")
    evs.insert(j, ("tally.excluded", election.bind({"trustee": 3, "reason": "said to be wrong"})))
    assert 19 in failed(seal(election, tmp_path, evs))


def test_trustees_used_below_threshold(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    evs[index_of(evs, "tally.result")][1]["trustees_used"] = [1]
    assert failed(seal(election, tmp_path, evs)) == {20}


def test_trustee_used_without_partial(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    evs[index_of(evs, "tally.result")][1]["trustees_used"] = [1, 2]
    assert failed(seal(election, tmp_path, evs)) == {20}


def test_result_differs_by_one_vote(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    i = index_of(evs, "tally.result")
    evs[i][1]["results"]["mayor"]["cand-1"] += 1
    r = seal(election, tmp_path, evs)  # the PDF is made from the (wrong) published result: it agrees
    assert failed(r) == {21}
    assert [f.entry for f in r.failures] == [i]


def test_pdf_whose_numbers_differ(election: Election, tmp_path: Path) -> None:
    evs = events(election)
    shown = copy.deepcopy(evs[index_of(evs, "tally.result")][1])
    shown["results"]["referendum"]["no"] += 1
    r = seal(election, tmp_path, evs, pdf_result=shown)
    assert failed(r) == {22}
    assert "pdf.result" in r.failures[0].message


def test_replaced_pdf_file(election: Election, valid: Path, tmp_path: Path) -> None:
    rec = _copy(valid, tmp_path)
    pdf = bytearray((rec / "result.pdf").read_bytes())
    pdf[-10] ^= 1
    (rec / "result.pdf").write_bytes(bytes(pdf))
    assert 22 in failed(run(election, rec))


# ----------------------------------------------------------------------------------------- privacy


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ip", "x"),
        ("note", "192.168.10.4"),
        ("note", "1234 5678 9012"),
        ("note", "1985-03-02"),
        ("note", "茨城県つくば市天王台1丁目1番1号"),
        ("voter_name", "x"),
        ("note", "2001:db8::7"),
    ],
)
def test_personal_data_in_a_payload(election: Election, tmp_path: Path, key: str, value: str) -> None:
    evs = events(election)
    i = index_of(evs, "voting.closed")
    evs[i][1][key] = value
    r = seal(election, tmp_path, evs, declare=False)
    assert 23 in failed(r)
    assert any(f.step == 23 and f.entry == i for f in r.failures)


def test_counted_root_form(election: Election, tmp_path: Path) -> None:
    from ledger.merkle import leaf_hash, root

    evs = events(election)
    enc = evs[index_of(evs, "tally.encrypted")][1]
    counted = enc.pop("counted")
    enc["counted_root"] = root([leaf_hash(bytes.fromhex(h)) for h in counted]).hex()
    r = seal(election, tmp_path / "good", evs)
    assert r.ok, [f.operator_message for f in r.failures]
    enc["counted_root"] = root([leaf_hash(bytes.fromhex(h)) for h in reversed(counted)]).hex()
    assert failed(seal(election, tmp_path / "bad", evs)) == {17}
