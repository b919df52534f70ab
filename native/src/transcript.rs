//! Transcript hashing (docs/protocol.md §4): `u32be(len(D)) || D || u32be(len(x_1)) || x_1 || …` with
//! `D = "tvote/2/" || purpose`; `challenge` is SHA-512 of it read little-endian and reduced mod L,
//! `tagged_sha256` is SHA-256 of it.

use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha256, Sha512};

/// The version part of every domain string.
pub const PREFIX: &str = "tvote/2/";

/// A transcript under construction (one hasher for each kind of digest).
pub struct Transcript<D: Digest> {
    h: D,
}

impl<D: Digest> Transcript<D> {
    pub fn new(purpose: &str) -> Self {
        let mut t = Transcript { h: D::new() };
        let d_len = PREFIX.len() + purpose.len();
        t.h.update((d_len as u32).to_be_bytes());
        t.h.update(PREFIX.as_bytes());
        t.h.update(purpose.as_bytes());
        t
    }

    /// A byte string, a text (its UTF-8), a point or scalar (its 32 bytes).
    pub fn bytes(&mut self, x: &[u8]) -> &mut Self {
        self.h.update((x.len() as u32).to_be_bytes());
        self.h.update(x);
        self
    }

    /// An integer: 8 bytes unsigned big-endian.
    pub fn u64(&mut self, x: u64) -> &mut Self {
        self.h.update(8u32.to_be_bytes());
        self.h.update(x.to_be_bytes());
        self
    }

    pub fn finish(self) -> sha2::digest::Output<D> {
        self.h.finalize()
    }
}

pub type ChallengeTranscript = Transcript<Sha512>;
pub type TaggedTranscript = Transcript<Sha256>;

impl Transcript<Sha512> {
    /// `challenge(purpose, …)`: the SHA-512 digest read little-endian, reduced mod L.
    pub fn challenge(self) -> Scalar {
        let d = self.finish();
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&d);
        Scalar::from_bytes_mod_order_wide(&wide)
    }
}

impl Transcript<Sha256> {
    pub fn tagged_sha256(self) -> [u8; 32] {
        self.finish().into()
    }
}
