//! The election context and the strict decoding of a ballot's dict form (docs/protocol.md §1, §3, §8.2,
//! §9.4): exactly the keys, `version` the integer 2, lowercase hex of the exact length, identifiers of
//! 1-64 characters of `[A-Za-z0-9_.-]`, non-empty lists, `n` challenges, `n` responses and `2n`
//! commitments with `1 <= n <= 1024`, every point a canonical ristretto255 encoding (RFC 9496 §4.3.1,
//! which refuses a set top bit) and every scalar canonical (`< L`).
//!
//! A decoding failure is a `DecodeError` (the reference's `InvalidEncoding`); its message is informative
//! only: the Python side reports a refused ballot with the reference decoder's own words.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;

use crate::value::Value;

/// Largest allowed-set size of a disjunctive proof (§8.1).
pub const MAX_ALLOWED: usize = 1024;
/// Most selections in a contest (§9.1).
pub const MAX_SELECTIONS: usize = MAX_ALLOWED - 1;
/// The ballot format version (§9.4).
pub const BALLOT_FORMAT_VERSION: i64 = 2;

/// A decoding failure (the reference's `InvalidEncoding`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// A point with the bytes it was decoded from (unique: equal elements have equal bytes, §2).
#[derive(Debug, Clone, Copy)]
pub struct Pt {
    pub enc: [u8; 32],
    pub p: RistrettoPoint,
}

impl Pt {
    /// RFC 9496 decoding; `None` for every byte string it refuses (dalek re-encodes `s` and compares,
    /// so a set top bit and `s >= p` are refused too).
    pub fn decode(enc: [u8; 32]) -> Option<Pt> {
        CompressedRistretto(enc).decompress().map(|p| Pt { enc, p })
    }

    pub fn is_identity(&self) -> bool {
        self.enc == [0u8; 32]
    }
}

#[derive(Debug, Clone)]
pub struct Proof {
    /// `a_1, b_1, …, a_n, b_n`, as published
    pub commitments: Vec<Pt>,
    pub challenges: Vec<Scalar>,
    pub responses: Vec<Scalar>,
}

#[derive(Debug, Clone)]
pub struct Selection {
    pub id: String,
    pub a: Pt,
    pub b: Pt,
    pub proof: Proof,
}

#[derive(Debug, Clone)]
pub struct Contest {
    pub id: String,
    pub selections: Vec<Selection>,
    pub proof: Proof,
}

#[derive(Debug, Clone)]
pub struct Ballot {
    pub election_hash: [u8; 32],
    pub nonce: [u8; 32],
    pub contests: Vec<Contest>,
}

/// One contest of the manifest.
#[derive(Debug, Clone)]
pub struct ContestSpec {
    pub id: String,
    pub selection_ids: Vec<String>,
    pub min: u32,
    pub max: u32,
}

impl ContestSpec {
    pub fn allowed_sums(&self) -> Vec<u64> {
        (self.min as u64..=self.max as u64).collect()
    }
}

/// What ballots are checked against: the base hash, the joint key `K ≠ O` and the contests in order.
#[derive(Debug, Clone)]
pub struct Election {
    pub base_hash: [u8; 32],
    pub key: Pt,
    pub contests: Vec<ContestSpec>,
}

