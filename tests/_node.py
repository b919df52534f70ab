"""Node for the tests of the booth's JavaScript (``web/``): the ``node`` binary, at least the version
``web/package.json`` declares, with ``web/node_modules`` installed from the lock file (``npm ci``, only when
node_modules is missing or older than package-lock.json).

A missing or too old node/npm skips the test, except under ``TVOTE_REQUIRE_ALL=1`` (CI), where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
#: web/package.json's engines.node (the @noble 2.x libraries, WebCrypto and String.isWellFormed need it)
MIN_NODE = (20, 19)


def unavailable(why: str) -> None:
    if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
        pytest.fail(f"node/npm required (TVOTE_REQUIRE_ALL=1): {why}")
    pytest.skip(why)


def web_node() -> str:
    """Path of a recent enough ``node``, with web/node_modules installed (skips or fails otherwise)."""
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        unavailable("node and npm are not installed")
    assert node_bin is not None and npm_bin is not None
    version = subprocess.run([node_bin, "--version"], capture_output=True, text=True, timeout=30).stdout
    found = re.match(r"v(\d+)\.(\d+)", version)
    if found is None or (int(found[1]), int(found[2])) < MIN_NODE:
        unavailable(f"node {version.strip()} is older than {'.'.join(map(str, MIN_NODE))} (web/package.json)")
    marker = WEB / "node_modules" / ".package-lock.json"  # written by npm on every install
    if not marker.exists() or marker.stat().st_mtime < (WEB / "package-lock.json").stat().st_mtime:
        done = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund"], cwd=WEB, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            unavailable(f"npm ci failed in web/:\n{done.stdout}\n{done.stderr}")
    return node_bin
