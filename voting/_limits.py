"""Request limits: an ASGI middleware that refuses oversized, too slow or too deeply nested bodies before any
route sees them.

Every request body is bounded, by the first that applies of:

* ``routes``: a limit per ``(method, path)``, derived from the same constants the route's validators use
  (``voting.api.voter.BODY_LIMITS``: a ballot is at most one ledger entry, ``ledger.MAX_ENTRY_BYTES``; a
  live face capture at most ``MAX_FACE_IMAGE_BYTES``, sent as hex; ...), so a body the route would accept
  is never refused for its size and a body it could never accept is never read;
* ``GET`` and ``HEAD``: no body at all (0 bytes);
* the commission's authenticated ``/admin/`` routes, for non-JSON bodies (the CSV voter-roll upload):
  ``Settings.max_admin_request_bytes``; a JSON body never gets the larger limit;
* every other route: ``Settings.max_request_bytes`` (1 MiB by default).

A declared ``Content-Length`` over the limit is refused without buffering; otherwise the body is read here
(never more than the limit) and refused when it crosses it, then handed on to the app. The answer is
``413 {"error": {"code": "request.too_large", ...}}`` and nothing reaches the service: nothing changes.
Before a 413 the rest of the body is read and discarded, up to :data:`DRAIN_BYTES` more and for at most
:data:`DRAIN_SECONDS` (a bounded "lingering close"): closing a connection with unread data makes the kernel
reset it, and the client would then see ``Connection reset`` instead of the 413. A declared body larger
than that is answered at once.

A body must arrive within ``timeout`` seconds of the request's headers (``Settings.body_timeout``, 60 by
default): one that trickles in is cut with ``408 {"error": {"code": "request.timeout", ...}}`` and the
connection is closed, so a slow client cannot hold a worker and a buffer for ever.

A JSON body (``Content-Type`` ``application/json``, any ``+json`` type, or none given) is then scanned for
its nesting (``ledger.record.check_json_bounds``, a linear scan that skips string literals) before any
JSON decoder runs: arrays and objects nested deeper than ``ledger.record.MAX_JSON_DEPTH`` (65; a ballot
is about 8 deep) are refused with ``400 {"error": {"code": "request.too_deep", ...}}``. A decoder meeting
``{"a":`` + 100,000 × ``[`` ... would otherwise recurse once per level.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from email.message import Message as _MimeHeader
from typing import Any

import anyio

from ledger.record import MAX_JSON_DEPTH, InvalidEntry, check_json_bounds

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["BodySizeLimit"]

#: before a 413, read and discard at most this much more of the body ...
DRAIN_BYTES = 4 * 1024 * 1024
#: ... for at most this long
DRAIN_SECONDS = 5.0


class BodySizeLimit:
    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int,
        admin: int,
        admin_prefix: str,
        routes: Mapping[tuple[str, str], int] | None = None,
        timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.default, self.admin, self.admin_prefix = app, default, admin, admin_prefix
        self.routes = dict(routes or {})
        self.timeout, self._clock = timeout, clock

    def limit(self, method: str, path: str, is_json: bool) -> int:
        """The largest body accepted for this request (see the module doc for the order)."""
        route = self.routes.get((method, path))
        if route is not None:
            return route
        if method in ("GET", "HEAD"):
            return 0
        # the larger limit is for the commission's non-JSON upload (the CSV roll); no route takes such JSON
        if path.startswith(self.admin_prefix) and not is_json:
            return self.admin
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_json = _is_json(scope)
        limit = self.limit(str(scope.get("method", "")), str(scope.get("path", "")), is_json)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            if declared - limit <= DRAIN_BYTES:
                await self._drain(receive, DRAIN_BYTES)
            await _refuse(send, limit)
            return
        # Read the body here, at most ``limit`` bytes, and replay it: the framework turns any error raised
        # while it reads a body into a generic 400, so the limit must be enforced before the app runs.
        chunks: list[bytes] = []
        size = 0
        deadline = self._clock() + self.timeout
        while True:
            message = None
            with anyio.move_on_after(max(0.0, deadline - self._clock())):
                message = await receive()
            if message is None:  # the body did not arrive in time
                await _send_error(
                    send,
                    408,
                    "request.timeout",
                    f"the request body did not arrive within {self.timeout:g} s",
                    close=True,
                )
                return
            if message["type"] != "http.request":  # the client went away: nothing to serve
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                if message.get("more_body", False):
                    await self._drain(receive, DRAIN_BYTES)
                await _refuse(send, limit)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        if is_json:
            try:
                check_json_bounds(b"".join(chunks), max_bytes=limit, max_depth=MAX_JSON_DEPTH)
            except InvalidEntry:
                await _send_error(
                    send,
                    400,
                    "request.too_deep",
                    f"the JSON body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels",
                )
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _drain(self, receive: Receive, budget: int) -> None:
        """Read and discard the rest of a refused body: at most ``budget`` bytes and :data:`DRAIN_SECONDS`."""
        with anyio.move_on_after(min(DRAIN_SECONDS, self.timeout)):
            while budget > 0:
                message = await receive()
                if message["type"] != "http.request":
                    return
                budget -= len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # a malformed header is the server's (h11's) to refuse; count the body instead
    return None


def _is_json(scope: Scope) -> bool:
    """Whether a route may decode this body as JSON: a JSON media type, or none given (the ledger's raw
    routes parse whatever they are sent)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            header = _MimeHeader()
            header["content-type"] = value.decode("latin-1")
            subtype = header.get_content_subtype()
            return subtype == "json" or subtype.endswith("+json")
    return True


async def _refuse(send: Send, limit: int) -> None:
    await _send_error(send, 413, "request.too_large", f"the request body exceeds {limit} bytes", close=True)


async def _send_error(send: Send, status: int, code: str, message: str, *, close: bool = False) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:  # the rest of the body will never be read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
