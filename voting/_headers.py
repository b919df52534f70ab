"""Security headers on every response (the booth's pages, its assets, the API, every error): an ASGI
middleware that :func:`voting.app.create_app` wraps around the whole application, outside even the
server-error handler, so that a 404, a 413 or a 500 carries them too.

Why each value is what it is (``docs/api.md``, "Security headers"):

* :data:`CONTENT_SECURITY_POLICY`: nothing is allowed unless named (``default-src 'none'``); scripts, styles,
  workers, fonts and the manifest only from this origin, so no inline script, no ``eval``, no third-party
  origin; images also as ``data:`` (the receipt's QR code) and ``blob:`` (a receipt saved as an image);
  media as ``blob:`` (the camera preview); ``fetch`` only to this origin (the API); forms submit only here;
  no page may frame the booth (clickjacking a vote) and no ``<base>`` may move its relative addresses.
* ``X-Content-Type-Options: nosniff``: a file is run or styled only as its declared type.
* ``Referrer-Policy: no-referrer``: the digital-ID callback's address holds the login ``code`` and
  ``state``; no other site learns it (or which page a resident came from).
* :data:`PERMISSIONS_POLICY`: the camera for this origin only (the digital-ID face capture), every other
  powerful feature off.
* ``Cross-Origin-Opener-Policy: same-origin``, ``Cross-Origin-Resource-Policy: same-origin``: no other
  site's window keeps a handle on the booth, and no other site embeds its files.
* ``Strict-Transport-Security`` (production only, where a TLS proxy fronts the server): browsers come
  back over HTTPS only for a year. Development serves plain HTTP on loopback, where it would be wrong.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

__all__ = ["CONTENT_SECURITY_POLICY", "PERMISSIONS_POLICY", "SecurityHeaders", "security_headers"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTENT_SECURITY_POLICY: Final[str] = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; worker-src 'self'; media-src 'self' blob:; font-src 'self'; manifest-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PERMISSIONS_POLICY: Final[str] = (
    "camera=(self), microphone=(), geolocation=(), accelerometer=(), gyroscope=(), magnetometer=(), "
    "payment=(), usb=(), serial=(), hid=(), midi=(), display-capture=(), fullscreen=(), autoplay=(), "
    "encrypted-media=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), "
    "xr-spatial-tracking=()"
)
#: one year
HSTS_MAX_AGE: Final[int] = 31_536_000


def security_headers(*, production: bool) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every response carries (``Strict-Transport-Security`` only in production)."""
    headers = [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("permissions-policy", PERMISSIONS_POLICY),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ]
    if production:
        headers.append(("strict-transport-security", f"max-age={HSTS_MAX_AGE}"))
    return tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)


class SecurityHeaders:
    """Add :func:`security_headers` to every HTTP response (replacing any the app set itself)."""

    def __init__(self, app: ASGIApp, *, production: bool) -> None:
        self.app = app
        self.headers = security_headers(production=production)
        self._names = {k for k, _ in self.headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in self._names]
                message["headers"] = [*kept, *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
