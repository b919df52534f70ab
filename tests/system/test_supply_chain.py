"""Supply chain: every imported package is declared, the hash-pinned locks agree with pyproject.toml, and
``make sbom`` writes a valid CycloneDX SBOM.

The locks (``requirements/server.txt``, ``requirements/auditor.txt``, ``requirements/tools.txt``) are written
by ``make locks`` (pip-compile). The offline checks here catch a lock that no longer covers pyproject.toml (a
requirement added, removed or with a new bound); ``make check-locks`` resolves them again from the index and
catches everything else.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
OURS = ("crypto", "ledger", "voting", "verifier", "kiosk")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# The locks are resolved for CPython 3.11 on Linux x86_64 (the Makefile refuses another interpreter).
LOCK_ENV = {
    **default_environment(),
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}
#: What the auditor's install must never hold (tests/system/test_auditor_install.py: the same for the
#: import graph).
SERVER_ONLY = {"fastapi", "sqlmodel", "sqlalchemy", "uvicorn", "starlette", "alembic", "psycopg", "authlib"}


def _server_extras() -> list[str]:
    """The extras that ``make`` installs, read from the Makefile so that the test and the install agree."""
    found = re.search(r"^SERVER_EXTRAS\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, "Makefile: SERVER_EXTRAS not found"
    return found.group(1).split()


def _requirements(extras: list[str]) -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return [r for r in map(Requirement, reqs) if r.marker is None or r.marker.evaluate(LOCK_ENV)]


# -- every import declared ---------------------------------------------------------------------------------


def _imported_modules(package: str) -> dict[str, list[str]]:
    """Top-level module name -> the files of ``package`` importing it (any import, also inside functions)."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OURS and top != "__future__":
                    found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def _declared(extras: list[str]) -> set[str]:
    return {canonicalize_name(r.name) for r in _requirements(extras)}


@pytest.mark.parametrize("package", OURS)
def test_every_imported_package_is_declared(package: str) -> None:
    """Regression: voting/ imported joserfc (and starlette, pydantic, SQLAlchemy, certifi) and the verifier
    pyhanko-certvalidator and eth-typing, each only there because some other package happened to pull it in.
    crypto/ and verifier/ are what an auditor installs: their imports must be core dependencies (the
    verifier's Dask scheduler is the documented ``cluster`` extra)."""
    by_module = metadata.packages_distributions()
    allowed = {
        "crypto": _declared([]),
        "verifier": _declared(["cluster"]),
    }.get(package, _declared(list(PYPROJECT["project"]["optional-dependencies"])))
    bad = []
    for module, files in sorted(_imported_modules(package).items()):
        dists = {canonicalize_name(d) for d in by_module.get(module, [])}
        if not dists:
            bad.append(f"{module} (imported by {files[0]}) belongs to no installed distribution")
        elif not dists & allowed:
            bad.append(f"{module} ({files[0]}) is from {sorted(dists)}, not declared for {package}/")
    assert not bad, "undeclared imports, add them to pyproject.toml and run `make locks`:\n" + "\n".join(bad)


# -- the locks ---------------------------------------------------------------------------------------------


@dataclass
class Pin:
    version: str
    hashes: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)


def _read_lock(name: str) -> dict[str, Pin]:
    """Parse a pip-compile lock; anything but ``name==version`` lines with sha256 hashes is refused."""
    text = (ROOT / "requirements" / name).read_text(encoding="utf-8")
    assert "autogenerated by pip-compile with Python 3.11" in text, f"{name}: not from pip-compile on 3.11"
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    in_via = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or raw.startswith("#"):
            continue
        if not raw.startswith(" "):
            found = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+) \\", line)
            assert found, f"{name}: not a hash-pinned requirement: {raw!r}"
            current = pins.setdefault(canonicalize_name(found.group(1)), Pin(found.group(2)))
            in_via = False
        elif current is not None and line.startswith("--hash="):
            assert re.fullmatch(r"--hash=sha256:[0-9a-f]{64}( \\)?", line), f"{name}: bad hash line {raw!r}"
            current.hashes.append(line.split(":")[1][:64])
        elif current is not None and line.startswith("# via"):
            rest = line.removeprefix("# via").strip()
            in_via = not rest
            if rest:
                current.via.add(rest)
        elif current is not None and in_via and line.startswith("#   "):
            current.via.add(line.removeprefix("#   ").strip())
        else:
            raise AssertionError(f"{name}: unexpected line {raw!r}")
    return pins


def _direct(pins: dict[str, Pin]) -> set[str]:
    return {n for n, p in pins.items() if "tvote (pyproject.toml)" in p.via}


LOCKS = {"server.txt": "server", "auditor.txt": "auditor"}


def _lock_extras(lock: str) -> list[str]:
    return _server_extras() if LOCKS[lock] == "server" else []


