"""The bulk replay of ballot entries (``BallotReplay.apply_page``) against its reference (``apply``, one entry
at a time): from the same ledger and the same private state, both write the same rows, answer the same per
entry and report the same problems, however the entries are cut into pages; and a second replay changes
nothing.

The ledgers are drawn by Hypothesis: casts and spoiled ballots, re-votes (several by one voter within a
page), kiosk ballots, a ballot hash or an evidence hash published twice, values shared between ballots or
repeated within one (records that fail V15, which both must report alike). The private states too: entries
already recorded, pending evidence (with its JPKI challenge in its column or only in a legacy evidence body,
a digital-ID authorization, reserved unique values), final evidence, missing evidence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ledger.events import EventType
from ledger.record import ballot_unique_values
from voting._db import create_tables, make_engine
from voting._intake_db import (
    AuthEvidence,
    BallotUniqueValue,
    IntakeBallot,
    IntakeChallenge,
    OidcPending,
    VoterState,
)
from voting._kiosk_db import KioskBallot
from voting.service._intake_checks import RESERVED
from voting.service._intake_replay import BallotReplay

EID = "e-pages"
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
TABLES = (
    IntakeBallot,
    BallotUniqueValue,
    VoterState,
    AuthEvidence,
    KioskBallot,
    IntakeChallenge,
    OidcPending,
)
Entry = tuple[int, str, dict[str, Any]]


def _h(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Iterator[Engine]:
    url = module_database_url or f"sqlite:///{tmp_path_factory.mktemp('pages') / 'p.sqlite3'}"
    e = make_engine(url)
    create_tables(e)
    yield e
    e.dispose()


def _wipe(engine: Engine) -> None:
    with Session(engine) as s:
        for t in TABLES:
            s.execute(delete(t))
        s.commit()


def _dump(s: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the intake's tables, read past the ORM (after a flush), in a fixed order."""
    s.flush()
    c = s.connection()
    return {t.__tablename__: sorted(map(tuple, c.execute(select(t.__table__)))) for t in TABLES}


# ------------------------------------------------------------------------------------- the drawn ledger


@st.composite
def ledgers(
    draw: st.DrawFn, evidence_twice: bool = True
) -> tuple[list[Entry], list[str], dict[int, dict[str, Any]]]:
    """``(entries, aliases, private)``: ledger entries in order, and per entry index what the private state
    already holds of it (``private[index]``: ``recorded``, ``evidence``, ``reserved``, ...). With
    ``evidence_twice``, now and then a cast names the evidence hash of an earlier one."""
    shared = [_h("shared", i) for i in range(3)]

    def value(tag: str) -> str:  # now and then a value another ballot (or this one) also uses
        return draw(st.sampled_from(shared)) if draw(st.integers(0, 7)) == 0 else _h(tag)

    aliases = [_h("alias", v) for v in range(4)]
    seqs: dict[str, int] = {}
    kiosk_voted: set[str] = set()
    entries: list[Entry] = []
    private: dict[int, dict[str, Any]] = {}
    index = draw(st.integers(1, 5))
    for k in range(draw(st.integers(1, 16))):
        index += draw(st.integers(1, 3))
        bh = _h("ballot", k)
        if entries and draw(st.integers(0, 12)) == 0:  # a ballot hash the ledger published before
            bh = str(draw(st.sampled_from(entries))[2]["ballot_hash"])
        ballot = {
            "ballot_nonce": value(f"nonce/{k}"),
            "contests": [
                {
                    "contest_id": "c",
                    "selections": [
                        {"selection_id": f"s{j}", "ciphertext": {"a": value(f"pad/{k}/{j}")}}
                        for j in range(3)
                    ],
                }
            ],
        }
        p: dict[str, Any] = {
            "election_id": EID,
            "ballot_hash": bh,
            "tracking_code": f"T-{bh[:8]}",
            "ballot": ballot,
        }
        voters = [a for a in aliases if a not in kiosk_voted]
        if not voters or draw(st.integers(0, 4)) == 0:
            entries.append((index, EventType.BALLOT_SPOILED.value, p))
            private[index] = {"recorded": draw(st.booleans())}
            continue
        alias = draw(st.sampled_from(voters))
        seqs[alias] = seqs.get(alias, 0) + 1
        kiosk = draw(st.integers(0, 4)) == 0
        evh = _h("evidence", k)
        casts = [e for e in entries if e[1] == EventType.BALLOT_CAST]
        if evidence_twice and casts and draw(st.integers(0, 12)) == 0:  # an evidence hash published twice
            evh = str(draw(st.sampled_from(casts))[2]["auth"]["evidence_hash"])
        p |= {
            "voter_alias": alias,
            "channel": "kiosk" if kiosk else "internet",
            "seq": seqs[alias],
            "auth": {"method": "jpki", "evidence_hash": evh},
        }
        if kiosk:
            kiosk_voted.add(alias)
            p["kiosk"] = {"kiosk_id": "k-1", "session": draw(st.integers(1, 2))}
        entries.append((index, EventType.BALLOT_CAST.value, p))
        private[index] = {
            "recorded": draw(st.booleans()),
            "evidence": draw(st.sampled_from(["none", "pending", "legacy", "final", "final-elsewhere"])),
            "challenge_used": draw(st.booleans()),
            "oidc": draw(st.booleans()),
            "reserved": draw(st.booleans()),
            "bound": draw(st.integers(0, 3)),
        }
    return entries, aliases, private


