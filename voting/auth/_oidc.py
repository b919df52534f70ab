"""Digital ID: OpenID Connect authorization-code flow with PKCE, the nonce bound to the ballot.

Nonce binding. For each login the relying party draws a 32-byte ``salt`` and sends::

    nonce = base64url_nopad(SHA-256(encode_transcript("oidc-nonce", [election_base_hash, ballot_hash, salt])))

(``crypto._hash`` transcript: domain ``tvote/2/oidc-nonce``, items u32be length-prefixed). The provider
signs the nonce into the ID token, so the token can only authenticate *this* ballot; the salt travels
with the evidence and the server (or an auditor) re-derives the nonce from the ballot hash.

Flow: :meth:`OidcRelyingParty.begin` → redirect the voter to ``authorization_url`` (PKCE S256, state,
nonce) → the provider redirects back → :meth:`OidcRelyingParty.complete` checks ``state``, exchanges
the code with the PKCE verifier (authlib ``OAuth2Client`` over httpx) and verifies the ID token with
joserfc against the JWKS from discovery: RS256 signature; ``iss`` = the configured issuer; ``aud``
contains the client id (and ``azp`` equals it when there are several audiences); ``exp`` in the future and
``iat`` not in the future at the injected ``now`` (``leeway`` seconds of clock skew, default 60); ``sub``
present; ``nonce`` equal to the re-derived value.

Identity claims come only from the configured verified source (:class:`OidcProviderConfig`
``claims_source``), never from the token's top-level ``name``/``birthdate``/``address``:

* ``"verified_claims"`` (default): OpenID Connect for Identity Assurance 1.0. The authorization request
  asks, through the ``claims`` parameter, for ``id_token.verified_claims`` with
  ``verification.trust_framework`` and ``claims.{name, birthdate, address}``; the ID token's
  ``verified_claims`` (an object or an array of them) is used only where ``verification.trust_framework``
  is in ``trust_frameworks``, and name, birth date and address are read only from that element's
  ``claims``. Qualifying elements that disagree are refused (``oidc.claims``).
* ``"verified_scope"``: the provider documents that the claims it releases under the scope
  ``verified_scope`` are verified; the scope is requested and must be in the token response's granted
  ``scope`` (RFC 6749 §5.1: absent means as requested); then the top-level claims are used.

Authentication strength: ``acr`` must be one of ``acr_values`` (ordered, the first is the minimum; sent as
``acr_values``), and ``auth_time`` must be present and at most ``max_auth_age`` seconds before ``now``
(sent as ``max_age``); otherwise ``oidc.acr`` / ``oidc.auth_time``.

Key rotation: a token signed under a ``kid`` the cached JWKS does not have makes the relying party fetch
the JWKS again, at most once per ``jwks_min_refresh`` seconds (injectable monotonic ``monotonic`` clock);
a ``kid`` still unknown after that is ``oidc.signature``.

Result: :class:`OidcIdentity` (issuer, subject, :func:`subject_key` — the keyed hash of ``(iss, sub)``
that intake binds to one voter alias per election —, the roll match key from the verified claims or
``None``, and the evidence hash). The ID token itself is evidence for auditors with access (it contains
the verified personal claims); only :attr:`OidcEvidence.digest` is public.

Length: a little over 500 lines because this docstring is the flow's specification; the code is one relying
party (begin, complete, token checks) that reads best in one place.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.integrations.base_client import OAuthError

with warnings.catch_warnings():
    # authlib 1.9 announces it will move from httpx to its successor httpx2; tvote uses httpx throughout,
    # so the notice is not actionable here and would otherwise be printed by every `tvote` command.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated", module="authlib")
    from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc6749.errors import OAuth2Error
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
)
from joserfc.jwk import KeySet

from crypto.hazmat import encode_transcript

from ._errors import OidcError, RollError
from ._roll import RollKey, RollMatchKey, roll_match_key

__all__ = [
    "OidcEvidence",
    "OidcIdentity",
    "OidcProviderConfig",
    "OidcRelyingParty",
    "PendingOidcLogin",
    "ballot_nonce",
    "subject_key",
]

_LEN: Final[int] = 32
_CLAIM_CODES: Final[dict[str, str]] = {
    "iss": "oidc.issuer",
    "aud": "oidc.audience",
    "exp": "oidc.expired",
    "iat": "oidc.expired",
    "nbf": "oidc.expired",
    "nonce": "oidc.nonce",
}


def _b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def ballot_nonce(election_base_hash: bytes, ballot_hash: bytes, salt: bytes) -> str:
    """The OIDC nonce that binds a login to one ballot (see the module docstring)."""
    for label, b in (
        ("election base hash", election_base_hash),
        ("ballot hash", ballot_hash),
        ("salt", salt),
    ):
        if not isinstance(b, bytes) or len(b) != _LEN:
            raise OidcError("oidc.nonce", f"{label} must be {_LEN} bytes")
    transcript = encode_transcript("oidc-nonce", [election_base_hash, ballot_hash, salt])
    return _b64u(hashlib.sha256(transcript).digest())


def subject_key(roll_key: RollKey, issuer: str, subject: str) -> bytes:
    """The per-election keyed hash of a digital-ID account: ``HMAC-SHA256(roll_key,
    encode_transcript("oidc-subject", [issuer, subject]))``. Intake binds it to one voter alias and logs
    only (a prefix of) it, never ``sub`` itself; without the roll key it cannot be linked to the account."""
    return hmac.new(
        roll_key.secret, encode_transcript("oidc-subject", [issuer, subject]), hashlib.sha256
    ).digest()


ClaimsSource = Literal["verified_claims", "verified_scope"]
_MATCH_CLAIMS: Final[tuple[str, ...]] = ("name", "birthdate", "address")


@dataclass(frozen=True, slots=True)
class OidcProviderConfig:
    """One digital-ID provider as registered by the commission (validated: ``oidc.config``).

    ``claims_source`` says where the roll-matching claims may come from (module docstring):
    ``"verified_claims"`` needs a non-empty ``trust_frameworks`` allow-list, ``"verified_scope"`` the
    provider's documented ``verified_scope``. ``acr_values`` are the acceptable ``acr`` values, ordered
    from the minimum up (non-empty); ``max_auth_age`` bounds ``now - auth_time`` in seconds.
    """

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    acr_values: tuple[str, ...] = ()
    claims_source: ClaimsSource = "verified_claims"
    trust_frameworks: tuple[str, ...] = ()
    verified_scope: str | None = None
    max_auth_age: int = 600

    def __post_init__(self) -> None:
        for name in ("acr_values", "trust_frameworks"):
            v = getattr(self, name)
            if isinstance(v, str) or not all(isinstance(x, str) and x and x.strip() == x for x in v):
                raise OidcError("oidc.config", f"{name} must be a sequence of non-empty strings")
            object.__setattr__(self, name, tuple(v))
        if not self.acr_values:
            raise OidcError("oidc.config", "configure the acceptable acr values (the minimum first)")
        if self.claims_source == "verified_claims":
            if not self.trust_frameworks:
                raise OidcError("oidc.config", "verified_claims needs an allow-list of trust frameworks")
        elif self.claims_source == "verified_scope":
            vs = self.verified_scope
            if not isinstance(vs, str) or not vs or " " in vs or vs == "openid":
                raise OidcError("oidc.config", "verified_scope must name the provider's verified scope")
        else:
            raise OidcError("oidc.config", "claims_source is 'verified_claims' or 'verified_scope'")
        age = self.max_auth_age
        if not isinstance(age, int) or isinstance(age, bool) or not 0 < age <= 86_400:
            raise OidcError("oidc.config", "max_auth_age must be between 1 and 86400 seconds")

    @property
    def scope(self) -> str:
        """The scope requested: ``openid``, plus the verified-claims scope in that mode."""
        return "openid" if self.claims_source == "verified_claims" else f"openid {self.verified_scope}"

    def claims_request(self) -> str | None:
        """The OIDC ``claims`` request parameter (JSON) asking for the verified claims, or ``None``."""
        if self.claims_source != "verified_claims":
            return None
        vc = {
            "verification": {"trust_framework": {"values": list(self.trust_frameworks)}},
            "claims": {c: None for c in _MATCH_CLAIMS},
        }
        return json.dumps({"id_token": {"verified_claims": vc}}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class PendingOidcLogin:
    """Server-side state of one login in progress (keep it in the voter's server session, never in the
    browser: ``code_verifier`` is secret)."""

    authorization_url: str
    state: str
    code_verifier: str = field(repr=False)
    nonce_salt: bytes
    election_base_hash: bytes
    ballot_hash: bytes


@dataclass(frozen=True, slots=True)
class OidcEvidence:
    """The evidence kept for auditors; ``digest`` enters the public record.

    ``to_bytes() = encode_transcript("oidc-evidence", [base_hash, ballot_hash, salt, issuer, id_token])``.
    """

    election_base_hash: bytes
    ballot_hash: bytes
    nonce_salt: bytes
    issuer: str
    id_token: str = field(repr=False)

    def to_bytes(self) -> bytes:
        return encode_transcript(
            "oidc-evidence",
            [self.election_base_hash, self.ballot_hash, self.nonce_salt, self.issuer, self.id_token],
        )

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()


@dataclass(frozen=True, slots=True)
class OidcIdentity:
    """A verified digital-ID login bound to one ballot. ``subject_key`` is :func:`subject_key`;
    ``match_key`` comes from the verified claims only (``None`` if the token carried none)."""

    issuer: str
    subject: str = field(repr=False)
    subject_key: bytes = field(repr=False)
    match_key: RollMatchKey | None = field(repr=False)
    evidence_hash: bytes
    evidence: OidcEvidence = field(repr=False)


class OidcRelyingParty:
    """The election service's side of the digital-ID login.

    ``http_client_kwargs`` go to authlib's ``OAuth2Client`` (an ``httpx.Client``): inject ``transport``
    or ``verify`` there. ``randbytes`` supplies state, PKCE verifier and nonce salt. An unknown ``kid``
    re-fetches the JWKS at most once per ``jwks_min_refresh`` seconds of ``monotonic``.
    """

    def __init__(
        self,
        config: OidcProviderConfig,
        roll_key: RollKey,
        *,
        timeout: float = 10.0,
        leeway: int = 60,
        randbytes: Callable[[int], bytes] = secrets.token_bytes,
        http_client_kwargs: Mapping[str, Any] | None = None,
        jwks_min_refresh: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
        jwks: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self._roll_key = roll_key
        self._timeout = timeout
        self._leeway = leeway
        self._rand = randbytes
        self._http_kwargs = dict(http_client_kwargs or {})
        self._metadata: dict[str, Any] | None = None
        self._jwks: KeySet | None = None
        self._jwks_min_refresh = jwks_min_refresh
        self._monotonic = monotonic
        self._jwks_fetched: float | None = None
        self._jwks_lock = threading.Lock()
        #: ``jwks`` given: offline, for an auditor re-checking stored evidence (:meth:`verify_id_token`)
        #: against the provider's keys obtained out of band; nothing is ever fetched
        self._offline = jwks is not None
        if jwks is not None:
            try:
                self._jwks = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError):
                raise OidcError("oidc.config", "the provider JWKS does not parse") from None
            self._metadata = {"issuer": config.issuer}

    def _client(self) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            scope=self.config.scope,
            redirect_uri=self.config.redirect_uri,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name, not a secret
            code_challenge_method="S256",
            timeout=self._timeout,
            **self._http_kwargs,
        )

    def _get_json(self, client: OAuth2Client, url: str) -> dict[str, Any]:
        try:
            r = client.request("GET", url, withhold_token=True)
            r.raise_for_status()
            data = r.json()
        except (httpx.HTTPError, ValueError) as e:
            raise OidcError("oidc.transport", f"GET {url} failed: {type(e).__name__}") from None
        if not isinstance(data, dict):
            raise OidcError("oidc.config", f"{url} did not return a JSON object")
        return data

    def discover(self) -> dict[str, Any]:
        """Fetch (once) the discovery document and JWKS; the issuer must match the configuration."""
        if self._metadata is None or self._jwks is None:
            with self._client() as c:
                meta = self._get_json(c, self.config.issuer.rstrip("/") + "/.well-known/openid-configuration")
                if meta.get("issuer") != self.config.issuer:
                    raise OidcError("oidc.config", "discovery issuer differs from the configured issuer")
                for k in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(meta.get(k), str):
                        raise OidcError("oidc.config", f"discovery lacks {k}")
                jwks = self._fetch_jwks(c, meta["jwks_uri"])
            self._metadata, self._jwks = meta, jwks
            self._jwks_fetched = self._monotonic()
        return self._metadata

    def _fetch_jwks(self, client: OAuth2Client, url: str) -> KeySet:
        try:
            return KeySet.import_key_set(self._get_json(client, url))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError):
            raise OidcError("oidc.config", "the provider JWKS does not parse") from None

    def _refresh_jwks(self) -> bool:
        """Fetch the JWKS again unless it was fetched less than ``jwks_min_refresh`` seconds ago (a flood of
        tokens with invented ``kid`` values must not become a flood of requests to the provider).
        Returns whether a fresh JWKS was installed."""
        if self._offline:
            return False
        with self._jwks_lock:
            now = self._monotonic()
            if self._jwks_fetched is not None and now - self._jwks_fetched < self._jwks_min_refresh:
                return False
            self._jwks_fetched = now
            assert self._metadata is not None
            with self._client() as c:
                self._jwks = self._fetch_jwks(c, self._metadata["jwks_uri"])
            return True

    def begin(self, *, election_base_hash: bytes, ballot_hash: bytes) -> PendingOidcLogin:
        """Start a login bound to ``ballot_hash``: returns the URL to send the voter to."""
        meta = self.discover()
        salt = self._rand(_LEN)
        nonce = ballot_nonce(election_base_hash, ballot_hash, salt)
        state = _b64u(self._rand(24))
        verifier = _b64u(self._rand(48))  # 64 chars, within RFC 7636's 43..128
        with self._client() as c:
            extra: dict[str, Any] = {
                "acr_values": " ".join(self.config.acr_values),
                "max_age": str(self.config.max_auth_age),
            }
            claims = self.config.claims_request()
            if claims is not None:
                extra["claims"] = claims
            url, _ = c.create_authorization_url(
                meta["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce, **extra
            )
        return PendingOidcLogin(url, state, verifier, salt, election_base_hash, ballot_hash)

    def complete(self, pending: PendingOidcLogin, callback_url: str, *, now: dt.datetime) -> OidcIdentity:
        """Finish the login from the provider's redirect ``callback_url``; verify and return the identity."""
        meta = self.discover()
        q = parse_qs(urlsplit(callback_url).query)
        if q.get("state") != [pending.state]:
            raise OidcError("oidc.state", "callback state does not match the pending login")
        if "error" in q or len(q.get("code", [])) != 1:
            raise OidcError("oidc.token_exchange", "the provider returned no authorization code")
        with self._client() as c:
            try:
                token = c.fetch_token(
                    meta["token_endpoint"],
                    authorization_response=callback_url,
                    code_verifier=pending.code_verifier,
                    state=pending.state,
                )
            except (OAuth2Error, OAuthError) as e:
                raise OidcError("oidc.token_exchange", f"token endpoint refused: {e.error}") from None
            except httpx.HTTPStatusError as e:
                code = "oidc.token_exchange" if 400 <= e.response.status_code < 500 else "oidc.transport"
                raise OidcError(code, f"token endpoint answered HTTP {e.response.status_code}") from None
            except httpx.HTTPError as e:
                raise OidcError("oidc.transport", f"token request failed: {type(e).__name__}") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("oidc.token_exchange", "token response has no id_token")
        granted = token.get("scope", self.config.scope)  # RFC 6749 §5.1: absent = as requested
        return self.verify_id_token(
            id_token,
            election_base_hash=pending.election_base_hash,
            ballot_hash=pending.ballot_hash,
            nonce_salt=pending.nonce_salt,
            now=now,
            granted_scope=granted if isinstance(granted, str) else "",
        )

    def _decode(self, id_token: str) -> Any:
        assert self._jwks is not None
        try:
            try:
                return jwt.decode(id_token, self._jwks, algorithms=["RS256"])
            except InvalidKeyIdError:
                if not self._refresh_jwks():  # a key rotated at the provider, or an invented kid
                    raise
                return jwt.decode(id_token, self._jwks, algorithms=["RS256"])
        except BadSignatureError:
            raise OidcError("oidc.signature", "ID token signature does not verify against the JWKS") from None
        except (JoseError, ValueError, TypeError):
            raise OidcError("oidc.signature", "ID token is malformed or signed with an unknown key") from None

    def verify_id_token(
        self,
        id_token: str,
        *,
        election_base_hash: bytes,
        ballot_hash: bytes,
        nonce_salt: bytes,
        now: dt.datetime,
        granted_scope: str | None = None,
    ) -> OidcIdentity:
        """Verify an ID token for this ballot (also usable by an auditor re-checking stored evidence).

        ``granted_scope`` is the token response's granted scope (``verified_scope`` mode only: without it
        no identity claims are used)."""
        self.discover()
        expected_nonce = ballot_nonce(election_base_hash, ballot_hash, nonce_salt)
        tok = self._decode(id_token)
        claims = tok.claims
        registry = jwt.JWTClaimsRegistry(
            now=int(now.timestamp()),
            leeway=self._leeway,
            iss={"essential": True, "value": self.config.issuer},
            aud={"essential": True, "value": self.config.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": expected_nonce},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise OidcError("oidc.expired", "ID token is expired") from None
        except ClaimError as e:
            raise OidcError(_CLAIM_CODES.get(e.claim, "oidc.claims"), f"claim {e.claim!r} rejected") from None
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.config.client_id:
            raise OidcError("oidc.audience", "several audiences and azp is not this client")
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub or len(sub) > 255:
            raise OidcError("oidc.claims", "sub must be a non-empty string of at most 255 characters")
        self._check_strength(claims, now)
        evidence = OidcEvidence(election_base_hash, ballot_hash, nonce_salt, self.config.issuer, id_token)
        return OidcIdentity(
            self.config.issuer,
            sub,
            subject_key(self._roll_key, self.config.issuer, sub),
            self._match_key(claims, granted_scope),
            evidence.digest,
            evidence,
        )

    def _check_strength(self, claims: Mapping[str, Any], now: dt.datetime) -> None:
        """``acr`` among the configured values; ``auth_time`` present and recent enough."""
        if claims.get("acr") not in self.config.acr_values:
            raise OidcError("oidc.acr", "the login's acr is not one of the accepted authentication levels")
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, int) or isinstance(auth_time, bool):
            raise OidcError("oidc.auth_time", "the ID token has no auth_time")
        age = now.timestamp() - auth_time
        if age > self.config.max_auth_age + self._leeway or age < -self._leeway:
            raise OidcError("oidc.auth_time", "the end user authenticated too long ago (or in the future)")

    def _match_key(self, claims: Mapping[str, Any], granted_scope: str | None) -> RollMatchKey | None:
        """The roll match key from the configured verified source only (never unverified top-level claims)."""
        if self.config.claims_source == "verified_scope":
            if self.config.verified_scope not in (granted_scope or "").split():
                return None
            return self._key_from(claims)
        vc = claims.get("verified_claims")
        if vc is None:
            return None
        elements = vc if isinstance(vc, list) else [vc]
        keys = set()
        for el in elements:
            if not isinstance(el, Mapping):
                raise OidcError("oidc.claims", "verified_claims elements must be JSON objects")
            verification, inner = el.get("verification"), el.get("claims")
            if not isinstance(verification, Mapping) or not isinstance(inner, Mapping):
                raise OidcError("oidc.claims", "verified_claims needs verification and claims objects")
            if verification.get("trust_framework") not in self.config.trust_frameworks:
                continue  # verified under a framework the commission does not accept: ignored
            key = self._key_from(inner)
            if key is not None:
                keys.add(key)
        if len(keys) > 1:
            raise OidcError("oidc.claims", "verified_claims elements disagree")
        return keys.pop() if keys else None

    def _key_from(self, claims: Mapping[str, Any]) -> RollMatchKey | None:
        name, birth, addr = claims.get("name"), claims.get("birthdate"), claims.get("address")
        formatted = addr.get("formatted") if isinstance(addr, Mapping) else None
        if not (isinstance(name, str) and isinstance(birth, str) and isinstance(formatted, str)):
            return None
        try:
            return roll_match_key(self._roll_key, name, dt.date.fromisoformat(birth), formatted)
        except (ValueError, RollError):
            raise OidcError("oidc.claims", "name, birthdate or address claim is malformed") from None
