"""Load a script from ``tools/`` as a module (the vector generators are scripts, not package modules), and
read a JSON vector file bounded (:func:`read_json`)."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from ledger.record import parse_json

ROOT = Path(__file__).resolve().parent.parent
#: vector files are data from the repository, but still bounded before parsing (size and nesting)
MAX_VECTOR_BYTES = 16 << 20


def read_json(path: Path) -> Any:
    """A JSON (vector) file through ``ledger.record.parse_json``: size and nesting bounded before the
    decoder runs, duplicate keys and floats refused."""
    return parse_json(Path(path).read_bytes(), max_bytes=MAX_VECTOR_BYTES)


@cache
def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` imported once per test session."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
