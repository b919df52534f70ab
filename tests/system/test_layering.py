"""The package layering rules, checked on the source (AST) and at import time.

crypto/   pure: imports no other tvote package, no web/database code and no I/O modules
ledger/   builds on crypto/ only (never voting, verifier, kiosk or fastapi)
verifier/ reads the record: never voting, kiosk, FastAPI, SQLModel, SQLAlchemy or uvicorn

And public surfaces are real: no non-test file (the packages, tools/, bench/) imports another package's
private module or name (``from crypto._group import ...``, ``import ledger._check``, ``from crypto import
_reference``, ``importlib.import_module("crypto._dlog")``); within a package, private imports are its own
business. The only exceptions are benchmarks that measure a package's internals, each listed with its
reason in :data:`PRIVATE_IMPORT_EXCEPTIONS`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "crypto": {
        "ledger",
        "voting",
        "verifier",
        "kiosk",
        "fastapi",
        "sqlmodel",
        "sqlalchemy",
        "uvicorn",
        "httpx",
        "socket",
        "subprocess",
        "requests",
        "psycopg",
    },
    "ledger": {"voting", "verifier", "kiosk", "fastapi"},
    "verifier": {"voting", "kiosk", "fastapi", "sqlmodel", "sqlalchemy", "uvicorn"},
}


#: The tvote packages, and every folder of non-test Python code (tests/ may import anything).
PACKAGES = ("crypto", "ledger", "verifier", "voting", "kiosk")
SOURCE_DIRS = (*PACKAGES, "tools", "bench")

#: (file, private module of another package) -> why. Benchmarks of internals only: never a tool or a package.
PRIVATE_IMPORT_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("bench/bench_crypto.py", "crypto._group"): "counts the group's libsodium calls (also on v1)",
    ("bench/bench_crypto.py", "crypto._dlog"): "counts discrete_log's calls, clears its cache",
    ("bench/bench_verifier.py", "verifier._ballots"): "times the verifier's per-ballot pass (V12-V14) alone",
    ("bench/bench_verifier.py", "verifier._manifest"): "reads the manifest that pass needs",
}


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _private_imports(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every absolute import of a tvote module or name with a private part:
    ``import a._x``, ``from a._x import y``, ``from a import _x``, ``importlib.import_module("a._x")``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]  # and, when the module is public, each name imported from it
            if not any(_is_private(p) for p in node.module.split(".")[1:]):
                names += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        for name in names:
            top, *rest = name.split(".")
            if top in PACKAGES and any(_is_private(p) for p in rest):
                found.append((node.lineno, name))
    return found


def _private_module(name: str) -> str:
    """``crypto._group.Scalar`` -> ``crypto._group``: the name up to its first private part."""
    parts = name.split(".")
    end = next(i for i, p in enumerate(parts) if i and _is_private(p))
    return ".".join(parts[: end + 1])


def _cross_package_private_imports() -> list[tuple[str, int, str]]:
    """``(file, line, name)`` of every import of another package's private module or name, outside tests."""
    out = []
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for line, name in _private_imports(path.read_text(encoding="utf-8"), rel):
                if name.split(".")[0] != folder:  # tools/ and bench/ are no package: every one counts
                    out.append((rel, line, name))
    return out


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import crypto._group", ["crypto._group"]),
        ("import crypto._group as g", ["crypto._group"]),
        ("from crypto._group import Scalar", ["crypto._group"]),
        ("from crypto import _reference as ref", ["crypto._reference"]),
        ("from ledger.record import _private_name", ["ledger.record._private_name"]),
        ("def f():\n    from voting._testca import JpkiTestCa", ["voting._testca"]),
        ("import importlib\nm = importlib.import_module('crypto._dlog')", ["crypto._dlog"]),
        ("m = __import__('ledger._check')", ["ledger._check"]),
        ("from crypto import Scalar\nfrom crypto.hazmat import G\nimport ledger.merkle", []),
        ("from ._group import Scalar\nfrom . import _sodium", []),  # relative: the package's own
        ("from _vectors_common import Recorder\nimport _pg", []),  # not a tvote package
        ("from crypto import __doc__", []),
    ],
)
def test_private_import_detector(source: str, expected: list[str]) -> None:
    assert [name for _, name in _private_imports(source)] == expected


def test_no_cross_package_private_imports() -> None:
    """Cross-package imports go through the public modules (crypto, crypto.hazmat, ledger, ledger.merkle,
    ledger.record, verifier, voting.clients.voter, voting.testing, ...), outside tests."""
    bad = [
        f"{rel}:{line} imports {name}"
        for rel, line, name in _cross_package_private_imports()
        if (rel, _private_module(name)) not in PRIVATE_IMPORT_EXCEPTIONS
    ]
    assert not bad, "private module of another package imported:\n" + "\n".join(bad)


