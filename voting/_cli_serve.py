"""``tvote serve``: run the election service (FastAPI + uvicorn) on loopback by default.

Settings come from ``TVOTE_*`` environment variables and/or a TOML file (``--config`` or ``TVOTE_CONFIG``);
the one table of them is in docs/operator-guide.md ("Server configuration"). The environment is
**production** unless development is asked for (``--dev`` or ``TVOTE_ENVIRONMENT=development``; loopback
only). Before anything listens, the data directory is prepared and every start-up check runs
(:mod:`voting._startup`); a refused configuration exits with status 2 and every problem on stderr, one per
line.

``--workers N`` (PostgreSQL only) runs N uvicorn worker processes on the one port: the parent runs the
start-up checks and the reconciliation once, hands its settings to the workers through ``TVOTE_*``
environment variables (the config file by path, the options and a development admin token it drew) and each
worker builds its app with :func:`voting.app.create_worker_app`. The processes share the database and the
ledger (docs/operator-guide.md, "Scaling and operations"). SQLite serves one process: ``--workers`` > 1 on it
is refused (``config.workers``).
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
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=256,
            help="server processes on this port (more than 1 needs PostgreSQL: they share its ledger)",
        ),
    ] = 1,
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

    from ._db import normalise_database_url
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
        if workers > 1 and normalise_database_url(settings.effective_database_url).startswith("sqlite"):
            raise ConfigurationError(
                "config.workers",
                f"--workers {workers} needs PostgreSQL (--database-url postgresql://...): SQLite serves one "
                "process, which holds its ledger's sequencer lock",
            )
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
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, proxy_headers=False)
        return
    app.state.service.close()  # the checks and the reconciliation ran here; the workers open their own
    os.environ.update(worker_environment(config, settings.admin_token, database_url, data_dir, dev))
    typer.echo(f"tvote: {workers} worker processes share the database and its ledger")
    uvicorn.run(
        "voting.app:create_worker_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        proxy_headers=False,
    )


def worker_environment(
    config: Path | None,
    admin_token: str | None,
    database_url: str | None,
    data_dir: Path | None,
    dev: bool,
) -> dict[str, str]:
    """The ``TVOTE_*`` variables that make a worker's ``Settings.from_env()`` the parent's settings: the
    config file and the command-line options (which win over the file and the environment), the admin token
    a development start drew, and ``TVOTE_WORKER=1`` (the start-up checks ran in the parent)."""
    env = {"TVOTE_WORKER": "1"}
    if config is not None:
        env["TVOTE_CONFIG"] = str(config.resolve())
    if database_url is not None:
        env["TVOTE_DATABASE_URL"] = database_url
    if data_dir is not None:
        env["TVOTE_DATA_DIR"] = str(data_dir.resolve())
    if dev:
        env["TVOTE_ENVIRONMENT"] = "development"
    if (
        admin_token is not None
        and "TVOTE_ADMIN_TOKEN" not in os.environ
        and not os.environ.get("TVOTE_ADMIN_TOKEN_FILE")
    ):
        env["TVOTE_ADMIN_TOKEN"] = admin_token  # drawn by prepare() (development), or from the config file
    return env
