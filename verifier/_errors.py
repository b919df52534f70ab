"""The verifier package's one exception tree.

::

    VerifierError                  base of everything verifier/ raises
    ├── RecordUnreadable           the record cannot be read at all (missing file, not a directory or
    │                              archive, undecodable JSON line): nothing could be verified.
    │                              CLI exit code 2.
    ├── ReceiptUnreadable          the ``--receipt`` file cannot be read or is not a receipt: exit code 2
    │                              (a receipt that is read but does not match the record is V25, exit 5)
    ├── TrustRootUnusable          a ``--trust-root`` file cannot be read or is not an X.509 certificate:
    │                              exit code 2; the message says what the file should be
    └── CheckFailed                a numbered check (``docs/verifier.md``) does not hold: ``step`` is
                                   the check number, ``check`` its stable id, ``entry`` the ledger index
                                   it concerns (``None`` when it concerns the record as a whole).
                                   CLI exit code 1.

Verification code raises :class:`CheckFailed` (or lets a typed error from ``crypto``/``ledger``
propagate to the check runner, which wraps it into the check being run). The runner collects every
failure into the report instead of stopping at the first one, so an auditor sees all that is wrong.

``str(err)`` is for developers; ``err.operator_message`` is the one line printed for an auditor. No
message ever contains personal data: messages name the check and the ledger entry, never a voter.
"""

from __future__ import annotations

__all__ = ["CheckFailed", "ReceiptUnreadable", "RecordUnreadable", "TrustRootUnusable", "VerifierError"]


class VerifierError(Exception):
    """Base class of every error raised by :mod:`verifier`."""

    @property
    def operator_message(self) -> str:
        return str(self)


class RecordUnreadable(VerifierError):
    """The record could not be read (I/O, archive or JSON syntax): exit code 2."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(message + (f" [{path}]" if path else ""))


class ReceiptUnreadable(VerifierError):
    """The voter's receipt file (``--receipt``) cannot be read or is not a receipt: exit code 2."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(message + (f" [{path}]" if path else ""))


class TrustRootUnusable(VerifierError):
    """A ``--trust-root`` file cannot be read or holds no X.509 certificate: exit code 2."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__((f"{path}: " if path else "") + message)


class CheckFailed(VerifierError):
    """Numbered check ``step`` (stable id ``check``) failed, concerning ledger entry ``entry``."""

    def __init__(
        self,
        step: int,
        check: str,
        message: str,
        *,
        entry: int | None = None,
        detail: str | None = None,
    ) -> None:
        self.step = step
        self.check = check
        self.message = message
        self.entry = entry
        self.detail = detail
        where = f" [entry {entry}]" if entry is not None else ""
        super().__init__(f"V{step} {check}: {message}{where}")

    @property
    def operator_message(self) -> str:
        where = f" (ledger entry {self.entry})" if self.entry is not None else ""
        return f"check V{self.step} '{self.check}' failed{where}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "step": self.step,
            "check": self.check,
            "message": self.message,
            "entry": self.entry,
            "detail": self.detail,
        }
