// HAZMAT. Part II T1, T3-T5: the trustees' key ceremony (commitments, encrypted shares in a NaCl Box via
// @noble/ciphers, complaints, the joint key), threshold decryption and the trustees' secrets at rest. The
// booth never bundles this module; the vector checker uses it.

import { hsalsa, secretbox } from '@noble/ciphers/salsa.js';
import { invert, mod } from '@noble/curves/abstract/modular.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { asList, exactKeys, fixedHex, jsonInteger, nonEmptyList, range } from './encoding.js';
import { InvalidEncoding, VerificationError } from './errors.js';
import { G, L, O, decodePoint, decodeScalar, encodeScalar, mul } from './group.js';
import { decodeChaumPedersenProof, decodeSchnorrProof, verifyChaumPedersen, verifySchnorr } from './proofs.js';
import { PROTOCOL_VERSION, item, u32be } from './transcript.js';

// ---------------------------------------------------------------------------------------------
// T3 Key ceremony

/** T1 a trustee index in JSON: an integer in 1..255. */
export function trusteeIndex(value, what) {
  const i = jsonInteger(value, what);
  if (i < 1 || i > 255) throw new InvalidEncoding(`${what}: index ${i} outside 1..255`);
  return i;
}

/** T3.1 context of the Schnorr proof for coefficient k of dealer i (7 items). */
export function coefficientContext(baseHash, t, n, i, k, pk) {
  return [
    item.str('feldman-coefficient'),
    item.bytes(baseHash),
    item.u64(t),
    item.u64(n),
    item.u64(i),
    item.u64(k),
    item.bytes(pk),
  ];
}

/**
 * T3.1 an X25519 public key: 32 bytes, not of small order (X25519 of it with the scalar 2^254, i.e. 31
 * zero bytes then 0x40, is not all zeros; noble's scalarMult throws on an all-zero result).
 */
export const X25519_SMALL_ORDER_PROBE = concatBytes(new Uint8Array(31), Uint8Array.of(0x40));
export function decodeX25519PublicKey(hex) {
  const pk = fixedHex(hex, 32, 'x25519_public_key');
  let out;
  try {
    out = x25519.scalarMult(X25519_SMALL_ORDER_PROBE, pk);
  } catch {
    out = new Uint8Array(32);
  }
  if (out.every((b) => b === 0)) throw new InvalidEncoding('x25519_public_key: small order');
  return pk;
}

/** T3.1 decoding of TrusteeCommitments (exact keys, index, equal non-empty lists, points, proofs, key). */
export function decodeTrusteeCommitments(obj) {
  exactKeys(obj, ['trustee', 'commitments', 'proofs', 'x25519_public_key'], 'TrusteeCommitments');
  const i = trusteeIndex(obj.trustee, 'trustee');
  nonEmptyList(obj.commitments, 'commitments');
  nonEmptyList(obj.proofs, 'proofs');
  if (obj.commitments.length !== obj.proofs.length)
    throw new InvalidEncoding('commitments and proofs differ in length');
  return {
    i,
    C: obj.commitments.map((h, k) => decodePoint(h, `commitments[${k}]`)),
    proofs: obj.proofs.map((p, k) => decodeSchnorrProof(p, `proofs[${k}]`)),
    pk: decodeX25519PublicKey(obj.x25519_public_key),
  };
}

/** T3.1 verification for the election: trustee-index, commitment-count, commitment-identity, coefficient-proof. */
export function verifyTrusteeCommitments(obj, baseHash, t, n) {
  const { i, C, proofs, pk } = decodeTrusteeCommitments(obj);
  if (i > n) throw new VerificationError('trustee-index', `i = ${i} > n = ${n}`);
  if (C.length !== t) throw new VerificationError('commitment-count', `${C.length} commitments, t = ${t}`);
  if (C.some((P) => P.is0())) throw new VerificationError('commitment-identity', 'some C_ik = O');
  C.forEach((P, k) => {
    try {
      verifySchnorr(P, coefficientContext(baseHash, t, n, i, k, pk), proofs[k]);
    } catch (e) {
      if (e instanceof VerificationError)
        throw new VerificationError('coefficient-proof', e.message, `trustee ${i} k=${k}`, e);
      throw e;
    }
  });
  return { i, C, pk };
}

