"""Fixtures of the booth's browser tests: Debian's Chromium under Playwright, and the booth site.

Chromium: Playwright drives the system's ``/usr/bin/chromium`` (``executable_path``; never ``playwright
install``). Without it the tests skip, unless ``TVOTE_REQUIRE_ALL=1`` (CI), where they fail.

The site: a real election server (``election``: ``voting.testing.start_election``, the server ``tvote serve``
runs, an open election on loopback, the demo's three-contest manifest, the Digital Authentication App
emulator and a development digital-ID provider), which serves the built booth (``voting/web/``) with its
real headers: ``booth`` and ``built_booth`` are its address. ``booth_sources`` puts a tiny server
(``_booth_site.serve_booth``) in front of it that serves the unbundled sources (``web/pages/``,
``web/src/booth/``) under the same Content-Security-Policy. ``witnessed_booth`` is another election whose
manifest names three witnesses; ``counted_election`` another one, with witnesses, the app emulator and the
digital-ID provider, that a test may close, tally and export (``_booth_site.count_and_verify``).

axe-core: ``axe_source`` reads ``axe.min.js`` from the npm package pinned in ``web/package.json`` (a dev
dependency; ``_node.web_node`` runs ``npm ci`` when web/node_modules is missing or older than the lock).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _booth_site import BUILT_STATIC, CHROMIUM, CHROMIUM_ARGS, BoothSite, serve_booth
from _node import WEB, web_node


def unavailable(why: str) -> None:
    if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
        pytest.fail(f"required (TVOTE_REQUIRE_ALL=1): {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch arguments, pointed at Debian's Chromium."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is not installed (Debian package chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": CHROMIUM_ARGS,
        "headless": True,
    }


@pytest.fixture(scope="session")
def axe_source() -> str:
    """The text of axe-core's axe.min.js (npm, a dev dependency pinned in web/package-lock.json)."""
    web_node()  # web/node_modules from the lock (skips, or fails under TVOTE_REQUIRE_ALL=1, without npm)
    return (WEB / "node_modules" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def election(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An open election (the demo's three contests) on a real server (``voting.testing.DemoElection``), with
    the Digital Authentication App emulator (every card inserted) and a development digital-ID provider that
    signs in the third resident."""
    from voting.testing import JpkiTestCa, RsaKeyPool, make_residents, start_election, tsukuba_manifest

    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(3, ca, now, pool=RsaKeyPool(3))
    manifest = tsukuba_manifest(now, trustees=1, threshold=1)
    with start_election(
        tmp_path_factory.mktemp("booth"),
        residents,
        ca,
        manifest,
        signing_app=True,
        oidc_residents=residents[2:],
    ) as e:
        yield e


def _manifest(base_url: str) -> dict[str, Any]:
    return dict(httpx.get(base_url + "/api/v1/election/manifest", timeout=30).json()["manifest"])


@pytest.fixture(scope="module")
def booth(election: Any) -> BoothSite:
    """The booth as the election's own server serves it (``voting/web/``, the real headers)."""
    return BoothSite(election.base_url, _manifest(election.base_url))


@pytest.fixture(scope="module")
def booth_sources(election: Any) -> Iterator[BoothSite]:
    """The booth's sources, unbundled (``web/pages``, ``web/src/booth``), in front of the election: what a
    developer sees before ``make web``."""
    with serve_booth(election.base_url) as url:
        yield BoothSite(url, _manifest(election.base_url))


@pytest.fixture(scope="module")
def built_booth(election: Any) -> BoothSite:
    """The built booth (``make web`` → ``voting/web/``, with the protocol library), served by the election's
    server; what the flows that encrypt need."""
    if not (BUILT_STATIC.parent / "assets.json").exists():
        unavailable("the booth is not built (make web writes voting/web/assets.json)")
    return BoothSite(election.base_url, _manifest(election.base_url))


@pytest.fixture(scope="module")
def witnessed_booth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BoothSite, Any]]:
    """The built booth in front of an election whose manifest names the demo's three witnesses (quorum 2),
    with the app emulator; yields the site and the election (``election.cosign()`` runs a witness round)."""
    from voting.testing import (
        DEMO_WITNESSES,
        JpkiTestCa,
        RsaKeyPool,
        make_residents,
        start_election,
        tsukuba_manifest,
    )

    if not (BUILT_STATIC.parent / "assets.json").exists():
        unavailable("the booth is not built (make web writes voting/web/assets.json)")
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(1, ca, now, pool=RsaKeyPool(1))
    manifest = tsukuba_manifest(now, trustees=1, threshold=1)
    with start_election(
        tmp_path_factory.mktemp("witnessed"),
        residents,
        ca,
        manifest,
        signing_app=True,
        witnesses=DEMO_WITNESSES,
    ) as e:
        yield BoothSite(e.base_url, _manifest(e.base_url)), e


@pytest.fixture
def counted_election(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BoothSite, Any]]:
    """The built booth in front of an election of its own (one test's: the test closes it and counts), with
    the demo's three witnesses, the Digital Authentication App emulator and the development digital-ID
    provider (the third resident signs in with a digital ID; the face engine is the demo's test engine)."""
    from voting.testing import (
        DEMO_WITNESSES,
        JpkiTestCa,
        RsaKeyPool,
        make_residents,
        start_election,
        tsukuba_manifest,
    )

    if not (BUILT_STATIC.parent / "assets.json").exists():
        unavailable("the booth is not built (make web writes voting/web/assets.json)")
    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    residents = make_residents(3, ca, now, pool=RsaKeyPool(3))
    manifest = tsukuba_manifest(now, trustees=1, threshold=1)
    with start_election(
        tmp_path_factory.mktemp("counted"),
        residents,
        ca,
        manifest,
        signing_app=True,
        oidc_residents=residents[2:],
        witnesses=DEMO_WITNESSES,
    ) as e:
        yield BoothSite(e.base_url, _manifest(e.base_url)), e
