"""The election server's answers as the kiosk service reads them: each checked for the documented shape
(``docs/kiosk.md``; receipts as :class:`voting.receipt.Receipt` reads them) before the kiosk relies on it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from voting.receipt import Receipt

from ._errors import KioskError

__all__ = ["OPEN_STATES", "Pending", "count_ok", "entry_ref", "receipt_for"]


@dataclass(frozen=True, slots=True)
class Pending:
    """A ballot sent to the server without an answer: looked up by its tracking code until settled."""

    ballot_hash: str
    tracking_code: str


#: the kiosk's polls as the server's status names them
OPEN_STATES: Final[tuple[str, str]] = ("open", "closed")
_HASH: Final[re.Pattern[str]] = re.compile(r"[0-9a-f]{64}")


def count_ok(x: object) -> bool:
    """A count or an index: a non-negative ``int`` (not a ``bool``)."""
    return type(x) is int and x >= 0


def entry_ref(answer: Mapping[str, Any]) -> tuple[int, str]:
    """The ledger index and entry hash of the server's answer to open / close."""
    index, entry_hash = answer.get("ledger_index"), answer.get("entry_hash")
    if not count_ok(index) or not isinstance(entry_hash, str) or not _HASH.fullmatch(entry_hash):
        raise KioskError("kiosk.server", detail="the server's answer has no ledger index and entry hash")
    assert isinstance(index, int)
    return index, entry_hash


def receipt_for(answer: object, pending: Pending) -> Receipt | None:
    """The server's receipt for ``pending`` (the documented shape, this ballot, cast), else ``None``."""
    try:
        r = Receipt.from_dict(answer)
    except ValueError:
        return None
    return r if (r.ballot_hash, r.kind) == (pending.ballot_hash, "cast") else None
