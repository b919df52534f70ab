// HAZMAT. §12 batch verification: hash first, one random linear combination of all group equations (128-bit
// weights) as one multi-scalar multiplication, bisection on failure.

import { pippenger } from '@noble/curves/abstract/curve.js';
import { mod } from '@noble/curves/abstract/modular.js';
import { verifyBallotStructure, verifyContestProofs } from './ballot.js';
import { VerificationError } from './errors.js';
import { L, O, Point } from './group.js';
import { csprng } from './random.js';

// ---------------------------------------------------------------------------------------------
// §12 Batch verification

/**
 * §12 ballot_equations, after §12 step 1 for a ballot (§9.5 steps 1-3, each pad, each proof's §8.3 steps
 * 1-3, in their normal order; a failure throws): contest by contest in manifest order, each selection's
 * proof in order, then the contest's proof.
 */
export function ballotEquations(election, ballot) {
  const equations = [];
  for (const [spec, c] of verifyBallotStructure(election, ballot))
    verifyContestProofs(election, ballot, spec, c, equations);
  return equations;
}

/**
 * §12 step 2: T = Σ_e z_e·(Σ_i s_ei·P_ei − R_e), merging the coefficients of equal points before
 * multiplying (here: of the same point object, such as G, K or a ciphertext shared by two branches; merging
 * more or less changes the cost, never T); one multi-scalar multiplication over the merged points.
 */
export function combineEquations(equations, weights) {
  if (weights.length !== equations.length) throw new Error('one weight per equation');
  const merged = new Map(); // point object -> {P, s}
  const add = (s, P) => {
    const key = P;
    const entry = merged.get(key) ?? { P, s: 0n };
    entry.s = mod(entry.s + s, L);
    merged.set(key, entry);
  };
  equations.forEach((e, idx) => {
    const z = weights[idx];
    for (const [s, P] of e.terms) add(z * s, P);
    add(-z, e.R);
  });
  const entries = [...merged.values()].filter(({ P, s }) => s !== 0n && !P.is0());
  if (entries.length === 0) return O;
  return pippenger(
    Point,
    entries.map((x) => x.P),
    entries.map((x) => x.s),
  );
}

/**
 * §12 the check. `prepare(item)` runs step 1 for an item and returns its equations (throwing a
 * VerificationError if a check without group equation fails); `alone(item)` verifies it one by one
 * (§9.5, §T2) for step 4's report. Step 2's weights come from `firstWeights` (a stream for the vectors,
 * else the CSPRNG); the bisection of step 3 always draws fresh weights from the CSPRNG.
 * Returns {equationsPerItem (null for an item refused in step 1), weights, combined, failures}.
 */
export function batchVerify(items, prepare, alone, firstWeights = csprng) {
  const bad = new Set();
  const remaining = [];
  const equationsPerItem = items.map((it, index) => {
    try {
      const equations = prepare(it);
      remaining.push({ index, equations });
      return equations.length;
    } catch (e) {
      if (!(e instanceof VerificationError)) throw e;
      bad.add(index);
      return null;
    }
  });
  const combination = (group, rng) => {
    const equations = group.flatMap((r) => r.equations);
    const weights = equations.map(() => rng.weight());
    return { weights, T: combineEquations(equations, weights) };
  };
  const bisect = (group) => {
    if (group.length === 1) {
      bad.add(group[0].index);
      return;
    }
    const half = Math.floor(group.length / 2);
    for (const part of [group.slice(0, half), group.slice(half)])
      if (!combination(part, csprng).T.is0()) bisect(part);
  };
  const { weights, T } = combination(remaining, firstWeights);
  if (!T.is0()) bisect(remaining);
  const failures = [...bad]
    .sort((x, y) => x - y)
    .map((index) => {
      try {
        alone(items[index]);
      } catch (e) {
        if (!(e instanceof VerificationError)) throw e;
        return { index, check: e.check, subject: e.subject };
      }
      return { index, check: '(verifies alone)', subject: null };
    });
  return { equationsPerItem, weights, combined: T, failures };
}

