"""tvote's cryptographic core. Pure: no I/O, no server or database imports.

Safe recipes live here; the raw layers (group, ElGamal, proofs, threshold math) are in
:mod:`crypto.hazmat`, to be used only by new protocol steps that come with their own proofs and spec.

Recipes
    Ballots: :class:`ContestSpec`, :class:`ElectionContext`, :func:`encrypt_ballot`, :func:`verify_ballot`,
    :func:`verify_ballots` (batch: one random linear combination, bisected on failure),
    :func:`decode_verified_ballot` (a verifier's fast path: decode + verify, ``None`` on any failure),
    :class:`EncryptedBallot` (``ballot_hash()``, ``tracking_code()``), Benaloh challenge
    (:func:`reveal`, :func:`verify_revealed`), :func:`tally_ciphertexts`, :func:`discrete_log`.
    Trustees: :class:`TrusteeKeyGen`, :class:`TrusteeCommitments`, :class:`EncryptedShare`,
    :class:`Complaint`, :class:`ComplaintAnswer`, :func:`resolve_complaint`, :func:`qualify`,
    :class:`JointKey`, :class:`TrusteeKey`, :class:`PartialDecryption`, :func:`verify_partial`,
    :func:`verify_partials` (a batch, by an engine's batch check),
    :func:`combine`, :func:`combine_tally`; enrolment: :class:`TrusteeEnrolment`, :func:`enrolment_digest`.
    Value types: :class:`Scalar`, :class:`Point`, :class:`Ciphertext`.
    Engines (the batch check of ballots, same verdicts either way): :func:`select_engine` (``"auto"``,
    ``"python"`` the reference, ``"native"`` the optional Rust extension ``tvote_native``), a
    :class:`BallotEngine` (its ``check_ballot`` checks one submitted ballot in dict form and returns a
    :class:`CheckedBallot`, its record and hash), :func:`native_available`, :data:`NATIVE_INSTALL_HINT`,
    :class:`EngineUnavailable`.

Errors (one tree, see :mod:`crypto._errors`)::

    CryptoError
    ├── InvalidEncoding
    ├── DecodingError
    └── VerificationError (check, subject)
        ├── ProofError
        ├── BallotError
        ├── ThresholdError
        └── BatchError (failures)
"""

from __future__ import annotations

from ._ballot import (
    BallotSecrets,
    ContestSecrets,
    ContestSpec,
    ElectionContext,
    EncryptedBallot,
    EncryptedContest,
    EncryptedSelection,
    RevealedBallot,
    SelectionSecret,
    normalize_tracking_code,
    tracking_code_from_hash,
)
from ._ballot_encrypt import encrypt_ballot, reveal
from ._ballot_verify import (
    decode_verified_ballot,
    tally_ciphertexts,
    verify_ballot,
    verify_ballots,
    verify_revealed,
)
from ._checked import CheckedBallot
from ._complaints import (
    Complaint,
    ComplaintAnswer,
    ComplaintOutcome,
    ComplaintResolution,
    resolve_complaint,
)
from ._decryption import (
    CombinedDecryption,
    CombinedTally,
    Exclusion,
    PartialDecryption,
    TrusteeKey,
    combine,
    combine_tally,
    verify_partial,
    verify_partials,
)
from ._dkg import EncryptedShare, TrusteeCommitments, verify_share
from ._dlog import discrete_log
from ._elgamal import Ciphertext
from ._enrolment import TrusteeEnrolment, enrolment_digest
from ._errors import (
    BallotError,
    BatchError,
    CryptoError,
    DecodingError,
    InvalidEncoding,
    ProofError,
    ThresholdError,
    VerificationError,
)
from ._group import Point, Scalar
from ._hash import PROTOCOL_VERSION, tagged_sha256
from ._joint_key import JointKey, Qualification, public_share, qualify
from ._native import (
    ENGINE_NAMES,
    NATIVE_INSTALL_HINT,
    BallotEngine,
    DictCheck,
    EngineUnavailable,
    native_available,
    select_engine,
)
from ._trustee import TrusteeKeyGen

__all__ = [
    "ENGINE_NAMES",
    "NATIVE_INSTALL_HINT",
    "PROTOCOL_VERSION",
    "BallotEngine",
    "BallotError",
    "BallotSecrets",
    "BatchError",
    "CheckedBallot",
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
    "DictCheck",
    "ElectionContext",
    "EncryptedBallot",
    "EncryptedContest",
    "EncryptedSelection",
    "EncryptedShare",
    "EngineUnavailable",
    "Exclusion",
    "InvalidEncoding",
    "JointKey",
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
    "native_available",
    "normalize_tracking_code",
    "public_share",
    "qualify",
    "resolve_complaint",
    "reveal",
    "select_engine",
    "tagged_sha256",
    "tally_ciphertexts",
    "tracking_code_from_hash",
    "verify_ballot",
    "verify_ballots",
    "verify_partial",
    "verify_partials",
    "verify_revealed",
    "verify_share",
]
