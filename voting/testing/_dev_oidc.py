"""A real, local OpenID Connect provider for tests and the demo. NEVER for a real election.

Built from authlib's provider components — ``AuthorizationServer``, the RFC 6749 authorization-code
grant, RFC 7636 PKCE (``CodeChallenge(required=True)``, S256 only) and the OIDC ``OpenIDCode``
extension — with joserfc for the RS256 signing key and JWKS, served by Starlette under uvicorn on
``127.0.0.1`` and a free port:

* ``GET /.well-known/openid-configuration`` — discovery;
* ``GET /jwks`` — the public signing key;
* ``GET /authorize`` — auto-approves the configured test subject (no login page; with ``subjects``, the
  one whose ``sub`` the request names in the OpenID ``login_hint`` parameter) and redirects back with
  ``code`` and ``state``;
* ``POST /token`` — code exchange (``client_secret_basic`` or ``client_secret_post``, PKCE checked),
  answering with an access token and an ID token (``iss``, ``sub``, ``aud``, ``iat``, ``exp``,
  ``auth_time``, ``acr``, ``nonce`` and the subject's claims).

The subject's identity claims (name, birthdate, address) are released the way a real identity-assurance
provider does: as OpenID Connect for Identity Assurance 1.0 ``verified_claims`` with
``verification.trust_framework`` = :data:`DEV_TRUST_FRAMEWORK` (``DevSubject.trust_framework``; ``None``
releases them as plain top-level claims instead, as a provider without identity assurance would, and
only when the client was granted :data:`DEV_VERIFIED_SCOPE`). ``DevSubject.unverified_claims`` are
added at the top level (tests use them to play a provider that lets users edit their profile).
``acr`` is :data:`DEV_ACR` unless the subject says otherwise; ``auth_time`` is ``clock() - auth_age``.

``clock`` (seconds since the epoch) is injectable so tests can mint tokens that are already expired;
:meth:`DevOidcProvider.rotate_key` replaces the signing key (a key rotation mid-election), and
``jwks_requests`` counts the JWKS fetches.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request, grants
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ._loopback import LoopbackServer

__all__ = [
    "DEV_ACR",
    "DEV_TRUST_FRAMEWORK",
    "DEV_VERIFIED_SCOPE",
    "DevClient",
    "DevOidcProvider",
    "DevSubject",
]

#: the trust framework the development provider names in ``verified_claims`` (never a real one)
DEV_TRUST_FRAMEWORK = "jp_tvote_dev_only"
#: the scope under which the development provider releases plain top-level identity claims
DEV_VERIFIED_SCOPE = "tvote_dev_verified"
#: the authentication context class the development provider reports
DEV_ACR = "urn:tvote:dev:acr:high"


@dataclass(frozen=True)
class DevClient(ClientMixin):  # type: ignore[misc]
    """A registered relying party (confidential client)."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...] = ("openid", "profile", "address", DEV_VERIFIED_SCOPE)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint != "token" or method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass(frozen=True)
class DevSubject:
    """The test end user the provider auto-approves, with the claims it releases (synthetic data).

    ``claims`` (name, birthdate, address) go into ``verified_claims`` under ``trust_framework``, or to the
    top level when ``trust_framework`` is ``None``; ``unverified_claims`` always go to the top level."""

    sub: str
    claims: Mapping[str, Any] = field(default_factory=dict)
    trust_framework: str | None = DEV_TRUST_FRAMEWORK
    unverified_claims: Mapping[str, Any] = field(default_factory=dict)
    acr: str | None = DEV_ACR
    #: seconds between the (simulated) login and the authorization
    auth_age: int = 0


@dataclass
class _Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    acr: str | None
    #: the end user who approved this code (the token exchange answers for them)
    subject: DevSubject

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return self.acr

    def get_amr(self) -> None:
        return None


class _Request(OAuth2Request):  # type: ignore[misc]
    """authlib's request view of a Starlette request whose query and form were read beforehand."""

    def __init__(self, request: Request, form: Mapping[str, str]) -> None:
        super().__init__(request.method, str(request.url), headers=request.headers)
        self._args = dict(request.query_params)
        self._form = dict(form)
        self.payload = BasicOAuth2Payload({**self._args, **self._form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, provider: DevOidcProvider) -> None:
        super().__init__(scopes_supported=["openid", "profile", "address", DEV_VERIFIED_SCOPE])
        self._p = provider

    def query_client(self, client_id: str) -> DevClient | None:
        return self._p._clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        return None

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        h = dict(headers)
        if status == 302 and "Location" in h:
            return RedirectResponse(h["Location"], status_code=302)
        return JSONResponse(
            body, status_code=status, headers={k: v for k, v in h.items() if k.lower() != "content-type"}
        )

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


class _CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012
    provider: DevOidcProvider

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        d = request.payload.data
        user: DevSubject = request.user  # the grant_user of the authorization response
        self.provider._codes[code] = _Code(
            code,
            request.client.get_client_id(),
            request.payload.redirect_uri,
            request.payload.scope,
            d.get("nonce"),
            d.get("code_challenge"),
            d.get("code_challenge_method"),
            int(self.provider.clock()) - user.auth_age,
            user.acr,
            user,
        )

    def query_authorization_code(self, code: str, client: DevClient) -> _Code | None:
        c = self.provider._codes.get(code)
        return c if c is not None and c.client_id == client.client_id else None

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        self.provider._codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: _Code) -> DevSubject:
        return authorization_code.subject


