"""``tools/booth_screenshots.py``, the generator of the booth's screenshots in ``docs/voting.md``: it runs
(a real election, Debian's Chromium) and writes one PNG per step, each 390 CSS px wide, and the docs show
exactly those steps, so the docs and the generator cannot drift apart. The pixels are not compared
(tracking codes, QR codes and dates differ from run to run)."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _tools import load_tool

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "voting.md"
IMAGES = ROOT / "docs" / "images" / "booth"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (the first, right after the signature)."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def _shown_in_the_docs() -> list[str]:
    return re.findall(r"\]\(images/booth/([^)\s]+)\)", DOC.read_text(encoding="utf-8"))


def test_the_docs_show_every_shot_and_only_those() -> None:
    """Cheap, no browser: docs/voting.md shows each shot of the generator once, and docs/images/booth/ holds
    exactly those files."""
    shots = [name for name, _ in load_tool("booth_screenshots").SHOTS]
    shown = _shown_in_the_docs()
    assert sorted(shown) == sorted(shots), "docs/voting.md and tools/booth_screenshots.py SHOTS differ"
    assert sorted(p.name for p in IMAGES.iterdir()) == sorted(shots)


@pytest.mark.slow
@pytest.mark.xdist_group("browser")
def test_the_generator_writes_every_shot(tmp_path: Path, browser_type_launch_args: dict[str, Any]) -> None:
    """The generator, run as documented into a directory of its own, writes every shot the docs show: PNGs
    390 px wide (a phone; device scale factor 1), taller where the page is (full page)."""
    # browser_type_launch_args (tests/web/conftest.py) skips, or fails under TVOTE_REQUIRE_ALL=1, without
    # Debian's Chromium
    tool = load_tool("booth_screenshots")
    if not tool.japanese_font():
        if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
            pytest.fail("required (TVOTE_REQUIRE_ALL=1): a Japanese font (Debian: fonts-noto-cjk)")
        pytest.skip("no Japanese font (Debian: fonts-noto-cjk)")
    out = tmp_path / "shots"
    out.mkdir()
    (out / "0-stale-ja.png").write_bytes(PNG_SIGNATURE)  # a step that no longer exists: deleted
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "booth_screenshots.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(_shown_in_the_docs()), written
    for name in written:
        width, height = _png_size(out / name)
        assert width == tool.WIDTH == 390, (name, width)
        assert height >= tool.HEIGHT, (name, height)  # at least the viewport: a full-page shot
