// HAZMAT. §8 the disjunctive Chaum-Pedersen proof (commitment form): proving, verification in the
// document's order, the proof JSON, and its §12 batch equations.

import { mod } from '@noble/curves/abstract/modular.js';
import { asList, exactKeys } from './encoding.js';
import { InvalidEncoding, VerificationError } from './errors.js';
import { G, L, decodePoint, decodeScalar, mul, pointHex, scalarHex, smallMultiple } from './group.js';
import { challenge, contextItems, item } from './transcript.js';

// ---------------------------------------------------------------------------------------------
// §8 Disjunctive Chaum-Pedersen proof (commitment form)

export const MAX_ALLOWED = 1024;

/** §8.1 the allowed set, ascending: distinct integers in [0, 2^32), 1..1024 of them. */
export function allowedValues(set) {
  const allowed = [...set].sort((x, y) => x - y);
  if (allowed.length < 1 || allowed.length > MAX_ALLOWED) throw new Error('allowed set of a bad size');
  if (allowed.some((j, i) => !Number.isSafeInteger(j) || j < 0 || j >= 2 ** 32 || (i > 0 && j === allowed[i - 1])))
    throw new Error('allowed set: not distinct integers in [0, 2^32)');
  return allowed;
}

/** §8.3 step 2 transcript items: u64(c), ctx..., K, A, B, u64(n), u64(j)..., a_j, b_j ... */
export function disjunctiveItems(K, ct, allowed, ctx, commitments) {
  return [
    ...contextItems(ctx),
    item.point(K),
    item.point(ct.a),
    item.point(ct.b),
    item.u64(allowed.length),
    ...allowed.map((j) => item.u64(j)),
    ...commitments.flatMap(({ a, b }) => [item.point(a), item.point(b)]),
  ];
}

/** §8.2 decoding: exactly three keys; for one n in 1..1024, n challenges, n responses, 2n commitments. */
export function decodeDisjunctiveProof(obj, what = 'proof') {
  exactKeys(obj, ['commitments', 'challenges', 'responses'], what);
  const n = asList(obj.challenges, `${what}.challenges`).length;
  if (n < 1 || n > MAX_ALLOWED) throw new InvalidEncoding(`${what}: ${n} challenges (need 1..${MAX_ALLOWED})`);
  if (asList(obj.responses, `${what}.responses`).length !== n)
    throw new InvalidEncoding(`${what}: ${obj.responses.length} responses for ${n} challenges`);
  if (asList(obj.commitments, `${what}.commitments`).length !== 2 * n)
    throw new InvalidEncoding(`${what}: ${obj.commitments.length} commitments for ${n} challenges`);
  const points = obj.commitments.map((h, i) => decodePoint(h, `${what}.commitments[${i}]`));
  return {
    commitments: Array.from({ length: n }, (_, i) => ({ a: points[2 * i], b: points[2 * i + 1] })),
    challenges: obj.challenges.map((h, i) => decodeScalar(h, `${what}.challenges[${i}]`)),
    responses: obj.responses.map((h, i) => decodeScalar(h, `${what}.responses[${i}]`)),
  };
}

export function encodeDisjunctiveProof(p) {
  return {
    commitments: p.commitments.flatMap(({ a, b }) => [pointHex(a), pointHex(b)]),
    challenges: p.challenges.map(scalarHex),
    responses: p.responses.map(scalarHex),
  };
}

/** §8.3 steps 1-3 (no group operation beyond decoding): shape, key, challenge split. Returns H. */
export function disjunctiveVerifyHash(K, ct, allowedSet, ctx, proof) {
  const allowed = allowedValues(allowedSet);
  if (proof.challenges.length !== allowed.length)
    throw new VerificationError('disjunctive-shape', `${proof.challenges.length} branches for |S| = ${allowed.length}`);
  if (K.is0()) throw new VerificationError('disjunctive-key', 'K is the identity');
  const H = challenge('disjunctive-cp', disjunctiveItems(K, ct, allowed, ctx, proof.commitments));
  const sum = mod(
    proof.challenges.reduce((x, y) => x + y, 0n),
    L,
  );
  if (sum !== H) throw new VerificationError('disjunctive-challenge', 'the challenges do not sum to H');
  return H;
}

