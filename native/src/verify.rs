//! Ballot verification (docs/protocol.md §8.3, §9.5) and its batch form (§12).
//!
//! * [`verify_one`] is §9.5 as written, one equation at a time: the first failure in the normative
//!   order, named as the reference names it (`check`, `subject`, and the disjunctive proof's own check
//!   as `cause`).
//! * [`check_batch`] is §12: every check that needs no group equation first (structure, pads, each
//!   proof's shape, key and challenge split); then every group equation of the remaining ballots,
//!   weighted by a fresh 128-bit random weight each, in one variable-time multiscalar multiplication
//!   (`RistrettoPoint::vartime_multiscalar_mul`: Straus or Pippenger by size); on failure the ballots
//!   are bisected with fresh weights down to single ballots, and each bad ballot is named by
//!   [`verify_one`], so the batch reports exactly what one-by-one verification reports.
//!
//! Everything here handles public data only (ballots, keys, proofs), so variable time is fine.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT as G;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, IsIdentity, VartimeMultiscalarMul};
use rand_core::{OsRng, RngCore};

use crate::ballot::{Ballot, ContestSpec, Election, Proof, Pt};
use crate::transcript::ChallengeTranscript;

/// The purpose of the disjunctive Chaum–Pedersen proof (§8.3).
pub const DISJUNCTIVE_PURPOSE: &str = "disjunctive-cp";
const SELECTION_ROLE: &str = "ballot-selection";
const CONTEST_ROLE: &str = "ballot-contest";
const ZERO_ONE: [u64; 2] = [0, 1];

/// A failed check of §9.5: its stable name, subject, and for a proof the disjunctive check (§8.3) that
/// caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub check: String,
    pub subject: Option<String>,
    pub cause: Option<&'static str>,
}

impl Failure {
    fn new(check: impl Into<String>, subject: Option<String>, cause: Option<&'static str>) -> Failure {
        Failure {
            check: check.into(),
            subject,
            cause,
        }
    }
}

// --- §9.5 steps 1-3: structure ------------------------------------------------------------------------

fn sub(where_: Option<&str>, x: &str) -> Option<String> {
    Some(match where_ {
        Some(w) => format!("{w}/{x}"),
        None => x.to_string(),
    })
}

/// The four passes of §9.5 step 2 (and 3): duplicate, unknown, missing, order.
fn check_ids(found: &[&str], expected: &[&str], kind: &str, where_: Option<&str>) -> Result<(), Failure> {
    for (i, x) in found.iter().enumerate() {
        if found[..i].contains(x) {
            return Err(Failure::new(format!("duplicate-{kind}"), sub(where_, x), None));
        }
    }
    if let Some(x) = found.iter().find(|x| !expected.contains(x)) {
        return Err(Failure::new(format!("unknown-{kind}"), sub(where_, x), None));
    }
    if let Some(x) = expected.iter().find(|x| !found.contains(x)) {
        return Err(Failure::new(format!("missing-{kind}"), sub(where_, x), None));
    }
    if found != expected {
        return Err(Failure::new(
            format!("{kind}-order"),
            where_.map(str::to_string),
            None,
        ));
    }
    Ok(())
}

fn check_structure(e: &Election, b: &Ballot) -> Result<(), Failure> {
    if b.election_hash != e.base_hash {
        return Err(Failure::new("election-hash", None, None));
    }
    let found: Vec<&str> = b.contests.iter().map(|c| c.id.as_str()).collect();
    let expected: Vec<&str> = e.contests.iter().map(|c| c.id.as_str()).collect();
    check_ids(&found, &expected, "contest", None)?;
    for (spec, c) in e.contests.iter().zip(&b.contests) {
        let found: Vec<&str> = c.selections.iter().map(|s| s.id.as_str()).collect();
        let expected: Vec<&str> = spec.selection_ids.iter().map(String::as_str).collect();
        check_ids(&found, &expected, "selection", Some(&spec.id))?;
    }
    Ok(())
}

// --- §8.3 steps 1-3: shape, key, challenge split -------------------------------------------------------

/// The proof context of §9.3: a selection's (5 items) or a contest's (4 items).
enum Context<'a> {
    Selection { contest: &'a str, selection: &'a str },
    Contest { contest: &'a str },
}

