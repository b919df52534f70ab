//! RFC 9162 inclusion proofs (SHA-256 Merkle trees, §2.1.3.2), for the verifier's V12: every cast ballot
//! shows its voter alias on the committed roll (`docs/verifier.md`). The reference is Python's
//! `ledger.merkle.verify_inclusion`; `tests/native/test_native_merkle.py` feeds both the same proofs,
//! sound and tampered, and requires the same verdicts. Public data only (a roll's aliases and hashes).

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`: a leaf's hash.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: an interior node's hash.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Why a proof fails, in the reference's words (`ledger.merkle.verify_inclusion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InclusionError {
    IndexOutOfRange,
    TooLong,
    TooShort,
    RootMismatch,
}

impl InclusionError {
    pub fn message(self) -> &'static str {
        match self {
            InclusionError::IndexOutOfRange => "index is not below tree size",
            InclusionError::TooLong => "proof is longer than the tree is deep",
            InclusionError::TooShort => "proof is shorter than the tree is deep",
            InclusionError::RootMismatch => "computed root does not match",
        }
    }
}

/// RFC 9162 §2.1.3.2: whether `path` shows the leaf hash `leaf` at `index` of the tree of `size` leaves
/// whose root is `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), InclusionError> {
    if index >= size {
        return Err(InclusionError::IndexOutOfRange);
    }
    let (mut fn_, mut sn, mut r) = (index, size - 1, *leaf);
    for p in path {
        if sn == 0 {
            return Err(InclusionError::TooLong);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ != 0 && fn_ & 1 == 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(InclusionError::TooShort);
    }
    if r != *root {
        return Err(InclusionError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9162 §2.1.1's MTH, stated recursively (the largest power of two below n splits the range).
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => leaves[0],
            n => {
                let k = split(n);
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// RFC 9162 §2.1.3.1's PATH(m, D[n]).
    fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return vec![];
        }
        let k = split(n);
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&(i as u64).to_be_bytes())).collect()
    }

    #[test]
    fn every_proof_of_small_trees_verifies_and_every_tampering_fails() {
        for n in 1..=40usize {
            let ls = leaves(n);
            let root = mth(&ls);
            for m in 0..n {
                let p = path(m, &ls);
                assert_eq!(
                    verify_inclusion(&ls[m], m as u64, n as u64, &p, &root),
                    Ok(()),
                    "{m} of {n}"
                );
                // another leaf, another index, a changed or missing or extra hash (another size may
                // pass: a left leaf's path does not bind the size, in RFC 9162 as in the reference)
                let other = (m + 1) % n;
                if other != m {
                    assert!(verify_inclusion(&ls[other], m as u64, n as u64, &p, &root).is_err());
                    assert!(verify_inclusion(&ls[m], other as u64, n as u64, &p, &root).is_err());
                }
                for j in 0..p.len() {
                    let mut q = p.clone();
                    q[j][j % 32] ^= 1;
                    assert_eq!(
                        verify_inclusion(&ls[m], m as u64, n as u64, &q, &root),
                        Err(InclusionError::RootMismatch)
                    );
                }
                if !p.is_empty() {
                    assert_eq!(
                        verify_inclusion(&ls[m], m as u64, n as u64, &p[1..], &root),
                        Err(InclusionError::TooShort)
                    );
                }
                let mut longer = p.clone();
                longer.push(root);
                assert_eq!(
                    verify_inclusion(&ls[m], m as u64, n as u64, &longer, &root),
                    Err(InclusionError::TooLong)
                );
            }
            assert_eq!(
                verify_inclusion(&ls[0], n as u64, n as u64, &[], &root),
                Err(InclusionError::IndexOutOfRange)
            );
        }
    }

    #[test]
    fn rfc_9162_hashes() {
        // the empty tree's root is SHA-256 of the empty string; a one-leaf tree's root is its leaf hash
        assert_eq!(
            hex(&mth(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // SHA-256(0x00): the leaf hash of the empty leaf (RFC 6962's test vectors)
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
