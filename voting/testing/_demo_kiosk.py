"""The demo's polling place (:func:`voting.testing.run_demo`, step 2): two enrolled kiosks.

The commission enrols both (each draws its own Ed25519 key, :class:`voting.clients.kiosk.KioskKey`; the
enrolment is a ``kiosk.enrolled`` entry and returns the kiosk's poll-worker PIN); the poll workers open both
with their PINs (``kiosk.opened``, the zero reports); the kiosk voters come in turn, alternating between the
two kiosks, and each casts with their (software) My Number card through the kiosk's signed requests
(:class:`voting.clients.kiosk.KioskApi`). Halfway through, the second kiosk is reported stolen and revoked
(``kiosk.revoked``): its next request is refused (``kiosk.revoked``, nothing changes) and that voter casts
at the first kiosk instead. At the end the first kiosk is closed (``kiosk.closed``, the closing report with
the server's count); the revoked one stays open on the record, as a revoked kiosk is never closed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from voting.clients.kiosk import KioskApi, KioskApiError
from voting.receipt import Receipt

from ._demo_election import DemoElection
from ._residents import Resident

__all__ = ["PollingPlace", "run_polling_place"]

KIOSK_IDS = ("tsukuba-city-hall-1", "tsukuba-city-hall-2")
POLLING_PLACE = "つくば市役所 1階 期日前投票所"


@dataclass
class PollingPlace:
    """What happened at the polling place (for the demo's summary)."""

    cast: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KIOSK_IDS, 0))
    receipts: list[Receipt] = field(default_factory=list)
    #: ``(kiosk id, error code)`` of the request the revoked kiosk sent after its revocation
    refused: tuple[str, str] | None = None
    revoked_index: int | None = None
    closing: dict[str, Any] | None = None

    def lines(self) -> list[str]:
        k1, k2 = KIOSK_IDS
        out = [
            f"polling place {POLLING_PLACE}: kiosks {k1} and {k2} enrolled and opened with their poll-worker "
            "PINs",
            f"{k2} cast {self.cast[k2]} ballots, then was revoked (ledger entry {self.revoked_index}); "
            f"its next request was refused: {self.refused[1] if self.refused else 'NOT REFUSED'}",
        ]
        if self.closing is not None:
            e = self.closing["entry"]
            out.append(
                f"{k1} cast {self.cast[k1]} ballots and was closed "
                f"(ledger entry {self.closing['ledger_index']}: server count {e['ballots_cast']}, "
                f"kiosk count {e['kiosk_count']})"
            )
        return out


def _cast(
    e: DemoElection, api: KioskApi, resident: Resident, choices: Mapping[str, Sequence[str]]
) -> Receipt:
    """One voter at a kiosk: the kiosk encrypts, the card signs (base hash, ballot hash, challenge), the
    kiosk signs the ballot and sends it."""
    with e.client(self_check=False) as c:
        p = c.prepare(choices)
    challenge = api.challenge()
    submission = resident.card.sign_ballot(api.base_hash, p.ballot_hash, challenge)
    return Receipt.from_dict(api.cast(p.ballot.to_dict(), submission, challenge, session=1))


def run_polling_place(
    e: DemoElection,
    voters: Sequence[Resident],
    choose: Callable[[Resident], Mapping[str, Sequence[str]]],
) -> PollingPlace:
    """Run the polling place for ``voters`` (at least 3: the second kiosk is revoked after its first
    ballot); ``choose`` gives each voter's choices."""
    if len(voters) < 3:
        raise ValueError("the polling place needs at least 3 kiosk voters")
    place = PollingPlace()
    kiosks: dict[str, KioskApi] = {}
    pins: dict[str, str] = {}
    for kiosk_id in KIOSK_IDS:
        kiosks[kiosk_id], pins[kiosk_id] = e.enrol_kiosk(kiosk_id, POLLING_PLACE)
        kiosks[kiosk_id].open(1, pins[kiosk_id])
    first, second = KIOSK_IDS
    revoke_after = max(1, len(voters) // 4)  # the second kiosk's share of the first half
    for n, resident in enumerate(voters):
        kiosk_id = second if n % 2 and place.revoked_index is None else first
        if kiosk_id == second and place.cast[second] >= revoke_after:
            place.revoked_index = int(
                e.admin(f"/kiosks/{second}/revoke", json={"reason": "demo: kiosk reported stolen"})[
                    "ledger_index"
                ]
            )
            try:
                _cast(e, kiosks[second], resident, choose(resident))
            except KioskApiError as err:  # refused before anything else: nothing changed
                place.refused = (second, err.code)
            else:  # pragma: no cover - the server accepted a revoked kiosk's ballot: the summary says so
                place.cast[second] += 1
                continue
            kiosk_id = first
        place.receipts.append(_cast(e, kiosks[kiosk_id], resident, choose(resident)))
        place.cast[kiosk_id] += 1
    if place.revoked_index is None:  # pragma: no cover - too few voters reached the second kiosk
        raise RuntimeError("the second kiosk was never revoked")
    place.closing = kiosks[first].close(1, place.cast[first], pins[first])
    return place
