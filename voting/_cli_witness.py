"""``tvote witness``: an independent witness that cosigns the ledger's checkpoints."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

# ledger's witness code (py_ecc, ~1 s to import) is imported by the commands that use it, so that every other
# `tvote` command starts without it

app = typer.Typer(
    help="Witness the public ledger: check it only grows, cosign checkpoints.", no_args_is_help=True
)


def _one_line(e: Exception) -> str:
    """``error: <code>: <message>`` (voting._cli_errors)."""
    from ._cli_errors import describe

    code, message, _ = describe(e) or ("error", str(e), 1)
    return f"error: {code}: {message}"


DirOpt = Annotated[Path, typer.Option("--dir", help="witness directory (key, public key, state)")]


@app.command()
def init(
    directory: DirOpt,
    name: Annotated[str, typer.Option(help="witness name, e.g. univ-tsukuba")],
    log_key: Annotated[str, typer.Option(help="the log's verifier key (name+id+key), obtained out of band")],
) -> None:
    """Create a BLS key with proof of possession; print the public part to give the commission."""
    typer.echo(json.dumps(init_witness(directory, name, log_key), indent=2, sort_keys=True))


def init_witness(directory: Path, name: str, log_key: str) -> dict[str, str]:
    """What ``tvote witness init`` does (also for the rehearsal kit): a new BLS key with its proof of
    possession in ``directory``, pinned to the log key ``log_key``; returns the public part
    (``name``, ``public_key``, ``pop``, hex) that the commission lists in the manifest."""
    from ledger import Witness
    from ledger.record import LogKey

    public = Witness.init(directory, name, LogKey.from_vkey(log_key))
    return public.to_json()


def _cosign_once(directory: Path, server: str) -> None:
    from ledger import Witness

    w = Witness.load(directory)
    with httpx.Client(base_url=server, timeout=30) as client:
        r = w.cosign(client)
    typer.echo(f"cosigned size {r.size} root {r.root.hex()}")


@app.command()
def cosign(directory: DirOpt, server: Annotated[str, typer.Option(help="ledger base URL")]) -> None:
    """Fetch the newest checkpoint, verify consistency with the last one signed, cosign it."""
    from ledger import LedgerError, WitnessRefusal

    try:
        _cosign_once(directory, server)
    except WitnessRefusal as e:
        typer.echo(f"REFUSED: {e.operator_message}", err=True)
        raise typer.Exit(2) from None
    except (LedgerError, httpx.HTTPError) as e:
        typer.echo(_one_line(e), err=True)
        raise typer.Exit(1) from None


@app.command()
def run(
    directory: DirOpt,
    server: Annotated[str, typer.Option(help="ledger base URL")],
    interval: Annotated[float, typer.Option(help="seconds between rounds")] = 60.0,
) -> None:
    """Cosign forever every INTERVAL seconds; stop for good on a fork or rollback."""
    from ledger import LedgerError, WitnessRefusal

    while True:
        try:
            _cosign_once(directory, server)
        except WitnessRefusal as e:
            typer.echo(f"REFUSED: {e.operator_message}", err=True)
            raise typer.Exit(2) from None
        except (LedgerError, httpx.HTTPError) as e:
            typer.echo(f"{_one_line(e)} (will retry)", err=True)
        time.sleep(interval)
