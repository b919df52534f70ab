"""``tvote-kiosk``: the polling-place kiosk's command line (``docs/kiosk.md``, "The kiosk device").

::

    tvote-kiosk init  --state-dir D --kiosk-id ID --server URL
    tvote-kiosk serve --state-dir D [--host 127.0.0.1] [--port 8765] [--pkcs11-module PATH]
                      [--token-label JPKI] [--printer NAME] [--public-url URL] [--idle-seconds 90]
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    help="tvote polling-place kiosk: enrolment key and the kiosk service (docs/kiosk.md).",
    no_args_is_help=True,
    add_completion=False,
)

StateDirOpt = Annotated[Path, typer.Option("--state-dir", help="The kiosk's state directory (mode 0700).")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@app.command()
def init(
    state_dir: StateDirOpt,
    kiosk_id: Annotated[str, typer.Option("--kiosk-id", help="The kiosk id the commission enrols.")],
    server: Annotated[str, typer.Option("--server", help="The election server's URL.")],
) -> None:
    """Make the kiosk's Ed25519 key and kiosk.json; print what the commission enrols."""
    from voting.clients.kiosk import KioskKey

    from ._state import KioskConfig, StateDir, StateError, check_kiosk_id, check_server_url

    state = StateDir(state_dir)
    try:
        config = KioskConfig(check_kiosk_id(kiosk_id), check_server_url(server))
        state.create(config)
    except (StateError, OSError) as e:
        raise _fail(str(e)) from None
    key = KioskKey.generate()
    key.save(state.key_path)
    typer.echo(f"kiosk id:    {config.kiosk_id}")
    typer.echo(f"public key:  {key.public_key_hex}")
    typer.echo(f"fingerprint: {key.fingerprint}")
    typer.echo("")
    typer.echo("The commission enrols it (and reads the fingerprint back to the poll workers):")
    typer.echo(
        f"  tvote admin kiosk enrol --kiosk-id {config.kiosk_id} --public-key {key.public_key_hex} "
        '--polling-place "<polling place>"'
    )


@app.command()
def serve(
    state_dir: StateDirOpt,
    host: Annotated[str, typer.Option(help="Loopback address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8765,
    pkcs11_module: Annotated[
        str | None, typer.Option("--pkcs11-module", help="PKCS#11 module (default: OpenSC's).")
    ] = None,
    token_label: Annotated[str, typer.Option("--token-label")] = "JPKI",  # noqa: S107 (a token label)
    printer: Annotated[str | None, typer.Option(help="CUPS printer (lp -d NAME); else PDFs only.")] = None,
    public_url: Annotated[
        str | None, typer.Option("--public-url", help="The booth's public URL for the receipt's QR code.")
    ] = None,
    idle_seconds: Annotated[float, typer.Option("--idle-seconds", min=5)] = 90.0,
) -> None:
    """Run the kiosk service (the kiosk page and its local API) on loopback."""
    import httpx
    import uvicorn

    from voting.clients.kiosk import KioskApi, KioskKey
    from voting.clients.voter import VoterClient

    from ._app import create_app
    from ._printing import Printer
    from ._service import KioskService
    from ._state import StateDir, StateError, check_server_url
    from .card import OPENSC_MODULE, CardReader

    try:
        if not ipaddress.ip_address(host).is_loopback:
            raise _fail(
                f"--host {host} is not a loopback address: the kiosk service listens on loopback only"
            )
    except ValueError:
        raise _fail(f"--host must be a loopback IP address, not {host!r}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = StateDir(state_dir)
    try:
        state.check_permissions()
        config = state.config()
        key = KioskKey.load(state.key_path)
        url = check_server_url(public_url) if public_url else config.server
    except (StateError, OSError, ValueError) as e:
        raise _fail(str(e)) from None
    state.ensure_dirs()
    http = httpx.Client(base_url=config.server, timeout=httpx.Timeout(20.0, connect=5.0))
    voter = VoterClient(config.server, timeout=20.0)
    service = KioskService(
        state,
        api=KioskApi(http, key, config.kiosk_id),
        election=voter.election,
        reader=CardReader(pkcs11_module or OPENSC_MODULE, state_dir, token_label=token_label),
        printer=Printer(printer),
        public_url=url,
        idle_seconds=idle_seconds,
    )
    web = create_app(service, port=port, server_get=lambda path: http.get(path))
    typer.echo(f"tvote kiosk {config.kiosk_id}: http://{host}:{port}/ (server {config.server})")
    uvicorn.run(web, host=host, port=port, log_level="info", access_log=False, proxy_headers=False)
