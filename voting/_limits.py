"""Request-size limit: an ASGI middleware that refuses oversized bodies before any route sees them.

Every request body is bounded: ``Settings.max_request_bytes`` (1 MiB by default; a three-contest ballot
with its authentication is about 20 kB) and, for the commission's authenticated ``/admin/`` routes
(the voter-roll upload), ``Settings.max_admin_request_bytes``. A declared ``Content-Length`` over the
limit is refused at once; otherwise the body is read here (never more than the limit) and refused when
it crosses it, then handed on to the app. The answer is
``413 {"error": {"code": "request.too_large", ...}}`` and nothing reaches the service: nothing changes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["BodySizeLimit"]


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, default: int, admin: int, admin_prefix: str) -> None:
        self.app, self.default, self.admin, self.admin_prefix = app, default, admin, admin_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.admin if str(scope.get("path", "")).startswith(self.admin_prefix) else self.default
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        # Read the body here, at most ``limit`` bytes, and replay it: the framework turns any error raised
        # while it reads a body into a generic 400, so the limit must be enforced before the app runs.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to serve
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _refuse(send, limit)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # a malformed header is the server's (h11's) to refuse; count the body instead
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(
        {"error": {"code": "request.too_large", "message": f"the request body exceeds {limit} bytes"}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
