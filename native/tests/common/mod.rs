//! What the integration tests share: the repository's vector files (`../tests/vectors/`), hex, the JSON →
//! decoder value conversion and the election of `ballots.json`.
#![allow(dead_code)] // each test file is its own crate and uses part of this

use std::path::PathBuf;

use serde_json::Value as Json;
use tvote_native::ballot::{ContestSpec, Election};
use tvote_native::value::Value;

/// A vector file of `../tests/vectors/`.
pub fn load(name: &str) -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn hex32(s: &str) -> [u8; 32] {
    hex(s).try_into().unwrap()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// serde_json → the decoder's value (a float, even `2.0`, is not an integer).
pub fn value(j: &Json) -> Value {
    match j {
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) if n.is_i64() || n.is_u64() => Value::Int(n.as_i64()),
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(xs) => Value::List(xs.iter().map(value).collect()),
        Json::Object(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), value(v))).collect()),
        _ => Value::Other,
    }
}

/// The election of a vector file's `election` object (`ballots.json`).
pub fn election_of(data: &Json) -> Election {
    let e = &data["election"];
    let contests = e["contests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| ContestSpec {
            id: c["contest_id"].as_str().unwrap().to_string(),
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
    Election::new(
        hex32(e["base_hash"].as_str().unwrap()),
        hex32(e["public_key"].as_str().unwrap()),
        contests,
    )
    .unwrap()
}
