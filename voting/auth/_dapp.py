"""The Digital Authentication App (デジタル認証アプリ) signing transaction, service side.

The Digital Agency's app lets a resident sign with the My Number card on a phone for a registered service
(the relying party). The public developer documentation (``docs/authentication.md``, "My Number card on
the phone", lists the pages) describes, for the signing process:

1. client authentication: the OAuth 2.0 client-credentials grant at the token endpoint
   (``/api/realms/main/protocol/openid-connect/token``), the client authenticated by ``private_key_jwt``
   (RFC 7523 client assertion: ``iss`` = ``sub`` = client id, ``aud`` = the token endpoint, ``jti``,
   a short ``exp``), signed with the key the service registered;
2. the service starts a signing transaction: ``POST /api/sign-transactions`` (bearer token) with the
   SHA-256 digest to sign, and receives a sign-transaction id (a UUID). A plain SHA-256 digest makes the
   card sign the bare digest; a DER ``DigestInfo`` (RFC 8017 §9.2) makes it produce a standard
   RSASSA-PKCS1-v1_5 signature, the form J-LIS and standard verifiers expect. tvote submits the
   ``DigestInfo`` of SHA-256(JPKI message) (:func:`sha256_digest_info`), so the signature is exactly the
   one :class:`voting.auth.JpkiVerifier` checks over the protocol's JPKI message: nothing else changes;
3. the resident is sent to the authorization endpoint (``/api/realms/main/protocol/openid-connect/auth``)
   with ``scope=openid sign`` and ``sign_transaction_id``: on a phone this opens the app, on a PC a QR code
   of the same address. The resident approves with the card's signing PIN;
4. the service fetches the result, ``GET /api/sign-transactions/{id}/result``: the signature and the signing
   certificate.

What this adapter does not do, because the public pages do not show it (``docs/authentication.md`` lists
the gaps): the result there is fetched with the access token of the resident's authorization-code flow and
is wrapped in a JWE for the service; the exact JSON member names of the start request and of the result
are not published. This adapter keeps to the narrow, documented shape below (the emulator in
:mod:`voting.testing` serves the same one), polls ``GET /api/sign-transactions/{id}`` for the status, and
fetches the result with its client-credentials token::

    POST /api/sign-transactions   {"hash_algorithm": "SHA-256", "digest_info": b64, "state": str}
      → 201 {"sign_transaction_id": uuid, "expires_at": "YYYY-MM-DDTHH:MM:SSZ"}
    GET  /api/sign-transactions/{id}
      → 200 {"sign_transaction_id": uuid, "status": "pending" | "approved" | "refused" | "expired"}
    GET  /api/sign-transactions/{id}/result
      → 200 {"sign_transaction_id", "hash_algorithm", "digest_info", "signature", "certificate",
             "intermediates": [b64, ...]}                (standard base64; certificates DER)
      → 409 {"status": "pending" | "refused" | "expired"}  while it is not approved

Every answer is checked before use: status code, ``Content-Type``, size (at most ``max_response_bytes``,
read as a stream), exact JSON members and their types and lengths, the echoed transaction id, a UUID id, an
expiry in the future and at most an hour away, and the returned ``digest_info`` byte-equal to the one
submitted (``dapp.digest_mismatch``). The certificate and signature then go through the JPKI checks of the
intake, unchanged. Errors (:class:`DappError`): ``dapp.unavailable`` (unreachable, timed out, 5xx: HTTP 503
at the voter API), ``dapp.response`` (an answer outside the shape: 502), ``dapp.pending`` /
``dapp.refused`` / ``dapp.expired`` (the resident has not approved), ``dapp.digest_mismatch``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from ._errors import DappError
from ._jpki import JpkiSubmission

__all__ = [
    "DAPP_AUTHORIZATION_PATH",
    "DAPP_CLIENT_ASSERTION_TYPE",
    "DAPP_SIGN_TRANSACTIONS_PATH",
    "DAPP_TOKEN_PATH",
    "SHA256_DIGEST_INFO_PREFIX",
    "DappConfig",
    "DigitalAuthAppClient",
    "SignStatus",
    "SignTransaction",
    "SigningApp",
    "sha256_digest_info",
]

#: DER of ``DigestInfo { AlgorithmIdentifier { id-sha256, NULL }, OCTET STRING (32) }`` up to the digest
SHA256_DIGEST_INFO_PREFIX: Final[bytes] = bytes.fromhex("3031300d060960864801650304020105000420")
DAPP_TOKEN_PATH: Final[str] = "/api/realms/main/protocol/openid-connect/token"  # noqa: S105 - a path
DAPP_AUTHORIZATION_PATH: Final[str] = "/api/realms/main/protocol/openid-connect/auth"
DAPP_SIGN_TRANSACTIONS_PATH: Final[str] = "/api/sign-transactions"
DAPP_CLIENT_ASSERTION_TYPE: Final[str] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SignStatus = Literal["pending", "approved", "refused", "expired"]
_STATUSES: Final[frozenset[str]] = frozenset({"pending", "approved", "refused", "expired"})
_MAX_CERT: Final[int] = 8 * 1024
_MAX_SIGNATURE: Final[int] = 1024
_MAX_INTERMEDIATES: Final[int] = 4
_MAX_TTL: Final[dt.timedelta] = dt.timedelta(hours=1)
_TIME_RE: Final[re.Pattern[str]] = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_B64_RE: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def sha256_digest_info(message: bytes) -> bytes:
    """The 51-byte DER ``DigestInfo`` of SHA-256(``message``): what the card signs with PKCS#1 v1.5 padding,
    giving the standard RSASSA-PKCS1-v1_5 / SHA-256 signature over ``message``."""
    return SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(message).digest()


@dataclass(frozen=True, slots=True)
class SignTransaction:
    """A started signing transaction: the app's id, the address that opens the app, and its expiry."""

    transaction_id: str
    app_url: str
    expires_at: dt.datetime


