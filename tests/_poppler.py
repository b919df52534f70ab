"""Poppler's command-line tools for the result-PDF tests: ``pdffonts`` (are the fonts embedded?),
``pdftoppm`` (render page 1) and ``pdftotext`` (an independent text extractor). Debian: ``poppler-utils``.

A missing tool skips the test, except under ``TVOTE_REQUIRE_ALL=1`` (CI, ``.ci/run`` installs it), where it
fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["poppler", "render_without_system_fonts"]


def poppler(tool: str) -> str:
    """The path of poppler's ``tool`` (skips, or fails under ``TVOTE_REQUIRE_ALL=1``, when it is missing)."""
    path = shutil.which(tool)
    if path is None:
        why = f"{tool} is not installed (Debian: poppler-utils)"
        if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
            pytest.fail(f"required (TVOTE_REQUIRE_ALL=1): {why}")
        pytest.skip(why)
    return path


#: a fontconfig configuration with no font directory: the renderer sees no font of the machine
_NO_FONTS = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig><cachedir>{cache}</cachedir></fontconfig>
"""


def render_without_system_fonts(
    pdf: Path, out_prefix: Path, *, dpi: int = 60
) -> subprocess.CompletedProcess[str]:
    """Render page 1 of ``pdf`` to ``<out_prefix>-1.png`` with ``pdftoppm`` on a machine that has no fonts as
    far as poppler can tell (``FONTCONFIG_FILE`` names a configuration without font directories)."""
    conf = out_prefix.parent / "no-fonts.conf"
    conf.write_text(_NO_FONTS.format(cache=out_prefix.parent / "fc-cache"), encoding="utf-8")
    env = {**os.environ, "FONTCONFIG_FILE": str(conf)}
    env.pop("FONTCONFIG_PATH", None)
    return subprocess.run(
        [poppler("pdftoppm"), "-r", str(dpi), "-png", "-f", "1", "-l", "1", str(pdf), str(out_prefix)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
