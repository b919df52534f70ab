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

Text (pages, scripts, styles, JSON, SVG) over 1 KiB goes out gzip-compressed to a browser that accepts it
(``Accept-Encoding: gzip``; ``Vary: Accept-Encoding``, its own ``ETag``): on a slow mobile connection the
booth's first render waits for its scripts, which shrink to about a third. The compressed bytes are made
once per file version (its SHA-256) and kept; the booth's files are public, so compression reveals nothing.
Subresource integrity and the booth digest are over the decoded bytes, which are the same either way.
"""

from __future__ import annotations

import gzip
import re
import threading
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


#: compressed when the browser accepts gzip: these types, from this size on
_COMPRESSIBLE: Final[tuple[str, ...]] = (
    "text/",
    "application/json",
    "application/manifest+json",
    "image/svg+xml",
)
_MIN_COMPRESSED: Final[int] = 1024
#: compressed bodies by SHA-256 of the file (a handful of files per booth version; a new build adds its own)
_gzipped: dict[str, bytes] = {}
_gzipped_lock = threading.Lock()
_GZIP_CACHE_FILES: Final[int] = 256


def _accepts_gzip(request: Request) -> bool:
    """``Accept-Encoding`` names gzip (or ``*``) without ``q=0``."""
    for item in request.headers.get("accept-encoding", "").lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if coding in ("gzip", "*"):
            q = next((p[2:] for p in params if p.startswith("q=")), "1")
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


def _gzip(f: BoothFile) -> bytes:
    with _gzipped_lock:
        body = _gzipped.get(f.sha256)
    if body is None:
        body = gzip.compress(f.body, compresslevel=9, mtime=0)
        with _gzipped_lock:
            if len(_gzipped) >= _GZIP_CACHE_FILES:
                _gzipped.clear()
            _gzipped[f.sha256] = body
    return body


def _answer(request: Request, f: BoothFile | None, cache: str, what: str) -> Response:
    if f is None:
        raise NotFound("booth.not_found", f"the booth has no {what}")
    compressible = len(f.body) >= _MIN_COMPRESSED and f.content_type.startswith(_COMPRESSIBLE)
    gzipped = compressible and _accepts_gzip(request)
    etag = f'"{f.sha256}-gzip"' if gzipped else f'"{f.sha256}"'
    headers = {"cache-control": cache, "etag": etag}
    if compressible:
        headers["vary"] = "Accept-Encoding"
    if etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    body = _gzip(f) if gzipped else f.body
    if gzipped:
        headers["content-encoding"] = "gzip"
    headers["content-length"] = str(len(body))
    head = request.method == "HEAD"
    return Response(b"" if head else body, media_type=f.content_type, headers=headers)


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