/** T3.2 EncryptedShare decoding: exact keys, indices in 1..255, sender != recipient, 112-byte ciphertext. */
export function decodeEncryptedShare(obj) {
  exactKeys(obj, ['sender', 'recipient', 'ciphertext'], 'EncryptedShare');
  const i = trusteeIndex(obj.sender, 'sender');
  const j = trusteeIndex(obj.recipient, 'recipient');
  if (i === j) throw new InvalidEncoding('EncryptedShare: sender == recipient');
  return { i, j, ct: fixedHex(obj.ciphertext, 112, 'ciphertext') };
}

/** T3.3 step 4: Σ_k j^k·C_ik by Horner. */
export function expectedShareCommitment(C, j) {
  let acc = O;
  for (let k = C.length - 1; k >= 0; k -= 1) acc = mul(BigInt(j), acc).add(C[k]);
  return acc;
}

/** T3.2 the 72-byte plaintext: base_hash || u32be(i) || u32be(j) || σ_ij. */
export function sharePlaintext(baseHash, i, j, sigma) {
  return concatBytes(baseHash, u32be(i), u32be(j), encodeScalar(sigma));
}

/** T3.4 evidence / libsodium crypto_box_beforenm: HSalsa20(X25519(sk, pk), 0^16), "expand 32-byte k". */
export function boxSharedKey(sk, pk) {
  const shared = x25519.getSharedSecret(sk, pk);
  const u32 = (b) => new Uint32Array(Uint8Array.from(b).buffer);
  const out = new Uint32Array(8);
  hsalsa(u32(utf8ToBytes('expand 32-byte k')), u32(shared), u32(new Uint8Array(16)), out);
  return new Uint8Array(out.buffer);
}

/** T3.2 Box(sk_i, pk_j).encrypt(plaintext, nonce) = nonce || tag || ciphertext. */
export function boxEncrypt(sk, pk, plaintext, nonce) {
  return concatBytes(nonce, secretbox(boxSharedKey(sk, pk), nonce).seal(plaintext));
}

/** Open a nonce||tag||ciphertext string with a secretbox key; null if it does not authenticate. */
export function openWithKey(key, ciphertext) {
  try {
    return secretbox(key, ciphertext.slice(0, 24)).open(ciphertext.slice(24));
  } catch {
    return null;
  }
}

/** T3.3 checks 2-4 on an opened plaintext; returns σ or throws (subject "dealer i -> trustee j"). */
export function checkShare(plaintext, baseHash, i, j, C) {
  const subject = `dealer ${i} -> trustee ${j}`;
  const header = bytesToHex(concatBytes(baseHash, u32be(i), u32be(j)));
  if (plaintext.length !== 72 || bytesToHex(plaintext.slice(0, 40)) !== header)
    throw new VerificationError('share-header', 'bad header or length', subject);
  let sigma;
  try {
    sigma = decodeScalar(bytesToHex(plaintext.slice(40)));
  } catch {
    throw new VerificationError('share-encoding', 'not a canonical scalar', subject);
  }
  if (!mul(sigma, G).equals(expectedShareCommitment(C, j)))
    throw new VerificationError('share-commitment', 'σ·G != Σ j^k C_ik', subject);
  return sigma;
}

/** T3.3 recipient j checks the share dealer i sent it (checks 1-4). */
export function receiveShare(sk_j, pk_i, encryptedShare, baseHash, C) {
  const { i, j, ct } = encryptedShare;
  const pt = openWithKey(boxSharedKey(sk_j, pk_i), ct);
  if (pt === null)
    throw new VerificationError('share-decryption', 'the Box does not authenticate', `dealer ${i} -> trustee ${j}`);
  return checkShare(pt, baseHash, i, j, C);
}

