"""The residents' booth: its pages (``/``, ``/vote``, ``/vote/oidc-callback``, ``/check``, ``/kiosk``) and
its files (``/static/<path>``), read from the web root (``Settings.effective_web_root``,
:mod:`voting._booth`).

Thin: :mod:`voting._booth` decides what may be served (regular files inside the web root, no symbolic link,
no traversal, a known type). A page or file that is not there is ``404 {"error": {"code":
"booth.not_found", ...}}``, like every other error. ``GET`` and ``HEAD`` only (anything else is ``405
method_not_allowed``). Every answer carries a strong ``ETag`` (the SHA-256 of the bytes) and honours
``If-None-Match`` (``304``); pages are ``Cache-Control: no-cache`` (revalidated each time, so a resident
never runs a stale booth), a file whose name carries esbuild's content hash (``booth-5FQ3N2KD.js``) is
cached for a year as ``immutable``, and any other file is ``no-cache``. The security headers are the app's
(:mod:`voting._headers`).
"""

from __future__ import annotations

import re
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .._booth import PAGES, BoothFile, read_page, read_static
from .._deps import SettingsDep
from .._errors import NotFound

__all__ = ["router"]

router = APIRouter(tags=["booth"], include_in_schema=False)

#: esbuild's ``[name]-[hash]`` file names: eight characters of base32 before the suffix
_HASHED: Final[re.Pattern[str]] = re.compile(r"-[A-Z2-7]{8}\.[a-z0-9]+$")
_IMMUTABLE: Final[str] = "public, max-age=31536000, immutable"


def _answer(request: Request, f: BoothFile | None, cache: str, what: str) -> Response:
    if f is None:
        raise NotFound("booth.not_found", f"the booth has no {what}")
    etag = f'"{f.sha256}"'
    headers = {"cache-control": cache, "etag": etag}
    if etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    head = request.method == "HEAD"
    headers["content-length"] = str(len(f.body))
    return Response(b"" if head else f.body, media_type=f.content_type, headers=headers)


def _page(request: Request, settings: SettingsDep) -> Response:
    address = request.scope["route"].path
    return _answer(request, read_page(settings.effective_web_root, address), "no-cache", "such page")


for _address in PAGES:
    router.add_api_route(_address, _page, methods=["GET", "HEAD"], response_class=Response)


@router.api_route("/static/{name:path}", methods=["GET", "HEAD"], response_class=Response)
def static_file(name: str, request: Request, settings: SettingsDep) -> Response:
    f = read_static(settings.effective_web_root, name)  # None unless name is a short, plain path
    cache = _IMMUTABLE if f is not None and _HASHED.search(name) else "no-cache"
    return _answer(request, f, cache, "such file")
