"""What every client shares: reading the server's error answers and one verifying TLS context."""

from __future__ import annotations

import functools
import ssl
from typing import Any

__all__ = ["read_error", "tls_context"]


def read_error(response: Any) -> tuple[str, str, list[Any]]:
    """``(code, message, details)`` of an error answer shaped by :func:`voting._errors.error_body`, for the
    clients (an ``httpx.Response``). A body of another shape (a proxy's error page, ...) reads as code
    ``http.<status>`` with the body's first 200 characters as the message."""
    try:
        err = response.json()["error"]
        details = err.get("details")
        return str(err["code"]), str(err["message"]), list(details) if isinstance(details, list) else []
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"http.{response.status_code}", response.text[:200], []


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context (certifi's CA bundle) shared by every client: building a context loads
    the bundle, which costs tens of milliseconds, so the voter client and the demo build it once."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())
