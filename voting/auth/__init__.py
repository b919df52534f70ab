"""Voter authentication: JPKI card signatures, digital ID (OpenID Connect) and the face-match hook.

Public surface (everything else is private)::

    JPKI        JpkiVerifier, JpkiSubmission, JpkiIdentity, JpkiEvidence, signed_message,
                new_challenge, load_trust_anchors, policy/attribute OID constants
    trust pins  check_anchor_pins, anchor_pin_problems, certificate_fingerprint, JLIS_SIGNING_ROOT_SHA256,
                JLIS_AUTHENTICATION_ROOT_SHA256
    digital ID  OidcRelyingParty, OidcProviderConfig, PendingOidcLogin, OidcIdentity, OidcEvidence,
                ballot_nonce, subject_key
    face match  FaceMatcher (protocol), FaceMatchResult, HttpFaceMatcher, DeterministicTestMatcher,
                ReferenceImageSource, ReferencePhotoSource (protocol), DirectoryReferencePhotoSource,
                LiveCapture, require_match
    signing app DigitalAuthAppClient, DappConfig, SigningApp (protocol), SignTransaction, SignStatus,
                sha256_digest_info, SHA256_DIGEST_INFO_PREFIX, DAPP_*_PATH, DAPP_CLIENT_ASSERTION_TYPE (the
                Digital Authentication App's signing transaction: My Number card on the phone)
    revocation  RevocationChecker (protocol), CrlFileChecker, UnsafeNoRevocationCheck, load_crl,
                ALL_REASONS
    roll        RollKey, RollMatchKey, roll_match_key, normalise_text
    errors      AuthError > JpkiError > RevocationError; OidcError; FaceMatchError; DappError; RollError

See ``docs/authentication.md``.
"""

from ._dapp import (
    DAPP_AUTHORIZATION_PATH,
    DAPP_CLIENT_ASSERTION_TYPE,
    DAPP_SIGN_TRANSACTIONS_PATH,
    DAPP_TOKEN_PATH,
    SHA256_DIGEST_INFO_PREFIX,
    DappConfig,
    DigitalAuthAppClient,
    SigningApp,
    SignStatus,
    SignTransaction,
    sha256_digest_info,
)
from ._errors import (
    ERROR_CODES,
    AuthError,
    DappError,
    FaceMatchError,
    JpkiError,
    OidcError,
    RevocationError,
    RollError,
)
from ._face import (
    DeterministicTestMatcher,
    DirectoryReferencePhotoSource,
    FaceMatcher,
    FaceMatchResult,
    HttpFaceMatcher,
    LiveCapture,
    ReferenceImageSource,
    ReferencePhotoSource,
    require_match,
)
from ._jpki import (
    JLIS_AUTHENTICATION_ROOT_SHA256,
    JLIS_SIGNING_ROOT_SHA256,
    JPKI_SIGN_POLICY_OID,
    JPKI_TEST_SIGN_POLICY_OID,
    SIGNED_MESSAGE_PREFIX,
    JpkiEvidence,
    JpkiIdentity,
    JpkiSubmission,
    JpkiVerifier,
    anchor_pin_problems,
    certificate_fingerprint,
    check_anchor_pins,
    load_trust_anchors,
    new_challenge,
    signed_message,
)
from ._oidc import (
    OidcEvidence,
    OidcIdentity,
    OidcProviderConfig,
    OidcRelyingParty,
    PendingOidcLogin,
    ballot_nonce,
    subject_key,
)
from ._revocation import ALL_REASONS, CrlFileChecker, RevocationChecker, UnsafeNoRevocationCheck, load_crl
from ._roll import RollKey, RollMatchKey, normalise_text, roll_match_key

__all__ = [
    "ALL_REASONS",
    "DAPP_AUTHORIZATION_PATH",
    "DAPP_CLIENT_ASSERTION_TYPE",
    "DAPP_SIGN_TRANSACTIONS_PATH",
    "DAPP_TOKEN_PATH",
    "ERROR_CODES",
    "JLIS_AUTHENTICATION_ROOT_SHA256",
    "JLIS_SIGNING_ROOT_SHA256",
    "JPKI_SIGN_POLICY_OID",
    "JPKI_TEST_SIGN_POLICY_OID",
    "SHA256_DIGEST_INFO_PREFIX",
    "SIGNED_MESSAGE_PREFIX",
    "AuthError",
    "CrlFileChecker",
    "DappConfig",
    "DappError",
    "DeterministicTestMatcher",
    "DigitalAuthAppClient",
    "DirectoryReferencePhotoSource",
    "FaceMatchError",
    "FaceMatchResult",
    "FaceMatcher",
    "HttpFaceMatcher",
    "JpkiError",
    "JpkiEvidence",
    "JpkiIdentity",
    "JpkiSubmission",
    "JpkiVerifier",
    "LiveCapture",
    "OidcError",
    "OidcEvidence",
    "OidcIdentity",
    "OidcProviderConfig",
    "OidcRelyingParty",
    "PendingOidcLogin",
    "ReferenceImageSource",
    "ReferencePhotoSource",
    "RevocationChecker",
    "RevocationError",
    "RollError",
    "RollKey",
    "RollMatchKey",
    "SignStatus",
    "SignTransaction",
    "SigningApp",
    "UnsafeNoRevocationCheck",
    "anchor_pin_problems",
    "ballot_nonce",
    "certificate_fingerprint",
    "check_anchor_pins",
    "load_crl",
    "load_trust_anchors",
    "new_challenge",
    "normalise_text",
    "require_match",
    "roll_match_key",
    "sha256_digest_info",
    "signed_message",
    "subject_key",
]