class SigningApp(Protocol):
    """The signing app as intake uses it (:class:`DigitalAuthAppClient`, or a test double of the same
    shape). Every method raises :class:`DappError` on any failure."""

    def start(self, digest_info: bytes, *, state: str) -> SignTransaction: ...

    def status(self, transaction_id: str) -> SignStatus: ...

    def result(self, transaction_id: str, *, digest_info: bytes) -> JpkiSubmission: ...


@dataclass(frozen=True, slots=True)
class DappConfig:
    """Where the app service is and how this server authenticates to it.

    ``client_key_pem`` is the RSA private key registered for ``private_key_jwt`` (PEM, never logged);
    ``redirect_uri`` is where the app sends the resident back (the booth); ``timeout`` seconds per request.
    """

    base_url: str
    client_id: str
    client_key_pem: bytes = field(repr=False)
    redirect_uri: str
    timeout: float = 10.0
    max_response_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9A-Za-z]{1,255}", self.client_id):
            raise DappError("dapp.config", "the client id is 1 to 255 letters and digits")
        if not self.base_url.startswith(("https://", "http://")):
            raise DappError("dapp.config", "the app service base URL must be an http(s) URL")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))


def _b64(value: Any, what: str, max_len: int) -> bytes:
    if not isinstance(value, str) or len(value) > 4 * (max_len // 3 + 1) or not _B64_RE.fullmatch(value):
        raise DappError("dapp.response", f"the app's {what} is not base64 of at most {max_len} bytes")
    try:
        out = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise DappError("dapp.response", f"the app's {what} is not base64") from None
    if not out or len(out) > max_len:
        raise DappError("dapp.response", f"the app's {what} is empty or longer than {max_len} bytes")
    return out


def _members(body: Any, required: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict) or set(body) != required:
        raise DappError("dapp.response", f"the app's answer is not an object with exactly {sorted(required)}")
    return body


class DigitalAuthAppClient:
    """:class:`SigningApp` over HTTPS (``httpx``), in the shape of the module docstring.

    ``http_client_kwargs`` go to ``httpx.Client`` (tests and the demo pass a TLS context or a transport);
    ``clock`` is the wall clock (expiry checks), injectable.
    """

    def __init__(
        self,
        config: DappConfig,
        *,
        http_client_kwargs: Mapping[str, Any] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.config = config
        try:
            self._key = RSAKey.import_key(config.client_key_pem)
        except Exception:  # joserfc raises several types for a key it cannot read
            raise DappError("dapp.config", "the client key is not an RSA private key (PEM)") from None
        if not self._key.is_private or self._key.raw_value.key_size < 2048:
            raise DappError("dapp.config", "the client key must be an RSA private key of at least 2048 bits")
        self._http_kwargs = dict(http_client_kwargs or {})
        self._clock = clock
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None

    # ------------------------------------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        """One request; returns (status, parsed JSON). Unreachable or 5xx: ``dapp.unavailable``."""
        url = self.config.base_url + path
        limit = self.config.max_response_bytes
        try:
            with (
                httpx.Client(timeout=self.config.timeout, follow_redirects=False, **self._http_kwargs) as c,
                c.stream(method, url, **kw) as r,
            ):
                if r.status_code >= 500:
                    raise DappError(
                        "dapp.unavailable", f"the signing app service answered HTTP {r.status_code}"
                    )
                data = b""
                for chunk in r.iter_bytes():
                    data += chunk
                    if len(data) > limit:
                        raise DappError("dapp.response", f"the app's answer is longer than {limit} bytes")
                media = r.headers.get("content-type", "").split(";")[0].strip().lower()
                status = r.status_code
        except httpx.HTTPError as e:
            raise DappError(
                "dapp.unavailable", f"the signing app service is unreachable ({type(e).__name__})"
            ) from None
        if media != "application/json":
            raise DappError("dapp.response", f"the app answered HTTP {status} without JSON")
        try:
            return status, json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise DappError("dapp.response", "the app's answer is not JSON") from None

    def _assertion(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.config.client_id,
            "sub": self.config.client_id,
            "aud": self.config.base_url + DAPP_TOKEN_PATH,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 60,
        }
        return jwt.encode({"alg": "RS256"}, claims, self._key)

    def _bearer(self) -> dict[str, str]:
        with self._lock:
            if self._token is None or self._token[1] <= time.monotonic():
                status, body = self._request(
                    "POST",
                    DAPP_TOKEN_PATH,
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self.config.client_id,
                        "client_assertion_type": DAPP_CLIENT_ASSERTION_TYPE,
                        "client_assertion": self._assertion(),
                    },
                )
                if status != 200 or not isinstance(body, dict):
                    raise DappError(
                        "dapp.response", f"the token endpoint refused this client (HTTP {status})"
                    )
                token, kind, ttl = body.get("access_token"), body.get("token_type"), body.get("expires_in")
                if (
                    not isinstance(token, str)
                    or not 1 <= len(token) <= 4096
                    or not isinstance(kind, str)
                    or kind.lower() != "bearer"
                    or not isinstance(ttl, int)
                    or isinstance(ttl, bool)
                    or not 1 <= ttl <= 86_400
                ):
                    raise DappError("dapp.response", "the token endpoint's answer is not a bearer token")
                self._token = (token, time.monotonic() + max(1, ttl - 30))
            return {"Authorization": f"Bearer {self._token[0]}"}

    def _authorized(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        """A request with the bearer token; a 401 (the token expired or was revoked early) fetches a new
        token and tries once more."""
        status, body = self._request(method, path, headers=self._bearer(), **kw)
        if status == 401:
            with self._lock:
                self._token = None
            status, body = self._request(method, path, headers=self._bearer(), **kw)
        return status, body

    # ------------------------------------------------------------------------------------ the steps

    def _check_id(self, transaction_id: str) -> str:
        try:
            canonical = str(uuid.UUID(transaction_id))
        except (ValueError, TypeError, AttributeError):
            raise DappError("dapp.response", "the sign-transaction id is not a UUID") from None
        if canonical != transaction_id:
            raise DappError("dapp.response", "the sign-transaction id is not a canonical UUID")
        return canonical

    def start(self, digest_info: bytes, *, state: str) -> SignTransaction:
        if len(digest_info) != 51 or not digest_info.startswith(SHA256_DIGEST_INFO_PREFIX):
            raise ValueError("digest_info must be a SHA-256 DigestInfo (51 bytes)")
        status, body = self._authorized(
            "POST",
            DAPP_SIGN_TRANSACTIONS_PATH,
            json={
                "hash_algorithm": "SHA-256",
                "digest_info": base64.b64encode(digest_info).decode(),
                "state": state,
            },
        )
        if status != 201:
            raise DappError(
                "dapp.response", f"the app refused to start a signing transaction (HTTP {status})"
            )
        b = _members(body, {"sign_transaction_id", "expires_at"})
        tx = self._check_id(b["sign_transaction_id"])
        exp_s = b["expires_at"]
        if not isinstance(exp_s, str) or not _TIME_RE.fullmatch(exp_s):
            raise DappError("dapp.response", "the transaction's expiry is not YYYY-MM-DDTHH:MM:SSZ")
        expires = dt.datetime.strptime(exp_s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        now = self._clock()
        if not now < expires <= now + _MAX_TTL:
            raise DappError("dapp.response", "the transaction's expiry is in the past or over an hour away")
        query = urlencode(
            {
                "response_type": "code",
                "scope": "openid sign",
                "client_id": self.config.client_id,
                "redirect_uri": self.config.redirect_uri,
                "state": state,
                "nonce": hashlib.sha256(state.encode()).hexdigest(),
                "sign_transaction_id": tx,
            }
        )
        return SignTransaction(tx, f"{self.config.base_url}{DAPP_AUTHORIZATION_PATH}?{query}", expires)

    def status(self, transaction_id: str) -> SignStatus:
        tx = self._check_id(transaction_id)
        status, body = self._authorized("GET", f"{DAPP_SIGN_TRANSACTIONS_PATH}/{tx}")
        if status != 200:
            raise DappError(
                "dapp.response", f"the app did not answer the transaction's status (HTTP {status})"
            )
        b = _members(body, {"sign_transaction_id", "status"})
        if b["sign_transaction_id"] != tx or b["status"] not in _STATUSES:
            raise DappError("dapp.response", "the app's status answer is for another transaction or unknown")
        st: SignStatus = b["status"]
        return st

    def result(self, transaction_id: str, *, digest_info: bytes) -> JpkiSubmission:
        tx = self._check_id(transaction_id)
        status, body = self._authorized("GET", f"{DAPP_SIGN_TRANSACTIONS_PATH}/{tx}/result")
        if status == 409:
            st = _members(body, {"status"})["status"]
            if st not in ("pending", "refused", "expired"):
                raise DappError("dapp.response", "the app's refusal names no known status")
            messages = {
                "pending": "the resident has not approved the signature in the app yet",
                "refused": "the resident refused the signature in the app",
                "expired": "the signing transaction expired before the resident approved it",
            }
            raise DappError(f"dapp.{st}", messages[st])
        if status != 200:
            raise DappError("dapp.response", f"the app did not hand over the signature (HTTP {status})")
        b = _members(
            body,
            {
                "sign_transaction_id",
                "hash_algorithm",
                "digest_info",
                "signature",
                "certificate",
                "intermediates",
            },
        )
        if b["sign_transaction_id"] != tx or b["hash_algorithm"] != "SHA-256":
            raise DappError("dapp.response", "the app's result is for another transaction or hash algorithm")
        returned = _b64(b["digest_info"], "digest_info", 64)
        if not hmac.compare_digest(returned, digest_info):
            raise DappError("dapp.digest_mismatch", "the app's result is a signature over another digest")
        inter = b["intermediates"]
        if not isinstance(inter, list) or len(inter) > _MAX_INTERMEDIATES:
            raise DappError(
                "dapp.response", f"the app's intermediates are a list of at most {_MAX_INTERMEDIATES}"
            )
        return JpkiSubmission(
            certificate_der=_b64(b["certificate"], "certificate", _MAX_CERT),
            signature=_b64(b["signature"], "signature", _MAX_SIGNATURE),
            intermediates_der=tuple(_b64(i, "intermediate", _MAX_CERT) for i in inter),
        )
