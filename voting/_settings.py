"""Server settings: one frozen value, built from arguments or the environment, validated fail-closed.

Environment variables (all optional; the defaults are for development on one machine):

=============================  ===========================================================================
``TVOTE_ENVIRONMENT``          ``development`` (default), ``test`` or ``production``
``TVOTE_DATABASE_URL``         SQLAlchemy URL; default ``sqlite:///<data_dir>/tvote.sqlite3``.
                               PostgreSQL: ``postgresql+psycopg://user:pw@host/db``
``TVOTE_DATA_DIR``             directory for the SQLite file, the ledger signing key and exports
``TVOTE_ADMIN_TOKEN``          the commission's bearer token for ``/api/v1/admin/*``
``TVOTE_PUBLIC_URL``           the public base URL printed in QR codes and receipts
``TVOTE_RATE_LIMIT``           voter requests per minute per client (default 120)
=============================  ===========================================================================

Outside ``development`` the default admin token is refused (:class:`~voting._errors.ConfigurationError`),
and so is any token shorter than 32 characters. There is no setting that weakens a cryptographic check.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, Literal

from ._errors import ConfigurationError

__all__ = ["DEFAULT_ADMIN_TOKEN", "Environment", "Settings"]

Environment = Literal["development", "test", "production"]

#: The development admin token. Refused outside ``development``.
DEFAULT_ADMIN_TOKEN: Final[str] = "changethis"  # noqa: S105 - refused outside development
_MIN_TOKEN_LEN: Final[int] = 32


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs to start. Immutable; validated on construction."""

    environment: Environment = "development"
    data_dir: Path = field(default_factory=lambda: Path("tvote-data"))
    database_url: str | None = None
    admin_token: str = field(default=DEFAULT_ADMIN_TOKEN, repr=False)
    public_url: str = "http://127.0.0.1:8000"
    rate_limit_per_minute: int = 120
    #: the ledger's log origin (checkpoint name); default ``tvote/<election_id>``
    log_origin: str | None = None

    def __post_init__(self) -> None:
        if self.environment not in ("development", "test", "production"):
            raise ConfigurationError("config.environment", f"unknown environment {self.environment!r}")
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if not isinstance(self.admin_token, str) or not self.admin_token:
            raise ConfigurationError("config.admin_token", "the admin token must be a non-empty string")
        if self.environment != "development":
            if self.admin_token == DEFAULT_ADMIN_TOKEN:
                raise ConfigurationError(
                    "config.default_secret",
                    f"the default admin token is refused in the {self.environment} environment; "
                    "set TVOTE_ADMIN_TOKEN",
                )
            if len(self.admin_token) < _MIN_TOKEN_LEN:
                raise ConfigurationError(
                    "config.admin_token", f"the admin token must have at least {_MIN_TOKEN_LEN} characters"
                )
        if self.rate_limit_per_minute < 1:
            raise ConfigurationError("config.rate_limit", "the rate limit must be at least 1 per minute")

    @property
    def effective_database_url(self) -> str:
        """The database URL in use (SQLite in ``data_dir`` unless one was given)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tvote.sqlite3').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``TVOTE_*`` variables; keyword overrides win (``None`` means unset)."""
        e = os.environ if env is None else env
        values: dict[str, object] = {}
        if "TVOTE_ENVIRONMENT" in e:
            values["environment"] = e["TVOTE_ENVIRONMENT"]
        if "TVOTE_DATA_DIR" in e:
            values["data_dir"] = Path(e["TVOTE_DATA_DIR"])
        if e.get("TVOTE_DATABASE_URL"):
            values["database_url"] = e["TVOTE_DATABASE_URL"]
        if "TVOTE_ADMIN_TOKEN" in e:
            values["admin_token"] = e["TVOTE_ADMIN_TOKEN"]
        if "TVOTE_PUBLIC_URL" in e:
            values["public_url"] = e["TVOTE_PUBLIC_URL"]
        if "TVOTE_RATE_LIMIT" in e:
            try:
                values["rate_limit_per_minute"] = int(e["TVOTE_RATE_LIMIT"])
            except ValueError as exc:
                raise ConfigurationError("config.rate_limit", "TVOTE_RATE_LIMIT must be an integer") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