#[allow(clippy::too_many_arguments)]
fn prepare(
    e: &Election,
    nonce: &[u8; 32],
    ctx: Context<'_>,
    a: &[u8; 32],
    b: &[u8; 32],
    allowed: &[u64],
    proof: &Proof,
) -> Result<(), &'static str> {
    if proof.challenges.len() != allowed.len() {
        return Err("disjunctive-shape");
    }
    if e.key.is_identity() {
        return Err("disjunctive-key");
    }
    let mut t = ChallengeTranscript::new(DISJUNCTIVE_PURPOSE);
    match ctx {
        Context::Selection { contest, selection } => {
            t.u64(5)
                .bytes(SELECTION_ROLE.as_bytes())
                .bytes(&e.base_hash)
                .bytes(nonce);
            t.bytes(contest.as_bytes()).bytes(selection.as_bytes());
        }
        Context::Contest { contest } => {
            t.u64(4)
                .bytes(CONTEST_ROLE.as_bytes())
                .bytes(&e.base_hash)
                .bytes(nonce);
            t.bytes(contest.as_bytes());
        }
    }
    t.bytes(&e.key.enc).bytes(a).bytes(b).u64(allowed.len() as u64);
    for &j in allowed {
        t.u64(j);
    }
    for c in &proof.commitments {
        t.bytes(&c.enc);
    }
    let h = t.challenge();
    let sum: Scalar = proof.challenges.iter().sum();
    if sum != h {
        return Err("disjunctive-challenge");
    }
    Ok(())
}

fn selection_failure(cid: &str, sid: &str, cause: &'static str) -> Failure {
    Failure::new("selection-proof", sub(Some(cid), sid), Some(cause))
}

fn contest_failure(cid: &str, cause: &'static str) -> Failure {
    Failure::new("contest-proof", Some(cid.to_string()), Some(cause))
}

fn pad_failure(cid: &str, sid: &str) -> Failure {
    Failure::new("selection-randomness", sub(Some(cid), sid), None)
}

/// The homomorphic sum of a contest's selection ciphertexts and its encodings.
fn contest_sum(c: &crate::ballot::Contest) -> (RistrettoPoint, RistrettoPoint, [u8; 32], [u8; 32]) {
    let mut sa = RistrettoPoint::identity();
    let mut sb = RistrettoPoint::identity();
    for s in &c.selections {
        sa += s.a.p;
        sb += s.b.p;
    }
    let (ea, eb) = (sa.compress().to_bytes(), sb.compress().to_bytes());
    (sa, sb, ea, eb)
}

// --- §8.3 step 4, one equation at a time ---------------------------------------------------------------

fn equations_hold(e: &Election, a: &RistrettoPoint, b: &RistrettoPoint, allowed: &[u64], p: &Proof) -> bool {
    for (i, &j) in allowed.iter().enumerate() {
        let (c, v) = (p.challenges[i], p.responses[i]);
        // v·G − c·A == a_j
        let lhs_a = RistrettoPoint::vartime_double_scalar_mul_basepoint(&-c, a, &v);
        if lhs_a != p.commitments[2 * i].p {
            return false;
        }
        // v·K − c·B + (c·j)·G == b_j
        let lhs_b = RistrettoPoint::vartime_multiscalar_mul([v, -c, c * Scalar::from(j)], [e.key.p, *b, G]);
        if lhs_b != p.commitments[2 * i + 1].p {
            return false;
        }
    }
    true
}

/// §9.5 as written: the first failure in the normative order, or `Ok` for a valid ballot.
pub fn verify_one(e: &Election, b: &Ballot) -> Result<(), Failure> {
    check_structure(e, b)?;
    for (spec, c) in e.contests.iter().zip(&b.contests) {
        for s in &c.selections {
            if s.a.is_identity() {
                return Err(pad_failure(&spec.id, &s.id));
            }
            let ctx = Context::Selection {
                contest: &spec.id,
                selection: &s.id,
            };
            prepare(e, &b.nonce, ctx, &s.a.enc, &s.b.enc, &ZERO_ONE, &s.proof)
                .map_err(|cause| selection_failure(&spec.id, &s.id, cause))?;
            if !equations_hold(e, &s.a.p, &s.b.p, &ZERO_ONE, &s.proof) {
                return Err(selection_failure(&spec.id, &s.id, "disjunctive-equation"));
            }
        }
        let (sa, sb, ea, eb) = contest_sum(c);
        let allowed = spec.allowed_sums();
        prepare(
            e,
            &b.nonce,
            Context::Contest { contest: &spec.id },
            &ea,
            &eb,
            &allowed,
            &c.proof,
        )
        .map_err(|cause| contest_failure(&spec.id, cause))?;
        if !equations_hold(e, &sa, &sb, &allowed, &c.proof) {
            return Err(contest_failure(&spec.id, "disjunctive-equation"));
        }
    }
    Ok(())
}

