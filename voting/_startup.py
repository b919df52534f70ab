"""Start-up: prepare the data directory, then check everything the whole election will need, before the
server listens.

``tvote serve`` (and :func:`voting.app.create_app`) run, in order::

    check_bind(settings, host)               # development: loopback only (exit 2 otherwise)
    prepared = prepare(settings)             # data dir 0700; development: random tokens, test commission key
    raise_for(run_checks(settings))          # every server check: nothing opened yet
    ... open the database ...
    raise_for(run_checks(settings, manifest=service.manifest))   # the per-election checks, if it exists

A failed check is a :class:`Problem` (the check's name and one operator-readable line); :func:`raise_for`
raises :class:`StartupCheckFailed` listing **all** of them, which ``tvote serve`` prints one per line before
exiting with status 2, before anything binds a port. ``POST /admin/election`` runs the per-election checks
on the new manifest in production and refuses it (``422 election.preflight``) with the same list.

Adding a check: write ``def _check_x(ctx: StartupContext) -> list[str]`` returning the problems (empty:
fine), and add ``StartupCheck("x", _check_x)`` to :data:`CHECKS` (``per_election=True`` if it needs the
manifest). Checks read only; they never create, fix or fetch anything (that is :func:`prepare`'s job), and
refuse nothing outside their own subject. What is *required* (not merely well-formed when given) is
required in production; ``development`` and ``test`` check that what is configured can be used.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ._errors import ConfigurationError
from ._settings import Settings, is_loopback_host

__all__ = [
    "CHECKS",
    "DEV_ADMIN_TOKEN_FILE",
    "Prepared",
    "Problem",
    "StartupCheck",
    "StartupCheckFailed",
    "StartupContext",
    "check_bind",
    "election_problems",
    "prepare",
    "raise_for",
    "run_checks",
]

_log = logging.getLogger("tvote.startup")

#: where ``development`` writes the admin token it drew at start (mode 0600, in the data directory)
DEV_ADMIN_TOKEN_FILE: Final[str] = "dev-admin-token"  # noqa: S105 - a file name
#: files of the data directory that hold secrets (production refuses them group- or world-accessible)
_SECRET_FILES: Final[tuple[str, ...]] = (
    "tvote.sqlite3",
    "tvote.sqlite3-wal",
    "tvote.sqlite3-shm",
    "ledger-signing.key",
    "commission-signer.key",
    DEV_ADMIN_TOKEN_FILE,
)
#: protocol brief §6: production requires a witness quorum of at least 2 of 3
MIN_WITNESS_QUORUM: Final[int] = 2
MIN_WITNESSES: Final[int] = 3


# ------------------------------------------------------------------------------------------------ types


@dataclass(frozen=True, slots=True)
class Problem:
    """One failed start-up check: ``check`` names it, ``message`` says what to fix (no personal data)."""

    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


@dataclass(frozen=True, slots=True)
class StartupContext:
    """What a check may look at: the settings, the time, and the election's manifest once it exists."""

    settings: Settings
    now: dt.datetime
    manifest: Any | None = None  # voting._manifest.Manifest

    @property
    def production(self) -> bool:
        return self.settings.environment == "production"


@dataclass(frozen=True, slots=True)
class StartupCheck:
    name: str
    run: Callable[[StartupContext], Sequence[str]]
    #: needs the election's manifest: runs once the election exists (start-up) and on ``admin create``
    per_election: bool = False


class StartupCheckFailed(ConfigurationError):
    """Start-up checks failed; ``problems`` lists every one (``details``: ``[{"check", "msg"}]``)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "config.startup",
            f"{len(self.problems)} start-up check(s) failed: " + "; ".join(map(str, self.problems)),
            details=[{"check": p.check, "msg": p.message} for p in self.problems],
        )


@dataclass(frozen=True, slots=True)
class Prepared:
    """The settings to run with (development: the drawn tokens filled in) and what to tell the operator."""

    settings: Settings
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------- bind, prepare


def check_bind(settings: Settings, host: str) -> None:
    """Development binds loopback only (its tokens sit in a file and test cards may be accepted)."""
    if settings.environment == "development" and not is_loopback_host(host):
        raise ConfigurationError(
            "config.bind",
            f"the development environment serves loopback only; refusing --host {host} "
            "(use 127.0.0.1, or run TVOTE_ENVIRONMENT=production behind a TLS proxy)",
        )


def _write_secret(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, mode 0600 from the start (never readable by others, even briefly)."""
    from ledger.files import write_atomic

    write_atomic(path, text + "\n", mode=0o600)


