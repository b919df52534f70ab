//! Known-answer tests against the repository's vector files (`../tests/vectors/`, docs/protocol.md
//! Appendix A): transcripts and challenges (`hash.json`), point decoding (`group.json`), whole ballots,
//! valid and invalid (`ballots.json`), and the batch check with its published weights (`batch.json`).

use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use serde_json::Value as Json;
use tvote_native::ballot::{ballot_hash, canonical_json, decode_ballot, Election, Pt};
use tvote_native::transcript::{ChallengeTranscript, TaggedTranscript};
use tvote_native::verify::{check_batch, combined_with_weights, equation_count, precheck, verify_one};

mod common;
use common::{election_of, hex, hex32, load, to_hex, value};

fn election() -> Election {
    election_of(&load("ballots.json"))
}

#[test]
fn transcripts_and_challenges() {
    let data = load("hash.json");
    let cases = data["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let purpose = case["purpose"].as_str().unwrap();
        let mut c = ChallengeTranscript::new(purpose);
        let mut t = TaggedTranscript::new(purpose);
        for item in case["items"].as_array().unwrap() {
            let v = item["value"].as_str().unwrap();
            match item["type"].as_str().unwrap() {
                "u64" => {
                    let n: u64 = v.parse().unwrap();
                    c.u64(n);
                    t.u64(n);
                }
                "str" => {
                    c.bytes(v.as_bytes());
                    t.bytes(v.as_bytes());
                }
                "point" | "scalar" | "bytes" => {
                    c.bytes(&hex(v));
                    t.bytes(&hex(v));
                }
                other => panic!("unknown item type {other}"),
            }
        }
        assert_eq!(
            to_hex(&c.challenge().to_bytes()),
            case["challenge"].as_str().unwrap(),
            "{purpose}"
        );
        assert_eq!(
            to_hex(&t.tagged_sha256()),
            case["tagged_sha256"].as_str().unwrap(),
            "{purpose}"
        );
    }
}

#[test]
fn point_decoding() {
    let data = load("group.json");
    for p in data["points"]["valid"].as_array().unwrap() {
        let h = p["hex"].as_str().unwrap();
        assert!(Pt::decode(hex32(h)).is_some(), "valid point refused: {h}");
    }
    let invalid = data["points"]["invalid"].as_array().unwrap();
    assert!(!invalid.is_empty());
    for p in invalid {
        let h = p["hex"].as_str().unwrap();
        // wrong lengths and uppercase are refused by the hex decoder; 32-byte cases by RFC 9496 decoding
        let refused = h.len() != 64
            || h.bytes().any(|c| !matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            || Pt::decode(hex32(h)).is_none();
        assert!(refused, "invalid point accepted: {h}");
    }
}

#[test]
fn ballots_valid_and_invalid() {
    let e = election();
    let data = load("ballots.json");
    for case in data["ballots"].as_array().unwrap() {
        let b = decode_ballot(&value(&case["ballot"])).unwrap();
        assert_eq!(canonical_json(&b), case["canonical_json"].as_str().unwrap());
        assert_eq!(to_hex(&ballot_hash(&b)), case["ballot_hash"].as_str().unwrap());
        assert_eq!(verify_one(&e, &b), Ok(()));
        assert!(precheck(&e, &b).is_ok());
    }
    for case in data["invalid"].as_array().unwrap() {
        let b = decode_ballot(&value(&case["ballot"])).unwrap();
        let f = verify_one(&e, &b).unwrap_err();
        assert_eq!(f.check, case["check"].as_str().unwrap());
        assert_eq!(f.subject.as_deref(), case.get("subject").and_then(Json::as_str));
        // the batch names the same failure
        let batch = check_batch(&e, &[&b]);
        assert_eq!(batch, vec![Some(f)]);
    }
    for case in data["invalid_encoding"].as_array().unwrap() {
        assert!(decode_ballot(&value(&case["ballot"])).is_err(), "{}", case["why"]);
    }
}

#[test]
fn batch_vectors() {
    let e = election();
    let data = load("batch.json");
    let batches = data["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 3);
    for batch in batches {
        let name = batch["name"].as_str().unwrap();
        let ballots: Vec<_> = batch["ballots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| decode_ballot(&value(b)).unwrap())
            .collect();
        for (b, n) in ballots
            .iter()
            .zip(batch["equations_per_ballot"].as_array().unwrap())
        {
            let got = precheck(&e, b).ok().map(|_| equation_count(&e, b) as u64);
            assert_eq!(got, n.as_u64(), "{name}");
        }
        let weights: Vec<Scalar> = batch["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                let n: u128 = w.as_str().unwrap().parse().unwrap();
                let mut b = [0u8; 32];
                b[..16].copy_from_slice(&n.to_le_bytes());
                Scalar::from_bytes_mod_order(b)
            })
            .collect();
        let combined = combined_with_weights(&e, &ballots, &weights).unwrap();
        assert_eq!(
            to_hex(&combined.compress().to_bytes()),
            batch["combined"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(combined.is_identity(), name != "bad-equation-in-the-middle");
        // with fresh weights: the failures of the file, named as one-by-one verification names them
        let refs: Vec<_> = ballots.iter().collect();
        let got: Vec<(usize, String, Option<String>)> = check_batch(&e, &refs)
            .into_iter()
            .enumerate()
            .filter_map(|(i, f)| f.map(|f| (i, f.check, f.subject)))
            .collect();
        let want: Vec<(usize, String, Option<String>)> = batch["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["index"].as_u64().unwrap() as usize,
                    f["check"].as_str().unwrap().to_string(),
                    f.get("subject").and_then(Json::as_str).map(str::to_string),
                )
            })
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn wrong_number_of_weights_is_refused() {
    let e = election();
    let data = load("batch.json");
    let b = decode_ballot(&value(&data["batches"][0]["ballots"][0])).unwrap();
    let w = vec![Scalar::ONE; 75];
    assert!(combined_with_weights(&e, std::slice::from_ref(&b), &w).is_err());
    let w = vec![Scalar::ONE; 77];
    assert!(combined_with_weights(&e, std::slice::from_ref(&b), &w).is_err());
}

#[test]
fn a_batch_of_many_with_one_bad_ballot_names_it() {
    let e = election();
    let data = load("batch.json");
    let valid: Vec<_> = data["batches"][0]["ballots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| decode_ballot(&value(b)).unwrap())
        .collect();
    let bad = decode_ballot(&value(&data["batches"][1]["ballots"][2])).unwrap();
    let mut batch: Vec<_> = (0..37).map(|i| &valid[i % valid.len()]).collect();
    batch[23] = &bad;
    let got = check_batch(&e, &batch);
    for (i, f) in got.iter().enumerate() {
        if i == 23 {
            let f = f.as_ref().unwrap();
            assert_eq!(
                (f.check.as_str(), f.subject.as_deref()),
                ("selection-proof", Some("council/s2"))
            );
            assert_eq!(f.cause, Some("disjunctive-equation"));
        } else {
            assert!(f.is_none(), "ballot {i}");
        }
    }
}