@pytest.mark.parametrize("lock", [*LOCKS, "tools.txt"])
def test_lock_pins_every_package_with_hashes(lock: str) -> None:
    pins = _read_lock(lock)
    assert pins
    unhashed = sorted(n for n, p in pins.items() if not p.hashes)
    assert not unhashed, f"{lock}: pinned without a hash: {unhashed}"


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_covers_pyproject(lock: str) -> None:
    """A requirement added to pyproject.toml, or a bound raised past the pinned version, makes the lock stale;
    so does a requirement removed from pyproject.toml that the lock still pins for tvote."""
    pins = _read_lock(lock)
    wanted = _requirements(_lock_extras(lock))
    bad = []
    for req in wanted:
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            bad.append(f"{req} is not in the lock")
        elif not req.specifier.contains(pin.version, prereleases=True):
            bad.append(f"{req} is pinned at {pin.version}")
    stale = _direct(pins) - {canonicalize_name(r.name) for r in wanted}
    bad += [f"{name} is pinned for tvote but no longer required by pyproject.toml" for name in sorted(stale)]
    for spec in PYPROJECT["build-system"]["requires"]:  # `pip install --no-build-isolation` needs these
        req = Requirement(spec)
        pin = pins.get(canonicalize_name(req.name))
        if pin is None or not req.specifier.contains(pin.version):
            bad.append(f"build requirement {req} is not pinned")
    assert not bad, f"requirements/{lock} is stale; run `make locks`:\n" + "\n".join(bad)


def test_auditor_lock_holds_no_server_package() -> None:
    pins = _read_lock("auditor.txt")
    assert not SERVER_ONLY & set(pins)
    assert set(pins) <= set(_read_lock("server.txt")), "the auditor lock has packages the server lock lacks"
    server = _read_lock("server.txt")
    differ = sorted(n for n, p in pins.items() if server[n].version != p.version)
    assert not differ, f"the auditor and the server locks pin different versions of {differ}"


def test_the_install_uses_the_locks_with_hashes() -> None:
    """``make`` and CI install from the locks, hash-checked, and tvote itself without dependencies."""
    makefile = "\n".join(ln for ln in (ROOT / "Makefile").read_text().splitlines() if ln.startswith("\t"))
    for lock in ("$(SERVER_LOCK)", "$(AUDITOR_LOCK)", "$(TOOLS_LOCK)"):
        assert f"pip install --quiet --require-hashes -r {lock}" in makefile
    # tvote in .venv/ and in the auditor's environment, and the native engine (built by the lock's maturin)
    assert makefile.count("pip install --quiet --no-deps --no-build-isolation") == 3
    assert "pip install --quiet --no-deps --no-build-isolation ./native" in makefile
    assert not re.search(r"pip install (?!--quiet --(require-hashes|no-deps))", makefile)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make check-locks" in ci and "make check-auditor" in ci


# -- the SBOM ----------------------------------------------------------------------------------------------


def _iri_reference(instance: object) -> bool:
    """A quick stand-in for the schema's ``iri-reference`` format check (RFC 3987): no space or control
    character, and a scheme, if any, of RFC 3986 characters. The library's own check parses each URL with
    an Earley parser (rfc3987-syntax), about 0.4 s a URL: minutes for an SBOM with hundreds of URLs.
    ``make sbom`` itself runs the full check."""
    if not isinstance(instance, str):
        return True
    if any(ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in instance):
        return False
    scheme, sep, _ = instance.partition(":")
    return (
        not sep
        or "/" in scheme
        or "?" in scheme
        or "#" in scheme
        or bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme))
    )


def test_make_sbom_writes_valid_cyclonedx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``make sbom`` (run here on the environment of this test) writes CycloneDX JSON that validates against
    the strict 1.6 schema, names tvote as the subject, lists what is installed with its version, and the
    auditor lock's pins with their hashes."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from jsonschema import Draft7Validator

    venv = Path(sys.prefix)
    if not (venv / "bin" / "cyclonedx-py").exists():
        pytest.fail(f"cyclonedx-py is not installed in {venv}: install the dev extra (make)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            f"{venv}/.installed",
            "sbom",
            f"VENV={venv}",
            f"STAMP={venv}/.installed",
            f"SBOM_DIR={tmp_path}",
            "SBOM_VALIDATE=--no-validate",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    monkeypatch.setitem(Draft7Validator.FORMAT_CHECKER.checkers, "iri-reference", (_iri_reference, ()))
    validator = JsonStrictValidator(SchemaVersion.V1_6)
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    for name in ("server", "auditor"):
        text = (tmp_path / f"{name}.cdx.json").read_text()
        error = validator.validate_str(text)
        assert error is None, f"{name}.cdx.json: {error}"
        bom = json.loads(text)
        assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
        assert bom["metadata"]["component"]["name"] == "tvote"
        assert str(tmp_path) not in text and str(Path.home()) not in text
        listed = {canonicalize_name(c["name"]): c for c in bom["components"]}
        if name == "server":
            missing = {n for n in installed if n != "tvote"} - set(listed)
            assert not missing, f"the server SBOM misses installed packages {sorted(missing)}"
            assert all(listed[n]["version"] == installed[n] for n in listed if n in installed)
            root = next(d for d in bom["dependencies"] if d["ref"] == bom["metadata"]["component"]["bom-ref"])
            direct = {canonicalize_name(ref.split("==")[0]) for ref in root["dependsOn"]}
            assert direct >= _declared([]), "the SBOM's root does not depend on every core dependency"
        else:
            pins = _read_lock("auditor.txt")
            assert set(listed) == set(pins)
            for n, pin in pins.items():
                assert listed[n]["version"] == pin.version
                refs = listed[n].get("externalReferences", [])
                assert {h["content"] for ref in refs for h in ref.get("hashes", [])} == set(pin.hashes)


def test_sbom_format_stand_in_refuses_what_it_should() -> None:
    assert _iri_reference("https://pypi.org/simple/aiohttp/") and _iri_reference("../relative#frag")
    assert not _iri_reference("https://exa mple.org/") and not _iri_reference("ht\x00tp://x")
    assert not _iri_reference("1http://x")
