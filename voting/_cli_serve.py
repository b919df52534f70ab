"""``tvote serve``: run the election service (FastAPI + uvicorn) on loopback by default.

Settings come from ``TVOTE_*`` environment variables and/or a TOML file (``--config`` or ``TVOTE_CONFIG``);
the one table of them is in docs/operator-guide.md ("Server configuration"). The environment is
**production** unless development is asked for (``--dev`` or ``TVOTE_ENVIRONMENT=development``; loopback
only). Before anything listens, the data directory is prepared and every start-up check runs
(:mod:`voting._startup`); a refused configuration exits with status 2 and every problem on stderr, one per
line.
"""

from __future__ import annotations

import os
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
        Path | None,
        typer.Option(help="SQLite file, ledger key, commission key, result PDF [default: tvote-data]"),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file (keys as in TVOTE_*, lower case)")
    ] = None,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="development environment: loopback only, random tokens written to the data directory, "
            "TEST commission key (same as TVOTE_ENVIRONMENT=development)",
        ),
    ] = False,
) -> None:
    """Run the election service. Settings not given here come from TVOTE_* variables or the config file."""
    import uvicorn

    from ._errors import ConfigurationError
    from ._settings import Settings
    from ._startup import StartupCheckFailed, check_bind, prepare
    from .app import create_app

    os.umask(0o077)  # every file the server creates (database, WAL, keys, PDFs) is private to it
    try:
        settings = Settings.from_env(
            config_file=config,
            database_url=database_url,
            data_dir=data_dir,
            environment="development" if dev else None,
        )
        check_bind(settings, host)
        prepared = prepare(settings)
        settings = prepared.settings
        app = create_app(settings)
    except StartupCheckFailed as e:
        typer.echo(f"error: {e.code}: the server cannot run the election; fix and start again:", err=True)
        for p in e.problems:
            typer.echo(f"  - {p}", err=True)
        raise typer.Exit(2) from e
    except ConfigurationError as e:
        typer.echo(f"error: {e.code}: {e.message}", err=True)
        raise typer.Exit(2) from e
    for note in prepared.notes:
        typer.echo(f"tvote: {note}")
    cfg = app.state.intake_provider.config
    methods = [
        name
        for name, on in (
            ("jpki", bool(cfg.trust_anchors)),
            ("oidc+face", cfg.oidc is not None and cfg.face is not None and cfg.face_reference is not None),
            ("kiosk", bool(cfg.trust_anchors)),  # enrolled kiosks cast with My Number cards (JPKI)
        )
        if on
    ]
    typer.echo(
        f"tvote: serving on http://{host}:{port} (the booth at /, the OpenAPI schema at /openapi.json), "
        f"environment {settings.environment}, "
        f"ballot intake: {', '.join(methods) or 'none configured'}"
    )
    # proxy_headers off: uvicorn would believe X-Forwarded-For from 127.0.0.1; the app itself believes it only
    # from TVOTE_TRUSTED_PROXIES (voting._client_address)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, proxy_headers=False)
