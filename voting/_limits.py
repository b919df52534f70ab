"""Request limits: an ASGI middleware that refuses oversized or too deeply nested bodies before any route
sees them.

Every request body is bounded: ``Settings.max_request_bytes`` (1 MiB by default; a three-contest ballot
with its authentication is about 20 kB) and, for the non-JSON bodies of the commission's authenticated
``/admin/`` routes (the CSV voter-roll upload), ``Settings.max_admin_request_bytes``; a JSON body never
gets the larger limit. A declared ``Content-Length`` over the limit is refused at once; otherwise the body
is read here (never more than the limit) and refused when it crosses it, then handed on to the app. The
answer is
``413 {"error": {"code": "request.too_large", ...}}`` and nothing reaches the service: nothing changes.

A JSON body (``Content-Type`` ``application/json``, any ``+json`` type, or none given) is then scanned for
its nesting (``ledger.record.check_json_bounds``, a linear scan that skips string literals) before any
JSON decoder runs: arrays and objects nested deeper than ``ledger.record.MAX_JSON_DEPTH`` (65; a ballot
is about 8 deep) are refused with ``400 {"error": {"code": "request.too_deep", ...}}``. A decoder meeting
``{"a":`` + 100,000 × ``[`` ... would otherwise recurse once per level.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from email.message import Message as _MimeHeader
from typing import Any

from ledger.record import MAX_JSON_DEPTH, InvalidEntry, check_json_bounds

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
        is_json = _is_json(scope)
        # the larger limit is for the commission's non-JSON upload (the CSV roll); no route takes such JSON
        admin_path = str(scope.get("path", "")).startswith(self.admin_prefix)
        limit = self.admin if admin_path and not is_json else self.default
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
    await _send_error(send, 413, "request.too_large", f"the request body exceeds {limit} bytes")


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