/** T3.4 resolution from public data; returns {outcome, atFault} ("dealer", "complainant" or null). */
export function resolveComplaint(baseHash, complaint, dealerC, encryptedShare, answer) {
  const i = complaint.dealer;
  const j = complaint.complainant;
  if (
    (encryptedShare && (encryptedShare.sender !== i || encryptedShare.recipient !== j)) ||
    (answer && (answer.dealer !== i || answer.complainant !== j))
  ) {
    throw new VerificationError('complaint-mismatch', 'inputs name different pairs');
  }
  const expected = expectedShareCommitment(dealerC, j);
  if (answer && !mul(decodeScalar(answer.share, 'answer.share'), G).equals(expected))
    return { outcome: 'dealer-disqualified', atFault: 'dealer' };
  let opened = false;
  if (encryptedShare) {
    const pt = openWithKey(
      fixedHex(complaint.evidence, 32, 'evidence'),
      fixedHex(encryptedShare.ciphertext, 112, 'ciphertext'),
    );
    if (pt !== null) {
      opened = true;
      try {
        checkShare(pt, baseHash, i, j, dealerC);
        return { outcome: 'complaint-rejected', atFault: 'complainant' };
      } catch (e) {
        if (!(e instanceof VerificationError)) throw e;
      }
    }
  }
  if (answer) return { outcome: 'share-revealed', atFault: opened ? 'dealer' : null };
  return { outcome: 'dealer-disqualified', atFault: 'dealer' };
}

/** T3.5 joint key K = Σ_{i∈Q} C_i0 (≠ O) and public shares S_j = Σ_k j^k·Ĉ_k, Ĉ_k = Σ_{i∈Q} C_ik. */
export function jointKey(commitmentsByDealer, qualified, t, n) {
  if (qualified.length < t) throw new VerificationError('too-few-qualified', `${qualified.length} < t = ${t}`);
  const Chat = range(0, t - 1).map((k) => qualified.reduce((acc, i) => acc.add(commitmentsByDealer.get(i)[k]), O));
  const K = Chat[0];
  if (K.is0()) throw new VerificationError('joint-key-identity', 'K = O');
  const S = new Map(range(1, n).map((j) => [j, expectedShareCommitment(Chat, j)]));
  return { K, S };
}

/**
 * T3.5 JointKey decoding: exactly these keys; public_shares has the keys "1".."n" (which fixes n);
 * 1 <= t <= n; qualified strictly increasing, within 1..n, at least t long; K ≠ O.
 */
export function decodeJointKey(obj) {
  exactKeys(obj, ['base_hash', 'threshold', 'qualified', 'joint_key', 'public_shares'], 'JointKey');
  const shares = obj.public_shares;
  if (shares === null || typeof shares !== 'object' || Array.isArray(shares))
    throw new InvalidEncoding('public_shares: not an object');
  const n = Object.keys(shares).length; // the keys must be exactly "1".."n", which fixes n
  if (n < 1 || n > 255) throw new InvalidEncoding(`public_shares: ${n} trustees`);
  exactKeys(shares, range(1, n).map(String), 'public_shares');
  const t = jsonInteger(obj.threshold, 'threshold');
  if (t < 1 || t > n) throw new InvalidEncoding(`JointKey: t = ${t} outside 1..n = ${n}`);
  const qualified = asList(obj.qualified, 'qualified').map((i) => jsonInteger(i, 'qualified'));
  if (qualified.some((i, idx) => i < 1 || i > n || (idx > 0 && i <= qualified[idx - 1])) || qualified.length < t)
    throw new InvalidEncoding('JointKey: qualified not strictly increasing in 1..n, or fewer than t');
  const K = decodePoint(obj.joint_key, 'joint_key');
  if (K.is0()) throw new InvalidEncoding('JointKey: K = O');
  return {
    baseHash: fixedHex(obj.base_hash, 32, 'base_hash'),
    t,
    n,
    qualified,
    K,
    S: new Map(range(1, n).map((j) => [j, decodePoint(shares[String(j)], `public_shares.${j}`)])),
  };
}

