// HAZMAT. §6-§7 exponential ElGamal under K: encryption, homomorphic sums, decryption with a secret key,
// the ciphertext JSON, and the bounded discrete log (baby-step giant-step).

import { exactKeys } from './encoding.js';
import { G, O, decodePoint, mul, pointHex, smallMultiple } from './group.js';

// ---------------------------------------------------------------------------------------------
// §6 Exponential ElGamal

/** §6 Enc_K(m; r) = (r·G, m·G + r·K); refused under K = O. */
export function encrypt(K, m, r) {
  if (K.is0()) throw new Error('ValueError: refusing to encrypt under K = O');
  return { a: mul(r, G), b: smallMultiple(m).add(mul(r, K)) };
}

/** §6 homomorphic sum; the empty sum is (O, O). */
export function sumCiphertexts(cts) {
  return cts.reduce((acc, ct) => ({ a: acc.a.add(ct.a), b: acc.b.add(ct.b) }), { a: O, b: O });
}

/** §6 decryption with the secret key: M = B − s·A. */
export function decryptWithSecret(s, ct) {
  return ct.b.subtract(mul(s, ct.a));
}

export function decodeCiphertext(obj, what = 'ciphertext') {
  exactKeys(obj, ['a', 'b'], what);
  return { a: decodePoint(obj.a, `${what}.a`), b: decodePoint(obj.b, `${what}.b`) };
}

export function encodeCiphertext(ct) {
  return { a: pointHex(ct.a), b: pointHex(ct.b) };
}

// ---------------------------------------------------------------------------------------------
// §7 Decoding tallies (bounded discrete log, baby-step giant-step)

export const babySteps = new Map(); // k -> Map(hex(j·G) -> j)
export function dlog(M, bound) {
  if (!Number.isSafeInteger(bound) || bound < 0 || bound > 2 ** 40 - 1) throw new Error('dlog bound out of range');
  if (M.is0()) return 0;
  let k = 6;
  while ((2 ** k) ** 2 <= bound) k += 1;
  const s = 2 ** k;
  if (!babySteps.has(k)) {
    const table = new Map();
    let P = O;
    for (let j = 0; j < s; j += 1) {
      table.set(pointHex(P), j);
      P = P.add(G);
    }
    babySteps.set(k, table);
  }
  const table = babySteps.get(k);
  const S = smallMultiple(s);
  let cur = M;
  for (let i = 0; i <= Math.floor(bound / s); i += 1) {
    const j = table.get(pointHex(cur));
    if (j !== undefined) {
      const m = i * s + j;
      if (m <= bound) return m;
      break;
    }
    cur = cur.subtract(S);
  }
  throw new Error('DecodingError: no m in [0, bound]');
}