def prepare(settings: Settings, *, now: dt.datetime | None = None) -> Prepared:
    """Create the data directory (0700). In ``development`` only: draw a random admin token when none is
    configured (written to ``dev-admin-token``, mode 0600, in the data directory; there is no built-in
    token) and generate a TEST commission signing key if there is none. Idempotent: settings that already
    hold a token are returned unchanged. (Polling-place kiosks have no token: each is enrolled with its
    own key, ``docs/kiosk.md``.)"""
    from ._commission_key import ensure_test_commission_signer
    from ._db import make_private_dir

    notes: list[str] = []
    try:
        make_private_dir(settings.data_dir)
    except OSError as e:
        raise ConfigurationError(
            "config.data_dir", f"cannot create the data directory {settings.data_dir}: {e.strerror}"
        ) from None
    if settings.environment != "development":
        return Prepared(settings)
    changes: dict[str, object] = {}
    if settings.admin_token is None:
        token = secrets.token_urlsafe(32)
        path = settings.data_dir / DEV_ADMIN_TOKEN_FILE
        _write_secret(path, token)
        changes["admin_token"] = token
        notes.append(f'development admin token drawn: export TVOTE_ADMIN_TOKEN="$(cat {path.resolve()})"')
    if ensure_test_commission_signer(settings, now):
        notes.append(f"development: a TEST commission signing key was generated in {settings.data_dir}")
    for n in notes:
        _log.warning("%s", n)
    return Prepared(settings.with_(**changes) if changes else settings, tuple(notes))


# ----------------------------------------------------------------------------------------------- checks


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _check_data_dir(ctx: StartupContext) -> list[str]:
    d = ctx.settings.data_dir
    if not d.is_dir():
        return [f"the data directory {d} does not exist or is not a directory"]
    problems = []
    if not os.access(d, os.W_OK | os.X_OK):
        problems.append(f"the data directory {d} is not writable by this process")
    if not ctx.production:
        return problems
    st = d.stat()
    if stat.S_IMODE(st.st_mode) & 0o077:
        problems.append(
            f"the data directory {d} is accessible to group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"it holds the roll key, the ledger key and the evidence: run `chmod 700 {d.resolve()}`"
        )
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        problems.append(f"the data directory {d} is owned by uid {st.st_uid}, not by this process")
    for name in _SECRET_FILES:
        f = d / name
        if f.is_file() and _mode(f) & 0o077:
            problems.append(f"{f} is accessible to group or others (mode {_mode(f):04o}): `chmod 600 {f}`")
    return problems


def _check_commission_key(ctx: StartupContext) -> list[str]:
    from ._commission_key import KEY_FILE, commission_key_problems

    s = ctx.settings
    if not ctx.production and not (s.data_dir / KEY_FILE).exists():
        return []  # generated from a TEST commission CA (development: at start-up; test: on first use)
    valid_until = ctx.manifest.voting_period.closes if ctx.manifest is not None else None
    return commission_key_problems(s, ctx.now, valid_until=valid_until)


def _anchors(ctx: StartupContext) -> tuple[list[Any], list[str]]:
    from voting.auth import AuthError, load_trust_anchors

    src = ctx.settings.jpki_trust_anchors
    if src is None:
        return [], []
    try:
        return list(load_trust_anchors(src)), []
    except (OSError, AuthError) as e:
        return [], [f"cannot load the JPKI trust anchors from {src}: {e}"]


def _check_jpki_trust_anchors(ctx: StartupContext) -> list[str]:
    anchors, problems = _anchors(ctx)
    for a in anchors:
        if not a.not_valid_before_utc <= ctx.now <= a.not_valid_after_utc:
            problems.append(
                f"JPKI trust anchor {a.subject.rfc4514_string()} is not valid now "
                f"(valid {a.not_valid_before_utc:%Y-%m-%d} to {a.not_valid_after_utc:%Y-%m-%d})"
            )
    return problems


def _check_jpki_anchor_pins(ctx: StartupContext) -> list[str]:
    """Production: every JPKI trust anchor is pinned by SHA-256 (``TVOTE_JPKI_ANCHOR_PINS``, by default the
    J-LIS signing roots) and none is a J-LIS user-authentication root (``docs/authentication.md``)."""
    from voting.auth import anchor_pin_problems

    if not ctx.production:
        return []  # development and test run on the test CA
    anchors, bad = _anchors(ctx)
    if bad:
        return []  # reported by jpki_trust_anchors
    return anchor_pin_problems(anchors, ctx.settings.effective_jpki_anchor_pins)


