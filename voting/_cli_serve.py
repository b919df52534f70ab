"""``tvote serve``: run the election service (FastAPI + uvicorn) on loopback by default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["serve"]


def serve(
    host: Annotated[
        str, typer.Option(help="interface to bind (loopback by default; put a TLS proxy in front)")
    ] = ("127.0.0.1"),
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    database_url: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL, e.g. postgresql://user@host/db (default: SQLite in data-dir)"),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(help="SQLite file, ledger key, commission key, result PDF")
    ] = Path("tvote-data"),
) -> None:
    """Run the election service. Settings not given here come from TVOTE_* environment variables."""
    import uvicorn

    from ._errors import ConfigurationError
    from ._settings import Settings
    from .app import create_app

    try:
        settings = Settings.from_env(database_url=database_url, data_dir=data_dir)
    except ConfigurationError as e:
        typer.echo(f"error: {e.message}", err=True)
        raise typer.Exit(2) from e
    app = create_app(settings)
    typer.echo(
        f"tvote: serving on http://{host}:{port} (OpenAPI docs at /docs), environment {settings.environment}"
    )
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