def _seed(engine: Engine, entries: list[Entry], private: dict[int, dict[str, Any]]) -> None:
    """The private state before the replay: evidence and what a cast writes before its append, then the
    rows of the entries already recorded (by the reference, in ledger order), committed."""
    with Session(engine) as s:
        for index, etype, p in entries:
            state = private[index]
            evidence = state.get("evidence", "none")
            if etype != EventType.BALLOT_CAST or evidence == "none":
                continue
            evh, bh, challenge = p["auth"]["evidence_hash"], p["ballot_hash"], _h("challenge", index)
            if s.get(AuthEvidence, evh) is not None:
                continue
            final = evidence.startswith("final")
            s.add(
                AuthEvidence(
                    evidence_hash=evh,
                    election_id=EID,
                    voter_alias=p["voter_alias"],
                    ballot_hash=bh,
                    method="jpki",
                    evidence=json.dumps({"challenge": challenge}) if evidence == "legacy" else "",
                    challenge=None if evidence == "legacy" else challenge,
                    created_at=NOW - dt.timedelta(minutes=5),
                    status="final" if final else "pending",
                    ledger_index=index + 1 if evidence == "final-elsewhere" else index - state["bound"],
                )
            )
            used = NOW - dt.timedelta(minutes=4) if state["challenge_used"] else None
            s.add(
                IntakeChallenge(
                    challenge=challenge,
                    election_id=EID,
                    issued_at=NOW - dt.timedelta(minutes=6),
                    expires_at=NOW + dt.timedelta(minutes=6),
                    used_at=used,
                )
            )
            if state["oidc"]:
                s.add(
                    OidcPending(
                        state=_h("state", index),
                        election_id=EID,
                        ballot_hash=bh,
                        code_verifier="v",
                        nonce_salt="salt",
                        issued_at=NOW - dt.timedelta(minutes=6),
                        expires_at=NOW + dt.timedelta(minutes=6),
                    )
                )
            if state["reserved"] and not final:
                for v in ballot_unique_values(bh, p["ballot"]):
                    # by name: the key's column order changed (migration 0004)
                    key = {"election_id": EID, "value": v.value, "kind": v.kind}
                    if s.get(BallotUniqueValue, key) is None:
                        s.add(
                            BallotUniqueValue(
                                election_id=EID,
                                value=v.value,
                                kind=v.kind,
                                ballot_hash=bh,
                                ledger_index=RESERVED,
                            )
                        )
                        s.flush()
        s.commit()
        earlier = BallotReplay(EID, NOW - dt.timedelta(minutes=1))
        for index, etype, p in entries:
            if private[index]["recorded"]:
                earlier.apply(s, index, etype, p)
        s.commit()


