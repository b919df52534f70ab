"""The shape of crypto/ inside: its modules import one way (issue 12, point 6).

The trustee protocol follows Part II of docs/protocol.md, one module per section, each building only on the
ones before it::

    _dkg (§T3.1-3)  <  _complaints (§T3.4)  <  _joint_key (§T3.5)  <  _decryption (§T4)  <  _trustee

The ballot half has its values in ``_ballot`` and two recipes on them that never use each other: the
device's ``_ballot_encrypt`` and anyone's ``_ballot_verify``. The two halves do not import each other.
(The size of every module, crypto/'s included, is tests/system/test_module_size.py's rule.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CRYPTO = Path(__file__).resolve().parents[2] / "crypto"

THRESHOLD_ORDER = ("_dkg", "_complaints", "_joint_key", "_decryption", "_trustee")
BALLOT_VALUES = "_ballot"
BALLOT_RECIPES = ("_ballot_encrypt", "_ballot_verify")


def _modules() -> dict[str, Path]:
    return {p.stem: p for p in sorted(CRYPTO.glob("*.py"))}


def _imports(path: Path) -> set[str]:
    """The crypto modules ``path`` imports (relative or absolute, at any depth of the file)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                out.add(node.module.split(".")[0])
            elif node.level == 1:
                out.update(a.name for a in node.names)
            elif node.level == 0 and node.module and node.module.startswith("crypto."):
                out.add(node.module.split(".")[1])
            elif node.level == 0 and node.module == "crypto":
                out.update(a.name for a in node.names if a.name in _modules())
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("crypto."))
    return out


def test_the_modules_named_here_exist() -> None:
    assert {*THRESHOLD_ORDER, BALLOT_VALUES, *BALLOT_RECIPES} <= set(_modules())


@pytest.mark.parametrize("module", THRESHOLD_ORDER)
def test_threshold_modules_import_only_earlier_ones(module: str) -> None:
    later = set(THRESHOLD_ORDER[THRESHOLD_ORDER.index(module) :])
    wrong = _imports(_modules()[module]) & later
    assert not wrong, f"crypto/{module}.py imports {sorted(wrong)}, which come after it"


def test_ballot_recipes_build_on_the_values_only() -> None:
    assert not _imports(_modules()[BALLOT_VALUES]) & {*BALLOT_RECIPES, *THRESHOLD_ORDER}
    for module in BALLOT_RECIPES:
        imported = _imports(_modules()[module])
        assert BALLOT_VALUES in imported
        assert not imported & ({*BALLOT_RECIPES, *THRESHOLD_ORDER} - {module}), module


def test_threshold_modules_do_not_use_the_ballot_modules() -> None:
    for module in THRESHOLD_ORDER:
        assert not _imports(_modules()[module]) & {BALLOT_VALUES, *BALLOT_RECIPES}, module


def test_crypto_imports_have_no_cycle() -> None:
    graph = {name: _imports(path) - {name} for name, path in _modules().items()}
    done: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        assert name not in stack, "import cycle: " + " -> ".join((*stack, name))
        if name in done:
            return
        for dep in sorted(graph.get(name, ())):
            visit(dep, (*stack, name))
        done.add(name)

    for name in graph:
        visit(name, ())
