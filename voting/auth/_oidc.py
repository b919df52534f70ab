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

Result: :class:`OidcIdentity` (issuer, subject, the roll match key if the token carries ``name``,
``birthdate`` and ``address.formatted``, and the evidence hash). The ID token itself is evidence for
auditors with access (it contains personal claims); only :attr:`OidcEvidence.digest` is public.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
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
    JoseError,
)
from joserfc.jwk import KeySet

from crypto._hash import encode_transcript

from ._errors import OidcError, RollError
from ._roll import RollKey, RollMatchKey, roll_match_key

__all__ = [
    "OidcEvidence",
    "OidcIdentity",
    "OidcProviderConfig",
    "OidcRelyingParty",
    "PendingOidcLogin",
    "ballot_nonce",
]

_LEN: Final[int] = 32
_CLAIM_CODES: Final[dict[str, str]] = {"iss": "oidc.issuer", "aud": "oidc.audience", "exp": "oidc.expired",
                                       "iat": "oidc.expired", "nbf": "oidc.expired", "nonce": "oidc.nonce"}


def _b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def ballot_nonce(election_base_hash: bytes, ballot_hash: bytes, salt: bytes) -> str:
    """The OIDC nonce that binds a login to one ballot (see the module docstring)."""
    for label, b in (("election base hash", election_base_hash), ("ballot hash", ballot_hash),
                     ("salt", salt)):
        if not isinstance(b, bytes) or len(b) != _LEN:
            raise OidcError("oidc.nonce", f"{label} must be {_LEN} bytes")
    transcript = encode_transcript("oidc-nonce", [election_base_hash, ballot_hash, salt])
    return _b64u(hashlib.sha256(transcript).digest())


@dataclass(frozen=True, slots=True)
class OidcProviderConfig:
    """One digital-ID provider as registered by the commission."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    scope: str = "openid profile address"


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
        return encode_transcript("oidc-evidence", [self.election_base_hash, self.ballot_hash, self.nonce_salt,
                                                   self.issuer, self.id_token])

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()


@dataclass(frozen=True, slots=True)
class OidcIdentity:
    """A verified digital-ID login bound to one ballot."""

    issuer: str
    subject: str = field(repr=False)
    match_key: RollMatchKey | None = field(repr=False)
    evidence_hash: bytes
    evidence: OidcEvidence = field(repr=False)


class OidcRelyingParty:
    """The election service's side of the digital-ID login.

    ``http_client_kwargs`` go to authlib's ``OAuth2Client`` (an ``httpx.Client``): inject ``transport``
    or ``verify`` there. ``randbytes`` supplies state, PKCE verifier and nonce salt.
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
    ) -> None:
        self.config = config
        self._roll_key = roll_key
        self._timeout = timeout
        self._leeway = leeway
        self._rand = randbytes
        self._http_kwargs = dict(http_client_kwargs or {})
        self._metadata: dict[str, Any] | None = None
        self._jwks: KeySet | None = None

    def _client(self) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.config.client_id, client_secret=self.config.client_secret,
            scope=self.config.scope, redirect_uri=self.config.redirect_uri,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name, not a secret
            code_challenge_method="S256",
            timeout=self._timeout, **self._http_kwargs,
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
                try:
                    jwks = KeySet.import_key_set(self._get_json(c, meta["jwks_uri"]))  # type: ignore[arg-type]
                except (JoseError, ValueError, TypeError, KeyError):
                    raise OidcError("oidc.config", "the provider JWKS does not parse") from None
            self._metadata, self._jwks = meta, jwks
        return self._metadata

    def begin(self, *, election_base_hash: bytes, ballot_hash: bytes) -> PendingOidcLogin:
        """Start a login bound to ``ballot_hash``: returns the URL to send the voter to."""
        meta = self.discover()
        salt = self._rand(_LEN)
        nonce = ballot_nonce(election_base_hash, ballot_hash, salt)
        state = _b64u(self._rand(24))
        verifier = _b64u(self._rand(48))  # 64 chars, within RFC 7636's 43..128
        with self._client() as c:
            url, _ = c.create_authorization_url(meta["authorization_endpoint"], state=state,
                                                code_verifier=verifier, nonce=nonce)
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
                token = c.fetch_token(meta["token_endpoint"], authorization_response=callback_url,
                                      code_verifier=pending.code_verifier, state=pending.state)
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
        return self.verify_id_token(id_token, election_base_hash=pending.election_base_hash,
                                    ballot_hash=pending.ballot_hash, nonce_salt=pending.nonce_salt, now=now)

    def verify_id_token(self, id_token: str, *, election_base_hash: bytes, ballot_hash: bytes,
                        nonce_salt: bytes, now: dt.datetime) -> OidcIdentity:
        """Verify an ID token for this ballot (also usable by an auditor re-checking stored evidence)."""
        self.discover()
        assert self._jwks is not None
        expected_nonce = ballot_nonce(election_base_hash, ballot_hash, nonce_salt)
        try:
            tok = jwt.decode(id_token, self._jwks, algorithms=["RS256"])
        except BadSignatureError:
            raise OidcError("oidc.signature", "ID token signature does not verify against the JWKS") from None
        except (JoseError, ValueError, TypeError):
            raise OidcError("oidc.signature", "ID token is malformed or signed with an unknown key") from None
        claims = tok.claims
        registry = jwt.JWTClaimsRegistry(
            now=int(now.timestamp()), leeway=self._leeway,
            iss={"essential": True, "value": self.config.issuer},
            aud={"essential": True, "value": self.config.client_id},
            sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
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
        evidence = OidcEvidence(election_base_hash, ballot_hash, nonce_salt, self.config.issuer, id_token)
        return OidcIdentity(self.config.issuer, str(claims["sub"]), self._match_key(claims), evidence.digest,
                            evidence)

    def _match_key(self, claims: Mapping[str, Any]) -> RollMatchKey | None:
        name, birth, addr = claims.get("name"), claims.get("birthdate"), claims.get("address")
        formatted = addr.get("formatted") if isinstance(addr, Mapping) else None
        if not (isinstance(name, str) and isinstance(birth, str) and isinstance(formatted, str)):
            return None
        try:
            return roll_match_key(self._roll_key, name, dt.date.fromisoformat(birth), formatted)
        except (ValueError, RollError):
            raise OidcError("oidc.claims", "name, birthdate or address claim is malformed") from None

