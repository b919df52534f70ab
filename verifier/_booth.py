"""V29 booth.published: the digest of the residents' booth is on the record before voting opens.

The check is the verifier's own (it shares the event's name with the service through ``ledger.events`` and
the hash and JSON canonicalisation with everyone through ``crypto`` and ``ledger.record``, nothing else): the
entry is exactly ``{assets, digest}``, each asset exactly ``{path, sha256, bytes}``, the paths addresses in
strictly increasing order, and ``digest = tagged_sha256("booth-assets", JCS(assets))``. Its position: once
(V8), never after ``voting.opened`` (V8), and present before ``voting.opened`` in every record that opens
voting (here). A record that has not opened voting and has no booth yet reports V29 n/a.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Final

from crypto import tagged_sha256
from ledger.events import EventType
from ledger.record import canonical_json

from ._checks import fail
from ._lang import text
from ._report import Report
from ._state import BOUND, HEX64, Event, State

__all__ = ["EVENTS", "booth_required"]

#: an address the booth serves: ``/``, a page (``/vote``), or a file (``/static/…``); no segment starts with a
#: dot (so no ``.`` or ``..``) and none is empty
_SEG = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
_ADDRESS: Final[re.Pattern[str]] = re.compile(rf"/(?:{_SEG}(?:/{_SEG})*)?")
_MAX_ADDRESS: Final[int] = 256
_ASSET_KEYS: Final[frozenset[str]] = frozenset({"path", "sha256", "bytes"})


def _asset_ok(a: Any) -> bool:
    if not isinstance(a, dict) or set(a) != _ASSET_KEYS:
        return False
    path, digest, size = a["path"], a["sha256"], a["bytes"]
    return (
        isinstance(path, str)
        and len(path) <= _MAX_ADDRESS
        and _ADDRESS.fullmatch(path) is not None
        and isinstance(digest, str)
        and HEX64.fullmatch(digest) is not None
        and isinstance(size, int)
        and not isinstance(size, bool)
        and size >= 0
    )


def booth_published(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    # V29 booth.published: "exactly {assets, digest}; every asset exactly {path, sha256, bytes} ...; paths
    # in strictly increasing order; digest = tagged_sha256("booth-assets", JCS(assets))"
    assets, digest = p.get("assets"), p.get("digest")
    if set(p) != BOUND | {"assets", "digest"} or not isinstance(assets, list):
        fail("booth.published", "booth.published is exactly {assets (a list), digest}", entry=i)
    bad = next((n for n, a in enumerate(assets) if not _asset_ok(a)), None)
    if bad is not None:
        fail(
            "booth.published",
            f"assets[{bad}] is not exactly {{path (an address), sha256 (64 lowercase hex), bytes (>= 0)}}",
            entry=i,
        )
    paths = [a["path"] for a in assets]
    if any(a >= b for a, b in itertools.pairwise(paths)):
        fail("booth.published", "the assets are not in strictly increasing order of path", entry=i)
    if not isinstance(digest, str) or not HEX64.fullmatch(digest):
        fail("booth.published", "digest is not 64 lowercase hex", entry=i)
    recomputed = tagged_sha256("booth-assets", canonical_json(assets)).hex()
    if digest != recomputed:
        fail("booth.published", f"digest {digest} is not the listed assets' digest {recomputed}", entry=i)
    st.booth_digest, st.booth_entry = digest, i
    report.booth_digest, report.booth_entry = digest, i
    report.passed("booth.published")


def booth_required(report: Report, st: State) -> None:
    """V29: "... present before voting.opened in every record that opens voting"."""
    if st.opened_entry is None:
        if st.booth_entry is None and not any(f.step == 29 for f in report.failures):
            report.not_applicable("booth.published", text("why.no-booth-yet"))
        return
    if st.booth_entry is None:
        if not any(f.step == 29 for f in report.failures):
            why = "voting opened without a booth.published entry before it"
            report.fail("booth.published", why, entry=st.opened_entry)
    elif st.booth_entry > st.opened_entry:
        report.fail("booth.published", "the booth was published after voting opened", entry=st.booth_entry)


EVENTS: Final[dict[str, Event]] = {EventType.BOOTH_PUBLISHED: Event("booth.published", booth_published)}