/** §8.3 step 4, one by one: v_j·G = a_j + c_j·A and v_j·K = b_j + c_j·(B − j·G), j ascending. */
export function disjunctiveVerifyEquations(K, ct, allowedSet, proof) {
  allowedValues(allowedSet).forEach((j, idx) => {
    const c = proof.challenges[idx];
    const v = proof.responses[idx];
    const { a, b } = proof.commitments[idx];
    const first = mul(v, G).equals(a.add(mul(c, ct.a)));
    const second = first && mul(v, K).equals(b.add(mul(c, ct.b.subtract(smallMultiple(j)))));
    if (!second)
      throw new VerificationError('disjunctive-equation', `branch j = ${j}: ${first ? 'b' : 'a'}-equation fails`);
  });
}

/** §8.3 verification, as written (hash first, then the equations one by one); returns H. */
export function verifyDisjunctive(K, ct, allowedSet, ctx, proof) {
  const H = disjunctiveVerifyHash(K, ct, allowedSet, ctx, proof);
  disjunctiveVerifyEquations(K, ct, allowedSet, proof);
  return H;
}

/**
 * §8.4 proving, drawing from `rng` in the reference order: u, then for each j ≠ m ascending c_j then
 * w_j; v_j = w_j + c_j·r; a_m = u·G, b_m = u·K; a_j = w_j·G, b_j = w_j·K − (c_j·(m − j) mod L)·G;
 * c_m = H − Σ c_j, v_m = u + c_m·r. u is a proof nonce, non-zero (§4); c_j and w_j are random scalars
 * (§8.4). Returns the proof with u, the simulated branches (value, c, w, v) and H.
 */
export function proveDisjunctive(K, ct, allowedSet, ctx, m, r, rng) {
  const allowed = allowedValues(allowedSet);
  if (!allowed.includes(m)) throw new Error('ValueError: m not in S');
  if (K.is0()) throw new Error('ValueError: K = O');
  const u = rng.nonZeroScalar();
  const fake = new Map();
  for (const j of allowed) {
    if (j === m) continue;
    const c = rng.scalar();
    const w = rng.scalar();
    fake.set(j, { c, w, v: mod(w + c * r, L) });
  }
  const commitments = allowed.map((j) => {
    if (j === m) return { a: mul(u, G), b: mul(u, K) };
    const { c, w } = fake.get(j);
    // c_j·(m − j) reduced to [0, L) before it multiplies G (mod() of @noble/curves is non-negative).
    return { a: mul(w, G), b: mul(w, K).subtract(mul(mod(c * BigInt(m - j), L), G)) };
  });
  const H = challenge('disjunctive-cp', disjunctiveItems(K, ct, allowed, ctx, commitments));
  const cm = mod(H - [...fake.values()].reduce((x, f) => x + f.c, 0n), L);
  const vm = mod(u + cm * r, L);
  return {
    u,
    fake,
    H,
    proof: {
      commitments,
      challenges: allowed.map((j) => (j === m ? cm : fake.get(j).c)),
      responses: allowed.map((j) => (j === m ? vm : fake.get(j).v)),
    },
  };
}


/**
 * §12 equations of a disjunctive proof, per branch j ascending: v_j·G + (−c_j)·A = a_j, then
 * v_j·K + (−c_j)·B + (c_j·j)·G = b_j. An equation is {terms: [[s, P], ...], R}.
 */
export function disjunctiveEquations(K, ct, allowedSet, proof) {
  return allowedValues(allowedSet).flatMap((j, idx) => {
    const c = proof.challenges[idx];
    const v = proof.responses[idx];
    const { a, b } = proof.commitments[idx];
    return [
      {
        terms: [
          [v, G],
          [mod(-c, L), ct.a],
        ],
        R: a,
      },
      {
        terms: [
          [v, K],
          [mod(-c, L), ct.b],
          [mod(c * BigInt(j), L), G],
        ],
        R: b,
      },
    ];
  });
}
