"""The residents' booth as files: which files of the web root are served, at which address, and their hashes.

The web root (``Settings.web_root``; by default the package's own ``voting/web/`` folder) holds::

    pages/index.html  pages/vote.html  pages/check.html  pages/oidc-callback.html
    static/…          (the built JavaScript, style sheets, images, fonts; static/assets.json)

:data:`PAGES` maps each page address to its file; every other served file is ``/static/<path>``. What is
served is exactly what :func:`served_assets` lists: a page whose file exists, and every file under
``static/`` that :func:`read_static` would serve. Both apply one rule (:func:`_open_under`): every path
segment is a plain name (:data:`_SEGMENT`: letters, digits, ``.``, ``_``, ``-``, not starting with a dot),
at most :data:`MAX_DEPTH` deep, with a known file type (:data:`CONTENT_TYPES`); each directory is opened
relative to the previous one without following a symbolic link (``O_NOFOLLOW``), and the file must be a
regular file of at most :data:`MAX_ASSET_BYTES`. So ``..``, an absolute path, an encoded separator, a
symbolic link (to a file or a folder, inside the root or out of it), a device or a FIFO is never served and
never listed.

The booth's **digest** (``docs/record.md``, "The booth") is
``tagged_sha256("booth-assets", JCS(assets))`` over the list of ``{"path", "sha256", "bytes"}`` sorted by
``path`` (docs/protocol.md §4): one value that the ``booth.published`` ledger entry records before voting
opens and that anyone can recompute from what the server serves (``GET /api/v1/election/booth``).
This module reads files only; it imports nothing of the web framework.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from crypto import tagged_sha256
from ledger.record import canonical_json

__all__ = [
    "BOOTH_DIGEST_PURPOSE",
    "CONTENT_TYPES",
    "MAX_ASSETS",
    "MAX_ASSET_BYTES",
    "MAX_DEPTH",
    "PACKAGE_WEB_ROOT",
    "PAGES",
    "Asset",
    "BoothFile",
    "BoothListing",
    "booth_digest",
    "read_page",
    "read_static",
    "served_assets",
]

#: the package's own web root (the built booth, committed as package data)
PACKAGE_WEB_ROOT: Final[Path] = Path(__file__).resolve().parent / "web"

#: page address → file in ``pages/`` (``/vote/oidc-callback`` is the digital-ID redirect target of
#: ``TVOTE_OIDC_REDIRECT_URI``, docs/operator-guide.md). The polling-place kiosk's page is not here: the
#: kiosk device serves it (``tvote-kiosk serve``, the kiosk package's ``web/``, docs/kiosk.md)
PAGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "/": "index.html",
        "/vote": "vote.html",
        "/vote/oidc-callback": "oidc-callback.html",
        "/check": "check.html",
    }
)

_UTF8 = "; charset=utf-8"
#: the file types served from ``static/`` (by suffix, lower case) and their ``Content-Type``; any other
#: suffix is neither served nor listed (with ``X-Content-Type-Options: nosniff`` the type must be right)
CONTENT_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        ".js": "text/javascript" + _UTF8,
        ".mjs": "text/javascript" + _UTF8,
        ".css": "text/css" + _UTF8,
        ".json": "application/json",
        ".map": "application/json",
        ".webmanifest": "application/manifest+json",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".webp": "image/webp",
        ".avif": "image/avif",
        ".ico": "image/vnd.microsoft.icon",
        ".woff2": "font/woff2",
        ".woff": "font/woff",
        ".wasm": "application/wasm",
        ".txt": "text/plain" + _UTF8,
    }
)
_HTML: Final[str] = "text/html" + _UTF8

#: the transcript purpose of the booth digest (docs/protocol.md §4)
BOOTH_DIGEST_PURPOSE: Final[str] = "booth-assets"
#: at most this many files are served (the ``booth.published`` entry lists them all in one 1 MiB entry)
MAX_ASSETS: Final[int] = 2000
#: the largest file served (the booth's bundle is ≤ 150 KB gzipped)
MAX_ASSET_BYTES: Final[int] = 8 * 1024 * 1024
#: the deepest ``static/`` path (segments)
MAX_DEPTH: Final[int] = 6
#: the longest ``static/`` path (characters)
MAX_PATH_CHARS: Final[int] = 200
_SEGMENT: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True, slots=True)
class BoothFile:
    """One served file: its bytes, ``Content-Type`` and SHA-256 (hex)."""

    body: bytes
    content_type: str
    sha256: str


@dataclass(frozen=True, slots=True, order=True)
class Asset:
    """One line of the booth's list: the address it is served at, its SHA-256 (hex) and size."""

    path: str
    sha256: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "bytes": self.bytes}


