"""The server settings are documented once, in docs/operator-guide.md ("Server configuration"), and that
table agrees with :class:`voting._settings.Settings` (issue 12, point 6): every setting is a row, no row
names a setting that does not exist, and every documented default is the model's default.

The table's ``default`` column lists one value per setting of its row, in the row's order: a literal in
backticks (compared with the default as an environment variable would spell it) or ``unset``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from voting._settings import _SECRET_FILES, ENV_VARS, Settings

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operator-guide.md"
_NAME = re.compile(r"`(TVOTE_[A-Z0-9_]+)`")
_DEFAULT = re.compile(r"`([^`]*)`|\bunset\b")


def _section() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("### Server configuration")
    return text[start : text.index("\n#", start + 1)]


def _rows() -> list[tuple[list[str], list[str | None]]]:
    """(names, defaults) of each row of the settings table; ``None`` stands for ``unset``."""
    section = _section()
    lines = section[section.index("| setting | default | meaning |") :].splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        names = _NAME.findall(cells[0])
        defaults = [m.group(1) for m in _DEFAULT.finditer(cells[1])]
        assert names and len(names) == len(defaults), f"row needs one default per setting: {line[:100]}"
        rows.append((names, defaults))
    return rows


def _spelled(value: Any) -> str | None:
    """A default as the table writes it (``None``: unset)."""
    if value is None or value == ():
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _model_defaults() -> dict[str, str | None]:
    out = {}
    for f in dataclasses.fields(Settings):
        value = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        out[ENV_VARS[f.name]] = _spelled(value)
    return out


def test_every_setting_is_documented_once() -> None:
    documented = [n for names, _ in _rows() for n in names]
    assert len(documented) == len(set(documented)), "a setting has two rows"
    missing, unknown = set(ENV_VARS.values()) - set(documented), set(documented) - set(ENV_VARS.values())
    assert not missing and not unknown, f"undocumented: {sorted(missing)}; no such setting: {sorted(unknown)}"


def test_documented_defaults_are_the_models() -> None:
    model = _model_defaults()
    wrong = [
        f"{name}: documented {doc!r}, Settings has {model[name]!r}"
        for names, defaults in _rows()
        for name, doc in zip(names, defaults, strict=True)
        if name in model and doc != model[name]
    ]
    assert not wrong, "\n".join(wrong)


def test_secret_file_variables_are_documented() -> None:
    assert set(_SECRET_FILES) <= set(re.findall(r"`(TVOTE_[A-Z_]+_FILE)`", _section()))


@pytest.mark.parametrize("block", re.findall(r"```toml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S))
def test_toml_examples_use_known_keys(block: str) -> None:
    known = {v.removeprefix("TVOTE_").lower() for v in (*ENV_VARS.values(), *_SECRET_FILES)}
    assert set(tomllib.loads(block)) <= known
