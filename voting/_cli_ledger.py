"""``tvote ledger``: key generation, the standalone ledger server and record export."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ledger.record import WitnessPolicy

app = typer.Typer(help="The public ledger: keys, standalone server, record export.", no_args_is_help=True)

DbOpt = Annotated[str, typer.Option("--db", help="SQLAlchemy URL, e.g. sqlite:///ledger.db")]
KeyOpt = Annotated[Path, typer.Option("--key", help="log signer key file (from `tvote ledger keygen`)")]
WitOpt = Annotated[
    Path | None, typer.Option("--witnesses", help='JSON {"quorum": q, "witnesses": [witness-public.json…]}')
]


def _load_policy(path: Path | None) -> WitnessPolicy:
    from ledger.record import WitnessKey, WitnessPolicy

    if path is None:
        return WitnessPolicy((), 0)
    obj = json.loads(path.read_text())
    return WitnessPolicy(tuple(WitnessKey.from_json(w) for w in obj["witnesses"]), int(obj["quorum"]))


def _open(db: str, key: Path, witnesses: Path | None):  # type: ignore[no-untyped-def]
    from ledger import Ledger, LedgerConfig
    from ledger.record import LogSigner

    signer = LogSigner.from_skey(key.read_text())
    return Ledger(db, LedgerConfig(signer, _load_policy(witnesses)))


@app.command()
def keygen(
    origin: Annotated[str, typer.Option(help="log origin = key name, e.g. tsukuba.example/tvote/2025")],
    out: Annotated[Path, typer.Option(help="where to write the secret key (mode 0600)")],
) -> None:
    """Create the log's Ed25519 signing key; print its public verifier key."""
    from ledger.files import write_atomic
    from ledger.record import LogSigner

    signer = LogSigner.generate(origin)
    write_atomic(out, signer.skey + "\n", mode=0o600, overwrite=False)
    typer.echo(signer.public.vkey)


@app.command()
def serve(
    db: DbOpt,
    key: KeyOpt,
    witnesses: WitOpt = None,
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1")] = 8470,
) -> None:
    """Run the standalone ledger server on 127.0.0.1 (admin token from TVOTE_LEDGER_ADMIN_TOKEN)."""
    import uvicorn

    from voting._ledger_api import create_app

    token = os.environ.get("TVOTE_LEDGER_ADMIN_TOKEN", "")
    if len(token) < 16:
        raise typer.BadParameter("set TVOTE_LEDGER_ADMIN_TOKEN to a secret of at least 16 characters")
    led = _open(db, key, witnesses)
    try:
        uvicorn.run(
            create_app(led, token),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
        )
    finally:
        led.close()


@app.command()
def export(
    db: DbOpt,
    key: KeyOpt,
    out: Annotated[Path, typer.Option(help="record directory to create")],
    witnesses: WitOpt = None,
    archive: Annotated[Path | None, typer.Option(help="also write a .tar.gz archive")] = None,
) -> None:
    """Export the election record (docs/record.md) up to the newest checkpoint, and check it."""
    from ledger.record import check_record

    led = _open(db, key, witnesses)
    try:
        led.export(out)
        if archive is not None:
            led.export_archive(archive)
    finally:
        led.close()
    s = check_record(out)
    typer.echo(f"exported {s.size} entries, {s.checkpoints} checkpoints, root {s.root.hex()}")