@dataclass(frozen=True, slots=True)
class BoothListing:
    """What a web root serves: every asset (sorted by address) and their digest."""

    assets: tuple[Asset, ...]
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "assets": [a.to_dict() for a in self.assets]}


def booth_digest(assets: Sequence[Asset]) -> str:
    """``tagged_sha256("booth-assets", JCS([{path, sha256, bytes}, …]))`` (hex), the list sorted by path."""
    listed = [a.to_dict() for a in sorted(assets)]
    return tagged_sha256(BOOTH_DIGEST_PURPOSE, canonical_json(listed)).hex()


def _static_parts(name: str) -> tuple[str, ...] | None:
    """The segments of a ``static/`` path if it is one the booth may serve, else ``None``."""
    if not name or len(name) > MAX_PATH_CHARS:
        return None
    parts = tuple(name.split("/"))
    if len(parts) > MAX_DEPTH or not all(_SEGMENT.fullmatch(p) for p in parts):
        return None
    if _suffix(parts[-1]) not in CONTENT_TYPES:
        return None
    return parts


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _open_under(root: Path, parts: Sequence[str]) -> bytes | None:
    """The bytes of ``root/parts…`` if every folder on the way is a real folder and the file a regular file
    of at most :data:`MAX_ASSET_BYTES` (no symbolic link anywhere below ``root``), else ``None``."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(root, flags | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            nxt = os.open(part, flags | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below)
        ffd = os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        try:
            st = os.fstat(ffd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ASSET_BYTES:
                return None
            with os.fdopen(ffd, "rb", closefd=False) as f:
                data = f.read(MAX_ASSET_BYTES + 1)
            return data if len(data) <= MAX_ASSET_BYTES else None
        finally:
            os.close(ffd)
    except OSError:  # missing, a symbolic link (ELOOP), not a folder (ENOTDIR), unreadable
        return None
    finally:
        os.close(fd)


def read_page(root: Path, address: str) -> BoothFile | None:
    """The page served at ``address`` (a key of :data:`PAGES`), or ``None`` if it is not there."""
    name = PAGES.get(address)
    if name is None:
        return None
    data = _open_under(root, ("pages", name))
    return None if data is None else BoothFile(data, _HTML, hashlib.sha256(data).hexdigest())


def read_static(root: Path, name: str) -> BoothFile | None:
    """The file served at ``/static/<name>``, or ``None`` if there is none the booth may serve."""
    parts = _static_parts(name)
    if parts is None:
        return None
    data = _open_under(root, ("static", *parts))
    if data is None:
        return None
    return BoothFile(data, CONTENT_TYPES[_suffix(parts[-1])], hashlib.sha256(data).hexdigest())


def _walk_static(root: Path, rel: tuple[str, ...], out: list[str]) -> None:
    if len(out) > MAX_ASSETS:
        return
    try:
        with os.scandir(root.joinpath("static", *rel)) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for e in entries:
        if not _SEGMENT.fullmatch(e.name):
            continue
        if e.is_dir(follow_symlinks=False):
            if len(rel) + 1 < MAX_DEPTH:
                _walk_static(root, (*rel, e.name), out)
        elif e.is_file(follow_symlinks=False):
            name = "/".join((*rel, e.name))
            if _static_parts(name) is not None:
                out.append(name)


def served_assets(root: Path) -> BoothListing:
    """Every file ``root`` serves now, hashed, and their digest (:func:`booth_digest`).

    Raises :class:`ValueError` if the web root serves more than :data:`MAX_ASSETS` files."""
    assets: list[Asset] = []
    for address in PAGES:
        page = read_page(root, address)
        if page is not None:
            assets.append(Asset(address, page.sha256, len(page.body)))
    names: list[str] = []
    _walk_static(root, (), names)
    if len(names) + len(assets) > MAX_ASSETS:
        raise ValueError(f"the web root serves more than {MAX_ASSETS} files")
    for name in names:
        f = read_static(root, name)
        if f is not None:  # changed between the listing and the read: what is served is what is listed
            assets.append(Asset(f"/static/{name}", f.sha256, len(f.body)))
    ordered = tuple(sorted(assets))
    return BoothListing(ordered, booth_digest(ordered))