/// §12 step 1 for one ballot: every check that needs no group equation, in the reference's order
/// (`ballot_equations`). A ballot that fails one is bad and is named by [`verify_one`].
pub fn precheck(e: &Election, b: &Ballot) -> Result<(), Failure> {
    check_structure(e, b)?;
    for (spec, c) in e.contests.iter().zip(&b.contests) {
        for s in &c.selections {
            if s.a.is_identity() {
                return Err(pad_failure(&spec.id, &s.id));
            }
            let ctx = Context::Selection {
                contest: &spec.id,
                selection: &s.id,
            };
            prepare(e, &b.nonce, ctx, &s.a.enc, &s.b.enc, &ZERO_ONE, &s.proof)
                .map_err(|cause| selection_failure(&spec.id, &s.id, cause))?;
        }
        let (_, _, ea, eb) = contest_sum(c);
        prepare(
            e,
            &b.nonce,
            Context::Contest { contest: &spec.id },
            &ea,
            &eb,
            &spec.allowed_sums(),
            &c.proof,
        )
        .map_err(|cause| contest_failure(&spec.id, cause))?;
    }
    Ok(())
}

/// The number of group equations of a ballot that passes [`precheck`] (two per proof branch).
pub fn equation_count(e: &Election, b: &Ballot) -> usize {
    e.contests
        .iter()
        .zip(&b.contests)
        .map(|(spec, c)| 4 * c.selections.len() + 2 * spec.allowed_sums().len())
        .sum()
}

// --- §12: the combination ------------------------------------------------------------------------------

/// The weights of one combination: 128-bit integers, 16 bytes little-endian each.
pub trait Weights {
    fn next_weight(&mut self) -> Option<Scalar>;
}

/// Weights from the operating system's CSPRNG (`getrandom`), read in blocks.
pub struct OsWeights {
    buf: Vec<u8>,
    pos: usize,
}

impl OsWeights {
    pub fn new() -> OsWeights {
        OsWeights {
            buf: vec![0u8; 16 * 256],
            pos: 16 * 256,
        }
    }
}

impl Default for OsWeights {
    fn default() -> Self {
        OsWeights::new()
    }
}

impl Weights for OsWeights {
    fn next_weight(&mut self) -> Option<Scalar> {
        if self.pos == self.buf.len() {
            OsRng.fill_bytes(&mut self.buf);
            self.pos = 0;
        }
        let mut b = [0u8; 32];
        b[..16].copy_from_slice(&self.buf[self.pos..self.pos + 16]);
        self.pos += 16;
        Some(Scalar::from_bytes_mod_order(b))
    }
}

/// Given weights, in order (known-answer vectors).
pub struct FixedWeights<'a>(pub std::slice::Iter<'a, Scalar>);

impl Weights for FixedWeights<'_> {
    fn next_weight(&mut self) -> Option<Scalar> {
        self.0.next().copied()
    }
}

/// `Σ_e z_e·(Σ_i s_ei·P_ei − R_e)` as one multiscalar multiplication: the terms of `G` and `K` merged
/// into one coefficient each, a selection's `A` and `B` into one each (its own proof's and, since a
/// contest's ciphertext is the sum of its selections', the contest proof's), and each commitment
/// entering negated with its 128-bit weight (`z_e·(−R_e)`, a half-length scalar).
pub struct Combination {
    g: Scalar,
    k: Scalar,
    scalars: Vec<Scalar>,
    points: Vec<RistrettoPoint>,
}

impl Combination {
    pub fn new() -> Combination {
        Combination {
            g: Scalar::ZERO,
            k: Scalar::ZERO,
            scalars: Vec::new(),
            points: Vec::new(),
        }
    }

    /// The terms of one proof's equations (branch by branch: the `a`-equation, then the `b`-equation);
    /// returns the coefficients of its ciphertext's `A` and `B`.
    fn proof<W: Weights>(&mut self, allowed: &[u64], p: &Proof, w: &mut W) -> Option<(Scalar, Scalar)> {
        let (mut ca, mut cb) = (Scalar::ZERO, Scalar::ZERO);
        for (i, &j) in allowed.iter().enumerate() {
            let (c, v) = (p.challenges[i], p.responses[i]);
            let (za, zb) = (w.next_weight()?, w.next_weight()?);
            // za·(v·G − c·A − a_j)
            self.g += za * v;
            ca -= za * c;
            self.push(za, -p.commitments[2 * i].p);
            // zb·(v·K − c·B + (c·j)·G − b_j)
            self.k += zb * v;
            cb -= zb * c;
            if j != 0 {
                self.g += zb * c * Scalar::from(j);
            }
            self.push(zb, -p.commitments[2 * i + 1].p);
        }
        Some((ca, cb))
    }

    fn push(&mut self, s: Scalar, p: RistrettoPoint) {
        self.scalars.push(s);
        self.points.push(p);
    }