class _OpenIDCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, provider: DevOidcProvider) -> None:
        super().__init__(require_nonce=True)
        self._p = provider

    def resolve_client_private_key(self, client: DevClient) -> RSAKey:
        return self._p.signing_key

    def get_client_algorithm(self, client: DevClient) -> str:
        return "RS256"

    def get_encode_header(self, client: DevClient) -> dict[str, str]:
        return {"alg": "RS256", "kid": str(self._p.signing_key.kid)}

    def get_client_claims(self, client: DevClient) -> dict[str, Any]:
        now = int(self._p.clock())
        return {
            "iss": self._p.issuer,
            "aud": client.client_id,
            "iat": now,
            "exp": now + self._p.token_lifetime,
            "auth_time": now,
        }

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return any(c.nonce == nonce for c in self._p._codes.values())

    def generate_user_info(self, user: DevSubject, scope: str) -> UserInfo:
        info = UserInfo(sub=user.sub, **dict(user.unverified_claims))
        if user.trust_framework is not None:
            info["verified_claims"] = {
                "verification": {"trust_framework": user.trust_framework},
                "claims": dict(user.claims),
            }
        elif DEV_VERIFIED_SCOPE in scope.split():
            info.update(dict(user.claims))
        return info


class DevOidcProvider:
    """Start with :meth:`start` (or use as a context manager); ``issuer`` is then its base URL.

    ``subject`` is approved on every login, unless ``subjects`` holds the ``sub`` a login names in its
    ``login_hint`` (then that one; a hint naming no known subject is refused). ``port`` 0 takes a free
    loopback port."""

    def __init__(
        self,
        clients: list[DevClient],
        subject: DevSubject,
        *,
        subjects: Mapping[str, DevSubject] | None = None,
        signing_key: RSAKey | None = None,
        clock: Callable[[], float] = time.time,
        token_lifetime: int = 300,
        port: int = 0,
    ) -> None:
        self._clients = {c.client_id: c for c in clients}
        self.subject = subject
        self.subjects = dict(subjects or {})
        self.signing_key = signing_key or RSAKey.generate_key(
            2048, {"use": "sig", "alg": "RS256"}, auto_kid=True
        )
        self.clock = clock
        self.token_lifetime = token_lifetime
        self.jwks_keys: list[RSAKey] = [self.signing_key]
        self.jwks_requests = 0
        self._codes: dict[str, _Code] = {}
        self._server = _Server(self)
        self._server.register_token_generator(
            "default", BearerTokenGenerator(access_token_generator=lambda **_: secrets.token_urlsafe(32))
        )
        grant_cls = type("_BoundCodeGrant", (_CodeGrant,), {"provider": self})
        self._server.register_grant(grant_cls, [CodeChallenge(required=True), _OpenIDCode(self)])
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/jwks", self._jwks),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
            ]
        )
        self.issuer = ""
        self._loop = LoopbackServer(self.app, port=port)

    async def _discovery(self, request: Request) -> Response:
        i = self.issuer
        return JSONResponse(
            {
                "issuer": i,
                "authorization_endpoint": f"{i}/authorize",
                "token_endpoint": f"{i}/token",
                "jwks_uri": f"{i}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "profile", "address", DEV_VERIFIED_SCOPE],
                "claims_parameter_supported": True,
                "verified_claims_supported": True,
                "trust_frameworks_supported": [DEV_TRUST_FRAMEWORK],
                "acr_values_supported": [DEV_ACR],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            }
        )

    async def _jwks(self, request: Request) -> Response:
        self.jwks_requests += 1
        return JSONResponse({"keys": [k.as_dict(private=False) for k in self.jwks_keys]})

    def rotate_key(self, *, keep_old: bool = False) -> RSAKey:
        """Sign from now on with a fresh key (new ``kid``); the JWKS publishes it (and the old one only if
        ``keep_old``). Returns the new key."""
        key = RSAKey.generate_key(2048, {"use": "sig", "alg": "RS256"}, auto_kid=True)
        self.jwks_keys = [*self.jwks_keys, key] if keep_old else [key]
        self.signing_key = key
        return key

    async def _authorize(self, request: Request) -> Response:
        req = _Request(request, {})
        user = self.subject
        hint = request.query_params.get("login_hint")
        if hint is not None and self.subjects:
            if hint not in self.subjects:
                return JSONResponse({"error": "login_required"}, status_code=400)
            user = self.subjects[hint]
        try:
            grant = self._server.get_consent_grant(request=req, end_user=user)
        except Exception as e:  # authlib raises OAuth2Error subclasses; show them, never approve
            return JSONResponse({"error": getattr(e, "error", "invalid_request")}, status_code=400)
        if grant.request.payload.data.get("code_challenge_method", "plain") != "S256":
            return JSONResponse({"error": "invalid_request", "error_description": "S256 required"}, 400)
        response: Response = self._server.create_authorization_response(
            request=req, grant_user=user, grant=grant
        )
        return response

    async def _token(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype != "application/x-www-form-urlencoded":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        req = _Request(request, form)
        return self._server.create_token_response(request=req)  # type: ignore[no-any-return]

    def start(self) -> str:
        self.issuer = self._loop.start()
        return self.issuer

    def stop(self) -> None:
        self._loop.stop()

    def __enter__(self) -> DevOidcProvider:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
