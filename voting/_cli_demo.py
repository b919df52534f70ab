"""``tvote demo``: a whole Tsukuba-style election on the embedded SQLite default, over real HTTP.

The demo is test scaffolding (:func:`voting.testing.run_demo`: test CAs, synthetic residents, a development
OpenID provider); this command imports it only when it runs, so that ``tvote`` and the server never load
:mod:`voting.testing` otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["demo"]


def demo(
    out: Annotated[Path, typer.Option("--out", help="where to write record/ and result.pdf")] = Path(
        "demo-out"
    ),
    voters: Annotated[int, typer.Option(help="number of synthetic residents")] = 200,
    seed: Annotated[int, typer.Option(help="seed of the simulated choices")] = 2027,
) -> None:
    """Run a whole demo election (Tsukuba-style: mayor, referendum, subsidy projects) and print the result."""
    from voting.testing import run_demo

    raise typer.Exit(run_demo(out, voters=voters, seed=seed).exit_code)
