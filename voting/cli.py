"""The ``tvote`` command line: one Typer app, one sub-module per command group.

Each command group lives in its own private module (``voting/_cli_<group>.py``) exposing a Typer app or
function; this file only wires them together so that teammates never edit the same file for a new command.

An expected failure in any command (the server answered an error or cannot be reached, a file cannot be
read, a refused setting: :func:`voting._cli_errors.describe`) prints one ``error: <code>: <message>`` line on
stderr and exits non-zero, never with a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["app", "main"]


class _TvoteGroup(TyperGroup):
    """The ``tvote`` command group: expected failures become one ``error: code: message`` line and an exit
    status (module doc), here, so that every way of running a command (the console script, ``python -m``,
    ``typer.testing.CliRunner``) reports them alike."""

    def invoke(self, ctx: Any) -> Any:
        from ._cli_errors import describe

        try:
            return super().invoke(ctx)
        except Exception as e:
            known = describe(e)  # None for a bug, and for typer's own exits and usage errors
            if known is None:
                raise
            code, message, status = known
            typer.echo(f"error: {code}: {message}", err=True)
            raise typer.Exit(status) from None


app = typer.Typer(
    cls=_TvoteGroup,
    name="tvote",
    help="tvote: end-to-end verifiable elections (server, trustees, witnesses, demo, rehearsal).",
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
    ("voting._cli_rehearsal", "app", "rehearsal"),
    ("voting._cli_observers", "app", "observers"),
    ("voting._cli_observers", "audit_evidence_command", "audit-evidence"),
)

for _module, _attr, _name in _COMMANDS:
    _mod = importlib.import_module(_module)
    _obj = getattr(_mod, _attr)
    if isinstance(_obj, typer.Typer):
        app.add_typer(_obj, name=_name)
    else:
        app.command(name=_name)(_obj)


def main() -> None:  # pragma: no cover - console entry
    app()