def _check_crl_source(ctx: StartupContext) -> list[str]:
    """With JPKI on and revocation by CRL: the CRL directory loads, and each trust anchor has a fresh
    complete CRL it signed (otherwise every card ballot would be refused with
    ``jpki.revocation_unavailable``; a delta CRL is never a complete CRL). Whether every municipality's
    partition is present cannot be known before cards arrive: a missing one refuses those cards with
    ``jpki.crl_scope``."""
    from cryptography import x509

    from voting.auth import AuthError, load_crl

    s = ctx.settings
    anchors, bad = _anchors(ctx)
    if bad or not anchors or s.jpki_revocation != "crl":
        return []
    d = s.jpki_crl_dir
    if d is None or not d.is_dir():
        return [f"the CRL directory {d} does not exist (TVOTE_JPKI_CRL_DIR)"]
    crls, problems = [], []
    try:
        files = sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith("."))
    except OSError as e:
        return [f"cannot read the CRL directory {d}: {e.strerror}"]
    for f in files:
        try:
            crls.append(load_crl(f.read_bytes()))
        except (OSError, AuthError) as e:
            problems.append(f"CRL file {f.name} in {d} does not load: {e}")
    for a in anchors:
        fresh = [
            c
            for c in crls
            if c.issuer == a.subject
            and c.is_signature_valid(a.public_key())
            and c.next_update_utc is not None
            and c.last_update_utc <= ctx.now < c.next_update_utc
            and not any(isinstance(e.value, x509.DeltaCRLIndicator) for e in c.extensions)
        ]
        if not fresh:
            problems.append(
                f"no fresh complete CRL signed by the trust anchor {a.subject.rfc4514_string()} in {d}: "
                "every card it issued would be refused (fetch the current CRL)"
            )
    return problems


def _check_oidc(ctx: StartupContext) -> list[str]:
    """Digital-ID voting needs the provider, the face-match engine and the reference-photo source."""
    s = ctx.settings
    if not ctx.production:
        return []
    oidc, face = s.oidc_issuer is not None, s.face_matcher_url is not None
    if oidc and not face:
        return [
            "digital-ID voting (TVOTE_OIDC_*) is configured without the face match: set "
            "TVOTE_FACE_MATCHER_URL and TVOTE_FACE_REFERENCE_URL"
        ]
    if face and not oidc:
        return ["the face match is configured without a digital-ID provider: set TVOTE_OIDC_*"]
    return []


def _check_dapp(ctx: StartupContext) -> list[str]:
    """The Digital Authentication App's client key loads (an RSA private key of at least 2048 bits) and, in
    production, is readable by this process only. The address itself is checked by the settings (https and
    not loopback in production: a loopback address is the emulator's)."""
    from voting.auth import AuthError, DappConfig, DigitalAuthAppClient

    s = ctx.settings
    if s.dapp_base_url is None or s.dapp_client_id is None or s.dapp_client_key_file is None:
        return []
    f = s.dapp_client_key_file
    try:
        pem = f.read_bytes()
    except OSError as e:
        return [f"cannot read the Digital Authentication App client key {f}: {e.strerror}"]
    try:
        DigitalAuthAppClient(
            DappConfig(s.dapp_base_url, s.dapp_client_id, pem, s.effective_dapp_redirect_uri)
        )
    except AuthError as e:
        return [f"the Digital Authentication App client key {f} is unusable: {e.operator_message}"]
    if ctx.production and _mode(f) & 0o077:
        return [f"{f} is accessible to group or others (mode {_mode(f):04o}): `chmod 600 {f}`"]
    return []


def _methods(s: Settings) -> dict[str, bool]:
    jpki = s.jpki_trust_anchors is not None
    return {"jpki": jpki, "oidc+face": s.oidc_issuer is not None and s.face_matcher_url is not None}


def _check_intake(ctx: StartupContext) -> list[str]:
    s = ctx.settings
    if not ctx.production:
        return []
    problems = []
    if not any(_methods(s).values()):
        problems.append(
            "no ballot-intake method is configured: set TVOTE_JPKI_TRUST_ANCHORS (My Number card) and/or "
            "TVOTE_OIDC_* with TVOTE_FACE_* (digital ID)"
        )
    return problems


def _check_election_methods(ctx: StartupContext) -> list[str]:
    if not ctx.production or ctx.manifest is None:
        return []
    have = _methods(ctx.settings)
    return [
        f"the manifest allows '{m}' but the server is not configured for it"
        for m in ctx.manifest.auth_methods
        if not have.get(m, False)
    ]


