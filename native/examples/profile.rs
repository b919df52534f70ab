//! Where a batch's time goes (decoding, the checks before the equations, the combination), on the
//! vectors' ballots: `cargo run --release --example profile`.
use std::time::Instant;

use tvote_native::ballot::{decode_ballot, ContestSpec, Election};
use tvote_native::value::Value;
use tvote_native::verify::{check_batch, precheck};

fn value(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n.as_i64().map_or(Value::Other, |i| Value::Int(Some(i))),
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(xs) => Value::List(xs.iter().map(value).collect()),
        serde_json::Value::Object(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), value(v))).collect()),
        serde_json::Value::Null => Value::Other,
    }
}

fn hex32(s: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/");
    let ballots: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}ballots.json")).unwrap()).unwrap();
    let batch: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}batch.json")).unwrap()).unwrap();
    let e = &ballots["election"];
    let contests = e["contests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| ContestSpec {
            id: c["contest_id"].as_str().unwrap().into(),
            selection_ids: c["selection_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().into())
                .collect(),
            min: c["min"].as_u64().unwrap() as u32,
            max: c["max"].as_u64().unwrap() as u32,
        })
        .collect();
    let el = Election::new(
        hex32(e["base_hash"].as_str().unwrap()),
        hex32(e["public_key"].as_str().unwrap()),
        contests,
    )
    .unwrap();
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
