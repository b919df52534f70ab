"""No production module over about 500 lines unless its docstring says why (issue 12, "Smaller").

The reason is a paragraph of the module docstring that starts with ``Length:``; tools/, bench/ and tests/
are not production code and are not measured here.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("crypto", "ledger", "verifier", "voting", "kiosk")
MAX_LINES = 500


def _long_modules() -> dict[str, int]:
    out: dict[str, int] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES:
                out[str(path.relative_to(ROOT))] = n
    return out


def _says_why(path: Path) -> bool:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return any(paragraph.startswith("Length:") for paragraph in doc.split("\n\n"))


def test_long_modules_say_why() -> None:
    unexplained = {m: n for m, n in _long_modules().items() if not _says_why(ROOT / m)}
    assert not unexplained, f"over {MAX_LINES} lines, no 'Length:' paragraph in the docstring: {unexplained}"


def test_the_rule_sees_long_modules(tmp_path: Path) -> None:
    """The detector itself: a long module without the paragraph is caught, with it is accepted."""
    body = "\n".join(f"x{i} = {i}" for i in range(MAX_LINES + 1))
    bare = tmp_path / "bare.py"
    bare.write_text(f'"""A module."""\n{body}\n', encoding="utf-8")
    said = tmp_path / "said.py"
    said.write_text(f'"""A module.\n\nLength: one table of constants.\n"""\n{body}\n', encoding="utf-8")
    assert not _says_why(bare)
    assert _says_why(said)
