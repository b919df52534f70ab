//! Where a batch's time goes (decoding, the checks before the equations, the combination), on the
//! vectors' ballots: `cargo run --release --example profile`.
use std::time::Instant;

use tvote_native::ballot::decode_ballot;
use tvote_native::value::Value;
use tvote_native::verify::{check_batch, precheck};

#[path = "../tests/common/mod.rs"]
mod common;
use common::{election_of, load, value};

fn main() {
    let ballots = load("ballots.json");
    let batch = load("batch.json");
    let el = election_of(&ballots);
    let vals: Vec<Value> = batch["batches"][0]["ballots"]
        .as_array()
        .unwrap()
        .iter()
        .map(value)
        .collect();
    let n = 200;
    let vals: Vec<&Value> = (0..n).map(|i| &vals[i % vals.len()]).collect();
    let t = Instant::now();
    let decoded: Vec<_> = vals.iter().map(|v| decode_ballot(v).unwrap()).collect();
    let dt_dec = t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    for b in &decoded {
        precheck(&el, b).unwrap();
    }
    let dt_pre = t.elapsed().as_secs_f64() / n as f64;
    let refs: Vec<_> = decoded.iter().collect();
    let t = Instant::now();
    let out = check_batch(&el, &refs);
    let dt_all = t.elapsed().as_secs_f64() / n as f64;
    assert!(out.iter().all(Option::is_none));
    println!("RFC 9496 decoding alone: {:.2} µs per point; MSM of 20,000 points: {:.2} µs per point (full), {:.2} (128-bit)",
        tvote_native::bench::decode_seconds_per_point(2000, 3) * 1e6,
        tvote_native::bench::msm_seconds_per_point(20000, false, 2) * 1e6,
        tvote_native::bench::msm_seconds_per_point(20000, true, 2) * 1e6);
    println!("per ballot (3 contests, 15 selections, 76 equations): decode {:.0} µs, precheck {:.0} µs, batch check (precheck + combination) {:.0} µs",
        dt_dec * 1e6, dt_pre * 1e6, dt_all * 1e6);
}
