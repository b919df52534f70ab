//! The cost of the multiscalar multiplication itself, for the benchmark's "how close is the batch to it".

use std::time::Instant;

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use rand_core::{OsRng, RngCore};

/// Seconds per point of one `vartime_multiscalar_mul` of `n` random points, best of `reps` runs;
/// `short` draws 128-bit scalars (like the weights of the commitments), else full ones.
pub fn msm_seconds_per_point(n: usize, short: bool, reps: usize) -> f64 {
    let mut bytes = [0u8; 64];
    let points: Vec<RistrettoPoint> = (0..n)
        .map(|_| {
            OsRng.fill_bytes(&mut bytes);
            RistrettoPoint::from_uniform_bytes(&bytes)
        })
        .collect();
    let scalars: Vec<Scalar> = (0..n)
        .map(|_| {
            let mut b = [0u8; 32];
            OsRng.fill_bytes(if short { &mut b[..16] } else { &mut b[..] });
            Scalar::from_bytes_mod_order(b)
        })
        .collect();
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let p = RistrettoPoint::vartime_multiscalar_mul(&scalars, &points);
        let dt = t.elapsed().as_secs_f64();
        std::hint::black_box(p);
        best = best.min(dt);
    }
    best / n.max(1) as f64
}

/// Seconds per point of decoding (RFC 9496 decompression), best of `reps` runs over `n` points.
pub fn decode_seconds_per_point(n: usize, reps: usize) -> f64 {
    let mut bytes = [0u8; 64];
    let encs: Vec<[u8; 32]> = (0..n)
        .map(|_| {
            OsRng.fill_bytes(&mut bytes);
            RistrettoPoint::from_uniform_bytes(&bytes).compress().to_bytes()
        })
        .collect();
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        for e in &encs {
            std::hint::black_box(crate::ballot::Pt::decode(*e));
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    best / n.max(1) as f64
}
