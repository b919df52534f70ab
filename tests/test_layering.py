"""The package layering rules, checked on the source (AST) and at import time.

crypto/   pure: imports no other tvote package, no web/database code and no I/O modules
ledger/   builds on crypto/ only (never voting, verifier, kiosk or fastapi)
verifier/ reads the record: never voting, kiosk, FastAPI, SQLModel, SQLAlchemy or uvicorn
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "crypto": {"ledger", "voting", "verifier", "kiosk", "fastapi", "sqlmodel", "sqlalchemy", "uvicorn",
               "httpx", "socket", "subprocess", "requests", "psycopg"},
    "ledger": {"voting", "verifier", "kiosk", "fastapi"},
    "verifier": {"voting", "kiosk", "fastapi", "sqlmodel", "sqlalchemy", "uvicorn"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_source_imports_respect_layers(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        hit = _imports(path) & FORBIDDEN[package]
        if hit:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(hit)}")
    assert not bad, "layering violated:\n" + "\n".join(bad)


def test_crypto_import_loads_no_server_or_io_modules() -> None:
    code = (
        "import sys, crypto, crypto.hazmat\n"
        "mods = ('fastapi', 'sqlmodel', 'sqlalchemy', 'uvicorn', 'httpx', 'ledger', 'voting')\n"
        "bad = [m for m in mods if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_the_voter_client_loads_no_server_code() -> None:
    """Clients depend on the API's data shapes only (``voting.receipt``), never on the server: importing
    ``voting.client`` loads no web framework, no database layer, no intake and no authentication verifier."""
    code = (
        "import sys, voting.client\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'sqlmodel', 'sqlalchemy', "
        "'uvicorn') or m.startswith(('voting._intake', 'voting._db', 'voting._election', 'voting.auth', "
        "'voting.api', 'voting.app')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""
