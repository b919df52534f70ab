"""Every document the code and the docs point to exists (issue 12, point 6: references to the trustee
protocol outlived its move into Part II of docs/protocol.md).

Checked in the repository's .py, .md and .mjs files: each ``docs/<name>.md`` path, each relative Markdown
link to a ``.md`` file, and each ``§T<n>`` section of the trustee protocol (a heading of docs/protocol.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_SKIP_DIRS = {"node_modules", "build", "dist", "demo-out", "sbom", "__pycache__"}
_DOC_PATH = re.compile(r"(?<![\w./-])docs/[\w./-]*?\.md\b")
_MD_LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)#\s]+\.md)(?:#[^)]*)?\)")
_T_SECTION = re.compile(r"§T(\d+(?:\.\d+)?)")
_T_HEADING = re.compile(r"^#{2,6} T(\d+(?:\.\d+)?)[. ]", re.MULTILINE)


def _sources() -> Iterator[Path]:
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
        for name in sorted(files):
            if name.endswith((".py", ".md", ".mjs")):
                yield Path(top) / name


def _where(path: Path, text: str, pos: int) -> str:
    return f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, pos) + 1}"


def test_the_scan_sees_the_docs() -> None:
    """Guard the scanner itself: it reads docs/ and finds references there."""
    seen = {p.relative_to(ROOT).as_posix() for p in _sources()}
    assert {"docs/protocol.md", "README.md", "crypto/_dkg.py"} <= seen


def test_referenced_docs_exist() -> None:
    missing, found = [], 0
    for path in _sources():
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in _DOC_PATH.finditer(text):
            found += 1
            if not (ROOT / m.group(0)).is_file():
                missing.append(f"{_where(path, text, m.start())}: {m.group(0)}")
        if path.suffix == ".md":
            for m in _MD_LINK.finditer(text):
                found += 1
                if not (path.parent / m.group(1)).is_file():
                    missing.append(f"{_where(path, text, m.start())}: link to {m.group(1)}")
    assert found > 50
    assert not missing, "references to documents that do not exist:\n" + "\n".join(missing)


def test_trustee_sections_exist() -> None:
    """``§T3.5`` and the like name sections of Part II of docs/protocol.md (formerly protocol-trustees.md
    §3.5)."""
    sections = set(_T_HEADING.findall((ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")))
    assert {"1", "2.1", "3", "3.5", "4.4", "6"} <= sections
    missing = []
    for path in _sources():
        text = path.read_text(encoding="utf-8", errors="replace")
        missing += [
            f"{_where(path, text, m.start())}: §T{m.group(1)}"
            for m in _T_SECTION.finditer(text)
            if m.group(1) not in sections
        ]
    assert not missing, "trustee sections that docs/protocol.md does not have:\n" + "\n".join(missing)