impl Election {
    /// Validates as the reference's `ElectionContext` and `ContestSpec` do (an error is a `ValueError`).
    pub fn new(base_hash: [u8; 32], key: [u8; 32], contests: Vec<ContestSpec>) -> Result<Election, String> {
        let key = Pt::decode(key).ok_or("the public key is not a ristretto255 encoding")?;
        if key.is_identity() {
            return Err("the election public key must not be the identity".into());
        }
        if contests.is_empty() {
            return Err("an election has at least one contest".into());
        }
        for (i, c) in contests.iter().enumerate() {
            if !is_id(&c.id) {
                return Err(format!(
                    "contest id {:?} is not 1-64 characters of [A-Za-z0-9_.-]",
                    c.id
                ));
            }
            if contests[..i].iter().any(|d| d.id == c.id) {
                return Err("duplicate contest ids".into());
            }
            let n = c.selection_ids.len();
            if n == 0 || n > MAX_SELECTIONS {
                return Err(format!("contest {}: 1 to {MAX_SELECTIONS} selections", c.id));
            }
            for (j, s) in c.selection_ids.iter().enumerate() {
                if !is_id(s) || c.selection_ids[..j].contains(s) {
                    return Err(format!("contest {}: bad or duplicate selection id {s:?}", c.id));
                }
            }
            if !(c.min <= c.max && c.max as usize <= n) {
                return Err(format!("contest {}: need 0 <= min <= max <= {n}", c.id));
            }
        }
        Ok(Election {
            base_hash,
            key,
            contests,
        })
    }
}

/// An identifier (§1): 1 to 64 characters of `[A-Za-z0-9_.-]`.
pub fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

/// Exactly `2·N` lowercase hex digits.
pub fn fixed_hex<const N: usize>(v: &Value, what: &str) -> Result<[u8; N], DecodeError> {
    let s = match v {
        Value::Str(s) if s.len() == 2 * N => s.as_bytes(),
        _ => return err(format!("a {what} is {} lowercase hex digits", 2 * N)),
    };
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(h), Some(l)) => out[i] = (h << 4) | l,
            _ => return err(format!("a {what} is {} lowercase hex digits", 2 * N)),
        }
    }
    Ok(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn point(v: &Value, what: &str) -> Result<Pt, DecodeError> {
    let enc = fixed_hex::<32>(v, what)?;
    Pt::decode(enc).map_or_else(
        || err("not the canonical encoding of a ristretto255 element (RFC 9496)"),
        Ok,
    )
}

fn scalar(v: &Value) -> Result<Scalar, DecodeError> {
    let b = fixed_hex::<32>(v, "scalar")?;
    Option::<Scalar>::from(Scalar::from_canonical_bytes(b))
        .map_or_else(|| err("non-canonical scalar (not less than L)"), Ok)
}

fn exact<'a>(v: &'a Value, keys: &[&str], what: &str) -> Result<&'a Value, DecodeError> {
    if v.has_exact_keys(keys) {
        Ok(v)
    } else {
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        err(format!("{what} is an object with exactly the keys {sorted:?}"))
    }
}

fn id_field(v: Option<&Value>, what: &str) -> Result<String, DecodeError> {
    match v {
        Some(Value::Str(s)) if is_id(s) => Ok(s.clone()),
        _ => err(format!("{what} must be 1-64 characters of [A-Za-z0-9_.-]")),
    }
}

fn non_empty_list<'a>(v: Option<&'a Value>, what: &str) -> Result<&'a [Value], DecodeError> {
    match v {
        Some(Value::List(xs)) if !xs.is_empty() => Ok(xs),
        _ => err(format!("{what} is a non-empty list")),
    }
}

fn proof(v: &Value) -> Result<Proof, DecodeError> {
    let v = exact(
        v,
        &["commitments", "challenges", "responses"],
        "a disjunctive proof",
    )?;
    let (ps, cs, vs) = match (v.get("commitments"), v.get("challenges"), v.get("responses")) {
        (Some(Value::List(p)), Some(Value::List(c)), Some(Value::List(r))) => (p, c, r),
        _ => return err("proof commitments, challenges and responses are lists"),
    };
    let n = cs.len();
    if !(1..=MAX_ALLOWED).contains(&n) || vs.len() != n || ps.len() != 2 * n {
        return err(format!(
            "a disjunctive proof has n challenges, n responses and 2n commitments, 1 <= n <= {MAX_ALLOWED} \
             (got {}, {} and {})",
            cs.len(),
            vs.len(),
            ps.len()
        ));
    }
    Ok(Proof {
        commitments: ps.iter().map(|p| point(p, "point")).collect::<Result<_, _>>()?,
        challenges: cs.iter().map(scalar).collect::<Result<_, _>>()?,
        responses: vs.iter().map(scalar).collect::<Result<_, _>>()?,
    })
}

