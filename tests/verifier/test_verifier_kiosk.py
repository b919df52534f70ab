"""V30 kiosk.enrolment, V31 kiosk.ballots and the kiosk parts of V1, V8 and V14 (issue 14): records with
polling-place kiosks verify, and each rule of docs/events.md ("Polling-place kiosks") broken once fails the
right check at the right entry. Each mutation is re-sealed (tests/verifier_fixture.py), so only the kiosk
checks fail; the kiosk signatures are made here with PyNaCl over the digests the docs state."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest
from verifier_fixture import KIOSK, Election, build_election, cast_payload

from crypto import encrypt_ballot
from verifier import Options, Report, verify_record

pytestmark = pytest.mark.xdist_group("verifier")

Events = list[tuple[str, dict[str, Any]]]
OTHER = "tsukuba-city-hall-2"  # a second kiosk of the same polling place
LATE = "2027-04-25T11:30:00Z"  # after voting closed (a kiosk may close after it)


@pytest.fixture(scope="module")
def election() -> Election:
    return build_election()


def _run(el: Election, tmp: Path, evs: Events, **kw: Any) -> Report:
    path = el.write(tmp / "record", evs)
    return verify_record(path, Options(pdf_trust_roots=(el.root_certificate,), **kw))


def _at(evs: Events, etype: str, nth: int = 0) -> int:
    return [i for i, (t, _) in enumerate(evs) if t == etype][nth]


def _kiosk_cast(evs: Events) -> int:
    return next(i for i, (t, p) in enumerate(evs) if t == "ballot.cast" and p["channel"] == "kiosk")


def _v(r: Report, step: int) -> list[tuple[int | None, str]]:
    return [(f.entry, f.message) for f in r.failures if f.step == step]


def _only(r: Report, steps: set[int], entry: int, fragment: str) -> None:
    """``steps`` failed and nothing else; one failure of the highest step names ``entry`` and ``fragment``."""
    assert set(r.failed_steps()) == steps, [f.operator_message for f in r.failures]
    step = max(steps)
    assert any(e == entry and fragment in m for e, m in _v(r, step)), _v(r, step)


def _ballot(el: Election, alias: str, ev: int, kiosk: tuple[str, int] | None) -> tuple[str, dict[str, Any]]:
    """A new voter's first ballot (seq 1), cast at ``kiosk`` = (id, session) or over the internet."""
    b, _ = encrypt_ballot(el.ctx, {"mayor": ["cand-2"], "referendum": ["no"]}, rng=random.Random(ev))
    channel = "internet" if kiosk is None else "kiosk"
    return ("ballot.cast", cast_payload(el, b, alias, channel, 1, ev, "jpki", kiosk))


def _free_aliases(el: Election, evs: Events) -> list[str]:
    used = {p["voter_alias"] for t, p in evs if t == "ballot.cast"}
    return [a for a in el.roll if a not in used]


def _polling_place(el: Election) -> Events:
    """The fixture's record plus a second kiosk: KIOSK opens a second session after its first and closes it
    after voting closed (having counted one ballot fewer than the ledger holds: an acknowledgement lost);
    OTHER opens, casts and is revoked while open (never closed); each session casts one new voter's ballot."""
    evs = copy.deepcopy(el.events)
    evs.insert(_at(evs, "voting.opened"), el.kiosk_enrolled(OTHER, "つくば市役所 1階 期日前投票所"))
    a, b = _free_aliases(el, evs)[:2]
    at = _at(evs, "voting.closed")
    evs[at:at] = [
        el.kiosk_opened(KIOSK, 2, "2027-04-24T00:30:00Z"),
        el.kiosk_opened(OTHER, 1, "2027-04-24T00:31:00Z"),
        _ballot(el, a, 101, (KIOSK, 2)),
        _ballot(el, b, 102, (OTHER, 1)),
        el.kiosk_revoked(OTHER, "kiosk stolen from the polling place"),
    ]
    evs.insert(_at(evs, "voting.closed") + 1, el.kiosk_closed(KIOSK, 2, 1, kiosk_count=0, closed_at=LATE))
    return el.retally(evs)


@pytest.fixture(scope="module")
def place(election: Election) -> Events:
    return _polling_place(election)


def _events(el: Election) -> Events:
    return copy.deepcopy(el.events)


# --------------------------------------------------------------------------------------------- valid records


