// HAZMAT. Part II T2: Schnorr proofs of knowledge and Chaum-Pedersen proofs (commitment form), their JSON
// and their §12 equations.

import { mod } from '@noble/curves/abstract/modular.js';
import { asList, exactKeys } from './encoding.js';
import { InvalidEncoding, VerificationError } from './errors.js';
import { G, L, decodePoint, decodeScalar, mul, pointHex, scalarHex } from './group.js';
import { challenge, contextItems, item, transcript } from './transcript.js';

// ---------------------------------------------------------------------------------------------
// Part II. T2 Proofs (commitment form)

/** T2.1 Schnorr transcript items: (G, X, R, u64(m), ctx...). */
export function schnorrItems(X, R, ctx) {
  return [item.point(G), item.point(X), item.point(R), ...contextItems(ctx)];
}

/** T2.1 proving with nonce k: R = k·G, c = H(...), v = k + c·x. */
export function proveSchnorr(x, ctx, k) {
  const X = mul(x, G);
  const R = mul(k, G);
  const items = schnorrItems(X, R, ctx);
  const c = challenge('schnorr-pok', items);
  return { X, c, transcript: transcript('schnorr-pok', items), proof: { R, v: mod(k + c * x, L) } };
}

/** T2.1 verification: c over the published R; v·G = R + c·X, else `schnorr-pok`. Returns c. */
export function verifySchnorr(X, ctx, { R, v }) {
  const c = challenge('schnorr-pok', schnorrItems(X, R, ctx));
  if (!mul(v, G).equals(R.add(mul(c, X)))) throw new VerificationError('schnorr-pok', 'v·G != R + c·X');
  return c;
}

/** §12 Schnorr equation: v·G + (−c)·X = R (hash first; no check without a group equation). */
export function schnorrEquations(X, ctx, { R, v }) {
  const c = challenge('schnorr-pok', schnorrItems(X, R, ctx));
  return [
    {
      terms: [
        [v, G],
        [mod(-c, L), X],
      ],
      R,
    },
  ];
}

/** T2.2 Chaum-Pedersen transcript items: (G, A, X, Y, R1, R2, u64(m), ctx...). */
export function chaumPedersenItems(A, X, Y, R1, R2, ctx) {
  return [
    item.point(G),
    item.point(A),
    item.point(X),
    item.point(Y),
    item.point(R1),
    item.point(R2),
    ...contextItems(ctx),
  ];
}

/** T2.2 proving with nonce k: R1 = k·G, R2 = k·A, c = H(...), v = k + c·s. */
export function proveChaumPedersen(s, A, ctx, k) {
  const X = mul(s, G);
  const Y = mul(s, A);
  const R1 = mul(k, G);
  const R2 = mul(k, A);
  const items = chaumPedersenItems(A, X, Y, R1, R2, ctx);
  const c = challenge('chaum-pedersen', items);
  return { X, Y, c, transcript: transcript('chaum-pedersen', items), proof: { R1, R2, v: mod(k + c * s, L) } };
}

/** T2.2 verifier step 1 (`chaum-pedersen-identity`) and the challenge of step 2. */
export function chaumPedersenHash(A, X, Y, ctx, { R1, R2 }) {
  if (A.is0() && !Y.is0()) throw new VerificationError('chaum-pedersen-identity', 'A = O but Y != O');
  return challenge('chaum-pedersen', chaumPedersenItems(A, X, Y, R1, R2, ctx));
}

/** T2.2 verification: v·G = R1 + c·X and v·A = R2 + c·Y, else `chaum-pedersen`. Returns c. */
export function verifyChaumPedersen(A, X, Y, ctx, proof) {
  const c = chaumPedersenHash(A, X, Y, ctx, proof);
  const { R1, R2, v } = proof;
  if (!mul(v, G).equals(R1.add(mul(c, X)))) throw new VerificationError('chaum-pedersen', 'v·G != R1 + c·X');
  if (!mul(v, A).equals(R2.add(mul(c, Y)))) throw new VerificationError('chaum-pedersen', 'v·A != R2 + c·Y');
  return c;
}

/** §12 Chaum-Pedersen equations: v·G + (−c)·X = R1, then v·A + (−c)·Y = R2. */
export function chaumPedersenEquations(A, X, Y, ctx, proof) {
  const c = chaumPedersenHash(A, X, Y, ctx, proof);
  const { R1, R2, v } = proof;
  return [
    {
      terms: [
        [v, G],
        [mod(-c, L), X],
      ],
      R: R1,
    },
    {
      terms: [
        [v, A],
        [mod(-c, L), Y],
      ],
      R: R2,
    },
  ];
}

/** T2 JSON: Schnorr {"commitment", "response"}. */
export function decodeSchnorrProof(obj, what = 'proof') {
  exactKeys(obj, ['commitment', 'response'], what);
  return {
    R: decodePoint(obj.commitment, `${what}.commitment`),
    v: decodeScalar(obj.response, `${what}.response`),
  };
}

export function encodeSchnorrProof({ R, v }) {
  return { commitment: pointHex(R), response: scalarHex(v) };
}

/** T2 JSON: Chaum-Pedersen {"commitments": [R1, R2], "response"} (exactly two commitments). */
export function decodeChaumPedersenProof(obj, what = 'proof') {
  exactKeys(obj, ['commitments', 'response'], what);
  if (asList(obj.commitments, `${what}.commitments`).length !== 2)
    throw new InvalidEncoding(`${what}: ${obj.commitments.length} commitments, not 2`);
  return {
    R1: decodePoint(obj.commitments[0], `${what}.commitments[0]`),
    R2: decodePoint(obj.commitments[1], `${what}.commitments[1]`),
    v: decodeScalar(obj.response, `${what}.response`),
  };
}

export function encodeChaumPedersenProof({ R1, R2, v }) {
  return { commitments: [pointHex(R1), pointHex(R2)], response: scalarHex(v) };
}

