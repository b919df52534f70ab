//! tvote's optional native batch verifier (protocol v2 on ristretto255, `docs/protocol.md`).
//!
//! It verifies ballots as the reference (`crypto/`) does, with the same verdicts and the same check
//! names, but checks the group equations of a whole batch at once (§12): one variable-time multiscalar
//! multiplication of `curve25519-dalek`, bisected on failure. **Verification only**: no secret ever
//! passes through this crate, so its variable-time arithmetic leaks nothing (see `README.md`).
//!
//! * [`ballot`]: the election context and the strict decoding of a ballot's dict form;
//! * [`transcript`]: the transcript hashing of §4 (Fiat–Shamir challenges, tagged SHA-256);
//! * [`verify`]: §9.5 one by one ([`verify::verify_one`]) and §12 in batches ([`verify::check_batch`]);
//! * [`proofs`]: the trustees' Schnorr and Chaum–Pedersen proofs (§T2), one by one and in batches;
//! * [`tally`]: the encrypted tally (§13), the sum of ballots already verified (no proof checked);
//! * [`merkle`]: RFC 9162 inclusion proofs (SHA-256), the roll proofs of cast ballots (the verifier's V12);
//! * [`canonical`]: whether a ledger entry's text is canonical (RFC 8785), and its leaf hash (the verifier's V1);
//! * [`screen`]: the text screen of the verifier's V23 (no personal data): which literals need a look;
//! * [`bench`]: the cost per point of the multiscalar multiplication;
//! * `python` (feature `python`): the PyO3 module `tvote_native`.

pub mod ballot;
pub mod bench;
pub mod canonical;
pub mod merkle;
pub mod proofs;
pub mod screen;
pub mod tally;
pub mod transcript;
pub mod value;
pub mod verify;

#[cfg(feature = "python")]
#[allow(clippy::useless_conversion)] // PyO3 0.22's #[pyfunction] expansion (PyResult into PyResult)
mod python;
