"""Pin the public surface of every tvote package: a change here is an API change (style habit 4).

Each public module (no ``_`` in its dotted name) declares ``__all__``, and it is compared here for equality,
not as a superset (httpx's ``tests/test_exported_members.py``): a name added to or dropped from a surface
fails until this file says so. A new public module fails :func:`test_every_public_module_is_pinned` until
it is pinned here.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import crypto

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("crypto", "ledger", "verifier", "voting", "kiosk")

PINNED: dict[str, set[str]] = {
    "crypto": {
        "BallotError",
        "BallotSecrets",
        "BatchError",
        "Ciphertext",
        "CombinedDecryption",
        "CombinedTally",
        "Complaint",
        "ComplaintAnswer",
        "ComplaintOutcome",
        "ComplaintResolution",
        "ContestSecrets",
        "ContestSpec",
        "CryptoError",
        "DecodingError",
        "ElectionContext",
        "EncryptedBallot",
        "EncryptedContest",
        "EncryptedSelection",
        "EncryptedShare",
        "Exclusion",
        "InvalidEncoding",
        "JointKey",
        "PROTOCOL_VERSION",
        "PartialDecryption",
        "Point",
        "ProofError",
        "Qualification",
        "RevealedBallot",
        "Scalar",
        "SelectionSecret",
        "ThresholdError",
        "TrusteeCommitments",
        "TrusteeEnrolment",
        "TrusteeKey",
        "TrusteeKeyGen",
        "VerificationError",
        "combine",
        "combine_tally",
        "decode_verified_ballot",
        "discrete_log",
        "encrypt_ballot",
        "enrolment_digest",
        "normalize_tracking_code",
        "public_share",
        "qualify",
        "resolve_complaint",
        "reveal",
        "tagged_sha256",
        "tally_ciphertexts",
        "tracking_code_from_hash",
        "verify_ballot",
        "verify_ballots",
        "verify_partial",
        "verify_revealed",
        "verify_share",
    },
    "crypto.hazmat": {
        "CHAUM_PEDERSEN_PURPOSE",
        "ChaumPedersenProof",
        "Ciphertext",
        "DisjunctiveProof",
        "Equation",
        "G",
        "IDENTITY",
        "L",
        "MAX_BOUND",
        "PROTOCOL_VERSION",
        "Point",
        "RandomSource",
        "SCHNORR_PURPOSE",
        "Scalar",
        "SchnorrProof",
        "TranscriptItem",
        "WEIGHT_BYTES",
        "allowed_range",
        "ballot_equations",
        "canonical_allowed",
        "challenge",
        "chaum_pedersen_equations",
        "check_equation",
        "combined_point",
        "draw_weight",
        "encode_transcript",
        "encrypt",
        "failing_items",
        "joint_public_key",
        "lagrange_coefficient",
        "lagrange_combine",
        "membership_equations",
        "prove_chaum_pedersen",
        "prove_membership",
        "prove_schnorr",
        "prove_with_nonces",
        "random_scalar",
        "schnorr_equations",
        "small_multiple",
        "sum_ciphertexts",
        "tagged_sha256",
        "verify_chaum_pedersen",
        "verify_membership",
        "verify_schnorr",
    },
    "kiosk": set(),
    "ledger": {
        "Appended",
        "ConsistencyProof",
        "CosignatureConflict",
        "ForkError",
        "InclusionProof",
        "InvalidEncoding",
        "InvalidEntry",
        "Ledger",
        "LedgerConfig",
        "LedgerError",
        "NotFound",
        "ProofError",
        "RecordError",
        "RollbackError",
        "SignatureError",
        "StorageError",
        "StoredCheckpoint",
        "UnknownWitness",
        "VerificationError",
        "Witness",
        "WitnessRefusal",
    },
    "ledger.events": {"BALLOT_TYPES", "LIFECYCLE_RANK", "ONCE", "EventType"},
    "ledger.files": {"atomic_writer", "write_atomic"},
    "ledger.merkle": {
        "CompactRange",
        "EMPTY_ROOT",
        "HASH_SIZE",
        "MAX_PROOF_LENGTH",
        "consistency_proof",
        "consistency_ranges",
        "fold",
        "inclusion_proof",
        "inclusion_ranges",
        "leaf_hash",
        "node_hash",
        "root",
        "subtree_nodes",
        "verify_consistency",
        "verify_inclusion",
    },
    "ledger.record": {
        "ARCHIVE_PREFIX",
        "Checkpoint",
        "CheckpointRecord",
        "CosignatureBundle",
        "ENTRY_VERSION",
        "Entry",
        "ForkError",
        "InvalidEncoding",
        "InvalidEntry",
        "LedgerError",
        "LogKey",
        "LogSigner",
        "MAX_ENTRY_BYTES",
        "MAX_JSON_DEPTH",
        "MAX_NAME_CHARS",
        "MAX_SAFE_INTEGER",
        "ProofError",
        "RECORD_FORMAT",
        "RECORD_VERSION",
        "Record",
        "RecordError",
        "RecordHeader",
        "RecordSummary",
        "RollbackError",
        "SignatureError",
        "SignedCheckpoint",
        "TextRuleError",
        "UNIQUE_KINDS",
        "UniqueKind",
        "UniqueValue",
        "VerificationError",
        "WitnessKey",
        "WitnessPolicy",
        "WitnessSigner",
        "ZERO_HASH",
        "aggregate_cosignatures",
        "ballot_unique_values",
        "canonical_json",
        "check_display_text",
        "check_json_bounds",
        "check_record",
        "check_sequence",
        "cosign_message",
        "dumps_header",
        "from_hex",
        "json_depth",
        "parse_json",
        "parse_signed_note",
        "read_record",
        "repeats_within",
        "verify_cosignature",
    },
    "verifier": {
        "CHECKS",
        "Check",
        "CheckFailed",
        "Options",
        "RecordUnreadable",
        "Report",
        "VerifierError",
        "markdown_check_table",
        "verify_record",
    },
    "verifier.cli": {
        "EXIT_ERROR",
        "EXIT_INVALID",
        "EXIT_OK",
        "EXIT_UNREADABLE",
        "app",
        "main",
    },
    "voting": set(),
    "voting.api": set(),
    "voting.api.admin": {
        "router",
    },
    "voting.api.public": {
        "router",
    },
    "voting.api.trustee": {
        "router",
    },
    "voting.api.voter": {
        "BODY_LIMITS",
        "MAX_BALLOT_BYTES",
        "MAX_FACE_IMAGE_BYTES",
        "MAX_LIVENESS_BYTES",
        "router",
    },
    "voting.app": {
        "create_app",
    },
    "voting.auth": {
        "ALL_REASONS",
        "AuthError",
        "CrlFileChecker",
        "DeterministicTestMatcher",
        "DirectoryReferencePhotoSource",
        "ERROR_CODES",
        "FaceMatchError",
        "FaceMatchResult",
        "FaceMatcher",
        "HttpFaceMatcher",
        "JLIS_AUTHENTICATION_ROOT_SHA256",
        "JLIS_SIGNING_ROOT_SHA256",
        "JPKI_SIGN_POLICY_OID",
        "JPKI_TEST_SIGN_POLICY_OID",
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
        "SIGNED_MESSAGE_PREFIX",
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
        "signed_message",
        "subject_key",
    },
    "voting.cli": {
        "app",
        "main",
    },
    "voting.clients": set(),
    "voting.clients.trustee": {
        "ApiError",
        "ENROLMENT_FILE_FORMAT",
        "KdfLimits",
        "SECRET_FILE_FORMAT",
        "Trustee",
        "TrusteeApi",
        "TrusteeFileError",
        "TrusteeStateError",
        "client_for",
        "create_enrolment_key",
        "enrolment_public_key",
        "read_enrolment_key",
        "read_secret_file",
        "write_secret_file",
    },
    "voting.clients.voter": {
        "ChallengeError",
        "ChallengeResult",
        "ElectionDataError",
        "ElectionInfo",
        "PreparedBallot",
        "Receipt",
        "ReceiptError",
        "ServerError",
        "VoterClient",
        "VoterClientError",
    },
    "voting.receipt": {"Receipt"},
    "voting.result_pdf": {
        "CommissionSigner",
        "ResultPdfInputError",
        "build_result_pdf",
    },
    "voting.testing": {
        "CRL_DISTRIBUTION_POINTS_UNIT",
        "CommissionTestCa",
        "DEMO_WITNESSES",
        "DEMO_WITNESS_QUORUM",
        "DEV_ACR",
        "DEV_TRUST_FRAMEWORK",
        "DEV_VERIFIED_SCOPE",
        "DemoElection",
        "DemoOutcome",
        "DemoWitnesses",
        "DevClient",
        "DevOidcProvider",
        "DevSubject",
        "JpkiTestCa",
        "LoopbackServer",
        "Resident",
        "RsaKeyPool",
        "TestCard",
        "TestResident",
        "demo_claims",
        "demo_face_image",
        "demo_live_capture",
        "demo_settings",
        "encode_jpki_birth_date",
        "login_as",
        "make_residents",
        "new_rsa_key",
        "roll_csv",
        "run_decryption",
        "run_demo",
        "run_key_ceremony",
        "start_election",
        "tsukuba_manifest",
    },
}


def _public_modules() -> set[str]:
    """Every module of the packages whose dotted name has no private (``_``) part."""
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            if not any(p.startswith("_") for p in parts):
                found.add(".".join(parts))
    return found


def _all(name: str) -> list[str]:
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} declares no __all__"
    exported = module.__all__
    assert isinstance(exported, list) and all(isinstance(n, str) for n in exported), name
    return exported


def test_every_public_module_is_pinned() -> None:
    assert _public_modules() == set(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_surface_is_pinned(name: str) -> None:
    exported = _all(name)
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    assert set(exported) == PINNED[name]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    for attr in _all(name):
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"


def test_hazmat_is_not_reexported_at_top_level() -> None:
    """Raw proof and group operations stay behind crypto.hazmat."""
    for name in ("prove_membership", "prove_schnorr", "challenge", "encrypt", "small_multiple", "G"):
        assert name not in crypto.__all__


def test_one_exception_tree() -> None:
    for name in (
        "InvalidEncoding",
        "DecodingError",
        "VerificationError",
        "ProofError",
        "BallotError",
        "ThresholdError",
        "BatchError",
    ):
        assert issubclass(getattr(crypto, name), crypto.CryptoError)
    for name in ("ProofError", "BallotError", "ThresholdError", "BatchError"):
        assert issubclass(getattr(crypto, name), crypto.VerificationError)