fn ciphertext(v: Option<&Value>) -> Result<(Pt, Pt), DecodeError> {
    let v = exact(v.unwrap_or(&Value::Other), &["a", "b"], "a ciphertext")?;
    Ok((
        point(v.get("a").unwrap(), "point")?,
        point(v.get("b").unwrap(), "point")?,
    ))
}

fn selection(v: &Value) -> Result<Selection, DecodeError> {
    let v = exact(v, &["selection_id", "ciphertext", "proof"], "a selection")?;
    let id = id_field(v.get("selection_id"), "selection_id")?;
    let (a, b) = ciphertext(v.get("ciphertext"))?;
    Ok(Selection {
        id,
        a,
        b,
        proof: proof(v.get("proof").unwrap())?,
    })
}

fn contest(v: &Value) -> Result<Contest, DecodeError> {
    let v = exact(v, &["contest_id", "selections", "proof"], "a contest")?;
    let sels = non_empty_list(v.get("selections"), "selections")?;
    let id = id_field(v.get("contest_id"), "contest_id")?;
    Ok(Contest {
        id,
        selections: sels.iter().map(selection).collect::<Result<_, _>>()?,
        proof: proof(v.get("proof").unwrap())?,
    })
}

/// The strict decoding of a ballot's dict form (the reference's `EncryptedBallot.from_dict`).
pub fn decode_ballot(v: &Value) -> Result<Ballot, DecodeError> {
    let v = exact(
        v,
        &["version", "election_hash", "ballot_nonce", "contests"],
        "a ballot",
    )?;
    match v.get("version") {
        Some(Value::Int(Some(BALLOT_FORMAT_VERSION))) => {}
        _ => return err("unsupported ballot version"),
    }
    let election_hash = fixed_hex::<32>(v.get("election_hash").unwrap(), "election_hash")?;
    let nonce = fixed_hex::<32>(v.get("ballot_nonce").unwrap(), "ballot_nonce")?;
    let contests = non_empty_list(v.get("contests"), "contests")?;
    Ok(Ballot {
        election_hash,
        nonce,
        contests: contests.iter().map(contest).collect::<Result<_, _>>()?,
    })
}

/// The ballot's RFC 8785 canonical JSON (§1, §10). A decoded ballot holds identifiers of
/// `[A-Za-z0-9_.-]` and values that are re-encoded as the lowercase hex they were decoded from, so its
/// canonical form needs no escaping: keys sorted, no whitespace, the version the integer 2.
pub fn canonical_json(b: &Ballot) -> String {
    fn hex(out: &mut String, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        out.push('"');
        for x in bytes {
            out.push(DIGITS[(x >> 4) as usize] as char);
            out.push(DIGITS[(x & 15) as usize] as char);
        }
        out.push('"');
    }
    fn list<T>(out: &mut String, items: &[T], f: impl Fn(&mut String, &T)) {
        out.push('[');
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            f(out, x);
        }
        out.push(']');
    }
    fn proof(out: &mut String, p: &Proof) {
        out.push_str("{\"challenges\":");
        list(out, &p.challenges, |o, c| hex(o, c.as_bytes()));
        out.push_str(",\"commitments\":");
        list(out, &p.commitments, |o, c| hex(o, &c.enc));
        out.push_str(",\"responses\":");
        list(out, &p.responses, |o, v| hex(o, v.as_bytes()));
        out.push('}');
    }
    let mut out = String::with_capacity(8192);
    out.push_str("{\"ballot_nonce\":");
    hex(&mut out, &b.nonce);
    out.push_str(",\"contests\":");
    list(&mut out, &b.contests, |o, c| {
        o.push_str("{\"contest_id\":\"");
        o.push_str(&c.id);
        o.push_str("\",\"proof\":");
        proof(o, &c.proof);
        o.push_str(",\"selections\":");
        list(o, &c.selections, |o, s| {
            o.push_str("{\"ciphertext\":{\"a\":");
            hex(o, &s.a.enc);
            o.push_str(",\"b\":");
            hex(o, &s.b.enc);
            o.push_str("},\"proof\":");
            proof(o, &s.proof);
            o.push_str(",\"selection_id\":\"");
            o.push_str(&s.id);
            o.push_str("\"}");
        });
        o.push('}');
    });
    out.push_str(",\"election_hash\":");
    hex(&mut out, &b.election_hash);
    out.push_str(",\"version\":2}");
    out
}

