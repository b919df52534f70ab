"""How the ``tvote`` command line reports an expected failure: one line ``error: <code>: <message>`` on
stderr and a non-zero exit status, never a traceback.

Expected failures are what an operator can cause or meet: the server answered an error
(:class:`voting.clients.trustee.ApiError`, the service's own :class:`voting._errors.ServiceError`), the
server cannot be reached (``server.unreachable``: refused, timed out, went away), a file cannot be read
(``file.not_found``, ``file.permission``, ``file.error``), a trustee's secret file or state does not allow
the step (``trustee.secret_file``, ``trustee.registered``, ...), a ledger check failed (``ledger.*``), or a
setting is refused (:class:`CliError`, e.g. ``config.secret_file``). Anything else is a bug and keeps its
traceback.

Exit status: :class:`CliError` says its own (2 for a refused setting); every other expected failure is 1.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["CliError", "describe", "read_secret_file"]


class CliError(Exception):
    """An expected failure found by the command line itself (a refused setting, a bad argument)."""

    def __init__(self, code: str, message: str, *, exit_code: int = 2) -> None:
        self.code, self.message, self.exit_code = code, message, exit_code
        super().__init__(f"{code}: {message}")


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def describe(exc: BaseException) -> tuple[str, str, int] | None:
    """``(code, message, exit status)`` of an expected failure, or ``None`` for anything else (a bug)."""
    import httpx

    from ._errors import ServiceError
    from .clients.trustee import ApiError, TrusteeFileError, TrusteeStateError

    if isinstance(exc, CliError):
        return exc.code, exc.message, exc.exit_code
    if isinstance(exc, ApiError | ServiceError | TrusteeStateError):
        return exc.code, _one_line(exc.message), 1
    if isinstance(exc, TrusteeFileError):
        return "trustee.secret_file", _one_line(str(exc)), 1
    if isinstance(exc, httpx.TransportError):
        try:
            url = exc.request.url
            where = f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"
        except RuntimeError:  # no request attached
            where = "the server"
        reason = _one_line(str(exc)) or type(exc).__name__
        return "server.unreachable", f"cannot reach {where}: {reason}", 1
    if isinstance(exc, httpx.HTTPError):
        return "server.http", _one_line(str(exc)) or type(exc).__name__, 1
    from ledger import LedgerError

    if isinstance(exc, LedgerError):
        from ._ledger_api import error_code

        return error_code(exc), _one_line(exc.operator_message), 1
    if isinstance(exc, OSError) and exc.filename is not None:
        name = os.fsdecode(exc.filename)
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, FileNotFoundError):
            return "file.not_found", f"{name}: {reason}", 1
        if isinstance(exc, PermissionError):
            return "file.permission", f"{name}: {reason}", 1
        return "file.error", f"{name}: {reason}", 1
    return None


def read_secret_file(path: Path, variable: str) -> str:
    """The secret in ``path`` (whitespace stripped), read only if no one but its owner may read or write it.

    Refused with :class:`CliError` ``config.secret_file``: a file that is missing, not a regular file,
    accessible by its group or others (``chmod 600`` it), or empty. The mode is checked on the open file,
    so a file swapped between the check and the read is still the one checked.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as e:
        raise CliError("config.secret_file", f"{variable}: cannot open {path}: {e.strerror}") from e
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise CliError("config.secret_file", f"{variable}: {path} is not a regular file")
        if st.st_mode & 0o077:
            raise CliError(
                "config.secret_file",
                f"{variable}: {path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"chmod 600 {path}",
            )
        try:
            secret = f.read(64 * 1024).decode("utf-8").strip()
        except UnicodeDecodeError as e:
            raise CliError("config.secret_file", f"{variable}: {path} is not UTF-8 text") from e
    if not secret:
        raise CliError("config.secret_file", f"{variable}: {path} is empty")
    return secret
