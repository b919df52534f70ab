"""Reconciliation of the kiosk entries: a failure between the ledger append and the private write of
``kiosk.enrolled``, ``kiosk.opened``, a kiosk ``ballot.cast``, ``kiosk.closed`` and ``kiosk.revoked`` is
repaired from the ledger.

The failure is injected as in tests/voting/test_service_reconcile.py (the session commit right after the
append raises, as a full disk would): the service refuses changes (``service.diverged``) until
reconciliation rebuilds the kiosk's row (session, revocation) and its ballots (the count ``kiosk.closed``
publishes). The poll-worker PIN cannot be rebuilt: a kiosk whose enrolment was not recorded has none until
``tvote admin kiosk pin``, and reconciliation says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _service_util import ADMIN, ADMIN_TOKEN, OPEN_EARLY
from sqlmodel import Session
from test_service_reconcile import CommitFails, reconcile, server

from voting._kiosk_db import KioskBallot, KioskRow
from voting.clients.kiosk import KioskApi, KioskApiError, KioskKey
from voting.clients.voter import VoterClient
from voting.testing import run_key_ceremony

pytestmark = pytest.mark.xdist_group("kiosk")

CHOICE = {"mayor": ["cand-1"], "referendum": ["no"], "subsidy": ["proj-2"]}


def _row(service: Any, kiosk_id: str) -> KioskRow | None:
    with Session(service.engine) as s:
        return s.get(KioskRow, (service.election_id, kiosk_id))


def _fails(call: Any, fail: CommitFails, fired: int) -> None:
    """``call`` appends, then its private commit fails (500 internal.error); the service is diverged."""
    with pytest.raises(KioskApiError) as err:
        call()
    assert (err.value.status, err.value.code) == (500, "internal.error") and fail.fired == fired


def test_kiosk_entries_whose_private_write_failed_are_rebuilt(
    tmp_path: Path, monkeypatch, database_url
) -> None:
    """On SQLite and on a real PostgreSQL (``database_url`` fixture)."""
    with server(tmp_path, database_url) as w:
        http, service, residents = w["http"], w["service"], w["residents"]
        run_key_ceremony(http, w["invitations"], admin_token=ADMIN_TOKEN)
        fail = CommitFails(monkeypatch, service)

        # -- enrolment: appended, not recorded; the PIN (in the answer that never came) is lost
        key = KioskKey.generate()
        body = {"kiosk_id": "hall-1", "public_key": key.public_key_hex, "polling_place": "Test hall"}
        size = service.ledger.size
        fail.arm()
        r = http.post("/api/v1/admin/kiosks", json=body, headers=ADMIN)
        assert r.status_code == 500 and fail.fired == 1 and service.ledger.size == size + 1
        assert _row(service, "hall-1") is None
        r = http.post("/api/v1/admin/kiosks", json={**body, "kiosk_id": "hall-2"}, headers=ADMIN)
        assert (r.status_code, r.json()["error"]["code"]) == (503, "service.diverged")
        report = reconcile(http)
        assert report["repaired"] == [{"index": size, "type": "kiosk.enrolled"}]
        assert len(report["problems"]) == 1 and "tvote admin kiosk pin" in report["problems"][0]
        row = _row(service, "hall-1")
        assert row is not None and (row.public_key, row.enrolled_index, row.pin_hash) == (
            key.public_key_hex,
            size,
            None,
        )
        kiosk = KioskApi(http, key, "hall-1")
        assert kiosk.status()["state"] == "closed"  # the kiosk is known again: its requests are accepted
        assert http.post("/api/v1/admin/open", headers=ADMIN, json=OPEN_EARLY).status_code == 200
        with pytest.raises(KioskApiError) as err:  # no PIN: nobody can open it ...
            kiosk.open(1, "00000000")
        assert err.value.code == "kiosk.poll_worker_locked"
        listed = http.get("/api/v1/admin/kiosks", headers=ADMIN).json()["kiosks"]
        assert [k["poll_worker_pin"] for k in listed] == ["none"]
        # ... until the commission issues one
        pin = http.post("/api/v1/admin/kiosks/hall-1/poll-worker-pin", headers=ADMIN).json()[
            "poll_worker_pin"
        ]

        # -- opening
        fail.arm()
        _fails(lambda: kiosk.open(1, pin), fail, 2)
        assert (_row(service, "hall-1").session, _row(service, "hall-1").session_open) == (0, False)
        opened = service.ledger.size - 1
        assert reconcile(http)["repaired"] == [{"index": opened, "type": "kiosk.opened"}]
        row = _row(service, "hall-1")
        assert (row.session, row.session_open, row.opened_index) == (1, True, opened)

        # -- a kiosk ballot
        with VoterClient(w["url"]) as v:
            p = v.prepare(CHOICE)
            ch = kiosk.challenge()
            sub = residents[0].card.sign_ballot(kiosk.base_hash, p.ballot_hash, ch)
            fail.arm()
            _fails(lambda: kiosk.cast(p.ballot.to_dict(), sub, ch, 1), fail, 3)
            cast = service.ledger.size - 1
            with Session(service.engine) as s:
                assert s.get(KioskBallot, p.ballot_hash.hex()) is None
            assert reconcile(http)["repaired"] == [{"index": cast, "type": "ballot.cast"}]
            with Session(service.engine) as s:
                kb = s.get(KioskBallot, p.ballot_hash.hex())
                assert kb is not None and (kb.kiosk_id, kb.session, kb.ledger_index) == ("hall-1", 1, cast)
            assert kiosk.status()["ballots_cast"] == 1
            found = kiosk.lookup(p.tracking_code)  # what a kiosk asks when the answer was lost
            assert found is not None and found["leaf_index"] == cast and found["channel"] == "kiosk"
            with pytest.raises(KioskApiError) as err:  # the voter's kiosk ballot is recorded again
                ch = kiosk.challenge()
                p2 = v.prepare(CHOICE)
                sub2 = residents[0].card.sign_ballot(kiosk.base_hash, p2.ballot_hash, ch)
                kiosk.cast(p2.ballot.to_dict(), sub2, ch, 1)
            assert err.value.code == "voter.kiosk_voted"

        # -- closing: the server's count includes the rebuilt ballot
        fail.arm()
        _fails(lambda: kiosk.close(1, 1, pin), fail, 4)
        closed = service.ledger.size - 1
        assert service.ledger.entry(closed).payload["ballots_cast"] == 1
        assert reconcile(http)["repaired"] == [{"index": closed, "type": "kiosk.closed"}]
        assert _row(service, "hall-1").session_open is False
        with pytest.raises(KioskApiError) as err:
            kiosk.close(1, 1, pin)
        assert err.value.code == "kiosk.session"

        # -- revocation
        fail.arm()
        r = http.post("/api/v1/admin/kiosks/hall-1/revoke", json={"reason": "stolen"}, headers=ADMIN)
        assert r.status_code == 500 and fail.fired == 5
        revoked = service.ledger.size - 1
        with pytest.raises(KioskApiError) as err:  # not recorded, but the service refuses changes anyway
            kiosk.open(2, pin)
        assert err.value.code == "service.diverged"
        assert reconcile(http)["repaired"] == [{"index": revoked, "type": "kiosk.revoked"}]
        assert _row(service, "hall-1").revoked_index == revoked
        with pytest.raises(KioskApiError) as err:
            kiosk.status()
        assert (err.value.status, err.value.code) == (403, "kiosk.revoked")

        # a full replay now repairs nothing and finds no difference
        full = reconcile(http, full=True)
        assert full["repaired"] == [] and full["problems"] == []