/// `ballot_hash = tagged_sha256("ballot-hash", JCS(ballot))` (§10).
pub fn ballot_hash(b: &Ballot) -> [u8; 32] {
    let mut t = crate::transcript::TaggedTranscript::new("ballot-hash");
    t.bytes(canonical_json(b).as_bytes());
    t.tagged_sha256()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_strict() {
        let ok = Value::Str("00ff".into());
        assert_eq!(fixed_hex::<2>(&ok, "x"), Ok([0, 255]));
        for bad in ["00FF", "00f", "00fff", " 0ff", "0x0f", "00fg"] {
            assert!(fixed_hex::<2>(&Value::Str(bad.into()), "x").is_err(), "{bad}");
        }
        assert!(fixed_hex::<2>(&Value::Int(Some(1)), "x").is_err());
    }

    #[test]
    fn ids() {
        assert!(is_id("a") && is_id("ref-1") && is_id("A.b_c") && is_id(&"x".repeat(64)));
        assert!(!is_id("") && !is_id(&"x".repeat(65)) && !is_id("a b") && !is_id("é") && !is_id("a/b"));
    }

    #[test]
    fn the_identity_is_refused_as_key() {
        let g = curve25519_dalek::constants::RISTRETTO_BASEPOINT_COMPRESSED.to_bytes();
        let spec = ContestSpec {
            id: "c".into(),
            selection_ids: vec!["a".into()],
            min: 0,
            max: 1,
        };
        assert!(Election::new([0; 32], g, vec![spec.clone()]).is_ok());
        assert!(Election::new([0; 32], [0; 32], vec![spec.clone()]).is_err());
        let over = ContestSpec { max: 2, ..spec };
        assert!(Election::new([0; 32], g, vec![over]).is_err());
    }

    #[test]
    fn top_bit_and_non_canonical_points_are_refused() {
        let mut g = curve25519_dalek::constants::RISTRETTO_BASEPOINT_COMPRESSED.to_bytes();
        assert!(Pt::decode(g).is_some());
        g[31] |= 0x80;
        assert!(Pt::decode(g).is_none());
        let mut p = [0xffu8; 32];
        p[31] = 0x7f; // p - 1 + 2^255 - 2^255 - ... : s >= p
        assert!(Pt::decode(p).is_none());
    }

    #[test]
    fn version_must_be_the_integer_2() {
        let b = |v: Value| {
            Value::Map(vec![
                ("version".into(), v),
                ("election_hash".into(), Value::Str("00".repeat(32))),
                ("ballot_nonce".into(), Value::Str("00".repeat(32))),
                ("contests".into(), Value::List(vec![])),
            ])
        };
        for v in [
            Value::Bool(true),
            Value::Str("2".into()),
            Value::Other,
            Value::Int(Some(1)),
            Value::Int(None),
        ] {
            let e = decode_ballot(&b(v)).unwrap_err();
            assert!(e.0.contains("version"), "{e:?}");
        }
        // the integer 2 passes the version and fails on the empty contests list
        assert!(decode_ballot(&b(Value::Int(Some(2))))
            .unwrap_err()
            .0
            .contains("contests"));
    }
}
