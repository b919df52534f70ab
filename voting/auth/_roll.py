"""Roll matching without plaintext personal data.

The voter roll keeps, per resident, an internal resident id and a **roll match key**::

    roll_match_key = HMAC-SHA256(roll_key,
                                 u32be(len(D)) || D || u32be(len(n)) || n
                                 || u32be(len(b)) || b || u32be(len(a)) || a)

with ``D = b"tvote/2/roll-match"``, ``n`` the normalised name, ``b`` the birth date as ISO
``YYYY-MM-DD`` and ``a`` the normalised address, each UTF-8. Normalisation is Unicode NFKC, then every
whitespace character removed (so full-width and half-width spacing agree). ``roll_key`` is a 32-byte
secret held by the election commission; without it the match keys reveal nothing and cannot be
recomputed from a guessed name. The roll never stores the plaintext, and the same function applied to
the basic-four items of a JPKI certificate (or to digital-ID claims) yields the same key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import unicodedata
from dataclasses import dataclass, field
from typing import Final

from crypto import PROTOCOL_VERSION

from ._errors import RollError

__all__ = ["RollKey", "RollMatchKey", "normalise_text", "roll_match_key"]

_DOMAIN: Final[bytes] = f"tvote/{PROTOCOL_VERSION}/roll-match".encode()


@dataclass(frozen=True, slots=True)
class RollKey:
    """The commission's 32-byte roll key. ``repr`` never shows it."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) != 32:
            raise RollError("roll.key", "the roll key must be exactly 32 bytes")


@dataclass(frozen=True, slots=True)
class RollMatchKey:
    """A 32-byte keyed hash of a resident's matching data (what the roll stores)."""

    digest: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.digest, bytes) or len(self.digest) != 32:
            raise RollError("roll.data", "a roll match key is 32 bytes")

    def hex(self) -> str:
        return self.digest.hex()


def normalise_text(s: str) -> str:
    """NFKC, then drop every whitespace character."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", s) if not ch.isspace())


def _lp(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def roll_match_key(roll_key: RollKey, name: str, birth_date: dt.date, address: str) -> RollMatchKey:
    """The keyed match key for one resident (see the module docstring for the exact bytes)."""
    if not isinstance(birth_date, dt.date) or isinstance(birth_date, dt.datetime):
        raise RollError("roll.data", "birth date must be a datetime.date")
    n = normalise_text(name)
    a = normalise_text(address)
    if not n or not a:
        raise RollError("roll.data", "name and address must be non-empty")
    msg = _lp(_DOMAIN) + _lp(n.encode()) + _lp(birth_date.isoformat().encode()) + _lp(a.encode())
    return RollMatchKey(hmac.new(roll_key.secret, msg, hashlib.sha256).digest())
