//! The trustees' proofs (docs/protocol.md §T2): Schnorr proofs of knowledge (`schnorr-pok`) and
//! Chaum–Pedersen proofs of equal discrete logarithms (`chaum-pedersen`), in commitment form, checked one by
//! one or in a batch (§12: one weight per equation, one multiscalar multiplication, bisection on failure).
//!
//! Failures carry the reference's check names: `schnorr-pok`; `chaum-pedersen-identity` (`A = O`, `Y ≠ O`,
//! before any hashing) and `chaum-pedersen`.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT as G;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};

use crate::ballot::Pt;
use crate::transcript::ChallengeTranscript;
use crate::verify::{OsWeights, Weights};

pub const SCHNORR_PURPOSE: &str = "schnorr-pok";
pub const CHAUM_PEDERSEN_PURPOSE: &str = "chaum-pedersen";

/// A context item, already encoded (§4): a byte string (a point, a scalar, bytes or a text's UTF-8) or a
/// u64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Bytes(Vec<u8>),
    U64(u64),
}

/// One statement with its proof and context.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // a handful per batch: boxing would only add allocations
pub enum Statement {
    /// `X = x·G`; proof `(R, v)`
    Schnorr {
        x: Pt,
        r: Pt,
        v: Scalar,
        context: Vec<Item>,
    },
    /// `X = s·G`, `Y = s·A`; proof `(R1, R2, v)`
    ChaumPedersen {
        x: Pt,
        a: Pt,
        y: Pt,
        r1: Pt,
        r2: Pt,
        v: Scalar,
        context: Vec<Item>,
    },
}

fn put_context(t: &mut ChallengeTranscript, context: &[Item]) {
    t.u64(context.len() as u64);
    for item in context {
        match item {
            Item::Bytes(b) => t.bytes(b),
            Item::U64(n) => t.u64(*n),
        };
    }
}

/// Everything before the group equations: the identity rule, then the challenge.
fn challenge(s: &Statement) -> Result<Scalar, &'static str> {
    match s {
        Statement::Schnorr { x, r, context, .. } => {
            let mut t = ChallengeTranscript::new(SCHNORR_PURPOSE);
            t.bytes(G.compress().as_bytes()).bytes(&x.enc).bytes(&r.enc);
            put_context(&mut t, context);
            Ok(t.challenge())
        }
        Statement::ChaumPedersen {
            x,
            a,
            y,
            r1,
            r2,
            context,
            ..
        } => {
            if a.is_identity() && !y.is_identity() {
                return Err("chaum-pedersen-identity");
            }
            let mut t = ChallengeTranscript::new(CHAUM_PEDERSEN_PURPOSE);
            t.bytes(G.compress().as_bytes())
                .bytes(&a.enc)
                .bytes(&x.enc)
                .bytes(&y.enc);
            t.bytes(&r1.enc).bytes(&r2.enc);
            put_context(&mut t, context);
            Ok(t.challenge())
        }
    }
}

fn failure(s: &Statement) -> &'static str {
    match s {
        Statement::Schnorr { .. } => SCHNORR_PURPOSE,
        Statement::ChaumPedersen { .. } => CHAUM_PEDERSEN_PURPOSE,
    }
}

/// One statement, one equation at a time (§T2): `None` if the proof verifies, else the failed check.
pub fn verify_one(s: &Statement) -> Option<&'static str> {
    let c = match challenge(s) {
        Ok(c) => c,
        Err(check) => return Some(check),
    };
    let ok = match s {
        Statement::Schnorr { x, r, v, .. } => {
            RistrettoPoint::vartime_double_scalar_mul_basepoint(&-c, &x.p, v) == r.p
        }
        Statement::ChaumPedersen {
            x, a, y, r1, r2, v, ..
        } => {
            RistrettoPoint::vartime_double_scalar_mul_basepoint(&-c, &x.p, v) == r1.p
                && RistrettoPoint::vartime_multiscalar_mul([*v, -c], [a.p, y.p]) == r2.p
        }
    };
    (!ok).then(|| failure(s))
}

/// The number of group equations of a statement (1 for Schnorr, 2 for Chaum–Pedersen).
pub fn equation_count(s: &Statement) -> usize {
    match s {
        Statement::Schnorr { .. } => 1,
        Statement::ChaumPedersen { .. } => 2,
    }
}

/// `Σ_e z_e·(Σ_i s_ei·P_ei − R_e)` over the statements (whose challenges are given), weights in order;
/// `None` if the weights ran out.
pub fn combination<W: Weights>(items: &[(&Statement, Scalar)], w: &mut W) -> Option<RistrettoPoint> {
    let mut g = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(4 * items.len() + 1);
    let mut points = Vec::with_capacity(4 * items.len() + 1);
    for (s, c) in items {
        match s {
            Statement::Schnorr { x, r, v, .. } => {
                let z = w.next_weight()?;
                g += z * v;
                scalars.extend([-(z * c), z]);
                points.extend([x.p, -r.p]);
            }
            Statement::ChaumPedersen {
                x, a, y, r1, r2, v, ..
            } => {
                let (z1, z2) = (w.next_weight()?, w.next_weight()?);
                g += z1 * v;
                scalars.extend([-(z1 * c), z1, z2 * v, -(z2 * c), z2]);
                points.extend([x.p, -r1.p, a.p, y.p, -r2.p]);
            }
        }
    }
    scalars.push(g);
    points.push(G);
    Some(RistrettoPoint::vartime_multiscalar_mul(scalars, points))
}

/// §12 over the statements: per statement `None` (valid) or the check that verifying it alone fails.
pub fn check_batch(statements: &[Statement]) -> Vec<Option<&'static str>> {
    let mut out: Vec<Option<&'static str>> = vec![None; statements.len()];
    let mut pending = Vec::with_capacity(statements.len());
    for (i, s) in statements.iter().enumerate() {
        match challenge(s) {
            Ok(c) => pending.push((i, c)),
            Err(check) => out[i] = Some(check),
        }
    }
    let mut w = OsWeights::new();
    let mut bad = Vec::new();
    bisect(statements, &pending, &mut w, &mut bad);
    for i in bad {
        // only a weight that cancelled a false equation (2^-128) could make these disagree
        out[i] = Some(verify_one(&statements[i]).unwrap_or("batch-disagreement"));
    }
    out
}

fn bisect<W: Weights>(all: &[Statement], group: &[(usize, Scalar)], w: &mut W, bad: &mut Vec<usize>) {
    if group.is_empty() {
        return;
    }
    let items: Vec<(&Statement, Scalar)> = group.iter().map(|&(i, c)| (&all[i], c)).collect();
    if combination(&items, w).is_some_and(|p| p.is_identity()) {
        return;
    }
    if group.len() == 1 {
        bad.push(group[0].0);
        return;
    }
    let mid = group.len() / 2;
    bisect(all, &group[..mid], w, bad);
    bisect(all, &group[mid..], w, bad);
}

/// `proofs.json` → `batch` → `combined`: the combination of the statements that pass the checks before
/// their equations, with the given weights (one per equation, in order).
pub fn combined_with_weights(statements: &[Statement], weights: &[Scalar]) -> Result<RistrettoPoint, String> {
    let items: Vec<(&Statement, Scalar)> = statements
        .iter()
        .filter_map(|s| challenge(s).ok().map(|c| (s, c)))
        .collect();
    let mut w = crate::verify::FixedWeights(weights.iter());
    let p = combination(&items, &mut w).ok_or("fewer weights than equations")?;
    if w.0.next().is_some() {
        return Err("more weights than equations".into());
    }
    Ok(p)
}
