"""The voter-authentication package's one exception tree.

::

    AuthError                      base of everything voting.auth raises; ``code`` is stable
    ├── JpkiError                  My Number card (JPKI) signature evidence rejected
    │   └── RevocationError        the certificate is revoked, or its revocation status is unknown
    ├── OidcError                  digital-ID (OpenID Connect) flow or ID token rejected
    ├── FaceMatchError             the face-match engine failed, answered badly, or said no
    ├── DappError                  the Digital Authentication App (signing on the phone) failed or said no
    └── RollError                  roll-matching input (roll key, matching data) is unusable

Every error carries ``code``, a short machine-readable identifier such as ``jpki.chain`` or
``oidc.nonce`` (the full list is :data:`ERROR_CODES` and ``docs/authentication.md``), and
``operator_message``, a one-line text for the operator. Neither ever contains a voter's name,
address, birth date or any other personal data: messages name the *check*, never the *person*.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ERROR_CODES",
    "AuthError",
    "DappError",
    "FaceMatchError",
    "JpkiError",
    "OidcError",
    "RevocationError",
    "RollError",
]

#: Every code raised by :mod:`voting.auth`, with what it means. Codes are stable API.
ERROR_CODES: Final[dict[str, str]] = {
    "jpki.malformed": "certificate, intermediate or signature bytes do not parse",
    "jpki.message": "election base hash, ballot hash or challenge has the wrong length",
    "jpki.chain": "certificate does not chain to a configured JPKI trust anchor",
    "jpki.expired": "certificate validity period ended before the verification time",
    "jpki.not_yet_valid": "certificate validity period starts after the verification time",
    "jpki.key_usage": "certificate lacks digitalSignature+nonRepudiation key usage",
    "jpki.policy": "certificate does not carry an accepted JPKI certificate policy",
    "jpki.key": "certificate key is not RSA with at least 2048 bits",
    "jpki.signature": "card signature does not verify over the expected message",
    "jpki.attributes": "certificate lacks the basic-four subjectAltName entries",
    "jpki.revoked": "certificate serial is listed on a valid, current CRL (or delta CRL) in its scope",
    "jpki.revocation_unavailable": "no valid and current revocation data for the issuer",
    "jpki.crl_scope": "no valid, current complete CRL in scope covers the certificate for every reason",
    "jpki.crl_unsupported": "the only revocation data in scope is an indirect CRL, which is refused",
    "jpki.anchor_not_pinned": "a configured trust anchor is not in the pinned SHA-256 fingerprint list",
    "oidc.config": "provider discovery document or JWKS is missing or unusable",
    "oidc.transport": "the provider could not be reached or answered with an HTTP error",
    "oidc.state": "callback state does not match the pending request",
    "oidc.token_exchange": "token endpoint refused the authorization code or PKCE verifier",
    "oidc.signature": "ID token signature does not verify against the provider JWKS",
    "oidc.claims": "ID token claims (sub, verified_claims) are missing, malformed or contradictory",
    "oidc.issuer": "ID token issuer is not the configured provider",
    "oidc.audience": "ID token audience is not this relying party",
    "oidc.expired": "ID token is expired (or issued in the future)",
    "oidc.nonce": "ID token nonce is not the one derived from this ballot hash and salt",
    "oidc.acr": "ID token acr is not one of the configured acceptable authentication levels",
    "oidc.auth_time": "ID token auth_time is missing or older than the configured maximum age",
    "face.transport": "face-match engine unreachable, timed out or returned an HTTP error",
    "face.response": "face-match engine response is not the strict expected JSON",
    "face.rejected": "face-match decision negative or liveness failed",
    "face.reference": "no usable reference photo of the matched roll resident in the authoritative source",
    "dapp.config": "Digital Authentication App settings (client id, client key, URL) are unusable",
    "dapp.unavailable": "the Digital Authentication App service is unreachable, timed out or failed (5xx)",
    "dapp.response": "the Digital Authentication App answered outside its documented shape or size",
    "dapp.pending": "the resident has not approved the signing transaction in the app yet",
    "dapp.refused": "the resident refused the signing transaction in the app",
    "dapp.expired": "the signing transaction expired before the resident approved it",
    "dapp.digest_mismatch": "the app's result signs another digest than the one this ballot's message has",
    "roll.key": "roll key is not 32 bytes",
    "roll.data": "matching data (name, birth date, address) is empty or malformed",
}


class AuthError(Exception):
    """Base class of every error raised by :mod:`voting.auth`.

    ``code`` is a stable identifier from :data:`ERROR_CODES`; ``str(err)`` is developer text;
    ``operator_message`` is the one-line operator text.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unregistered auth error code {code!r}")
        self.code = code
        super().__init__(f"{code}: {message}")
        self._message = message

    @property
    def operator_message(self) -> str:
        return f"authentication check '{self.code}' failed: {self._message}"


class JpkiError(AuthError):
    """JPKI (My Number card signature) evidence was rejected."""


class RevocationError(JpkiError):
    """The certificate is revoked (``jpki.revoked``) or its status is unknown
    (``jpki.revocation_unavailable``, ``jpki.crl_scope``, ``jpki.crl_unsupported``); all fail closed."""


class OidcError(AuthError):
    """The digital-ID (OpenID Connect) flow or its ID token was rejected."""


class FaceMatchError(AuthError):
    """The face-match engine errored, answered malformed JSON, or returned a negative decision."""


class DappError(AuthError):
    """The Digital Authentication App's signing transaction failed (``dapp.unavailable``, ``dapp.response``),
    is not approved (``dapp.pending``, ``dapp.refused``, ``dapp.expired``) or signs another digest
    (``dapp.digest_mismatch``). Its certificate and signature are then checked as JPKI (``jpki.*``)."""


class RollError(AuthError):
    """Roll-matching input is unusable (bad roll key or empty matching data)."""
