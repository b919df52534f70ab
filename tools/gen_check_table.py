"""Write the check table of ``docs/verifier.md`` from :data:`verifier._checks.CHECKS` (the one list).

``python tools/gen_check_table.py`` rewrites the table between its markers; with ``--check`` it only exits
with status 1 if the docs differ (what the test suite checks).
"""

from __future__ import annotations

import sys
from pathlib import Path

from verifier import markdown_check_table

DOC = Path(__file__).resolve().parent.parent / "docs" / "verifier.md"
BEGIN = (
    "<!-- generated from verifier/_checks.py (CHECKS) by tools/gen_check_table.py; edit there, not here -->\n"
)
END = "<!-- end of the generated table -->\n"


def render(doc: str) -> str:
    """``doc`` with the text between the markers replaced by the generated table."""
    start, stop = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    return doc[:start] + markdown_check_table() + doc[stop:]


def main(argv: list[str]) -> int:
    doc = DOC.read_text(encoding="utf-8")
    new = render(doc)
    if "--check" in argv:
        if new != doc:
            print(f"{DOC} is not the table generated from verifier/_checks.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
