"""The kiosk's state directory (mode 0700)::

    kiosk-key        the kiosk's Ed25519 seed (voting.clients.kiosk.KioskKey, mode 0600)
    kiosk.json       {"format": "tvote-kiosk/1", "kiosk_id": ..., "server": <server URL>}
    session.json     {"session": n, "open": bool, "count": k}: the poll session this kiosk opened last and
                     the ballots it saw acknowledged in it (its own count for the closing report)
    pin-tries.json   wrong signing-PIN counts per card (kiosk.card)
    receipts/        the receipt slips (PDF)
    reports/         the zero and closing reports (PDF)

Every file is written through :func:`ledger.files.write_atomic`; every file read is checked.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from ledger.files import write_atomic

__all__ = ["KIOSK_ID_RE", "KioskConfig", "SessionRecord", "StateDir", "StateError"]

KIOSK_ID_RE: Final[re.Pattern[str]] = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
CONFIG_FORMAT: Final[str] = "tvote-kiosk/1"


class StateError(ValueError):
    """The state directory or one of its files is missing or malformed (the message says which)."""


def check_server_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise StateError(f"the server URL must be http(s)://host[:port][/path], not {url!r}")
    return url.rstrip("/")


def check_kiosk_id(kiosk_id: str) -> str:
    if not isinstance(kiosk_id, str) or KIOSK_ID_RE.fullmatch(kiosk_id) is None:
        raise StateError("a kiosk id is 1-63 characters: lower-case letters, digits and '-' (not first)")
    return kiosk_id


@dataclass(frozen=True, slots=True)
class KioskConfig:
    kiosk_id: str
    server: str

    def to_json(self) -> str:
        return json.dumps(
            {"format": CONFIG_FORMAT, "kiosk_id": self.kiosk_id, "server": self.server}, indent=2
        )

    @classmethod
    def from_json(cls, text: str, where: str) -> KioskConfig:
        try:
            d = json.loads(text)
        except ValueError as e:
            raise StateError(f"{where} is not JSON: {e}") from None
        if (
            not isinstance(d, dict)
            or d.get("format") != CONFIG_FORMAT
            or set(d) != {"format", "kiosk_id", "server"}
        ):
            raise StateError(f"{where} is not a {CONFIG_FORMAT} file")
        return cls(check_kiosk_id(d["kiosk_id"]), check_server_url(str(d["server"])))


@dataclass(frozen=True, slots=True)
class SessionRecord:
    session: int
    open: bool
    count: int

    @classmethod
    def from_json(cls, text: str, where: str) -> SessionRecord:
        try:
            d = json.loads(text)
        except ValueError:
            d = None
        ok = (
            isinstance(d, dict)
            and set(d) == {"session", "open", "count"}
            and all(type(d[k]) is int and d[k] >= 0 for k in ("session", "count"))
            and type(d["open"]) is bool
        )
        if not ok:
            raise StateError(f"{where} is not a kiosk session file")
        assert isinstance(d, dict)
        return cls(d["session"], d["open"], d["count"])


class StateDir:
    """The files of one kiosk's state directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.key_path = self.root / "kiosk-key"
        self.config_path = self.root / "kiosk.json"
        self.session_path = self.root / "session.json"
        self.receipts = self.root / "receipts"
        self.reports = self.root / "reports"

    def create(self, config: KioskConfig) -> None:
        """Make the directory (0700) and write ``kiosk.json``; refuses a directory that has a kiosk key."""
        if self.key_path.exists() or self.config_path.exists():
            raise StateError(f"{self.root} already holds a kiosk (kiosk-key / kiosk.json): not overwritten")
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        write_atomic(self.config_path, config.to_json() + "\n")
        self.ensure_dirs()

    def ensure_dirs(self) -> None:
        for d in (self.receipts, self.reports):
            d.mkdir(mode=0o700, exist_ok=True)

    def config(self) -> KioskConfig:
        try:
            text = self.config_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StateError(f"{self.config_path} is missing: run `tvote-kiosk init` first") from None
        return KioskConfig.from_json(text, str(self.config_path))

    def check_permissions(self) -> None:
        """Refuse a state directory other users can read or enter (it holds the kiosk's key)."""
        mode = self.root.stat().st_mode & 0o777
        if mode & 0o077:
            raise StateError(f"{self.root} has mode {mode:o}: it must be 0700 (chmod 700 {self.root})")

    def session(self) -> SessionRecord | None:
        try:
            text = self.session_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return SessionRecord.from_json(text, str(self.session_path))

    def save_session(self, record: SessionRecord) -> None:
        data: dict[str, Any] = {"session": record.session, "open": record.open, "count": record.count}
        write_atomic(self.session_path, json.dumps(data, sort_keys=True))
