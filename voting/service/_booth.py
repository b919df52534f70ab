"""Stage 3b, the booth: publish the digest of what the server serves to residents (``booth.published``)
before voting opens, compare it with what it serves now, and count the ballots residents have checked.

The booth's files and digest are :mod:`voting._booth`'s. ``booth.published`` is appended once, during setup:
by the commission (:meth:`BoothStage.publish_booth`, ``tvote admin publish-booth``; observers can then
compare the published digest with the served one before voting opens), or else by
:meth:`~voting.service.PeriodStage.open_voting` itself, in the same ledger transaction just before
``voting.opened`` (:meth:`BoothStage._booth_entry`). So no record opens voting without it.

Check my ballot's counter (:meth:`BoothStage.record_check`) keeps, per cast ballot that someone looked up,
an HMAC of its ballot hash under a key of its own (``data_dir/booth-checks.key``, ``0600``, not in the
database): no time, no address, no tracking code. Only the number of rows is shown.
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from ledger.events import EventType
from ledger.files import write_atomic

from .._booth import BoothListing, served_assets
from .._db import BallotCheckRow, BoothRow, ElectionRow, make_private_dir
from .._errors import Conflict, InvalidRequest
from ._core import Replay, ServiceCore, replays

__all__ = ["BoothStage"]

_CHECK_KEY_FILE = "booth-checks.key"


class BoothStage(ServiceCore):
    """Publish the booth's digest; compare it with what is served; count checked ballots."""

    def served_booth(self) -> BoothListing:
        """What the web root (``Settings.effective_web_root``) serves now, hashed."""
        try:
            return served_assets(self.settings.effective_web_root)
        except ValueError as e:
            raise Conflict("booth.too_large", str(e)) from None

    def published_booth(self) -> BoothRow | None:
        """The ``booth.published`` entry as recorded (``None`` before it is appended)."""
        with self._session() as s:
            return s.get(BoothRow, self.election_id)

    def _booth_entry(
        self, s: Session, row: ElectionRow, expected_digest: str | None = None
    ) -> tuple[BoothListing, dict[str, Any]]:
        """Check that the booth can be published now and build its payload (nothing is written)."""
        if row.phase != "setup":
            raise Conflict(
                "election.phase", f"the booth is published before voting opens, not in phase '{row.phase}'"
            )
        published = s.get(BoothRow, row.election_id)
        if published is not None:
            raise Conflict(
                "booth.published", f"the booth is already published (ledger entry {published.ledger_index})"
            )
        listing = self.served_booth()
        if expected_digest is not None and expected_digest != listing.digest:
            raise Conflict(
                "booth.digest_mismatch",
                f"this server serves the booth {listing.digest}, not the expected {expected_digest}",
            )
        assets = [a.to_dict() for a in listing.assets]
        return listing, self._payload(assets=assets, digest=listing.digest)

    @staticmethod
    def _booth_row(election_id: str, index: int, payload: dict[str, Any]) -> BoothRow:
        return BoothRow(
            election_id=election_id,
            digest=payload["digest"],
            ledger_index=index,
            assets_json=json.dumps(payload["assets"], separators=(",", ":")),
        )

    def publish_booth(self, *, expected_digest: str | None = None) -> int:
        """Append ``booth.published``: every file the web root serves (address, SHA-256, size) and their
        digest. During setup, once. ``expected_digest`` (64 lowercase hex), if given, is what the commission
        reviewed: the server refuses (``booth.digest_mismatch``) if it serves anything else."""
        if expected_digest is not None and (
            len(expected_digest) != 64 or expected_digest.strip("0123456789abcdef")
        ):
            raise InvalidRequest("booth.digest", "the expected booth digest is 64 lowercase hex digits")
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            _, payload = self._booth_entry(s, row, expected_digest)
            index = self._append(EventType.BOOTH_PUBLISHED, payload, row)
            s.add(self._booth_row(row.election_id, index, payload))
            s.add(row)
            s.commit()
        return index

    @replays(EventType.BOOTH_PUBLISHED)
    def _replay_booth(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        if r.s.get(BoothRow, r.row.election_id) is not None:
            return False
        r.s.add(self._booth_row(r.row.election_id, index, p))
        return True

    # --------------------------------------------------------------------------------- Check my ballot

    def _check_key(self) -> bytes:
        path = self.settings.data_dir / _CHECK_KEY_FILE
        if not path.exists():
            make_private_dir(path.parent)
            try:
                write_atomic(path, secrets.token_hex(32) + "\n", mode=0o600, overwrite=False)
            except FileExistsError:  # written meanwhile: use that one
                pass
        return bytes.fromhex(path.read_text(encoding="ascii").strip())

    def record_check(self, ballot_hash: str) -> None:
        """Count a lookup of the cast ballot ``ballot_hash`` (hex): once per ballot, however often."""
        key = hmac.new(self._check_key(), bytes.fromhex(ballot_hash), "sha256").hexdigest()
        with self._session() as s:
            if s.get(BallotCheckRow, (self.election_id, key)) is not None:
                return
            s.add(BallotCheckRow(election_id=self.election_id, ballot_key=key))
            try:
                s.commit()
            except IntegrityError:  # counted meanwhile by a concurrent lookup
                s.rollback()

    def checks_count(self) -> int:
        """How many distinct cast ballots have been looked up (a count only)."""
        with self._session() as s:
            mine = BallotCheckRow.election_id == self.election_id
            n = s.exec(select(func.count()).select_from(BallotCheckRow).where(mine)).one()
        return int(n)
