//! Known-answer tests of the trustees' proofs (`../tests/vectors/proofs.json`, docs/protocol.md §T2):
//! every valid proof verifies (one by one and in a batch), every negative case fails its named check, and
//! the batch section's combined point and failing items are reproduced.

use std::path::PathBuf;

use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use serde_json::Value as Json;
use tvote_native::ballot::Pt;
use tvote_native::proofs::{check_batch, combined_with_weights, verify_one, Item, Statement};

fn load() -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/proofs.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn pt(j: &Json) -> Pt {
    Pt::decode(hex(j.as_str().unwrap()).try_into().unwrap()).unwrap()
}

fn sc(j: &Json) -> Scalar {
    Scalar::from_canonical_bytes(hex(j.as_str().unwrap()).try_into().unwrap()).unwrap()
}

fn context(j: &Json) -> Vec<Item> {
    j.as_array()
        .unwrap()
        .iter()
        .map(|it| {
            let v = it["value"].as_str().unwrap();
            match it["type"].as_str().unwrap() {
                "u64" => Item::U64(v.parse().unwrap()),
                "str" => Item::Bytes(v.as_bytes().to_vec()),
                _ => Item::Bytes(hex(v)),
            }
        })
        .collect()
}

fn statement(kind: &str, case: &Json) -> Statement {
    let proof = &case["proof"];
    if kind == "schnorr" {
        Statement::Schnorr {
            x: pt(&case["statement"]),
            r: pt(&proof["commitment"]),
            v: sc(&proof["response"]),
            context: context(&case["context"]),
        }
    } else {
        Statement::ChaumPedersen {
            x: pt(&case["statement"]["X"]),
            a: pt(&case["base"]),
            y: pt(&case["statement"]["Y"]),
            r1: pt(&proof["commitments"][0]),
            r2: pt(&proof["commitments"][1]),
            v: sc(&proof["response"]),
            context: context(&case["context"]),
        }
    }
}

#[test]
fn valid_and_negative_proofs() {
    let data = load();
    let mut valid = Vec::new();
    for (kind, key) in [("schnorr", "schnorr"), ("chaum-pedersen", "chaum_pedersen")] {
        for case in data[key].as_array().unwrap() {
            let s = statement(kind, case);
            assert_eq!(verify_one(&s), None, "{}", case["label"]);
            valid.push(s);
        }
    }
    assert!(valid.len() >= 4);
    assert!(check_batch(&valid).iter().all(Option::is_none));
    let negative: Vec<(Statement, String)> = data["negative"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                statement(c["kind"].as_str().unwrap(), c),
                c["check"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (s, check) in &negative {
        assert_eq!(verify_one(s), Some(check.as_str()));
    }
    // all together: each negative case is named, every valid one passes
    let mut all: Vec<Statement> = valid.clone();
    all.extend(negative.iter().map(|(s, _)| s.clone()));
    let got = check_batch(&all);
    assert!(got[..valid.len()].iter().all(Option::is_none));
    for (g, (_, check)) in got[valid.len()..].iter().zip(&negative) {
        assert_eq!(*g, Some(check.as_str()));
    }
}

#[test]
fn batch_section() {
    let data = load();
    for name in ["valid", "one_bad"] {
        let b = &data["batch"][name];
        let items: Vec<Statement> = b["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| statement(c["kind"].as_str().unwrap(), c))
            .collect();
        let weights: Vec<Scalar> = b["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                let n: u128 = w.as_str().unwrap().parse().unwrap();
                let mut x = [0u8; 32];
                x[..16].copy_from_slice(&n.to_le_bytes());
                Scalar::from_bytes_mod_order(x)
            })
            .collect();
        assert_eq!(weights.len() as u64, b["equations"].as_u64().unwrap());
        let p = combined_with_weights(&items, &weights).unwrap();
        let enc: String = p
            .compress()
            .to_bytes()
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect();
        assert_eq!(enc, b["combined"].as_str().unwrap(), "{name}");
        assert_eq!(p.is_identity(), b["failing"].as_array().unwrap().is_empty());
        let failing: Vec<u64> = check_batch(&items)
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.map(|_| i as u64))
            .collect();
        let want: Vec<u64> = b["failing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        assert_eq!(failing, want, "{name}");
    }
}
