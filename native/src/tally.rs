//! The encrypted tally (docs/protocol.md §13): the homomorphic sum per selection of ballots that were
//! already verified.
//!
//! **No proof is checked here.** The tally sums the ballots that the intake accepted (§9.5 at intake, and
//! the public verifier re-checks every one) and that the counting rule counted; what this module checks is
//! what the sum itself relies on: every ballot decodes strictly (exactly as [`decode_ballot`]: every point,
//! commitments included, a canonical ristretto255 encoding, every scalar canonical), carries the election's
//! base hash, and has the manifest's shape (its contests and selections, in order). The sum is computed in
//! the group and encoded once, at the end.

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::traits::Identity;

use crate::ballot::{decode_ballot, Ballot, Election};
use crate::value::Value;

/// One selection's running sum `(Σa, Σb)`.
pub type Sum = (RistrettoPoint, RistrettoPoint);

/// The reference's words for a ballot of another election or shape (`crypto.tally_ciphertexts`).
pub const SHAPE_MISMATCH: &str = "ballots of different elections or shapes cannot be tallied together";

/// A ballot the sum refuses: its position in the batch and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub index: usize,
    pub reason: String,
}

/// The empty tally: `(O, O)` for every selection of the manifest (contests, then selections, in order).
pub fn zero(e: &Election) -> Vec<Sum> {
    let n: usize = e.contests.iter().map(|c| c.selection_ids.len()).sum();
    vec![(RistrettoPoint::identity(), RistrettoPoint::identity()); n]
}

/// Whether `b` carries the election's base hash and exactly the manifest's contests and selections, in
/// order.
pub fn same_shape(e: &Election, b: &Ballot) -> bool {
    b.election_hash == e.base_hash
        && b.contests.len() == e.contests.len()
        && b.contests.iter().zip(&e.contests).all(|(c, spec)| {
            c.id == spec.id
                && c.selections.len() == spec.selection_ids.len()
                && c.selections
                    .iter()
                    .zip(&spec.selection_ids)
                    .all(|(s, id)| &s.id == id)
        })
}

/// `start` plus the sum of `ballots` (dict form), or the first ballot refused: one that does not decode
/// strictly, or is not of this election or shape ([`SHAPE_MISMATCH`]). `start` must have one entry per
/// selection of the manifest.
pub fn sum_values(e: &Election, start: &[Sum], ballots: &[Value]) -> Result<Vec<Sum>, Refused> {
    assert_eq!(start.len(), zero(e).len(), "one running sum per selection");
    let mut acc = start.to_vec();
    for (index, v) in ballots.iter().enumerate() {
        let b = decode_ballot(v).map_err(|err| Refused { index, reason: err.0 })?;
        if !same_shape(e, &b) {
            return Err(Refused {
                index,
                reason: SHAPE_MISMATCH.into(),
            });
        }
        let sels = b.contests.iter().flat_map(|c| &c.selections);
        for (slot, s) in acc.iter_mut().zip(sels) {
            slot.0 += s.a.p;
            slot.1 += s.b.p;
        }
    }
    Ok(acc)
}