def _replay(engine: Engine, entries: list[Entry], cuts: list[int] | None) -> Any:
    """Replay ``entries`` by the reference (``cuts`` ``None``) or in pages cut at ``cuts``; roll back.
    Returns the answers, problems, rows, then the orphans and rows after :meth:`BallotReplay.finish`."""
    with Session(engine) as s:
        r = BallotReplay(EID, NOW)
        try:
            if cuts is None:
                changed = [r.apply(s, i, t, p) for i, t, p in entries]
            else:
                bounds = [0, *cuts, len(entries)]
                changed = [c for a, b in itertools.pairwise(bounds) for c in r.apply_page(s, entries[a:b])]
            rows = _dump(s)
            orphans = r.finish(s, full=True)
            return changed, list(r.problems), rows, orphans, _dump(s)
        except IntegrityError as e:  # a state no intake writes can break a unique key: both must say so
            return type(e).__name__
        finally:
            s.rollback()


@settings(max_examples=100, deadline=None)
@given(drawn=ledgers(), data=st.data())
def test_pages_write_and_answer_what_the_reference_does(
    engine: Engine, drawn: Any, data: st.DataObject
) -> None:
    entries, _, private = drawn
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(entries) - 1)), max_size=4)))
    cuts = [c for c in cuts if c < len(entries)]
    _wipe(engine)
    _seed(engine, entries, private)
    reference = _replay(engine, entries, None)
    assert _replay(engine, entries, cuts) == reference
    assert _replay(engine, entries, []) == reference  # the whole ledger as one page


@settings(max_examples=40, deadline=None)
@given(drawn=ledgers(evidence_twice=False))
def test_a_second_replay_changes_nothing(engine: Engine, drawn: Any) -> None:
    """(Not for a ledger naming one evidence hash twice, which fails the verifier: each replay moves the
    evidence to the other entry, by the reference too; the first property compares that case.)"""
    entries, _, private = drawn
    _wipe(engine)
    _seed(engine, entries, private)
    with Session(engine) as s:
        try:
            BallotReplay(EID, NOW).apply_page(s, entries)
        except IntegrityError:
            return  # a state no intake writes (see above)
        rows = _dump(s)
        again = BallotReplay(EID, NOW + dt.timedelta(hours=1))
        assert again.apply_page(s, entries) == [False] * len(entries)
        assert _dump(s) == rows
        reference = BallotReplay(EID, NOW + dt.timedelta(hours=1))
        assert [reference.apply(s, i, t, p) for i, t, p in entries] == [False] * len(entries)
        assert _dump(s) == rows
        s.rollback()


def test_a_voter_who_re_votes_twice_within_a_page(engine: Engine) -> None:
    """Three casts of one voter in one page (seq 1, 2, 3; the last at a kiosk) and a spoiled ballot: one
    voter state with the last seq and entry and the kiosk entry, every ballot row, the evidence made final."""
    _wipe(engine)
    alias = _h("alias", "re-voter")
    entries: list[Entry] = []
    for k, index in enumerate((3, 4, 6)):
        bh = _h("re-vote", k)
        p = {
            "election_id": EID,
            "ballot_hash": bh,
            "tracking_code": f"T-{k}",
            "ballot": {"ballot_nonce": _h("n", k), "contests": []},
            "voter_alias": alias,
            "channel": "kiosk" if k == 2 else "internet",
            "seq": k + 1,
            "auth": {"method": "jpki", "evidence_hash": _h("ev", k)},
        }
        if k == 2:
            p["kiosk"] = {"kiosk_id": "k-1", "session": 1}
        entries.append((index, EventType.BALLOT_CAST.value, p))
    spoiled = {"election_id": EID, "ballot_hash": _h("spoiled"), "tracking_code": "T-s", "ballot": {}}
    entries.insert(2, (5, EventType.BALLOT_SPOILED.value, spoiled))
    private = {i: {"recorded": False, "evidence": "pending", "challenge_used": False, "oidc": False,
                   "reserved": True, "bound": 1} for i, _, _ in entries}  # fmt: skip
    _seed(engine, entries, private)
    with Session(engine) as s:
        r = BallotReplay(EID, NOW)
        assert r.apply_page(s, entries) == [True] * 4
        assert r.problems == []
        s.flush()
        state = s.get(VoterState, (EID, alias))
        assert state is not None and (state.seq, state.last_index, state.kiosk_index) == (3, 6, 6)
        kinds = {b.ledger_index: (b.kind, b.seq) for b in s.exec(select(IntakeBallot)).scalars()}
        assert kinds == {3: ("cast", 1), 4: ("cast", 2), 5: ("spoiled", None), 6: ("cast", 3)}
        evidence = {e.ledger_index: e.status for e in s.exec(select(AuthEvidence)).scalars()}
        assert evidence == {3: "final", 4: "final", 6: "final"}
        assert [b.ledger_index for b in s.exec(select(KioskBallot)).scalars()] == [6]
        reserved = s.exec(select(BallotUniqueValue).where(BallotUniqueValue.ledger_index == RESERVED)).all()
        assert reserved == []
        assert r.finish(s, full=True) == 0 and r.problems == []
        s.rollback()


