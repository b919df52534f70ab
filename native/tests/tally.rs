//! The encrypted tally (`tvote_native::tally`, docs/protocol.md §13) on the ballots of
//! `../tests/vectors/ballots.json`: the sum equals the selection-wise sum of the decoded ciphertexts, a
//! batch can be split at any point (`start`), and a ballot that does not decode strictly or is of another
//! election or shape is refused with its position.

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::traits::{Identity, IsIdentity};
use serde_json::Value as Json;
use tvote_native::ballot::{decode_ballot, Election};
use tvote_native::tally::{same_shape, sum_values, zero, Refused, Sum, SHAPE_MISMATCH};
use tvote_native::value::Value;

mod common;
use common::{election_of as election, hex32, value};

fn load() -> Json {
    common::load("ballots.json")
}

/// The valid ballots of the vector file, as JSON.
fn ballots(data: &Json) -> Vec<Json> {
    data["ballots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ballot"].clone())
        .collect()
}

/// The obvious sum: decode each ballot, add its ciphertexts selection by selection.
fn reference_sum(e: &Election, js: &[Json]) -> Vec<Sum> {
    let mut acc = zero(e);
    for j in js {
        let b = decode_ballot(&value(j)).unwrap();
        let cts: Vec<_> = b
            .contests
            .iter()
            .flat_map(|c| c.selections.iter().map(|s| (s.a.p, s.b.p)))
            .collect();
        assert_eq!(cts.len(), acc.len());
        for (slot, (a, b)) in acc.iter_mut().zip(cts) {
            *slot = (slot.0 + a, slot.1 + b);
        }
    }
    acc
}

fn values(js: &[Json]) -> Vec<Value> {
    js.iter().map(value).collect()
}

#[test]
fn the_empty_tally_is_the_identity() {
    let data = load();
    let e = election(&data);
    let z = sum_values(&e, &zero(&e), &[]).unwrap();
    assert_eq!(z.len(), 15);
    assert!(z.iter().all(|(a, b)| a.is_identity() && b.is_identity()));
}

#[test]
fn the_sum_is_the_selection_wise_sum() {
    let data = load();
    let e = election(&data);
    let js = ballots(&data);
    assert!(js.len() >= 2);
    // each ballot several times, so that a sum is not a single ballot's ciphertexts
    let many: Vec<Json> = (0..7).flat_map(|_| js.clone()).collect();
    let got = sum_values(&e, &zero(&e), &values(&many)).unwrap();
    assert_eq!(got, reference_sum(&e, &many));
    assert!(got.iter().any(|(a, _)| !a.is_identity()));
    // split anywhere: the sum of the first part is the start of the second
    for cut in [0, 1, 5, many.len()] {
        let first = sum_values(&e, &zero(&e), &values(&many[..cut])).unwrap();
        let both = sum_values(&e, &first, &values(&many[cut..])).unwrap();
        assert_eq!(both, got, "cut at {cut}");
    }
}

#[test]
fn a_ballot_that_does_not_decode_is_refused_with_its_position() {
    let data = load();
    let e = election(&data);
    let js = ballots(&data);
    for case in data["invalid_encoding"].as_array().unwrap() {
        let batch = vec![js[0].clone(), js[1].clone(), case["ballot"].clone()];
        let r = sum_values(&e, &zero(&e), &values(&batch)).unwrap_err();
        assert_eq!(r.index, 2, "{}", case["why"]);
        assert_ne!(r.reason, SHAPE_MISMATCH);
    }
}

/// Every point of the ballot is decoded: a set top bit in a ciphertext or in a proof commitment refuses
/// the ballot, though the sum never uses the commitment.
#[test]
fn a_non_canonical_point_anywhere_is_refused() {
    let data = load();
    let e = election(&data);
    let good = ballots(&data)[0].clone();
    let flip = |s: &str| -> String {
        let mut b = hex32(s);
        b[31] |= 0x80;
        b.iter().map(|x| format!("{x:02x}")).collect()
    };
    let mut in_ciphertext = good.clone();
    let a = &mut in_ciphertext["contests"][0]["selections"][1]["ciphertext"]["a"];
    *a = Json::String(flip(a.as_str().unwrap()));
    let mut in_commitment = good.clone();
    let c = &mut in_commitment["contests"][1]["proof"]["commitments"][0];
    *c = Json::String(flip(c.as_str().unwrap()));
    for bad in [in_ciphertext, in_commitment] {
        let r = sum_values(&e, &zero(&e), &values(&[good.clone(), bad])).unwrap_err();
        assert_eq!(r.index, 1);
        assert!(r.reason.contains("canonical"), "{}", r.reason);
    }
}

#[test]
fn a_ballot_of_another_election_or_shape_is_refused() {
    let data = load();
    let e = election(&data);
    let good = ballots(&data)[0].clone();
    let mut other_election = good.clone();
    other_election["election_hash"] = Json::String("00".repeat(32));
    let mut swapped = good.clone();
    swapped["contests"].as_array_mut().unwrap().swap(0, 1);
    let mut fewer = good.clone();
    fewer["contests"].as_array_mut().unwrap().pop();
    let mut renamed = good.clone();
    renamed["contests"][0]["selections"][0]["selection_id"] = Json::String("z".into());
    let mut dropped = good.clone();
    dropped["contests"][0]["selections"].as_array_mut().unwrap().pop();
    for (name, bad) in [
        ("other election", other_election),
        ("contests swapped", swapped),
        ("a contest missing", fewer),
        ("a selection renamed", renamed),
        ("a selection missing", dropped),
    ] {
        assert!(!same_shape(&e, &decode_ballot(&value(&bad)).unwrap()), "{name}");
        let got = sum_values(&e, &zero(&e), &values(&[good.clone(), good.clone(), bad]));
        let want = Refused {
            index: 2,
            reason: SHAPE_MISMATCH.into(),
        };
        assert_eq!(got, Err(want), "{name}");
    }
    assert!(same_shape(&e, &decode_ballot(&value(&good)).unwrap()));
}

#[test]
fn start_is_added() {
    let data = load();
    let e = election(&data);
    let g = curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
    let start: Vec<Sum> = (0..15u64)
        .map(|i| {
            (
                g * curve25519_dalek::scalar::Scalar::from(i + 1),
                RistrettoPoint::identity(),
            )
        })
        .collect();
    let got = sum_values(&e, &start, &[]).unwrap();
    assert_eq!(got, start);
}