// ---------------------------------------------------------------------------------------------
// T4 Threshold decryption

/** T4.1 context (4 items): ("partial-decryption", base_hash, u64(j), B). */
export function partialContext(baseHash, j, B) {
  return [item.str('partial-decryption'), item.bytes(baseHash), item.u64(j), item.point(B)];
}

export function decodePartial(obj, what = 'partial') {
  exactKeys(obj, ['trustee', 'decryption_share', 'proof'], what);
  return {
    trustee: trusteeIndex(obj.trustee, `${what}.trustee`),
    D: decodePoint(obj.decryption_share, `${what}.decryption_share`),
    proof: decodeChaumPedersenProof(obj.proof, `${what}.proof`),
  };
}

/** T4.2 verify_partial: partial-trustee (j ∉ 1..n), partial-proof (subject "trustee j"). */
export function verifyPartial(ct, p, S, n, baseHash) {
  const subject = `trustee ${p.trustee}`;
  if (p.trustee < 1 || p.trustee > n) throw new VerificationError('partial-trustee', 'not in 1..n', subject);
  try {
    verifyChaumPedersen(ct.a, S.get(p.trustee), p.D, partialContext(baseHash, p.trustee, ct.b), p.proof);
  } catch (e) {
    if (e instanceof VerificationError) throw new VerificationError('partial-proof', e.message, subject, e);
    throw e;
  }
}

/** T4.3 step 3: λ_j = Π_{m∈U, m≠j} m·(m − j)^{-1} mod L. */
export function lagrange(U) {
  return new Map(
    U.map((j) => [
      j,
      U.filter((m) => m !== j).reduce((acc, m) => mod(acc * BigInt(m) * invert(mod(BigInt(m - j), L), L), L), 1n),
    ]),
  );
}

/**
 * T4.3 combination, one scan in input order: a trustee's first partial is verified where it stands
 * (T4.2; a failure is reported there); each later copy reports partial-duplicate at its own position and
 * withdraws the trustee's first partial from the valid set (no further report). Then the t smallest
 * valid indices U, λ_j and M = B − Σ λ_j·D_j.
 */
export function combinePartials(ct, partials, S, t, n, baseHash) {
  const excluded = [];
  const valid = new Map();
  const seen = new Set();
  for (const p of partials) {
    if (seen.has(p.trustee)) {
      excluded.push({ trustee: p.trustee, check: 'partial-duplicate' });
      valid.delete(p.trustee);
      continue;
    }
    seen.add(p.trustee);
    try {
      verifyPartial(ct, p, S, n, baseHash);
      valid.set(p.trustee, p.D);
    } catch (e) {
      if (!(e instanceof VerificationError)) throw e;
      excluded.push({ trustee: p.trustee, check: e.check });
    }
  }
  if (valid.size < t) throw new VerificationError('too-few-partials', `${valid.size} < t = ${t}`);
  const U = [...valid.keys()].sort((x, y) => x - y).slice(0, t);
  const lambda = lagrange(U);
  const M = ct.b.subtract(U.reduce((acc, j) => acc.add(mul(lambda.get(j), valid.get(j))), O));
  return { M, U, lambda, excluded };
}

/**
 * T4.4 combine_tally: `submissions` maps trustee j -> its list of N partials, in the tally's order.
 * Trustees in increasing index; one report per excluded trustee (its first failure).
 */