def test_private_import_exceptions_are_benchmarks_still_needed() -> None:
    used = {(rel, _private_module(name)) for rel, _, name in _cross_package_private_imports()}
    for rel, module in PRIVATE_IMPORT_EXCEPTIONS:
        assert rel.startswith("bench/"), f"{rel}: only benchmarks of internals may be excepted"
        assert (rel, module) in used, f"{rel} no longer imports {module}: remove the exception"


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


def test_the_record_format_never_imports_the_running_log() -> None:
    """``ledger.record`` (and ``ledger.events``, ``ledger.merkle``, ``ledger.files``) are pure: only
    ``ledger.log`` holds storage, the sequencer and the witness; the arrow points from log to record."""
    pure = [*(ROOT / "ledger" / "record").rglob("*.py"), *(ROOT / "ledger").glob("[emf]*.py")]
    bad = []
    for path in sorted(pure):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            mods: list[str] = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [("." * node.level) + (node.module or "")]
                mods += [f"{mods[0]}.{a.name}" for a in node.names]
            for m in mods:
                if m.startswith("ledger.log") or (m.startswith(".") and m.lstrip(".").startswith("log")):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {m}")
    assert pure and not bad, bad


def test_crypto_import_loads_no_server_or_io_modules() -> None:
    code = (
        "import sys, crypto, crypto.hazmat\n"
        "mods = ('fastapi', 'sqlmodel', 'sqlalchemy', 'uvicorn', 'httpx', 'ledger', 'voting')\n"
        "bad = [m for m in mods if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


#: what a client must never load: the web framework, the database layer, the server's modules, the
#: authentication verifiers (the server's side of a login) and the test scaffolding
CLIENT_FORBIDDEN = (
    "('fastapi', 'sqlmodel', 'sqlalchemy', 'uvicorn', 'starlette', 'authlib')",
    "('voting._intake', 'voting._db', 'voting._startup', 'voting._settings', "
    "'voting.service', 'voting.auth', 'voting.api', 'voting.app', 'voting.testing')",
)


@pytest.mark.parametrize("client", ["voting.clients.voter", "voting.clients.trustee", "voting.clients.kiosk"])
def test_the_clients_load_no_server_code(client: str) -> None:
    """Clients depend on the API's data shapes only (``voting.receipt``, the record format), never on the
    server: importing a client loads no web framework, no database layer, no service, no intake, no
    authentication verifier and no test scaffolding. (The trustee client loads ``crypto`` and
    ``ledger.record``: a trustee computes its key share and checks the ledger itself.)"""
    top, prefixes = CLIENT_FORBIDDEN
    code = (
        f"import sys, {client}\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {top} or m.startswith({prefixes}))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


# ------------------------------------------------------------------------------------ test scaffolding

#: (file, function) -> why: the only places outside tests/, tools/ and bench/ that import voting.testing,
#: each inside the function (never at module level), so that ``import voting.cli`` does not load it
TESTING_IMPORTERS: dict[tuple[str, str], str] = {
    ("voting/_cli_demo.py", "demo"): "`tvote demo` runs the demo election (test CAs, synthetic residents)",
    ("voting/_cli_rehearsal.py", "init"): "`tvote rehearsal init` writes the rehearsal kit (test CA, cards)",
    ("voting/_cli_rehearsal.py", "vote"): "`tvote rehearsal vote` signs with a kit card",
    ("voting/_cli_rehearsal.py", "_digital_id_resident"): "`tvote rehearsal vote --digital-id`'s login",
    ("voting/_cli_rehearsal.py", "oidc"): "`tvote rehearsal oidc` runs the kit's development OpenID provider",
}


def _testing_imports(source: str, filename: str, package: str) -> list[tuple[int, str | None]]:
    """``(line, enclosing top-level function or None)`` of every import of ``voting.testing`` (absolute,
    ``from voting import testing``, or relative from inside ``package``)."""

    def imports_testing(node: ast.AST) -> bool:
        if isinstance(node, ast.Import):
            return any(a.name == "voting.testing" or a.name.startswith("voting.testing.") for a in node.names)
        if isinstance(node, ast.ImportFrom):
            if node.level:  # resolve ``from .testing import x`` / ``from . import testing`` inside voting/
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module == "voting.testing" or module.startswith("voting.testing."):
                return True
            return module == "voting" and any(a.name == "testing" for a in node.names)
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            value = node.args[0].value
            return isinstance(value, str) and (
                value == "voting.testing" or value.startswith("voting.testing.")
            )
        return False

    found: list[tuple[int, str | None]] = []
    tree = ast.parse(source, filename=filename)
    for top in tree.body:
        owner = top.name if isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef) else None
        for node in ast.walk(top):
            if imports_testing(node):
                found.append((node.lineno, owner))
    return found


@pytest.mark.parametrize(
    ("source", "package", "expected"),
    [
        ("import voting.testing", "voting", [(1, None)]),
        ("from voting.testing import JpkiTestCa", "voting", [(1, None)]),
        ("from voting import testing", "kiosk", [(1, None)]),
        ("from .testing._testca import JpkiTestCa", "voting", [(1, None)]),
        ("from ..testing import run_demo", "voting.api", [(1, None)]),
        ("from . import testing", "voting", [(1, None)]),
        ("def f():\n    from voting.testing import run_demo", "voting", [(2, "f")]),
        ("import importlib\nimportlib.import_module('voting.testing._dev_oidc')", "voting", [(2, None)]),
        ("from voting.clients.voter import VoterClient\nfrom . import _testing_x", "voting", []),
    ],
)
def test_testing_import_detector(source: str, package: str, expected: list[tuple[int, str | None]]) -> None:
    assert _testing_imports(source, "<source>", package) == expected


def _testing_importers() -> list[tuple[str, int, str | None]]:
    """``(file, line, enclosing function)`` of every import of voting.testing in the packages, outside
    voting/testing/ itself."""
    out = []
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("voting/testing/"):
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            package = ".".join(parts if parts[-1] == "__init__" else parts[:-1]).removesuffix(".__init__")
            for line, owner in _testing_imports(path.read_text(encoding="utf-8"), rel, package):
                out.append((rel, line, owner))
    return out


def test_nothing_but_dev_commands_imports_the_test_scaffolding() -> None:
    """Test scaffolding (test CAs, the development OpenID provider, the loopback server, the demo) stays
    out of the server's import graph: no module of the packages imports ``voting.testing``, except the
    ``tvote demo`` / ``tvote rehearsal`` commands, inside their functions (:data:`TESTING_IMPORTERS`)."""
    found = _testing_importers()
    bad = [
        f"{rel}:{line} imports voting.testing" + (f" in {owner}()" if owner else " at module level")
        for rel, line, owner in found
        if owner is None or (rel, owner) not in TESTING_IMPORTERS
    ]
    assert not bad, (
        "the test scaffolding is imported outside tests, tools and the dev commands:\n" + "\n".join(bad)
    )
    used = {(rel, owner) for rel, _, owner in found}
    stale = sorted(set(TESTING_IMPORTERS) - used)
    assert not stale, f"no longer import voting.testing (remove them from TESTING_IMPORTERS): {stale}"


def test_the_production_server_and_the_cli_load_no_test_scaffolding(tmp_path: Path) -> None:
    """At run time: build the app from a complete production configuration, then import ``tvote``'s
    command line; no module of ``voting.testing`` is loaded, and no loaded module holds a test CA, the
    development OpenID provider or the loopback server."""
    import datetime as dt
    import secrets

    from _serve_util import jpki_files, server_env

    from voting._commission_key import ensure_test_commission_signer
    from voting._settings import Settings
    from voting.auth import certificate_fingerprint
    from voting.testing import JpkiTestCa

    now = dt.datetime.now(dt.UTC)
    ca = JpkiTestCa.generate(now)
    anchors, crls = jpki_files(tmp_path, ca, now)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    ensure_test_commission_signer(
        Settings(environment="test", data_dir=data, admin_token="a" * 48)
    )  # "issued"
    env = server_env(
        TVOTE_ENVIRONMENT="production",
        TVOTE_ADMIN_TOKEN=secrets.token_urlsafe(32),
        TVOTE_DATA_DIR=str(data),
        TVOTE_JPKI_TRUST_ANCHORS=str(anchors),
        TVOTE_JPKI_CRL_DIR=str(crls),
        TVOTE_JPKI_ANCHOR_PINS=certificate_fingerprint(ca.certificate),
    )
    code = (
        "import sys\n"
        "import voting.app\n"
        "app = voting.app.create_app()\n"
        "assert app.state.service.settings.environment == 'production'\n"
        "import voting.cli\n"
        "scaffolding = ('JpkiTestCa', 'TestCard', 'DevOidcProvider', 'LoopbackServer', 'start_election')\n"
        "bad = sorted(n for n, m in list(sys.modules.items()) if n.startswith('voting.testing') or "
        "(n.startswith('voting') and any(hasattr(m, a) for a in scaffolding)))\n"
        "print('loaded:', ','.join(bad))\n"
        "app.state.service.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "loaded:", out.stdout