    /// Every equation of a ballot that passed [`precheck`], in §12's order; `None` if the weights ran out.
    pub fn ballot<W: Weights>(&mut self, e: &Election, b: &Ballot, w: &mut W) -> Option<()> {
        for (spec, c) in e.contests.iter().zip(&b.contests) {
            let mut coef: Vec<(Scalar, Scalar)> = Vec::with_capacity(c.selections.len());
            for s in &c.selections {
                coef.push(self.proof(&ZERO_ONE, &s.proof, w)?);
            }
            let (ca, cb) = self.proof(&spec_allowed(spec), &c.proof, w)?;
            for (s, (sa, sb)) in c.selections.iter().zip(coef) {
                self.push(sa + ca, s.a.p);
                self.push(sb + cb, s.b.p);
            }
        }
        Some(())
    }

    /// The combined point (the identity iff every equation holds, up to 2^-128).
    pub fn point(self, key: &Pt) -> RistrettoPoint {
        let n = self.scalars.len() + 2;
        let mut scalars = Vec::with_capacity(n);
        let mut points = Vec::with_capacity(n);
        scalars.push(self.g);
        points.push(G);
        scalars.push(self.k);
        points.push(key.p);
        scalars.extend(self.scalars);
        points.extend(self.points);
        RistrettoPoint::vartime_multiscalar_mul(scalars, points)
    }
}

impl Default for Combination {
    fn default() -> Self {
        Combination::new()
    }
}

fn spec_allowed(spec: &ContestSpec) -> Vec<u64> {
    spec.allowed_sums()
}

/// `combined` of `batch.json`: the combination of the ballots that pass [`precheck`], with the given
/// weights in equation order. `Err` if the weights are not exactly one per equation.
pub fn combined_with_weights(
    e: &Election,
    ballots: &[Ballot],
    weights: &[Scalar],
) -> Result<RistrettoPoint, String> {
    let mut w = FixedWeights(weights.iter());
    let mut comb = Combination::new();
    for b in ballots.iter().filter(|b| precheck(e, b).is_ok()) {
        comb.ballot(e, b, &mut w).ok_or("fewer weights than equations")?;
    }
    if w.0.next().is_some() {
        return Err("more weights than equations".into());
    }
    Ok(comb.point(&e.key))
}

fn combination_holds<W: Weights>(e: &Election, ballots: &[&Ballot], w: &mut W) -> bool {
    let mut comb = Combination::new();
    for b in ballots {
        if comb.ballot(e, b, w).is_none() {
            return false;
        }
    }
    comb.point(&e.key).is_identity()
}

/// §12 over `ballots` (each decoded, or `None` when it did not decode, which is reported by the caller):
/// for each ballot, `None` if it is valid, else the failure one-by-one verification reports for it.
pub fn check_batch(e: &Election, ballots: &[&Ballot]) -> Vec<Option<Failure>> {
    let mut w = OsWeights::new();
    let mut out: Vec<Option<Failure>> = vec![None; ballots.len()];
    let mut bad = vec![false; ballots.len()];
    let mut pending: Vec<usize> = Vec::with_capacity(ballots.len());
    for (i, b) in ballots.iter().enumerate() {
        if precheck(e, b).is_ok() {
            pending.push(i);
        } else {
            bad[i] = true;
        }
    }
    bisect(e, ballots, &pending, &mut w, &mut bad);
    for (i, b) in ballots.iter().enumerate() {
        if bad[i] {
            out[i] = Some(match verify_one(e, b) {
                Err(f) => f,
                // only if a weight cancelled a false equation's difference (probability 2^-128)
                Ok(()) => Failure::new("batch-disagreement", None, None),
            });
        }
    }
    out
}

fn bisect<W: Weights>(e: &Election, ballots: &[&Ballot], group: &[usize], w: &mut W, bad: &mut [bool]) {
    if group.is_empty() {
        return;
    }
    let items: Vec<&Ballot> = group.iter().map(|&i| ballots[i]).collect();
    if combination_holds(e, &items, w) {
        return;
    }
    if group.len() == 1 {
        bad[group[0]] = true;
        return;
    }
    let mid = group.len() / 2;
    bisect(e, ballots, &group[..mid], w, bad);
    bisect(e, ballots, &group[mid..], w, bad);
}

/// The homomorphic sum of the ballots' ciphertexts per selection, in manifest order (contest by contest,
/// selection by selection); the ballots must have the manifest's shape (they verified).
pub fn sum_ciphertexts(e: &Election, ballots: &[&Ballot]) -> Vec<(RistrettoPoint, RistrettoPoint)> {
    let n: usize = e.contests.iter().map(|c| c.selection_ids.len()).sum();
    let mut acc = vec![(RistrettoPoint::identity(), RistrettoPoint::identity()); n];
    for b in ballots {
        let mut k = 0;
        for c in &b.contests {
            for s in &c.selections {
                acc[k].0 += s.a.p;
                acc[k].1 += s.b.p;
                k += 1;
            }
        }
    }
    acc
}
