"""Pin the public surface of the crypto package: a change here is an API change (style habit 4)."""

from __future__ import annotations

import crypto
import crypto.hazmat


def _public(mod: object) -> set[str]:
    return set(getattr(mod, "__all__"))


def test_all_names_exist() -> None:
    for mod in (crypto, crypto.hazmat):
        for name in _public(mod):
            assert hasattr(mod, name), f"{mod.__name__}.{name} is in __all__ but missing"


def test_crypto_surface_is_pinned() -> None:
    assert _public(crypto) == {
        "PROTOCOL_VERSION", "BallotError", "BallotSecrets", "BatchError", "Ciphertext", "CombinedDecryption",
        "CombinedTally", "Complaint", "ComplaintAnswer", "ComplaintOutcome", "ComplaintResolution",
        "ContestSecrets", "ContestSpec", "CryptoError", "DecodingError", "ElectionContext", "EncryptedBallot",
        "EncryptedContest", "EncryptedSelection", "EncryptedShare", "Exclusion", "InvalidEncoding",
        "JointKey", "PartialDecryption", "Point", "ProofError", "Qualification", "RevealedBallot", "Scalar",
        "SelectionSecret", "ThresholdError", "TrusteeCommitments", "TrusteeEnrolment", "TrusteeKey",
        "TrusteeKeyGen",
        "VerificationError", "combine", "combine_tally", "decode_verified_ballot", "discrete_log",
        "encrypt_ballot", "enrolment_digest",
        "normalize_tracking_code", "public_share", "qualify", "resolve_complaint", "reveal", "tagged_sha256",
        "tally_ciphertexts", "tracking_code_from_hash", "verify_ballot", "verify_ballots", "verify_partial",
        "verify_revealed", "verify_share",
    }


def test_hazmat_surface_is_pinned() -> None:
    assert _public(crypto.hazmat) == {
        "CHAUM_PEDERSEN_PURPOSE", "IDENTITY", "MAX_BOUND", "PROTOCOL_VERSION", "SCHNORR_PURPOSE",
        "WEIGHT_BYTES", "ChaumPedersenProof", "Ciphertext", "DisjunctiveProof", "Equation", "G", "L", "Point",
        "RandomSource", "Scalar", "SchnorrProof", "TranscriptItem", "allowed_range", "ballot_equations", "canonical_allowed", "challenge", "chaum_pedersen_equations",
        "check_equation", "combined_point", "draw_weight", "encode_transcript", "encrypt", "failing_items",
        "joint_public_key", "lagrange_coefficient", "membership_equations", "prove_chaum_pedersen",
        "prove_membership", "prove_schnorr", "prove_with_nonces", "random_scalar", "schnorr_equations",
        "small_multiple", "sum_ciphertexts", "tagged_sha256", "verify_chaum_pedersen", "verify_membership",
        "verify_schnorr",
    }


def test_hazmat_is_not_reexported_at_top_level() -> None:
    """Raw proof and group operations stay behind crypto.hazmat."""
    for name in ("prove_membership", "prove_schnorr", "challenge", "encrypt", "small_multiple", "G"):
        assert name not in _public(crypto)


def test_one_exception_tree() -> None:
    for name in ("InvalidEncoding", "DecodingError", "VerificationError", "ProofError", "BallotError",
                 "ThresholdError", "BatchError"):
        assert issubclass(getattr(crypto, name), crypto.CryptoError)
    for name in ("ProofError", "BallotError", "ThresholdError", "BatchError"):
        assert issubclass(getattr(crypto, name), crypto.VerificationError)