export function combineTally(cts, submissions, S, t, n, baseHash) {
  const excluded = [];
  const remaining = [];
  for (const j of [...submissions.keys()].sort((x, y) => x - y)) {
    const partials = submissions.get(j);
    try {
      if (j < 1 || j > n) throw new VerificationError('partial-trustee', 'not in 1..n', `trustee ${j}`);
      if (partials.length !== cts.length)
        throw new VerificationError('partial-count', `${partials.length} partials for ${cts.length}`, `trustee ${j}`);
      partials.forEach((p, k) => {
        if (p.trustee !== j)
          throw new VerificationError('partial-trustee', `position ${k} names another`, `trustee ${j}`);
        try {
          verifyPartial(cts[k], p, S, n, baseHash);
        } catch (e) {
          if (e instanceof VerificationError)
            throw new VerificationError(e.check, `position ${k}: ${e.message}`, `trustee ${j}`, e);
          throw e;
        }
      });
      remaining.push(j);
    } catch (e) {
      if (!(e instanceof VerificationError)) throw e;
      excluded.push({ trustee: j, check: e.check });
    }
  }
  if (remaining.length < t) throw new VerificationError('too-few-partials', `${remaining.length} < t = ${t}`);
  const U = remaining.slice(0, t);
  const lambda = lagrange(U);
  const M = cts.map((ct, k) =>
    ct.b.subtract(U.reduce((acc, j) => acc.add(mul(lambda.get(j), submissions.get(j)[k].D)), O)),
  );
  return { M, U, excluded };
}

// ---------------------------------------------------------------------------------------------
// T5 Secrets at rest

/**
 * T5 TrusteeKeyGen loading: format "tvote-trustee-keygen/2"; the commitments are a_k·G, the X25519 public
 * key matches the private key and the proofs verify.
 */
export function loadTrusteeKeyGen(obj) {
  exactKeys(
    obj,
    ['format', 'trustee', 'threshold', 'trustees', 'base_hash', 'coefficients', 'x25519_private_key', 'commitments'],
    'TrusteeKeyGen',
  );
  if (obj.format !== `tvote-trustee-keygen/${PROTOCOL_VERSION}`) throw new InvalidEncoding(`format ${obj.format}`);
  const i = trusteeIndex(obj.trustee, 'trustee');
  const t = jsonInteger(obj.threshold, 'threshold');
  const n = jsonInteger(obj.trustees, 'trustees');
  if (!(t >= 1 && t <= n && n <= 255)) throw new InvalidEncoding('TrusteeKeyGen: not 1 <= t <= n <= 255');
  const baseHash = fixedHex(obj.base_hash, 32, 'base_hash');
  const a = nonEmptyList(obj.coefficients, 'coefficients').map((h, k) => decodeScalar(h, `coefficients[${k}]`));
  const sk = fixedHex(obj.x25519_private_key, 32, 'x25519_private_key');
  const verified = verifyTrusteeCommitments(obj.commitments, baseHash, t, n);
  if (verified.i !== i) throw new InvalidEncoding('TrusteeKeyGen: commitments of another trustee');
  if (bytesToHex(x25519.getPublicKey(sk)) !== bytesToHex(verified.pk))
    throw new InvalidEncoding('TrusteeKeyGen: X25519 public key does not match');
  if (a.length !== verified.C.length || a.some((ak, k) => !mul(ak, G).equals(verified.C[k])))
    throw new InvalidEncoding('TrusteeKeyGen: commitments are not a_k·G');
  return { i, t, n, baseHash, a, sk, pk: verified.pk, C: verified.C };
}

/** T5 TrusteeKey loading: format "tvote-trustee-key/2", s·G = S. */
export function loadTrusteeKey(obj) {
  exactKeys(
    obj,
    ['format', 'trustee', 'threshold', 'trustees', 'base_hash', 'secret_share', 'public_share'],
    'TrusteeKey',
  );
  if (obj.format !== `tvote-trustee-key/${PROTOCOL_VERSION}`) throw new InvalidEncoding(`format ${obj.format}`);
  const s = decodeScalar(obj.secret_share, 'secret_share');
  const S = decodePoint(obj.public_share, 'public_share');
  if (!mul(s, G).equals(S)) throw new InvalidEncoding('TrusteeKey: s·G != S');
  return {
    j: trusteeIndex(obj.trustee, 'trustee'),
    t: jsonInteger(obj.threshold, 'threshold'),
    n: jsonInteger(obj.trustees, 'trustees'),
    baseHash: fixedHex(obj.base_hash, 32, 'base_hash'),
    s,
    S,
  };
}

