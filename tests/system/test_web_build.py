"""The booth's built assets (``voting/web/``) and the polling-place kiosk's (``kiosk/web/``) are exactly what
``web/build.mjs`` makes from the committed sources, fit the size budget, are described by ``assets.json`` and
ship in the wheel.

``make web`` (npm ci + build) writes them; they are committed so that ``pip install`` needs no Node. Here
the build runs again into a temporary directory and every file must be byte-identical with the committed
one (a source changed without a rebuild, or a build that is not deterministic, fails). Without node/npm
the rebuild test skips, unless ``TVOTE_REQUIRE_ALL=1`` (CI), where it fails; the other checks need no Node.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from _node import web_node

pytestmark = pytest.mark.xdist_group("interop")

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
BUILT = ROOT / "voting" / "web"
#: the kiosk's page (web/pages/kiosk.html, web/src/kiosk/), served by ``tvote-kiosk serve``
KIOSK_BUILT = ROOT / "kiosk" / "web"
BUILDS = {"voting": BUILT, "kiosk": KIOSK_BUILT}
#: the booth's JavaScript, gzipped, at most (issue 13: a phone on a slow connection)
GZIP_BUDGET = 150 * 1024


def _files(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != "__pycache__"
    }


def test_a_fresh_build_equals_the_committed_assets(tmp_path: Path) -> None:
    node = web_node()
    out, kiosk_out = tmp_path / "web", tmp_path / "kiosk-web"
    done = subprocess.run(
        [node, str(WEB / "build.mjs"), "--out", str(out), "--kiosk-out", str(kiosk_out)],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for package, fresh_dir in (("voting", out), ("kiosk", kiosk_out)):
        fresh, committed = _files(fresh_dir), _files(BUILDS[package])
        assert sorted(fresh) == sorted(committed), f"run `make web` and commit {package}/web/"
        changed = [path for path in fresh if fresh[path] != committed[path]]
        assert not changed, f"{package}/web/ is out of date with web/ (run `make web`): {changed}"


def test_the_kiosk_page_is_the_kiosks_alone() -> None:
    """The election server never serves the kiosk's page; the kiosk package has it and what it loads."""
    assert not (BUILT / "pages" / "kiosk.html").exists()
    assert sorted(p.name for p in (KIOSK_BUILT / "pages").iterdir()) == ["kiosk.html"]
    assert {"kiosk.js", "kiosk.css", "tvote-protocol.js", "encrypt-worker.js"} <= {
        p.name for p in (KIOSK_BUILT / "static").iterdir()
    }


@pytest.mark.parametrize("package", sorted(BUILDS))
def test_assets_json_describes_every_built_file(package: str) -> None:
    built = BUILDS[package]
    assets = json.loads((built / "assets.json").read_text(encoding="utf-8"))
    files = {p: b for p, b in _files(built).items() if p != "assets.json"}
    assert sorted(assets) == sorted(files)
    assert {"static/tvote-protocol.js", "static/encrypt-worker.js"} <= set(assets)
    for path, data in files.items():
        assert assets[path] == {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "sha384": base64.b64encode(hashlib.sha384(data).digest()).decode(),
        }, path


def test_the_javascript_fits_the_size_budget() -> None:
    scripts = sorted((BUILT / "static").glob("*.js"))
    assert scripts
    total = sum(len(gzip.compress(p.read_bytes(), compresslevel=9)) for p in scripts)
    assert total <= GZIP_BUDGET, f"{total} bytes of gzipped JavaScript, budget {GZIP_BUDGET}"


@pytest.mark.parametrize("package", sorted(BUILDS))
def test_pages_carry_their_subresource_integrity(package: str) -> None:
    """Every /static/ script or style a built page names carries the built file's SRI value."""
    built = BUILDS[package]
    assets = json.loads((built / "assets.json").read_text(encoding="utf-8"))
    for page in sorted((built / "pages").glob("*.html")) if (built / "pages").exists() else []:
        html = page.read_text(encoding="utf-8")
        assert "sha384-BUILD" not in html, page
        for path, a in assets.items():
            if f'"/{path}"' in html and path.endswith((".js", ".css")):
                assert f"sha384-{a['sha384']}" in html, (page, path)


def test_the_wheel_ships_the_built_assets(tmp_path: Path) -> None:
    """``pip wheel`` of a clean copy of the sources (not the work tree's stale ``build/``) ships them."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("crypto", "ledger", "verifier", "voting", "kiosk"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copyfile(ROOT / name, src / name)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            ".",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=src,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = tmp_path.glob("tvote-*.whl")
    with zipfile.ZipFile(wheel) as z:
        for package, built in BUILDS.items():
            prefix = f"{package}/web/"
            shipped = {n.removeprefix(prefix): z.read(n) for n in z.namelist() if n.startswith(prefix)}
            assert shipped == _files(built), package
