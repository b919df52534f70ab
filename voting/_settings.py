"""Server settings: one frozen value, built from arguments, the environment or a TOML file, validated
fail-closed.

Every setting has an environment variable; a TOML file named by ``TVOTE_CONFIG`` (or ``tvote serve
--config``) may hold the same keys in lower case without the ``TVOTE_`` prefix (``admin_token = "…"``,
``jpki_trust_anchors = "/etc/tvote/jlis"``); the environment wins over the file, command-line options
over both.
The defaults are for **production**: with no settings the server refuses to start until it has an admin
token, and ``tvote serve`` checks everything the election will need before it listens
(:mod:`voting._startup`). Development is asked for explicitly (``TVOTE_ENVIRONMENT=development`` or
``tvote serve --dev``); it binds loopback only and, when no admin token is given, draws a random one at
start and writes it to a ``0600`` file in the data directory.

The settings, their environment variables and defaults are documented once, in the table of
``docs/operator-guide.md`` ("Server configuration"); ``tests/system/test_settings_doc.py`` holds that table to
:class:`Settings` (every field is a row, every documented default is the field's default).

Fail closed: a well-known token (:data:`WELL_KNOWN_TOKENS`, e.g. ``changethis``) is refused as the admin
token in every environment (:class:`~voting._errors.ConfigurationError`); outside
``development`` the admin token is required and must have at least 32 characters; in
``production`` the JPKI test policy, ``unsafe-none`` revocation, trust anchors not pinned by SHA-256
fingerprint (checked when the anchors are loaded, :mod:`voting._intake_config`), plain-HTTP digital-ID
or face-match endpoints (other than loopback) and a Digital Authentication App address that is not https
or is loopback (the emulator's) are refused. There is no setting that weakens a
cryptographic check in production, and none that swaps protocol parameters.

Length: a little over 500 lines because every setting is validated here, in one frozen value, next to its
field: splitting the checks from the fields would make a reader hunt for a setting's rule.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import urlsplit

from voting.auth import JLIS_AUTHENTICATION_ROOT_SHA256, JLIS_SIGNING_ROOT_SHA256

from ._client_address import TrustedProxies
from ._errors import ConfigurationError

if TYPE_CHECKING:
    from voting.auth import OidcProviderConfig

__all__ = [
    "ENV_VARS",
    "WELL_KNOWN_TOKENS",
    "Environment",
    "Settings",
    "is_loopback_host",
]

Environment = Literal["development", "test", "production"]

#: Tokens that appeared in documentation, templates or earlier versions (``changethis`` was the development
#: admin token, ``changethis-kiosk`` the development kiosk token of versions before enrolled kiosks). Refused
#: as the admin token in every environment.
WELL_KNOWN_TOKENS: Final[frozenset[str]] = frozenset(
    {"changethis", "changethis-kiosk", "changeme", "change-me", "secret", "password", "admin", "token"}
)
_MIN_TOKEN_LEN: Final[int] = 32
#: the longest checkpoint schedule (seconds): receipts wait for the next checkpoint for their proof
MAX_CHECKPOINT_INTERVAL: Final[int] = 3600
_HEX64: Final[re.Pattern[str]] = re.compile(r"[0-9a-f]{64}")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is the loopback interface."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_loopback(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs to start. Immutable; validated on construction."""

    environment: Environment = "production"
    data_dir: Path = field(default_factory=lambda: Path("tvote-data"))
    database_url: str | None = None
    #: ``None`` only in ``development``, where :func:`voting._startup.prepare` draws a random one at start
    admin_token: str | None = field(default=None, repr=False)
    public_url: str = "http://127.0.0.1:8000"
    #: the public address of the election record that the result declaration prints and its QR code opens
    #: (a page a resident understands, e.g. the commission's election page that links the record archive);
    #: ``None``: the booth's home page, ``<public_url>/``
    public_record_url: str | None = None
    #: the commission's name and the signatory's title printed on the result declaration (docs/result-pdf.md);
    #: ``None``: the organisation and the common name of the commission's signing certificate
    commission_name: str | None = None
    signatory_title: str | None = None
    #: voter requests per minute per voting session or credential (``voting._deps.SessionLimitDep``)
    rate_limit_per_minute: int = 120
    #: voter requests per minute per client address: a generous ceiling, since many voters share one address
    #: behind a mobile carrier's NAT or a polling place's router (``voting._deps.RateLimitDep``)
    rate_limit_per_address: int = 1200
    #: reverse proxies whose client-address header (``proxy_header``) is believed (``voting._client_address``)
    trusted_proxies: tuple[str, ...] = ()
    proxy_header: str = "x-forwarded-for"
    #: seconds a client may take to send a whole request body before it is cut with 408 ``request.timeout``
    body_timeout: int = 60
    #: the anonymous Benaloh-challenge route (``POST /voter/spoil``): a token bucket per client address
    #: (``spoil_rate_per_hour`` refilled per hour, at most ``spoil_burst`` at once) and a cap per election
    spoil_rate_per_hour: int = 600
    spoil_burst: int = 60
    max_spoiled_ballots: int = 50_000
    #: largest request body accepted (bytes); commission (``/admin/``) routes have their own, larger limit
    #: because the voter roll is uploaded through them
    max_request_bytes: int = 1024 * 1024
    max_admin_request_bytes: int = 64 * 1024 * 1024
    #: the ledger's log origin (checkpoint name); default ``tvote/<election_id>``
    log_origin: str | None = None
    #: the booth's web root (``pages/``, ``static/``; :mod:`voting._booth`); ``None``: the package's own
    #: ``voting/web/`` (the built booth, committed as package data)
    web_root: Path | None = None
    #: checkpoints on a schedule (``voting.app.keep_checkpoints``): every ``checkpoint_interval`` seconds
    #: when the log grew, or once ``checkpoint_max_entries`` entries are uncovered; ``0``: one per receipt
    checkpoint_interval: int = 10
    checkpoint_max_entries: int = 1000
    #: SHA-256 (64 hex) of the bearer token ``GET /metrics`` requires (:mod:`voting._metrics`); ``None``:
    #: the endpoint answers ``403 metrics.disabled`` outside development, and is open in development
    metrics_token_hash: str | None = None
    #: file with the roll key (64 hex); ``None``: a random key is drawn when the election is created
    roll_key_file: Path | None = None
    # -- ballot intake: My Number card (JPKI)
    jpki_trust_anchors: Path | None = None
    jpki_crl_dir: Path | None = None
    jpki_revocation: Literal["crl", "unsafe-none"] = "crl"
    jpki_test_policy: bool = False
    #: SHA-256 fingerprints (64 hex) of the anchors production accepts; empty: the J-LIS signing roots
    jpki_anchor_pins: tuple[str, ...] = ()
    # -- ballot intake: My Number card on the phone (the Digital Authentication App's signing transaction)
    dapp_base_url: str | None = None
    dapp_client_id: str | None = None
    #: PEM RSA private key registered at the app service for private_key_jwt client authentication
    dapp_client_key_file: Path | None = None
    #: where the app sends the resident back; unset: ``<public_url>/vote``
    dapp_redirect_uri: str | None = None
    dapp_timeout: int = 10
    # -- ballot intake: digital ID (OpenID Connect) + face match
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_redirect_uri: str | None = None
    face_matcher_url: str | None = None
    face_matcher_token: str | None = field(default=None, repr=False)
    face_engine_id: str | None = None
    face_reference_url: str | None = None
    face_reference_dir: Path | None = None
    oidc_acr_values: tuple[str, ...] = ()
    oidc_claims_source: Literal["verified_claims", "verified_scope"] = "verified_claims"
    oidc_trust_frameworks: tuple[str, ...] = ()
    oidc_verified_scope: str | None = None
    oidc_max_auth_age: int = 600
    oidc_jwks_min_refresh: int = 60

    def __post_init__(self) -> None:
        if self.environment not in ("development", "test", "production"):
            raise ConfigurationError("config.environment", f"unknown environment {self.environment!r}")
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        for name in (
            "roll_key_file",
            "jpki_trust_anchors",
            "jpki_crl_dir",
            "face_reference_dir",
            "dapp_client_key_file",
            "web_root",
        ):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, Path(v))
        dev = self.environment == "development"
        prod = self.environment == "production"
        if self.admin_token is None:
            if not dev:
                raise ConfigurationError(
                    "config.admin_token",
                    f"the {self.environment} environment needs an admin token: set TVOTE_ADMIN_TOKEN or "
                    f"TVOTE_ADMIN_TOKEN_FILE (at least {_MIN_TOKEN_LEN} characters, e.g. "
                    "`openssl rand -hex 32`); for development on this machine: TVOTE_ENVIRONMENT=development",
                )
        elif not isinstance(self.admin_token, str) or not self.admin_token:
            raise ConfigurationError("config.admin_token", "the admin token must be a non-empty string")
        elif self.admin_token.strip().lower() in WELL_KNOWN_TOKENS:
            raise ConfigurationError(
                "config.default_secret",
                "this admin token is well known and refused in every environment; set TVOTE_ADMIN_TOKEN to a "
                "random value (e.g. `openssl rand -hex 32`)",
            )
        elif not dev:
            if len(self.admin_token) < _MIN_TOKEN_LEN:
                raise ConfigurationError(
                    "config.admin_token", f"the admin token must have at least {_MIN_TOKEN_LEN} characters"
                )
        if self.rate_limit_per_minute < 1:
            raise ConfigurationError("config.rate_limit", "the rate limit must be at least 1 per minute")
        for name in ("rate_limit_per_address", "body_timeout"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigurationError(f"config.{name}", f"{name} must be an integer of at least 1")
        proxies = tuple(str(p).strip() for p in self.trusted_proxies if str(p).strip())
        TrustedProxies.parse(proxies, self.proxy_header)  # refuses a malformed entry or header name
        object.__setattr__(self, "trusted_proxies", proxies)
        for name in ("spoil_rate_per_hour", "spoil_burst", "max_spoiled_ballots"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigurationError(f"config.{name}", f"{name} must be an integer of at least 1")
        if (
            not isinstance(self.checkpoint_interval, int)
            or isinstance(self.checkpoint_interval, bool)
            or not 0 <= self.checkpoint_interval <= MAX_CHECKPOINT_INTERVAL
        ):
            raise ConfigurationError(
                "config.checkpoint_interval",
                f"checkpoint_interval is whole seconds from 0 to {MAX_CHECKPOINT_INTERVAL}",
            )
        if (
            not isinstance(self.checkpoint_max_entries, int)
            or isinstance(self.checkpoint_max_entries, bool)
            or self.checkpoint_max_entries < 1
        ):
            raise ConfigurationError(
                "config.checkpoint_max_entries", "checkpoint_max_entries must be an integer of at least 1"
            )
        for name in ("max_request_bytes", "max_admin_request_bytes"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1024:
                raise ConfigurationError(f"config.{name}", f"{name} must be an integer of at least 1024")
        for name in ("oidc_acr_values", "oidc_trust_frameworks"):
            v = getattr(self, name)
            object.__setattr__(self, name, (v,) if isinstance(v, str) else tuple(v))
        raw_pins = self.jpki_anchor_pins
        if isinstance(raw_pins, str):
            raw_pins = (raw_pins,)
        pins = tuple(p.replace(":", "").strip().lower() for p in raw_pins if p.strip())
        for p in pins:
            if not _HEX64.fullmatch(p):
                raise ConfigurationError(
                    "config.jpki_anchor_pins", "trust anchor pins are SHA-256 fingerprints (64 hex digits)"
                )
            if p in JLIS_AUTHENTICATION_ROOT_SHA256:
                raise ConfigurationError(
                    "config.jpki_anchor_pins",
                    f"{JLIS_AUTHENTICATION_ROOT_SHA256[p]} is not a signing root and cannot be pinned",
                )
        object.__setattr__(self, "jpki_anchor_pins", pins)
        if self.metrics_token_hash is not None:
            h = self.metrics_token_hash.strip().lower() if isinstance(self.metrics_token_hash, str) else ""
            if not _HEX64.fullmatch(h):
                raise ConfigurationError(
                    "config.metrics_token_hash",
                    "TVOTE_METRICS_TOKEN_HASH is the SHA-256 of the metrics token (64 hex digits), e.g. "
                    '`printf %s "$TOKEN" | sha256sum`',
                )
            object.__setattr__(self, "metrics_token_hash", h)
        # JPKI
        if self.jpki_revocation not in ("crl", "unsafe-none"):
            raise ConfigurationError(
                "config.jpki_revocation", "TVOTE_JPKI_REVOCATION is 'crl' or 'unsafe-none'"
            )
        if prod and self.jpki_revocation == "unsafe-none":
            raise ConfigurationError(
                "config.unsafe", "revocation checking cannot be switched off in production"
            )
        if prod and self.jpki_test_policy:
            raise ConfigurationError(
                "config.unsafe", "the JPKI test certificate policy is refused in production"
            )
        no_crl = self.jpki_revocation == "crl" and self.jpki_crl_dir is None
        if self.jpki_trust_anchors is not None and no_crl:
            raise ConfigurationError(
                "config.jpki_crl",
                "JPKI needs revocation data: set TVOTE_JPKI_CRL_DIR (or, outside production, explicitly "
                "TVOTE_JPKI_REVOCATION=unsafe-none)",
            )
        # digital ID
        oidc = (self.oidc_issuer, self.oidc_client_id, self.oidc_client_secret, self.oidc_redirect_uri)
        if any(oidc) and not all(oidc):
            raise ConfigurationError(
                "config.oidc",
                "set all of TVOTE_OIDC_ISSUER, TVOTE_OIDC_CLIENT_ID, TVOTE_OIDC_CLIENT_SECRET and "
                "TVOTE_OIDC_REDIRECT_URI, or none",
            )
        if all(oidc):
            self._check_oidc_assurance()
        references = (self.face_reference_url is not None) + (self.face_reference_dir is not None)
        if (self.face_matcher_url is None and references) or (self.face_matcher_url and references != 1):
            raise ConfigurationError(
                "config.face",
                "set TVOTE_FACE_MATCHER_URL with one of TVOTE_FACE_REFERENCE_URL or "
                "TVOTE_FACE_REFERENCE_DIR, or none of them",
            )
        for name in ("commission_name", "signatory_title"):
            text = getattr(self, name)
            if text is not None and (
                not isinstance(text, str) or not text.strip() or len(text) > 200 or not text.isprintable()
            ):
                raise ConfigurationError(
                    f"config.{name}", f"{name} must be printable text of 1 to 200 characters"
                )
        for name in (
            "public_record_url",
            "oidc_issuer",
            "oidc_redirect_uri",
            "face_matcher_url",
            "face_reference_url",
        ):
            url = getattr(self, name)
            if url is None:
                continue
            scheme = urlsplit(url).scheme
            if scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise ConfigurationError(f"config.{name}", f"{name} must be an http(s) URL")
            if prod and scheme != "https" and not _is_loopback(url):
                raise ConfigurationError(f"config.{name}", f"{name} must use https in production")
        if not dev and self.oidc_client_secret is not None and len(self.oidc_client_secret) < 16:
            raise ConfigurationError("config.oidc", "the OIDC client secret is too short")
        self._check_dapp(prod)

    def _check_dapp(self, prod: bool) -> None:
        """The Digital Authentication App: all of base URL, client id and client key, or none; https and not
        loopback in production (a loopback address is the emulator's); JPKI must be configured with it."""
        dapp = (self.dapp_base_url, self.dapp_client_id, self.dapp_client_key_file)
        if any(dapp) and not all(dapp):
            raise ConfigurationError(
                "config.dapp",
                "set all of TVOTE_DAPP_BASE_URL, TVOTE_DAPP_CLIENT_ID and TVOTE_DAPP_CLIENT_KEY_FILE, "
                "or none",
            )
        if (
            not isinstance(self.dapp_timeout, int)
            or isinstance(self.dapp_timeout, bool)
            or not 1 <= self.dapp_timeout <= 60
        ):
            raise ConfigurationError("config.dapp_timeout", "dapp_timeout is whole seconds from 1 to 60")
        if not all(dapp):
            return
        if self.jpki_trust_anchors is None:
            raise ConfigurationError(
                "config.dapp",
                "signing with the card on the phone is a JPKI signature: it needs TVOTE_JPKI_TRUST_ANCHORS",
            )
        for name in ("dapp_base_url", "dapp_redirect_uri"):
            url = getattr(self, name)
            if url is None:
                continue
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigurationError(f"config.{name}", f"{name} must be an http(s) URL")
            if prod and (parts.scheme != "https" or _is_loopback(url)):
                raise ConfigurationError(
                    f"config.{name}",
                    f"{name} must be the app service's https address in production (a loopback or plain-http "
                    "address is the emulator's)",
                )

    @property
    def effective_public_record_url(self) -> str:
        """The public record's address printed on the result declaration: ``public_record_url``, else the
        booth's home page ``<public_url>/``."""
        return self.public_record_url or self.public_url.rstrip("/") + "/"

    @property
    def effective_dapp_redirect_uri(self) -> str:
        """Where the app sends the resident back: ``dapp_redirect_uri``, or the booth at
        ``<public_url>/vote``."""
        return self.dapp_redirect_uri or self.public_url.rstrip("/") + "/vote"

    def _check_oidc_assurance(self) -> None:
        """The digital-ID assurance settings, by the one definition (``OidcProviderConfig``)."""
        from voting.auth import OidcError

        if not isinstance(self.oidc_jwks_min_refresh, int) or not 1 <= self.oidc_jwks_min_refresh <= 3600:
            raise ConfigurationError(
                "config.oidc_jwks_min_refresh", "oidc_jwks_min_refresh must be 1 to 3600 seconds"
            )
        try:
            self.oidc_provider()
        except OidcError as e:
            raise ConfigurationError("config.oidc_assurance", str(e).removeprefix("oidc.config: ")) from None

    def oidc_provider(self) -> OidcProviderConfig | None:
        """The digital-ID provider these settings describe (``None`` when OIDC is not configured)."""
        from voting.auth import OidcProviderConfig

        if self.oidc_issuer is None:
            return None
        assert self.oidc_client_id and self.oidc_client_secret and self.oidc_redirect_uri
        return OidcProviderConfig(
            self.oidc_issuer.rstrip("/"),
            self.oidc_client_id,
            self.oidc_client_secret,
            self.oidc_redirect_uri,
            acr_values=tuple(self.oidc_acr_values),
            claims_source=self.oidc_claims_source,
            trust_frameworks=tuple(self.oidc_trust_frameworks),
            verified_scope=self.oidc_verified_scope,
            max_auth_age=self.oidc_max_auth_age,
        )

    # ------------------------------------------------------------------------------------------ derived

    @property
    def effective_database_url(self) -> str:
        """The database URL in use (SQLite in ``data_dir`` unless one was given)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tvote.sqlite3').resolve()}"

    @property
    def effective_web_root(self) -> Path:
        """The booth's web root in use: ``web_root`` or the package's ``voting/web/``."""
        from ._booth import PACKAGE_WEB_ROOT

        return PACKAGE_WEB_ROOT if self.web_root is None else self.web_root

    @property
    def effective_jpki_anchor_pins(self) -> frozenset[str]:
        """The trust-anchor pins in force: the configured ones, or the J-LIS signing roots."""
        return frozenset(self.jpki_anchor_pins or JLIS_SIGNING_ROOT_SHA256)

    @property
    def proxies(self) -> TrustedProxies:
        """The reverse proxies whose client-address header is believed (:mod:`voting._client_address`)."""
        return TrustedProxies.parse(self.trusted_proxies, self.proxy_header)

    def roll_key(self) -> bytes | None:
        """The configured roll key (32 bytes) from ``roll_key_file``, or ``None`` (random per election)."""
        if self.roll_key_file is None:
            return None
        try:
            text = self.roll_key_file.read_text(encoding="ascii").strip().lower()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigurationError("config.roll_key", f"cannot read the roll key file: {e}") from e
        if not _HEX64.fullmatch(text):
            raise ConfigurationError("config.roll_key", "the roll key file must hold 64 hex digits")
        key = bytes.fromhex(text)
        if key == bytes(32):
            raise ConfigurationError("config.roll_key", "the roll key must not be all zeros")
        return key

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, config_file: Path | None = None, **overrides: object
    ) -> Settings:
        """Build settings from a TOML file (``config_file`` or ``TVOTE_CONFIG``), then ``TVOTE_*`` variables;
        keyword overrides win (``None`` means unset)."""
        e = os.environ if env is None else env
        if e.get("TVOTE_KIOSK_TOKEN_HASHES"):  # the shared kiosk token of earlier versions: never ignored
            raise ConfigurationError(
                "config.kiosk_tokens",
                "kiosk tokens no longer exist; unset TVOTE_KIOSK_TOKEN_HASHES and enrol each kiosk "
                "(tvote admin kiosk enrol, docs/kiosk.md)",
            )
        raw: dict[str, str] = {}
        path = config_file or (Path(e["TVOTE_CONFIG"]) if e.get("TVOTE_CONFIG") else None)
        if path is not None:
            raw.update(_read_config_file(path))
        raw.update({k: v for k, v in e.items() if k in ENV_VARS.values() or k.endswith("_FILE")})
        values = _parse(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


#: field name → environment variable
ENV_VARS: Final[dict[str, str]] = {
    f.name: "TVOTE_" + ("RATE_LIMIT" if f.name == "rate_limit_per_minute" else f.name.upper())
    for f in fields(Settings)
}
_SECRET_FILES: Final[dict[str, str]] = {
    "TVOTE_ADMIN_TOKEN_FILE": "admin_token",
    "TVOTE_OIDC_CLIENT_SECRET_FILE": "oidc_client_secret",
    "TVOTE_FACE_MATCHER_TOKEN_FILE": "face_matcher_token",
}
_PATHS: Final[frozenset[str]] = frozenset(
    {
        "data_dir",
        "roll_key_file",
        "jpki_trust_anchors",
        "jpki_crl_dir",
        "face_reference_dir",
        "dapp_client_key_file",
        "web_root",
    }
)
_TUPLES: Final[frozenset[str]] = frozenset(
    {"oidc_acr_values", "oidc_trust_frameworks", "trusted_proxies", "jpki_anchor_pins"}
)
_INTS: Final[frozenset[str]] = frozenset(
    {
        "rate_limit_per_minute",
        "rate_limit_per_address",
        "body_timeout",
        "spoil_rate_per_hour",
        "spoil_burst",
        "max_spoiled_ballots",
        "checkpoint_interval",
        "checkpoint_max_entries",
        "max_request_bytes",
        "max_admin_request_bytes",
        "oidc_max_auth_age",
        "oidc_jwks_min_refresh",
        "dapp_timeout",
    }
)


def _read_config_file(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigurationError("config.file", f"cannot read the config file {path}: {e}") from e
    known = {v.removeprefix("TVOTE_").lower(): v for v in (*ENV_VARS.values(), *_SECRET_FILES)}
    out: dict[str, str] = {}
    for k, v in data.items():
        if k == "kiosk_token_hashes":  # the shared kiosk token of earlier versions: gone, never ignored
            raise ConfigurationError(
                "config.kiosk_tokens",
                f"{path}: kiosk tokens no longer exist; remove kiosk_token_hashes and enrol each kiosk "
                "(tvote admin kiosk enrol, docs/kiosk.md)",
            )
        if k not in known:
            raise ConfigurationError("config.file", f"unknown setting {k!r} in {path}")
        if isinstance(v, bool):
            v = "1" if v else "0"
        elif isinstance(v, list):
            v = ",".join(str(x) for x in v)
        out[known[k]] = str(v)
    return out


def _parse(raw: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for name, var in ENV_VARS.items():
        if var not in raw:
            continue
        v = raw[var]
        if name in _INTS:
            try:
                values[name] = int(v)
            except ValueError as exc:
                raise ConfigurationError(f"config.{name}", f"{var} must be an integer") from exc
        elif name == "jpki_test_policy":
            if v.strip().lower() not in ("0", "1", "true", "false", ""):
                raise ConfigurationError("config.jpki_test_policy", "TVOTE_JPKI_TEST_POLICY is 0 or 1")
            values[name] = v.strip().lower() in ("1", "true")
        elif name in _TUPLES:
            values[name] = tuple(h for h in re.split(r"[,\s]+", v) if h)
        elif not v:
            continue  # an empty variable means unset
        elif name in _PATHS:
            values[name] = Path(v)
        else:
            values[name] = v
    for var, name in _SECRET_FILES.items():
        if raw.get(var) and name not in values:
            try:
                values[name] = Path(raw[var]).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as e:
                raise ConfigurationError("config.secret_file", f"cannot read {var}: {e}") from e
    return values