def _check_witnesses(ctx: StartupContext) -> list[str]:
    if ctx.manifest is None:
        return []
    w = ctx.manifest.witnesses
    if not ctx.production:
        if w.quorum == 0:  # development and test keep working, and say what that means
            _log.warning(
                "the ledger is UNWITNESSED: the manifest names no witnesses (quorum 0); no checkpoint will "
                "be cosigned, tvote-verify fails V5 on its record (unless --unsafe-allow-unwitnessed), and "
                "production refuses this manifest"
            )
        return []
    if w.quorum < MIN_WITNESS_QUORUM or len(w.keys) < MIN_WITNESSES:
        return [
            f"production needs at least {MIN_WITNESSES} witnesses and a quorum of at least "
            f"{MIN_WITNESS_QUORUM} in the manifest (it has {len(w.keys)} witnesses, quorum {w.quorum})"
        ]
    return []


def _check_checkpoints(ctx: StartupContext) -> list[str]:
    if not ctx.production or ctx.settings.checkpoint_interval > 0:
        return []
    return [
        "TVOTE_CHECKPOINT_INTERVAL=0 issues a checkpoint for every receipt, which gives each ballot a public "
        "timestamp; production issues checkpoints on a schedule (default every 10 s)"
    ]


def _check_oversight(ctx: StartupContext) -> list[str]:
    """Production: the manifest names the independent observers' oversight key, so intake keeps the private
    authentication evidence only sealed to it (``voting._oversight``) and the observers can audit
    eligibility (``tvote audit-evidence``)."""
    if not ctx.production or ctx.manifest is None:
        return []
    if ctx.manifest.oversight is None:
        return [
            "production needs the observers' oversight key in the manifest (oversight.x25519_public_key, "
            "made by `tvote observers keygen`): without it the authentication evidence would be kept in "
            "the clear and eligibility could not be audited independently"
        ]
    return []


def _check_manifest_pins(ctx: StartupContext) -> list[str]:
    """Production: the manifest pins the log key, the JPKI roots, the commission root and the trustees'
    enrolment keys; in every environment, pins that are given equal this server's configuration."""
    from ._pins import pin_problems

    if ctx.manifest is None:
        return []
    return pin_problems(ctx.settings, ctx.manifest, production=ctx.production)


#: every start-up check, in the order they are reported
CHECKS: Final[tuple[StartupCheck, ...]] = (
    StartupCheck("data_dir", _check_data_dir),
    StartupCheck("commission_key", _check_commission_key),
    StartupCheck("jpki_trust_anchors", _check_jpki_trust_anchors),
    StartupCheck("jpki_anchor_pins", _check_jpki_anchor_pins),
    StartupCheck("crl_source", _check_crl_source),
    StartupCheck("oidc", _check_oidc),
    StartupCheck("dapp", _check_dapp),
    StartupCheck("intake", _check_intake),
    StartupCheck("checkpoints", _check_checkpoints),
    StartupCheck("commission_key_validity", _check_commission_key, per_election=True),
    StartupCheck("auth_methods", _check_election_methods, per_election=True),
    StartupCheck("witnesses", _check_witnesses, per_election=True),
    StartupCheck("oversight", _check_oversight, per_election=True),
    StartupCheck("manifest_pins", _check_manifest_pins, per_election=True),
)


def run_checks(
    settings: Settings,
    manifest: Any | None = None,
    *,
    now: dt.datetime | None = None,
    checks: Sequence[StartupCheck] = CHECKS,
) -> list[Problem]:
    """Run the server checks (``manifest`` is ``None``) or the per-election checks (the manifest given);
    return every problem found (empty: ready). A check that crashes is reported as a problem too."""
    ctx = StartupContext(settings, now or dt.datetime.now(dt.UTC), manifest)
    problems: list[Problem] = []
    for c in checks:
        if c.per_election != (manifest is not None):
            continue
        try:
            found = list(c.run(ctx))
        except Exception as e:  # a broken check must stop the start with a message, not a traceback
            found = [f"the check failed unexpectedly ({type(e).__name__})"]
        problems.extend(Problem(c.name, m) for m in found)
    return problems


def election_problems(settings: Settings, manifest: Any, *, now: dt.datetime | None = None) -> list[Problem]:
    """The per-election checks for ``manifest`` (used before ``election.manifest`` is appended)."""
    return run_checks(settings, manifest, now=now)


def raise_for(problems: Sequence[Problem]) -> None:
    """Raise :class:`StartupCheckFailed` listing ``problems``, if there are any."""
    if problems:
        raise StartupCheckFailed(problems)
