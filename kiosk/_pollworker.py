"""The poll-worker PIN as the kiosk checks it between opening and closing (unlock, lock, re-check).

The server checks the PIN when polls open and close. The kiosk keeps an Argon2id hash (PyNaCl,
``nacl.pwhash.argon2id``, interactive limits) of the PIN of the last successful opening, in memory only:
never on disk, forgotten at closing, at a revocation and after five wrong PINs in a row (then polls must be
closed and opened again through the server, which counts wrong PINs too). A restarted kiosk has no hash.
"""

from __future__ import annotations

from typing import Final

import nacl.exceptions
import nacl.pwhash

from ._errors import KioskError

__all__ = ["MAX_LOCAL_PIN_TRIES", "PollWorkerPin"]

MAX_LOCAL_PIN_TRIES: Final[int] = 5


class PollWorkerPin:
    def __init__(self) -> None:
        self._hash: bytes | None = None
        self._failures = 0

    def remember(self, pin: str) -> None:
        """The PIN the server just accepted."""
        self._hash = nacl.pwhash.argon2id.str(
            pin.encode(),
            opslimit=nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
            memlimit=nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
        )
        self._failures = 0

    def forget(self) -> None:
        self._hash = None
        self._failures = 0

    def check(self, pin: object) -> None:
        """Pass, or raise ``kiosk.poll_worker`` (with ``tries_left``) or ``kiosk.poll_worker_unknown``."""
        if self._hash is None:
            raise KioskError("kiosk.poll_worker_unknown")
        ok = False
        if isinstance(pin, str) and 0 < len(pin) <= 64:
            try:
                ok = nacl.pwhash.argon2id.verify(self._hash, pin.encode())
            except nacl.exceptions.InvalidkeyError:
                ok = False
        if ok:
            self._failures = 0
            return
        self._failures += 1
        left = MAX_LOCAL_PIN_TRIES - self._failures
        if left <= 0:
            self.forget()
            raise KioskError("kiosk.poll_worker_unknown")
        raise KioskError(
            "kiosk.poll_worker",
            status=403,
            message_en=f"The poll worker PIN is wrong. {left} tries left.",
            message_ja=f"係員用暗証番号が違います。残り{left}回です。",
            tries_left=left,
        )