def test_a_foreign_entry_in_a_page_is_refused_before_anything_is_written(engine: Engine) -> None:
    from voting._errors import ServiceUnavailable

    _wipe(engine)
    mine = {"election_id": EID, "ballot_hash": _h("mine"), "tracking_code": "T-m", "ballot": {}}
    foreign = {**mine, "election_id": "another", "ballot_hash": _h("foreign")}
    with Session(engine) as s:
        with pytest.raises(ServiceUnavailable) as info:
            BallotReplay(EID, NOW).apply_page(
                s, [(7, EventType.BALLOT_SPOILED.value, mine), (8, EventType.BALLOT_SPOILED.value, foreign)]
            )
        assert info.value.code == "reconcile.foreign_entry" and "entry 8" in info.value.message
        assert _dump(s)["intake_ballot"] == []


def test_a_service_whose_intake_rows_were_lost_rebuilds_them_in_pages(tmp_path, monkeypatch):
    """The whole reconciliation, pages of two: re-votes, a spoiled ballot and the closing after them, on a
    private state that lost every ballot, unique-value and voter row (half the evidence pending again) and
    replays from the ledger's start. The rebuilt rows are the ones the intake wrote; nothing is reported."""
    from _service_util import ADMIN, ADMIN_TOKEN, CLOSE_EARLY, OPEN_EARLY
    from test_service_reconcile import CHOICE, reconcile, server

    from voting._db import ElectionRow
    from voting.clients.voter import VoterClient
    from voting.testing import run_key_ceremony

    monkeypatch.setattr("voting.service._core.REPLAY_PAGE", 2)
    with server(tmp_path) as w:
        http, service, residents = w["http"], w["service"], w["residents"]
        run_key_ceremony(http, w["invitations"], admin_token=ADMIN_TOKEN)
        assert http.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY).status_code == 200
        with VoterClient(w["url"]) as v:
            for who in (0, 0, 1, 0, 2):
                v.cast_jpki(residents[who].card, CHOICE)
            v.challenge(v.prepare(CHOICE))
            v.cast_jpki(residents[2].card, CHOICE)
        assert http.post("/api/v1/admin/close", headers=ADMIN, json=CLOSE_EARLY).status_code == 200

        def rows() -> dict[str, Any]:
            with Session(service.engine) as s:
                out = _dump(s)
            out["intake_ballot"] = [r[:-1] for r in out["intake_ballot"]]  # created_at: when it was written
            return out

        written = rows()
        assert len(written["intake_ballot"]) == 7 and len(written["intake_voter_state"]) == 3
        with Session(service.engine) as s:
            for t in (IntakeBallot, BallotUniqueValue, VoterState):
                s.execute(delete(t))
            for ev in s.exec(select(AuthEvidence)).scalars():
                if ev.ledger_index % 2:
                    ev.status, ev.ledger_index = "pending", ev.ledger_index - 1
                    s.add(ev)
            s.exec(select(ElectionRow)).scalar_one().ledger_synced = 0
            s.commit()
        report = reconcile(http)
        assert report["problems"] == [] and report["start"] == 0
        ballots = [r["index"] for r in report["repaired"] if r["type"].startswith("ballot.")]
        assert sorted(ballots) == sorted(r[4] for r in written["intake_ballot"])
        assert rows() == written
        again = reconcile(http, full=True)
        assert (again["repaired"], again["problems"]) == ([], [])
