"""Ballot intake wired from the server settings: the ONE construction path of :class:`IntakeService`.

``tvote serve`` (:func:`voting.app.create_app`), the tests and ``tvote demo`` all build intake here::

    config = IntakeConfig.from_settings(settings)          # at start-up: loads and checks every file
    provider = IntakeProvider(config, service)              # app.state.intake_provider
    intake = provider.get()                                 # on the first voter request, once the
                                                            # election (and so its roll key) exists

:meth:`IntakeConfig.from_settings` reads the JPKI trust anchors, the CRL directory (or the explicitly chosen
``UnsafeNoRevocationCheck``), the Digital Authentication App's client key, the digital-ID provider, the
face-match engine and reference source, and raises
:class:`~voting._errors.ConfigurationError` on anything unusable, so a misconfigured server does not start
(in production this includes a trust anchor that is not pinned: :func:`check_production_anchors`). What is
not configured stays ``None`` and the intake refuses that method with ``auth.unavailable`` (403). Tests and
the demo may inject a face matcher, a reference-image source and the OIDC client's ``httpx`` options
(transport, TLS context) — never a weaker check.

Also here: :class:`CrlDirectoryChecker` (the built-in :class:`~voting.auth.CrlFileChecker` over a directory
the operator refreshes, re-read when its files change; fails closed) and :class:`HttpReferenceSource` (the
reference photo of the roll resident a digital-ID login matched, asked by voter alias, fetched per cast and
kept only in memory; ``voting.auth.DirectoryReferencePhotoSource`` is the directory-backed one).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
from cryptography import x509

from voting.auth import (
    JPKI_SIGN_POLICY_OID,
    JPKI_TEST_SIGN_POLICY_OID,
    AuthError,
    CrlFileChecker,
    DappConfig,
    DigitalAuthAppClient,
    DirectoryReferencePhotoSource,
    FaceMatcher,
    FaceMatchError,
    HttpFaceMatcher,
    JpkiVerifier,
    OidcProviderConfig,
    OidcRelyingParty,
    ReferenceImageSource,
    ReferencePhotoSource,
    RevocationChecker,
    RevocationError,
    RollKey,
    SigningApp,
    UnsafeNoRevocationCheck,
    check_anchor_pins,
    load_trust_anchors,
)

from ._errors import ConfigurationError
from ._settings import Settings
from .service import MAX_SPOILED, IntakeService

__all__ = [
    "CrlDirectoryChecker",
    "HttpReferenceSource",
    "IntakeConfig",
    "IntakeProvider",
    "check_production_anchors",
]

_IMAGE_TYPES: Final[frozenset[str]] = frozenset({"image/jpeg", "image/png", "image/webp"})


def check_production_anchors(anchors: Iterable[x509.Certificate], settings: Settings) -> None:
    """The start-up check of production trust anchors: every anchor must be pinned by SHA-256
    fingerprint (``settings.effective_jpki_anchor_pins``, by default the J-LIS signing roots) and none may
    be a J-LIS user-authentication root. Raises :class:`ConfigurationError` ``config.jpki_anchor_pins``
    naming each refused anchor. :meth:`IntakeConfig.from_settings` calls it in production, before the
    server listens."""
    try:
        check_anchor_pins(anchors, settings.effective_jpki_anchor_pins)
    except AuthError as e:
        raise ConfigurationError("config.jpki_anchor_pins", str(e)) from e


class CrlDirectoryChecker:
    """:class:`~voting.auth.CrlFileChecker` over every regular, non-hidden file of ``directory``.

    The directory is re-read when a file appears, disappears or changes (checked at most every
    ``min_interval`` seconds), so the operator refreshes CRLs by replacing files (write a temporary
    ``.name`` file and rename it). A directory that cannot be read or holds a malformed CRL makes every
    check fail with ``jpki.revocation_unavailable`` until it is fixed (fail closed); at start-up it is a
    :class:`ConfigurationError`.
    """

    def __init__(
        self, directory: Path, *, min_interval: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._dir = Path(directory)
        self._interval = min_interval
        self._clock = clock
        self._lock = threading.Lock()
        try:
            sig = self._signature()
            if not sig:
                raise ConfigurationError("config.jpki_crl", f"the CRL directory {self._dir} holds no CRL")
            self._checker: CrlFileChecker | None = self._load(sig)
        except (OSError, AuthError) as e:
            raise ConfigurationError("config.jpki_crl", f"cannot load the CRLs in {self._dir}: {e}") from e
        self._sig: tuple[tuple[str, int, int], ...] | None = sig
        self._checked = self._clock()

    def _files(self) -> list[Path]:
        return sorted(f for f in self._dir.iterdir() if f.is_file() and not f.name.startswith("."))

    def _signature(self) -> tuple[tuple[str, int, int], ...]:
        out = []
        for f in self._files():
            st = f.stat()
            out.append((f.name, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def _load(self, sig: tuple[tuple[str, int, int], ...]) -> CrlFileChecker:
        return CrlFileChecker.from_paths([self._dir / name for name, _, _ in sig])

    def _current(self) -> CrlFileChecker:
        with self._lock:
            now = self._clock()
            if self._checker is None or now - self._checked >= self._interval:
                self._checked = now
                try:
                    sig = self._signature()
                    if sig != self._sig or self._checker is None:
                        self._checker, self._sig = None, None
                        if sig:
                            self._checker, self._sig = self._load(sig), sig
                except (OSError, AuthError):
                    self._checker, self._sig = None, None
            if self._checker is None:
                raise RevocationError(
                    "jpki.revocation_unavailable", "the CRL directory is empty, unreadable or malformed"
                )
            return self._checker

    def check(self, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> None:
        self._current().check(certificate, issuer, at)


class HttpReferenceSource:
    """A :class:`~voting.auth.ReferencePhotoSource`: ``GET <url>?election_id=…&voter_alias=<hex>`` → the
    reference photo of that resident on the roll (the commission's authoritative source, keyed by alias).

    The answer must be 200 with ``Content-Type`` ``image/jpeg``, ``image/png`` or ``image/webp`` and at most
    ``max_bytes``; anything else raises :class:`~voting.auth.FaceMatchError` (``face.transport`` /
    ``face.response``), so the voter is refused (fail closed). The image stays in memory for one match.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        max_bytes: int = 8_000_000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = url
        self._headers = dict(headers or {})
        self._timeout = timeout
        self._max = max_bytes
        self._transport = transport

    def photo(self, election_id: str, voter_alias: bytes) -> ReferenceImageSource:
        params = {"election_id": election_id, "voter_alias": voter_alias.hex()}
        try:
            with httpx.Client(timeout=self._timeout, transport=self._transport, headers=self._headers) as c:
                r = c.get(self._url, params=params)
                r.raise_for_status()
        except httpx.HTTPError as e:
            raise FaceMatchError(
                "face.transport", f"reference image request failed: {type(e).__name__}"
            ) from None
        media_type = r.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in _IMAGE_TYPES or not r.content or len(r.content) > self._max:
            raise FaceMatchError("face.response", "the reference image source answered no usable image")
        return ReferenceImageSource(r.content, media_type)


def _dapp_client(settings: Settings, http_kwargs: Mapping[str, Any] | None) -> DigitalAuthAppClient | None:
    """The Digital Authentication App client from the settings (its key file read and checked now)."""
    if settings.dapp_base_url is None:
        return None
    assert settings.dapp_client_id is not None and settings.dapp_client_key_file is not None
    try:
        pem = settings.dapp_client_key_file.read_bytes()
    except OSError as e:
        raise ConfigurationError(
            "config.dapp_client_key_file", f"cannot read the app client key: {e.strerror}"
        ) from e
    if http_kwargs is None:
        from voting.clients._http import tls_context

        http_kwargs = {"verify": tls_context()}
    try:
        config = DappConfig(
            settings.dapp_base_url,
            settings.dapp_client_id,
            pem,
            settings.effective_dapp_redirect_uri,
            timeout=float(settings.dapp_timeout),
        )
        return DigitalAuthAppClient(config, http_client_kwargs=http_kwargs)
    except AuthError as e:
        raise ConfigurationError("config.dapp", str(e)) from e


@dataclass(frozen=True)
class IntakeConfig:
    """Everything ballot intake needs that does not depend on the election (loaded at start-up)."""

    trust_anchors: tuple[x509.Certificate, ...] = ()
    revocation: RevocationChecker | None = None
    accepted_policies: frozenset[str] = frozenset({JPKI_SIGN_POLICY_OID})
    oidc: OidcProviderConfig | None = None
    oidc_http_client_kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: an unknown ``kid`` re-fetches the provider's JWKS at most once per this many seconds
    oidc_jwks_min_refresh: float = 60.0
    face: FaceMatcher | None = None
    face_reference: ReferencePhotoSource | None = None
    #: the Digital Authentication App client (My Number card on the phone), or None
    dapp: SigningApp | None = None
    #: the per-election cap on spoiled (challenged) ballots
    max_spoiled_ballots: int = MAX_SPOILED
    #: sign a checkpoint for every receipt (embedding and tests); ``tvote serve`` schedules them instead
    #: (``Settings.checkpoint_interval`` > 0: receipts are pending until the next checkpoint)
    checkpoint_per_receipt: bool = True

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        face: FaceMatcher | None = None,
        face_reference: ReferencePhotoSource | None = None,
        oidc_http_client_kwargs: Mapping[str, Any] | None = None,
        dapp_http_client_kwargs: Mapping[str, Any] | None = None,
    ) -> IntakeConfig:
        """Load and check the intake settings (see :mod:`voting._settings`). ``face``/``face_reference``
        replace the HTTP engine/reference source from the settings (tests and the demo inject the
        deterministic test engine); ``oidc_http_client_kwargs`` go to the OIDC client's ``httpx``,
        ``dapp_http_client_kwargs`` to the Digital Authentication App client's."""
        anchors: tuple[x509.Certificate, ...] = ()
        revocation: RevocationChecker | None = None
        if settings.jpki_trust_anchors is not None:
            try:
                anchors = tuple(load_trust_anchors(settings.jpki_trust_anchors))
            except (OSError, AuthError) as e:
                raise ConfigurationError(
                    "config.jpki_trust_anchors", f"cannot load the JPKI trust anchors: {e}"
                ) from e
            if settings.environment == "production":
                check_production_anchors(anchors, settings)
            if settings.jpki_revocation == "unsafe-none":
                revocation = UnsafeNoRevocationCheck()
            else:
                assert settings.jpki_crl_dir is not None  # the settings refuse JPKI without revocation
                revocation = CrlDirectoryChecker(settings.jpki_crl_dir)
        oidc = settings.oidc_provider()
        headers = (
            {"Authorization": f"Bearer {settings.face_matcher_token}"} if settings.face_matcher_token else {}
        )
        if face is None and settings.face_matcher_url is not None:
            face = HttpFaceMatcher(
                settings.face_matcher_url, expected_engine_id=settings.face_engine_id, headers=headers
            )
        if face_reference is None and settings.face_reference_url is not None:
            face_reference = HttpReferenceSource(settings.face_reference_url, headers=headers)
        if face_reference is None and settings.face_reference_dir is not None:
            if not settings.face_reference_dir.is_dir():
                raise ConfigurationError(
                    "config.face_reference_dir", f"{settings.face_reference_dir} is not a directory"
                )
            face_reference = DirectoryReferencePhotoSource(settings.face_reference_dir)
        if oidc_http_client_kwargs is None:
            from voting.clients._http import tls_context

            oidc_http_client_kwargs = {"verify": tls_context()}
        dapp = _dapp_client(settings, dapp_http_client_kwargs)
        policies = JPKI_TEST_SIGN_POLICY_OID if settings.jpki_test_policy else JPKI_SIGN_POLICY_OID
        return cls(
            trust_anchors=anchors,
            revocation=revocation,
            accepted_policies=frozenset({policies}),
            oidc=oidc,
            oidc_http_client_kwargs=dict(oidc_http_client_kwargs),
            oidc_jwks_min_refresh=float(settings.oidc_jwks_min_refresh),
            face=face,
            face_reference=face_reference,
            dapp=dapp,
            max_spoiled_ballots=settings.max_spoiled_ballots,
            checkpoint_per_receipt=settings.checkpoint_interval == 0,
        )

    def build(self, service: Any) -> IntakeService:
        """The intake of ``service``'s election (needs the election: its roll key keys the roll match)."""
        roll_key = RollKey(service.roll_key)
        jpki = None
        if self.trust_anchors and self.revocation is not None:
            jpki = JpkiVerifier(
                list(self.trust_anchors), self.revocation, roll_key, accepted_policies=self.accepted_policies
            )
        oidc = None
        if self.oidc is not None:
            oidc = OidcRelyingParty(
                self.oidc,
                roll_key,
                http_client_kwargs=self.oidc_http_client_kwargs,
                jwks_min_refresh=self.oidc_jwks_min_refresh,
            )
        return IntakeService(
            election=service,
            jpki=jpki,
            oidc=oidc,
            face=self.face,
            face_reference=self.face_reference,
            dapp=self.dapp,
            max_spoiled=self.max_spoiled_ballots,
            checkpoint_per_receipt=self.checkpoint_per_receipt,
        )


class IntakeProvider:
    """Builds the :class:`IntakeService` once, on first use after the election exists; thread-safe.

    Before the election is created :meth:`get` raises ``election.none`` (404) like every election route.
    """

    def __init__(self, config: IntakeConfig, service: Any) -> None:
        self.config = config
        self.service = service
        self._lock = threading.Lock()
        self._intake: IntakeService | None = None

    def get(self) -> IntakeService:
        if self._intake is None:
            with self._lock:
                if self._intake is None:
                    self._intake = self.config.build(self.service)
        return self._intake
