"""Private tables of the polling-place kiosks (never exported to the public record).

They live in the same SQLModel metadata (and therefore the same engine) as :mod:`voting._db`:

* :class:`KioskRow` — one enrolled kiosk: what its ``kiosk.enrolled`` entry published (id, public key,
  polling place), its ``kiosk.revoked`` entry, its session (the last opened, and whether it is open), and
  two things no entry holds: the Argon2id hash of its poll-worker PIN with the count of wrong PINs in a row,
  and the last ``Tvote-Kiosk-Time`` the server accepted from it (a replayed request is refused, also after a
  restart). Everything else is rebuilt from the ledger by reconciliation; the PIN hash cannot be: a kiosk
  whose enrolment was appended but not recorded (a crash in between) has no PIN until the commission issues
  one (``tvote admin kiosk pin``), which it must anyway, since the PIN was never shown.
* :class:`KioskBallot` — one kiosk ballot (``ballot.cast`` with ``channel = "kiosk"``): its kiosk and
  session, so the server counts ``ballots_cast`` per session. Written with the ballot's intake rows and
  rebuilt from the ledger.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["KioskBallot", "KioskRow"]


class KioskRow(SQLModel, table=True):
    """An enrolled kiosk (``kiosk.enrolled``) and its private state."""

    __tablename__ = "kiosk"
    __table_args__ = (UniqueConstraint("election_id", "public_key", name="uq_kiosk_public_key"),)

    election_id: str = Field(primary_key=True, max_length=128)
    kiosk_id: str = Field(primary_key=True, max_length=63)
    #: the kiosk's Ed25519 public key, 64 lowercase hex
    public_key: str = Field(max_length=64)
    polling_place: str = Field(max_length=1024)
    enrolled_index: int
    revoked_index: int | None = None
    #: the last session opened (0 before the first) and whether it is open now
    session: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    session_open: bool = False
    #: the ``kiosk.opened`` entry of the last session (``None`` before the first)
    opened_index: int | None = None
    #: the last ``Tvote-Kiosk-Time`` (ms) accepted from this kiosk: a request must carry a later one
    last_request_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    #: Argon2id (``nacl.pwhash.argon2id.str``) of the poll-worker PIN; ``None``: none issued (after a crash)
    pin_hash: str | None = Field(default=None, max_length=256)
    #: wrong poll-worker PINs in a row (5: locked until a new PIN is issued)
    pin_failures: int = 0


class KioskBallot(SQLModel, table=True):
    """A kiosk ballot: which kiosk and session cast it (``ballot.cast.kiosk``)."""

    __tablename__ = "kiosk_ballot"
    __table_args__ = (Index("ix_kiosk_ballot_session", "election_id", "kiosk_id", "session"),)

    ballot_hash: str = Field(primary_key=True, max_length=64)
    election_id: str = Field(max_length=128)
    kiosk_id: str = Field(max_length=63)
    session: int = Field(sa_column=Column(BigInteger, nullable=False))
    ledger_index: int
