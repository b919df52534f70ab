"""The ``tvote`` command line: one Typer app, one sub-module per command group.

Each command group lives in its own private module (``voting/_cli_<group>.py``) exposing a Typer app or
function; this file only wires them together so that teammates never edit the same file for a new command.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="tvote",
    help="tvote: end-to-end verifiable elections (server, trustees, witnesses, demo).",
    no_args_is_help=True,
    add_completion=False,
)

# (module, attribute, name): attribute is a typer.Typer (added as a group) or a function (added as a command).
_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("voting._cli_witness", "app", "witness"),
    ("voting._cli_ledger", "app", "ledger"),
    ("voting._cli_serve", "serve", "serve"),
    ("voting._cli_trustee", "app", "trustee"),
    ("voting._cli_admin", "app", "admin"),
    ("voting._cli_demo", "demo", "demo"),
)

for _module, _attr, _name in _COMMANDS:
    try:
        _mod = importlib.import_module(_module)
    except ModuleNotFoundError as _e:
        if _e.name != _module:  # a real import error inside an existing module must surface
            raise
        continue
    _obj = getattr(_mod, _attr)
    if isinstance(_obj, typer.Typer):
        app.add_typer(_obj, name=_name)
    else:
        app.command(name=_name)(_obj)


def main() -> None:  # pragma: no cover - console entry
    app()