def test_the_fixture_record_checks_its_kiosk(election: Election, tmp_path: Path) -> None:
    r = _run(election, tmp_path, _events(election))
    assert r.ok, [f.operator_message for f in r.failures]
    assert r.statuses[30] == r.statuses[31] == "pass"
    checks = {c["id"]: c["status"] for c in r.to_dict()["checks"]}
    assert checks["kiosk.enrolment"] == checks["kiosk.ballots"] == "pass"


def test_a_polling_place_with_a_revoked_kiosk_verifies(
    election: Election, place: Events, tmp_path: Path
) -> None:
    """Two kiosks, two sessions, a revocation while open, a closing after voting closed, and a kiosk count
    that differs from the ledger's: valid, the difference stated as a note."""
    r = _run(election, tmp_path, place)
    assert r.ok, [f.operator_message for f in r.failures]
    assert r.statuses[30] == r.statuses[31] == "pass"
    assert r.summary == {"cast": 9, "counted": 7, "superseded": 1, "overridden": 1, "spoiled": 1}
    closed = _at(place, "kiosk.closed", 1)
    note = next(n for n in r.notes if n.startswith("V30"))
    assert f"kiosk {KIOSK} closed session 2 at entry {closed}" in note and "counted 0 ballots" in note


def test_a_record_without_kiosks_reports_them_not_applicable(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    kiosk_cast = _kiosk_cast(evs)
    evs = [e for i, e in enumerate(evs) if not e[0].startswith("kiosk.") and i != kiosk_cast]
    r = _run(election, tmp_path, election.retally(evs))
    assert r.ok, [f.operator_message for f in r.failures]
    assert r.statuses[30] == r.statuses[31] == "n/a"
    assert "V31 kiosk.ballots: not applicable (the record has no kiosk entry and no kiosk ballot)" in r.notes


# ------------------------------------------------------------------------------------ V31: the kiosk ballots


def test_a_ballot_of_an_unknown_kiosk_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    i = _kiosk_cast(evs)
    p = evs[i][1]
    p["kiosk"] = election.kiosk_ref("tsukuba-station-9", 1, p["ballot_hash"])  # signed by its own key
    evs[_at(evs, "kiosk.closed")] = election.kiosk_closed(KIOSK, 1, ballots_cast=0)  # KIOSK cast none
    _only(_run(election, tmp_path, evs), {31}, i, "names kiosk tsukuba-station-9, which no earlier")


def test_a_ballot_of_a_kiosk_revoked_before_it_fails(election: Election, tmp_path: Path) -> None:
    evs = [e for e in _events(election) if e[0] != "kiosk.closed"]  # a kiosk revoked while open
    i = _kiosk_cast(evs)
    evs.insert(i, election.kiosk_revoked(KIOSK))
    _only(_run(election, tmp_path, evs), {31}, i + 1, f"kiosk {KIOSK} was revoked at entry {i}")


def test_a_ballot_after_its_session_closed_fails(election: Election, tmp_path: Path) -> None:
    evs = [e for e in _events(election) if e[0] != "kiosk.closed"]
    i = _kiosk_cast(evs)
    evs.insert(i, election.kiosk_closed(KIOSK, 1, ballots_cast=0))
    _only(_run(election, tmp_path, evs), {31}, i + 1, "session 1 of kiosk")


def test_a_ballot_before_its_session_opened_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    opened = evs.pop(_at(evs, "kiosk.opened"))
    i = _kiosk_cast(evs)
    evs.insert(i + 1, opened)
    r = _run(election, tmp_path, evs)
    _only(r, {30, 31}, i, "it has no open session")
    assert _v(r, 30) == [
        (
            _at(evs, "kiosk.closed"),
            f"kiosk {KIOSK} closes session 1: ballots_cast is 1, but the ledger holds 0 "
            "ballots of this kiosk and session before this entry",
        )
    ]


def test_a_ballot_naming_another_session_than_the_open_one_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    i = _kiosk_cast(evs)
    p = evs[i][1]
    p["kiosk"] = election.kiosk_ref(KIOSK, 2, p["ballot_hash"])
    r = _run(election, tmp_path, evs)
    _only(
        r,
        {30, 31},
        i,
        "session 2 of kiosk tsukuba-city-hall-1 is not open at this entry (its open session is 1)",
    )
    assert "ballots_cast is 1, but the ledger holds 0" in _v(r, 30)[0][1]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_kiosk_ballot_signature_that_does_not_verify_fails(
    election: Election, tmp_path: Path, workers: int
) -> None:
    """Signed by another key, or the right key over another ballot: the worker that verifies the ballot
    (in this process, or in a process pool) verifies the kiosk's signature with the key the main pass
    found enrolled."""
    evs = _events(election)
    i = _kiosk_cast(evs)
    p = evs[i][1]
    other = election.kiosk_seed("someone-else")
    p["kiosk"]["signature"] = election.kiosk_sign(
        KIOSK, "kiosk-ballot", 1, bytes.fromhex(p["ballot_hash"]), seed=other
    )
    r = _run(election, tmp_path, evs, workers=workers)
    _only(r, {31}, i, f"the kiosk signature does not verify under kiosk {KIOSK}'s enrolled key")


def test_a_kiosk_signature_of_another_ballot_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    i = _kiosk_cast(evs)
    p = evs[i][1]
    other = evs[_at(evs, "ballot.cast")][1]["ballot_hash"]
    p["kiosk"] = election.kiosk_ref(KIOSK, 1, other)
    _only(_run(election, tmp_path, evs), {31}, i, "does not verify")


# -------------------------------------------------------------------------- V1 / V14: ballot.cast.kiosk form


def test_a_kiosk_ballot_without_its_kiosk_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    i = _kiosk_cast(evs)
    del evs[i][1]["kiosk"]
    r = _run(election, tmp_path, evs)
    # V1 (the payload's keys), V14 (the kiosk ballot names no kiosk) at the ballot; and a ballot that names
    # no kiosk is no ballot of the session its kiosk's closing counted (V30 at the closing)
    _only(r, {1, 14, 30}, _at(evs, "kiosk.closed"), "ballots_cast is 1, but the ledger holds 0")
    assert _v(r, 1)[0][0] == i and "differ from" in _v(r, 1)[0][1]
    assert _v(r, 14) == [
        (
            i,
            "a kiosk ballot's kiosk is missing or not exactly {kiosk_id (a kiosk id), session (>= 1), "
            "signature (128 lowercase hex)}",
        )
    ]


def test_an_internet_ballot_naming_a_kiosk_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    i = _at(evs, "ballot.cast")
    p = evs[i][1]
    p["kiosk"] = election.kiosk_ref(KIOSK, 1, p["ballot_hash"])
    r = _run(election, tmp_path, evs)
    _only(r, {1, 14}, i, "an internet ballot names a kiosk")
    assert _v(r, 1)[0][0] == i


@pytest.mark.parametrize(
    "mutate",
    [
        lambda k: k.pop("session"),
        lambda k: k.update(extra=1),
        lambda k: k.update(session=0),
        lambda k: k.update(session=True),
        lambda k: k.update(session="1"),
        lambda k: k.update(kiosk_id="Tsukuba City Hall"),
        lambda k: k.update(signature=k["signature"].upper()),
        lambda k: k.update(signature=k["signature"][:64]),
    ],
)
def test_a_malformed_kiosk_object_fails_v14(election: Election, tmp_path: Path, mutate: Any) -> None:
    evs = _events(election)
    i = _kiosk_cast(evs)
    mutate(evs[i][1]["kiosk"])
    r = _run(election, tmp_path, evs)
    assert 14 in r.failed_steps() and not {31, 8} & set(r.failed_steps()), r.failed_steps()
    assert any(e == i and "kiosk is missing or not exactly" in m for e, m in _v(r, 14))


# ----------------------------------------------------------------------------- V30: enrolments and sessions


def test_a_second_enrolment_of_a_kiosk_id_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    first = _at(evs, "kiosk.enrolled")
    evs.insert(first + 1, election.kiosk_enrolled(KIOSK, "つくば駅前 臨時投票所"))
    _only(
        _run(election, tmp_path, evs), {30}, first + 1, f"kiosk {KIOSK} is already enrolled (entry {first})"
    )


def test_a_second_enrolment_of_a_public_key_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    first = _at(evs, "kiosk.enrolled")
    again = election.kiosk_enrolled(OTHER)
    again[1]["public_key"] = election.kiosk_public_key(KIOSK)
    evs.insert(first + 1, again)
    _only(
        _run(election, tmp_path, evs),
        {30},
        first + 1,
        f"kiosk {OTHER}: its public key is already enrolled, for kiosk {KIOSK} (entry {first})",
    )


def test_a_revocation_of_an_unknown_kiosk_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    i = _at(evs, "kiosk.enrolled")
    evs.insert(i, election.kiosk_revoked(KIOSK))  # before its enrolment
    _only(_run(election, tmp_path, evs), {30}, i, f"kiosk.revoked names kiosk {KIOSK}, which no earlier")


def test_a_second_revocation_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    at = _at(evs, "voting.closed") + 1
    evs[at:at] = [election.kiosk_revoked(KIOSK), election.kiosk_revoked(KIOSK, "again")]
    _only(_run(election, tmp_path, evs), {30}, at + 1, f"kiosk {KIOSK} is already revoked (entry {at})")


def test_a_revoked_kiosk_cannot_open_or_close(election: Election, place: Events, tmp_path: Path) -> None:
    evs = copy.deepcopy(place)
    revoked = _at(evs, "kiosk.revoked")
    evs.insert(revoked + 1, election.kiosk_closed(OTHER, 1, 1))
    r = _run(election, tmp_path, evs)
    _only(r, {30}, revoked + 1, f"kiosk.closed names kiosk {OTHER}, revoked at entry {revoked}")


@pytest.mark.parametrize("which", ["kiosk.opened", "kiosk.closed"])
def test_an_opening_or_closing_signed_by_another_key_fails(
    election: Election, tmp_path: Path, which: str
) -> None:
    evs = _events(election)
    i = _at(evs, which)
    p = evs[i][1]
    items: tuple[Any, ...] = (
        (p["session"], p["opened_at"])
        if which == "kiosk.opened"
        else (p["session"], p["closed_at"], p["kiosk_count"])
    )
    purpose = which.replace(".", "-")
    p["kiosk_signature"] = election.kiosk_sign(KIOSK, purpose, *items, seed=election.kiosk_seed("stolen"))
    _only(
        _run(election, tmp_path, evs),
        {30},
        i,
        "kiosk_signature does not verify under the kiosk's enrolled key",
    )


@pytest.mark.parametrize(
    ("field", "value"), [("opened_at", "2027-04-18T00:31:00Z"), ("session", 2), ("kiosk_id", OTHER)]
)
def test_an_opening_whose_signature_covers_other_values_fails(
    election: Election, tmp_path: Path, field: str, value: Any
) -> None:
    evs = _events(election)
    if field == "kiosk_id":  # OTHER, enrolled too, opens with KIOSK's signature (and casts nothing)
        evs.insert(_at(evs, "kiosk.enrolled") + 1, election.kiosk_enrolled(OTHER))
        evs[_at(evs, "kiosk.closed")] = election.kiosk_closed(KIOSK, 1, ballots_cast=0)
        kiosk_cast = _kiosk_cast(evs)
        evs = election.retally([e for i, e in enumerate(evs) if i != kiosk_cast])
    i = _at(evs, "kiosk.opened")
    evs[i][1][field] = value
    r = _run(election, tmp_path, evs)
    assert 30 in r.failed_steps() and any(e == i and "does not verify" in m for e, m in _v(r, 30)), _v(r, 30)


def test_a_closing_signed_over_another_count_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    i = _at(evs, "kiosk.closed")
    evs[i][1]["kiosk_count"] = 3  # the kiosk signed 1
    _only(_run(election, tmp_path, evs), {30}, i, "kiosk_signature does not verify")


def test_a_wrong_ballots_cast_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    i = _at(evs, "kiosk.closed")
    evs[i] = election.kiosk_closed(KIOSK, 1, ballots_cast=2)
    _only(_run(election, tmp_path, evs), {30}, i, "ballots_cast is 2, but the ledger holds 1 ballots")


def test_a_second_opening_while_open_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    i = _at(evs, "kiosk.opened")
    evs.insert(i + 1, election.kiosk_opened(KIOSK, 2, "2027-04-18T00:40:00Z"))
    r = _run(election, tmp_path, evs)
    assert 30 in r.failed_steps()
    assert (i + 1, f"kiosk {KIOSK} opens session 2: its session 1 is still open (entry {i})") in _v(r, 30)


@pytest.mark.parametrize("session", [1, 3])
def test_sessions_count_one_two_three(election: Election, tmp_path: Path, session: int) -> None:
    evs = _events(election)
    closed = _at(evs, "kiosk.closed")
    evs.insert(closed + 1, election.kiosk_opened(KIOSK, session, "2027-04-25T10:40:00Z"))
    _only(_run(election, tmp_path, evs), {30}, closed + 1, f"session {session} is not its next session (2)")


def test_a_closing_without_an_open_session_fails(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    closed = _at(evs, "kiosk.closed")
    evs.insert(closed + 1, election.kiosk_closed(KIOSK, 1, 0, closed_at=LATE))
    _only(_run(election, tmp_path, evs), {30}, closed + 1, "it has no open session (its last is 1)")


def _enrolled(evs: Events) -> dict[str, Any]:
    return evs[_at(evs, "kiosk.enrolled")][1]


@pytest.mark.parametrize(
    ("etype", "mutate", "fragment"),
    [
        ("kiosk.enrolled", lambda p: p.update(kiosk_id="Tsukuba_1"), "kiosk_id is not a kiosk id"),
        ("kiosk.enrolled", lambda p: p.update(kiosk_id="-a"), "kiosk_id is not a kiosk id"),
        ("kiosk.enrolled", lambda p: p.update(kiosk_id="a" * 64), "kiosk_id is not a kiosk id"),
        ("kiosk.enrolled", lambda p: p.update(public_key="00" * 32), "not an Ed25519 public key"),
        (
            "kiosk.enrolled",
            lambda p: p.update(public_key=p["public_key"].upper()),
            "not an Ed25519 public key",
        ),
        ("kiosk.enrolled", lambda p: p.update(polling_place="\u202e所票投"), "polling_place contains"),
        ("kiosk.enrolled", lambda p: p.update(polling_place="あ" * 201), "longer than 200"),
        ("kiosk.enrolled", lambda p: p.update(operator="x"), "exactly {kiosk_id, public_key, polling_place}"),
        ("kiosk.opened", lambda p: p.update(session=0), "kiosk.opened is exactly"),
        (
            "kiosk.opened",
            lambda p: p.update(opened_at="2027-04-18T09:30:00+09:00"),
            "kiosk.opened is exactly",
        ),
        ("kiosk.opened", lambda p: p.pop("kiosk_signature"), "kiosk.opened is exactly"),
        ("kiosk.closed", lambda p: p.update(kiosk_count=-1), "kiosk.closed is exactly"),
        ("kiosk.closed", lambda p: p.update(ballots_cast=True), "kiosk.closed is exactly"),
        ("kiosk.closed", lambda p: p.update(closed_at="2027-04-25T10:30Z"), "kiosk.closed is exactly"),
    ],
)
def test_a_malformed_kiosk_entry_fails_v30(
    election: Election, tmp_path: Path, etype: str, mutate: Any, fragment: str
) -> None:
    evs = _events(election)
    i = _at(evs, etype)
    mutate(evs[i][1])
    r = _run(election, tmp_path, evs)
    assert 30 in r.failed_steps() and not {8, 14} & set(r.failed_steps()), [
        f.operator_message for f in r.failures
    ]
    assert _v(r, 30)[0][0] == i and fragment in _v(r, 30)[0][1], _v(r, 30)


def test_a_revocation_reason_obeys_the_text_rule(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    at = _at(evs, "voting.closed") + 1
    evs.insert(at, election.kiosk_revoked(KIOSK, "\x1b[31mstolen"))
    _only(_run(election, tmp_path, evs), {30}, at, "the reason contains a control character (U+001B)")


# ------------------------------------------------------------------------------------- V8: their places


def test_kiosk_entries_in_their_phases(election: Election, tmp_path: Path) -> None:
    """An enrolment during the key ceremony is fine; closing and revoking after voting closed too (the
    polling-place record above)."""
    evs = _events(election)
    enrolled = evs.pop(_at(evs, "kiosk.enrolled"))
    evs.insert(1, enrolled)
    r = _run(election, tmp_path, evs)
    assert r.ok, [f.operator_message for f in r.failures]


@pytest.mark.parametrize(
    ("move", "to", "fragment"),
    [
        ("kiosk.opened", "voting.opened", "kiosk.opened before voting opened"),
        ("kiosk.enrolled", "tally.encrypted", "kiosk.enrolled after voting closed"),
    ],
)
def test_kiosk_entries_out_of_their_phase_fail_v8(
    election: Election, tmp_path: Path, move: str, to: str, fragment: str
) -> None:
    evs = _events(election)
    entry = evs.pop(_at(evs, move))
    i = _at(evs, to)
    evs.insert(i, entry)
    r = _run(election, tmp_path, evs)
    assert 8 in r.failed_steps() and (i, fragment) in _v(r, 8), _v(r, 8)


def test_an_opening_after_voting_closed_fails_v8(election: Election, tmp_path: Path) -> None:
    evs = _events(election)
    at = _at(evs, "voting.closed") + 1
    evs.insert(at, election.kiosk_opened(KIOSK, 2, LATE))
    _only(_run(election, tmp_path, evs), {8}, at, "kiosk.opened after voting closed")
