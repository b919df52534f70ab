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
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="after the simulated voters, keep voting open and serve the booth on 127.0.0.1 for you to "
            "vote in a browser; press Enter to close voting and finish the demo",
        ),
    ] = False,
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="with --serve: the port of 127.0.0.1 the booth is served on")
    ] = 8000,
) -> None:
    """Run a whole demo election (Tsukuba-style: mayor, referendum, subsidy projects) and print the result.

    With --serve it stops with voting open and serves the residents' booth for you to vote, challenge, re-vote
    and check a ballot in a browser, then finishes the election with your ballots counted."""
    from voting.testing import ServeOptions, run_demo

    options = ServeOptions(port=port) if serve else None
    raise typer.Exit(run_demo(out, voters=voters, seed=seed, serve=options).exit_code)
