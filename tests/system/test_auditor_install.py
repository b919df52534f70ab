"""An auditor installs tvote without extras (no FastAPI, SQLModel or server code) and can run the whole
verifier, the result-PDF check included. Regression: the PDF check once needed packages that only the
server extras brought in, and `tvote-verify` died with an internal error on a core install."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower().replace("_", "-")


def _core_closure() -> set[str]:
    """The core dependencies of pyproject.toml and, transitively, everything they require (no extras)."""
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    todo, seen = [_name(r) for r in core], set()
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            reqs = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:  # conditional on another Python version: not installed here
            continue
        for req in reqs:
            if "extra ==" not in req:
                todo.append(_name(req))
    return seen


def test_verifier_needs_only_the_core_dependencies() -> None:
    def top_modules(imports: str) -> set[str]:
        show = "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
        code = f"import json, sys\n{imports}\n{show}"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        )
        return set(json.loads(out.stdout))

    # what the interpreter loads before any tvote import (site hooks such as setuptools' .pth) is not ours
    loaded = top_modules("import verifier.cli, verifier._pdf, verifier._engine") - top_modules("")
    by_module = metadata.packages_distributions()
    ours = {"crypto", "ledger", "verifier", "voting", "kiosk"}
    third_party = {m for m in loaded if m in by_module and m not in ours and m not in sys.stdlib_module_names}
    needed = {_name(d) for m in third_party for d in by_module[m]}
    missing = needed - _core_closure()
    assert not missing, f"the verifier imports packages that a core install lacks: {sorted(missing)}"
    assert not {"fastapi", "sqlmodel", "sqlalchemy", "uvicorn"} & needed
