#!/usr/bin/env node
// Clean-room JavaScript implementation of docs/protocol.md (Part I §1-§11, Part II T1-T4), checked
// against the known-answer vectors in tests/vectors/*.json.
//
// Written from docs/protocol.md and the vector files only (no Python source was read), to show that
// a second implementation can be built from the document and to seed the browser booth.
// Libraries: @noble/curves (edwards25519 group, X25519), @noble/hashes (SHA-256/512),
// @noble/ciphers (HSalsa20, XSalsa20-Poly1305 for the trustees' Box). No curve arithmetic or hash is
// written here; scalar arithmetic mod L is plain BigInt.
//
// Usage: node check_vectors.mjs [VECTOR_DIR]   (default: ../vectors beside this file)
// Prints one line per vector group; exit 0 iff every vector matched, 1 on any mismatch (each printed
// with file, vector and field), 2 if the input cannot be read.

import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { invert, mod } from '@noble/curves/abstract/modular.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { hsalsa, secretbox } from '@noble/ciphers/salsa.js';

// ---------------------------------------------------------------------------------------------
// Errors (mirroring the doc's names: InvalidEncoding, VerificationError with a stable `check`)

class InvalidEncoding extends Error {}

class VerificationError extends Error {
  constructor(check, message, subject = null) {
    super(`${check}: ${message}${subject ? ` (${subject})` : ''}`);
    this.check = check;
    this.subject = subject;
  }
}

// ---------------------------------------------------------------------------------------------
// §1 Encodings

/** §1 "Bytes in JSON": lowercase hex of exactly 2*length digits, nothing else. */
function s1_fixedHex(value, length, what = 'hex') {
  if (typeof value !== 'string') throw new InvalidEncoding(`${what}: not a string`);
  if (value.length !== 2 * length)
    throw new InvalidEncoding(`${what}: need ${2 * length} hex digits, got ${value.length}`);
  if (!/^[0-9a-f]*$/.test(value)) throw new InvalidEncoding(`${what}: not lowercase hex`);
  return hexToBytes(value);
}

/** §1 "Small integers in JSON": JSON integers, never strings or booleans. */
function s1_smallInt(value, what = 'integer') {
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw new InvalidEncoding(`${what}: not a JSON integer`);
  return value;
}

/** §1 "Identifiers": 1..64 characters of [A-Za-z0-9_.-]. */
function s1_identifier(value, what = 'identifier') {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(value))
    throw new InvalidEncoding(`${what}: bad identifier`);
  return value;
}

/** §1 "Structured data": RFC 8785 canonical JSON for objects, arrays, ASCII strings, small integers. */
function s1_jcs(value) {
  if (Array.isArray(value)) return `[${value.map(s1_jcs).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort(); // default sort = UTF-16 code unit order, as RFC 8785 says
    return `{${keys.map((k) => `${JSON.stringify(k)}:${s1_jcs(value[k])}`).join(',')}}`;
  }
  if (typeof value === 'string') {
    if (!/^[\x00-\x7f]*$/.test(value)) throw new InvalidEncoding('jcs: non-ASCII string');
    return JSON.stringify(value);
  }
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'boolean' || value === null) return JSON.stringify(value);
  throw new InvalidEncoding(`jcs: unsupported value ${String(value)}`);
}

/** Strict "exactly these keys" check used by every JSON decoder of the doc. */
function exactKeys(obj, keys, what) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
    throw new InvalidEncoding(`${what}: not an object`);
  const got = Object.keys(obj).sort();
  const want = [...keys].sort();
  if (got.length !== want.length || got.some((k, i) => k !== want[i])) {
    throw new InvalidEncoding(`${what}: keys ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
  }
  return obj;
}

function nonEmptyList(value, what) {
  if (!Array.isArray(value) || value.length === 0) throw new InvalidEncoding(`${what}: not a non-empty list`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// §2 The group

const Point = ed25519.Point ?? ed25519.ExtendedPoint;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
if (L !== ed25519.CURVE.n) throw new Error('L of docs/protocol.md §2 differs from @noble/curves ed25519 n');
const G = Point.BASE;
const O = Point.ZERO;
const G_HEX = '5866666666666666666666666666666666666666666666666666666666666666';
const O_HEX = '0100000000000000000000000000000000000000000000000000000000000000';

/** §2 encoding of a point (RFC 8032 compression). */
function s2_enc(P) {
  return P.toBytes ? P.toBytes() : P.toRawBytes();
}

function hexOf(P) {
  return bytesToHex(s2_enc(P));
}

/** §3 identity rule: k·P with 0·P = k·O = O (noble's multiply refuses 0 and n). */
function s2_mul(k, P) {
  const s = mod(k, L);
  if (s === 0n || P.equals(O)) return O;
  return P.multiply(s);
}

/** k·P for public k and P only (verification): variable-time, like the reference verifier (§13). */
function s2_mulPublic(k, P) {
  const s = mod(k, L);
  if (s === 0n || P.equals(O)) return O;
  return P.multiplyUnsafe(s);
}

/** §2 small multiple j·G, j >= 0 (0·G = O). */
const smallMultipleCache = new Map();
function s2_smallMultiple(j) {
  const key = BigInt(j);
  if (key < 0n) throw new Error('small multiple of a negative number');
  if (!smallMultipleCache.has(key)) smallMultipleCache.set(key, s2_mul(key, G));
  return smallMultipleCache.get(key);
}

// ---------------------------------------------------------------------------------------------
// §3 Scalars and points on the wire

/** §3 Scalar: 32 bytes little-endian, value < L (no silent reduction). */
function s3_decodeScalar(hex, what = 'scalar') {
  const v = bytesToNumberLE(s1_fixedHex(hex, 32, what));
  if (v >= L) throw new InvalidEncoding(`${what}: not canonical (>= L)`);
  return v;
}

function s3_encodeScalar(v) {
  return numberToBytesLE(mod(v, L), 32);
}

function scalarHex(v) {
  return bytesToHex(s3_encodeScalar(v));
}

/** §3 Point: canonical O, or a strict RFC 8032 encoding of a non-small-order subgroup element. */
function s3_decodePoint(hex, what = 'point') {
  const bytes = s1_fixedHex(hex, 32, what);
  if (hex === O_HEX) return O;
  let P;
  try {
    P = Point.fromHex(bytes, false); // zip215 = false: strict RFC 8032 §5.1.3 (y < p, no x=0 with sign)
  } catch (e) {
    throw new InvalidEncoding(`${what}: not a curve point (${e.message})`);
  }
  if (P.equals(O)) throw new InvalidEncoding(`${what}: non-canonical identity`);
  if (P.isSmallOrder()) throw new InvalidEncoding(`${what}: small order`);
  if (!P.isTorsionFree()) throw new InvalidEncoding(`${what}: not in the prime-order subgroup`);
  if (bytesToHex(s2_enc(P)) !== hex) throw new InvalidEncoding(`${what}: non-canonical encoding`);
  return P;
}

// ---------------------------------------------------------------------------------------------
// §4 Transcript hashing

function u32be(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}

function u64be(n) {
  const v = BigInt(n);
  if (v < 0n || v >= 2n ** 64n) throw new Error(`u64 out of range: ${n}`);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, false);
  return b;
}

/** A typed transcript item (§4 "Items are typed by the protocol step"). */
const item = {
  point: (P) => ({ bytes: s2_enc(P) }),
  scalar: (v) => ({ bytes: s3_encodeScalar(v) }),
  bytes: (b) => ({ bytes: b }),
  str: (s) => ({ bytes: utf8ToBytes(s) }),
  u64: (n) => ({ bytes: u64be(n) }),
};

/** §4 transcript(purpose, x_1..x_n) = u32be(len D) || D || (u32be(len x_i) || x_i)*, D = "tvote/1/" + purpose. */
function s4_transcript(purpose, items) {
  const parts = [];
  for (const x of [utf8ToBytes(`tvote/1/${purpose}`), ...items.map((i) => i.bytes)]) {
    parts.push(u32be(x.length), x);
  }
  return concatBytes(...parts);
}

/** §4 challenge = SHA-512(transcript) little-endian mod L. */
function s4_challenge(purpose, items) {
  return mod(bytesToNumberLE(sha512(s4_transcript(purpose, items))), L);
}

/** §4 tagged_sha256 = SHA-256(transcript). */
function s4_taggedSha256(purpose, items) {
  return sha256(s4_transcript(purpose, items));
}

/** §4 context: u64(number of items) then the items. */
function s4_context(ctx) {
  return [item.u64(ctx.length), ...ctx];
}

// ---------------------------------------------------------------------------------------------
// §6 Exponential ElGamal

/** §6 Enc_K(m; r) = (r·G, m·G + r·K). */
function s6_encrypt(K, m, r) {
  if (K.equals(O)) throw new Error('refusing to encrypt under K = O');
  return { a: s2_mul(r, G), b: s2_smallMultiple(m).add(s2_mul(r, K)) };
}

/** §6 homomorphic sum; the empty sum is (O, O). */
function s6_sum(cts) {
  return cts.reduce((acc, ct) => ({ a: acc.a.add(ct.a), b: acc.b.add(ct.b) }), { a: O, b: O });
}

/** §6 decryption with the secret key: M = B − s·A. */
function s6_decrypt(s, ct) {
  return ct.b.subtract(s2_mul(s, ct.a));
}

function decodeCiphertext(obj, what = 'ciphertext') {
  exactKeys(obj, ['a', 'b'], what);
  return { a: s3_decodePoint(obj.a, `${what}.a`), b: s3_decodePoint(obj.b, `${what}.b`) };
}

// ---------------------------------------------------------------------------------------------
// §7 Decoding tallies (bounded discrete log, baby-step giant-step)

const babySteps = new Map(); // k -> Map(hex(j·G) -> j)
function s7_dlog(M, bound) {
  if (bound < 0 || bound > 2 ** 40 - 1) throw new Error('dlog bound out of range');
  if (M.equals(O)) return 0;
  let k = 6;
  while ((2 ** k) ** 2 <= bound) k += 1;
  const s = 2 ** k;
  if (!babySteps.has(k)) {
    const table = new Map();
    let P = O;
    for (let j = 0; j < s; j += 1) {
      table.set(hexOf(P), j);
      P = P.add(G);
    }
    babySteps.set(k, table);
  }
  const table = babySteps.get(k);
  const S = s2_smallMultiple(s);
  let cur = M;
  for (let i = 0; i <= Math.floor(bound / s); i += 1) {
    const j = table.get(hexOf(cur));
    if (j !== undefined) {
      const m = i * s + j;
      if (m <= bound) return m;
      break;
    }
    cur = cur.subtract(S);
  }
  throw new Error('DecodingError: no m in [0, bound]');
}

// ---------------------------------------------------------------------------------------------
// §8 Disjunctive Chaum-Pedersen proof

function s8_transcriptItems(K, ct, allowed, ctx, commitments) {
  return [
    ...s4_context(ctx),
    item.point(K),
    item.point(ct.a),
    item.point(ct.b),
    item.u64(allowed.length),
    ...allowed.map((j) => item.u64(j)),
    ...commitments.flatMap(({ a, b }) => [item.point(a), item.point(b)]),
  ];
}

/** §8.3 verification; returns the recomputed commitments and H for the vectors. */
function s8_verifyDisjunctive(K, ct, allowedSet, ctx, proof) {
  const allowed = [...allowedSet].sort((x, y) => x - y);
  if (proof.challenges.length !== allowed.length || proof.responses.length !== allowed.length) {
    throw new VerificationError('disjunctive-shape', 'number of pairs differs from |S|');
  }
  if (K.equals(O)) throw new VerificationError('disjunctive-key', 'K is the identity');
  const commitments = allowed.map((j, idx) => {
    const c = proof.challenges[idx];
    const v = proof.responses[idx];
    return {
      a: s2_mulPublic(v, G).subtract(s2_mulPublic(c, ct.a)),
      b: s2_mulPublic(v, K).subtract(s2_mulPublic(c, ct.b.subtract(s2_smallMultiple(j)))),
    };
  });
  const H = s4_challenge('disjunctive-cp', s8_transcriptItems(K, ct, allowed, ctx, commitments));
  const sum = mod(
    proof.challenges.reduce((x, y) => x + y, 0n),
    L,
  );
  if (sum !== H) throw new VerificationError('disjunctive-challenge', 'sum of challenges != H');
  return { commitments, H };
}

/**
 * §8.4 proving, with the randomness the vectors fix: u for the real branch and (c_j, v_j) for each
 * simulated branch (w_j = v_j − c_j·r).
 */
function s8_proveDisjunctive(K, ct, allowedSet, ctx, m, r, u, fake) {
  const allowed = [...allowedSet].sort((x, y) => x - y);
  if (!allowed.includes(m)) throw new Error('ValueError: m not in S');
  const challenges = new Map();
  const responses = new Map();
  const commitments = allowed.map((j) => {
    if (j === m) return { a: s2_mul(u, G), b: s2_mul(u, K) };
    const { c, v } = fake.get(j);
    const w = mod(v - c * r, L);
    challenges.set(j, c);
    responses.set(j, v);
    return { a: s2_mul(w, G), b: s2_mul(w, K).subtract(s2_mul(mod(c * BigInt(m - j), L), G)) };
  });
  const H = s4_challenge('disjunctive-cp', s8_transcriptItems(K, ct, allowed, ctx, commitments));
  const cm = mod(H - [...challenges.values()].reduce((x, y) => x + y, 0n), L);
  challenges.set(m, cm);
  responses.set(m, mod(u + cm * r, L));
  return {
    commitments,
    H,
    proof: { challenges: allowed.map((j) => challenges.get(j)), responses: allowed.map((j) => responses.get(j)) },
  };
}

function decodeDisjunctiveProof(obj, what = 'proof') {
  exactKeys(obj, ['challenges', 'responses'], what);
  nonEmptyList(obj.challenges, `${what}.challenges`);
  nonEmptyList(obj.responses, `${what}.responses`);
  if (obj.challenges.length !== obj.responses.length) throw new InvalidEncoding(`${what}: lists of different lengths`);
  return {
    challenges: obj.challenges.map((h, i) => s3_decodeScalar(h, `${what}.challenges[${i}]`)),
    responses: obj.responses.map((h, i) => s3_decodeScalar(h, `${what}.responses[${i}]`)),
  };
}

function encodeDisjunctiveProof(p) {
  return { challenges: p.challenges.map(scalarHex), responses: p.responses.map(scalarHex) };
}

// ---------------------------------------------------------------------------------------------
// §9 Ballots

function range(lo, hi) {
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

/** §9.3 contexts. */
function s9_selectionContext(baseHash, nonce, contestId, selectionId) {
  return [
    item.str('ballot-selection'),
    item.bytes(baseHash),
    item.bytes(nonce),
    item.str(contestId),
    item.str(selectionId),
  ];
}
function s9_contestContext(baseHash, nonce, contestId) {
  return [item.str('ballot-contest'), item.bytes(baseHash), item.bytes(nonce), item.str(contestId)];
}

/** §9.4 strict decoding of the ballot JSON. */
function s9_decodeBallot(obj) {
  exactKeys(obj, ['version', 'election_hash', 'ballot_nonce', 'contests'], 'ballot');
  if (obj.version !== 1) throw new InvalidEncoding('ballot.version: not the integer 1');
  return {
    electionHash: s1_fixedHex(obj.election_hash, 32, 'election_hash'),
    nonce: s1_fixedHex(obj.ballot_nonce, 32, 'ballot_nonce'),
    contests: nonEmptyList(obj.contests, 'contests').map((c, ci) => {
      exactKeys(c, ['contest_id', 'selections', 'proof'], `contests[${ci}]`);
      return {
        contestId: s1_identifier(c.contest_id, `contests[${ci}].contest_id`),
        selections: nonEmptyList(c.selections, `contests[${ci}].selections`).map((s, si) => {
          const w = `contests[${ci}].selections[${si}]`;
          exactKeys(s, ['selection_id', 'ciphertext', 'proof'], w);
          return {
            selectionId: s1_identifier(s.selection_id, `${w}.selection_id`),
            ct: decodeCiphertext(s.ciphertext, `${w}.ciphertext`),
            proof: decodeDisjunctiveProof(s.proof, `${w}.proof`),
          };
        }),
        proof: decodeDisjunctiveProof(c.proof, `contests[${ci}].proof`),
      };
    }),
  };
}

/** §9.5 steps 2-3: the four structure checks of a list of ids against the expected ids. */
function s9_checkIds(got, want, names, subjectOf) {
  const seen = new Set();
  for (const id of got) {
    if (seen.has(id)) throw new VerificationError(names.duplicate, 'appears twice', subjectOf(id));
    seen.add(id);
  }
  for (const id of got) if (!want.includes(id)) throw new VerificationError(names.unknown, 'unknown', subjectOf(id));
  for (const id of want) if (!seen.has(id)) throw new VerificationError(names.missing, 'missing', subjectOf(id));
  if (got.some((id, i) => id !== want[i])) throw new VerificationError(names.order, 'out of order', subjectOf(null));
}

/** §9.5 verification of a decoded ballot against the election (base_hash, K, contests). */
function s9_verifyBallot(election, ballot) {
  if (bytesToHex(ballot.electionHash) !== bytesToHex(election.baseHash)) {
    throw new VerificationError('election-hash', 'election_hash differs from base_hash');
  }
  s9_checkIds(
    ballot.contests.map((c) => c.contestId),
    election.contests.map((c) => c.contestId),
    { duplicate: 'duplicate-contest', unknown: 'unknown-contest', missing: 'missing-contest', order: 'contest-order' },
    (id) => id,
  );
  for (const c of ballot.contests) {
    const spec = election.contests.find((x) => x.contestId === c.contestId);
    s9_checkIds(
      c.selections.map((s) => s.selectionId),
      spec.selectionIds,
      {
        duplicate: 'duplicate-selection',
        unknown: 'unknown-selection',
        missing: 'missing-selection',
        order: 'selection-order',
      },
      (id) => (id === null ? c.contestId : `${c.contestId}/${id}`),
    );
  }
  for (const c of ballot.contests) {
    for (const s of c.selections) {
      try {
        s8_verifyDisjunctive(
          election.K,
          s.ct,
          [0, 1],
          s9_selectionContext(election.baseHash, ballot.nonce, c.contestId, s.selectionId),
          s.proof,
        );
      } catch (e) {
        if (e instanceof VerificationError)
          throw new VerificationError('selection-proof', e.message, `${c.contestId}/${s.selectionId}`);
        throw e;
      }
    }
  }
  for (const c of ballot.contests) {
    const spec = election.contests.find((x) => x.contestId === c.contestId);
    const total = s6_sum(c.selections.map((s) => s.ct));
    try {
      s8_verifyDisjunctive(
        election.K,
        total,
        range(spec.min, spec.max),
        s9_contestContext(election.baseHash, ballot.nonce, c.contestId),
        c.proof,
      );
    } catch (e) {
      if (e instanceof VerificationError) throw new VerificationError('contest-proof', e.message, c.contestId);
      throw e;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// §10 Ballot hash and tracking code

function s10_ballotHash(ballotJson) {
  return s4_taggedSha256('ballot-hash', [item.bytes(utf8ToBytes(s1_jcs(ballotJson)))]);
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
function s10_trackingCode(ballotHash) {
  let v = 0n;
  for (const b of ballotHash.slice(0, 10)) v = (v << 8n) | BigInt(b);
  let symbols = '';
  for (let i = 15; i >= 0; i -= 1) symbols += CROCKFORD[Number((v >> BigInt(5 * i)) & 31n)];
  return symbols.match(/.{4}/g).join('-');
}

function s10_readTrackingCode(typed) {
  const s = typed.toUpperCase().replace(/[- ]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  if (s.length !== 16 || [...s].some((ch) => !CROCKFORD.includes(ch))) throw new InvalidEncoding('not a tracking code');
  return s;
}

// ---------------------------------------------------------------------------------------------
// §11 Benaloh challenge

function s11_decodeRevealed(obj) {
  exactKeys(obj, ['ballot_hash', 'contests'], 'revealed');
  return {
    ballotHash: s1_fixedHex(obj.ballot_hash, 32, 'revealed.ballot_hash'),
    contests: s11_decodeSecretContests(obj.contests, 'revealed'),
  };
}

function s11_decodeSecretContests(list, what) {
  return nonEmptyList(list, `${what}.contests`).map((c, ci) => {
    exactKeys(c, ['contest_id', 'selections'], `${what}.contests[${ci}]`);
    return {
      contestId: s1_identifier(c.contest_id),
      selections: nonEmptyList(c.selections, `${what}.contests[${ci}].selections`).map((s, si) => {
        const w = `${what}.contests[${ci}].selections[${si}]`;
        exactKeys(s, ['selection_id', 'plaintext', 'randomness'], w);
        if (s.plaintext !== 0 && s.plaintext !== 1) throw new InvalidEncoding(`${w}.plaintext: not the integer 0 or 1`);
        return {
          selectionId: s1_identifier(s.selection_id),
          plaintext: s.plaintext,
          r: s3_decodeScalar(s.randomness, `${w}.randomness`),
        };
      }),
    };
  });
}

/** §11 verifying a revealed ballot; returns {contest_id: [chosen selection ids]}. */
function s11_verifyRevealed(election, ballotJson, revealed) {
  const ballot = s9_decodeBallot(ballotJson);
  s9_verifyBallot(election, ballot);
  if (bytesToHex(revealed.ballotHash) !== bytesToHex(s10_ballotHash(ballotJson))) {
    throw new VerificationError('revealed-ballot-hash', 'revealed ballot_hash differs from the ballot hash');
  }
  const shape = (cs) => JSON.stringify(cs.map((c) => [c.contestId, c.selections.map((s) => s.selectionId)]));
  if (shape(revealed.contests) !== shape(ballot.contests))
    throw new VerificationError('revealed-structure', 'contests or selections differ');
  const chosen = {};
  revealed.contests.forEach((rc, ci) => {
    rc.selections.forEach((rs, si) => {
      const published = ballot.contests[ci].selections[si].ct;
      const again = s6_encrypt(election.K, rs.plaintext, rs.r);
      if (!again.a.equals(published.a) || !again.b.equals(published.b)) {
        throw new VerificationError(
          'revealed-reencryption',
          'Enc_K(plaintext; randomness) differs',
          `${rc.contestId}/${rs.selectionId}`,
        );
      }
    });
    const spec = election.contests.find((x) => x.contestId === rc.contestId);
    const ones = rc.selections.filter((s) => s.plaintext === 1);
    if (ones.length < spec.min || ones.length > spec.max)
      throw new VerificationError('revealed-contest-rule', 'count outside [min, max]', rc.contestId);
    chosen[rc.contestId] = ones.map((s) => s.selectionId);
  });
  return chosen;
}

// ---------------------------------------------------------------------------------------------
// Part II. T2 Proofs

/** T2.1 Schnorr transcript items: (G, X, R, u64(m), ctx...). */
function T2_1_schnorrItems(X, R, ctx) {
  return [item.point(G), item.point(X), item.point(R), ...s4_context(ctx)];
}

function T2_1_proveSchnorr(x, ctx, k) {
  const X = s2_mul(x, G);
  const R = s2_mul(k, G);
  const c = s4_challenge('schnorr-pok', T2_1_schnorrItems(X, R, ctx));
  return {
    R,
    transcript: s4_transcript('schnorr-pok', T2_1_schnorrItems(X, R, ctx)),
    proof: { c, v: mod(k - c * x, L) },
  };
}

function T2_1_verifySchnorr(X, ctx, { c, v }) {
  const R = s2_mulPublic(v, G).add(s2_mulPublic(c, X));
  if (s4_challenge('schnorr-pok', T2_1_schnorrItems(X, R, ctx)) !== c)
    throw new VerificationError('schnorr-pok', 'challenge mismatch');
}

/** T2.2 Chaum-Pedersen transcript items: (G, A, X, Y, R1, R2, u64(m), ctx...). */
function T2_2_cpItems(A, X, Y, R1, R2, ctx) {
  return [
    item.point(G),
    item.point(A),
    item.point(X),
    item.point(Y),
    item.point(R1),
    item.point(R2),
    ...s4_context(ctx),
  ];
}

function T2_2_proveChaumPedersen(s, A, ctx, k) {
  const X = s2_mul(s, G);
  const Y = s2_mul(s, A);
  const R1 = s2_mul(k, G);
  const R2 = s2_mul(k, A);
  const items = T2_2_cpItems(A, X, Y, R1, R2, ctx);
  const c = s4_challenge('chaum-pedersen', items);
  return { X, Y, R1, R2, transcript: s4_transcript('chaum-pedersen', items), proof: { c, v: mod(k - c * s, L) } };
}

function T2_2_verifyChaumPedersen(A, X, Y, ctx, { c, v }) {
  if (A.equals(O) && !Y.equals(O)) throw new VerificationError('chaum-pedersen-identity', 'A = O but Y != O');
  const R1 = s2_mulPublic(v, G).add(s2_mulPublic(c, X));
  const R2 = s2_mulPublic(v, A).add(s2_mulPublic(c, Y));
  if (s4_challenge('chaum-pedersen', T2_2_cpItems(A, X, Y, R1, R2, ctx)) !== c)
    throw new VerificationError('chaum-pedersen', 'challenge mismatch');
}

function T2_decodeProof(obj, what = 'proof') {
  exactKeys(obj, ['challenge', 'response'], what);
  return {
    c: s3_decodeScalar(obj.challenge, `${what}.challenge`),
    v: s3_decodeScalar(obj.response, `${what}.response`),
  };
}

function T2_encodeProof({ c, v }) {
  return { challenge: scalarHex(c), response: scalarHex(v) };
}

// ---------------------------------------------------------------------------------------------
// T3 Key ceremony

/** T3.1 context of the Schnorr proof for coefficient k of dealer i. */
function T3_1_coefficientContext(baseHash, t, n, i, k, pk) {
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

/** T3.1 decoding and verification of TrusteeCommitments. */
function T3_1_verifyCommitments(obj, baseHash, t, n) {
  exactKeys(obj, ['trustee', 'commitments', 'proofs', 'x25519_public_key'], 'commitments');
  const i = s1_smallInt(obj.trustee, 'trustee');
  if (i < 1 || i > 255) throw new InvalidEncoding('trustee index outside 1..255');
  nonEmptyList(obj.commitments, 'commitments');
  nonEmptyList(obj.proofs, 'proofs');
  if (obj.commitments.length !== obj.proofs.length)
    throw new InvalidEncoding('commitments and proofs differ in length');
  const C = obj.commitments.map((h, k) => s3_decodePoint(h, `commitments[${k}]`));
  const proofs = obj.proofs.map((p, k) => T2_decodeProof(p, `proofs[${k}]`));
  const pk = s1_fixedHex(obj.x25519_public_key, 32, 'x25519_public_key');
  if (i > n) throw new VerificationError('trustee-index', 'i > n');
  if (C.length !== t) throw new VerificationError('commitment-count', 'not t commitments');
  if (C.some((P) => P.equals(O))) throw new VerificationError('commitment-identity', 'C_ik = O');
  C.forEach((P, k) => {
    try {
      T2_1_verifySchnorr(P, T3_1_coefficientContext(baseHash, t, n, i, k, pk), proofs[k]);
    } catch (e) {
      if (e instanceof VerificationError)
        throw new VerificationError('coefficient-proof', e.message, `trustee ${i} k=${k}`);
      throw e;
    }
  });
  return { i, C, pk };
}

/** T3.3 step 4: Σ_k j^k·C_ik by Horner. */
function T3_3_expectedShareCommitment(C, j) {
  let acc = O;
  for (let k = C.length - 1; k >= 0; k -= 1) acc = s2_mulPublic(BigInt(j), acc).add(C[k]);
  return acc;
}

function T3_2_plaintext(baseHash, i, j, sigma) {
  return concatBytes(baseHash, u32be(i), u32be(j), s3_encodeScalar(sigma));
}

/** T3.4 evidence / libsodium crypto_box_beforenm: HSalsa20(X25519(sk, pk), 0^16). */
function T3_4_boxSharedKey(sk, pk) {
  const shared = x25519.getSharedSecret(sk, pk);
  const u32 = (b) => new Uint32Array(Uint8Array.from(b).buffer);
  const out = new Uint32Array(8);
  hsalsa(u32(utf8ToBytes('expand 32-byte k')), u32(shared), u32(new Uint8Array(16)), out);
  return new Uint8Array(out.buffer);
}

/** T3.2 Box(sk_i, pk_j).encrypt(plaintext, nonce) = nonce || tag || ciphertext. */
function T3_2_boxEncrypt(sk, pk, plaintext, nonce) {
  return concatBytes(nonce, secretbox(T3_4_boxSharedKey(sk, pk), nonce).seal(plaintext));
}

/** Open a nonce||tag||ciphertext string with a secretbox key; null if it does not authenticate. */
function T3_openWithKey(key, ciphertext) {
  try {
    return secretbox(key, ciphertext.slice(0, 24)).open(ciphertext.slice(24));
  } catch {
    return null;
  }
}

/** T3.3 checks 2-4 on an opened plaintext; returns σ or throws ThresholdError-like VerificationError. */
function T3_3_checkShare(plaintext, baseHash, i, j, C) {
  const subject = `dealer ${i} -> trustee ${j}`;
  const header = bytesToHex(concatBytes(baseHash, u32be(i), u32be(j)));
  if (plaintext.length !== 72 || bytesToHex(plaintext.slice(0, 40)) !== header)
    throw new VerificationError('share-header', 'bad header', subject);
  let sigma;
  try {
    sigma = s3_decodeScalar(bytesToHex(plaintext.slice(40)));
  } catch {
    throw new VerificationError('share-encoding', 'not a canonical scalar', subject);
  }
  if (!s2_mul(sigma, G).equals(T3_3_expectedShareCommitment(C, j)))
    throw new VerificationError('share-commitment', 'σ·G != Σ j^k C_ik', subject);
  return sigma;
}

/** T3.4 resolution from public data; returns {outcome, atFault}. */
function T3_4_resolveComplaint(baseHash, complaint, dealerC, encryptedShare, answer) {
  const i = complaint.dealer;
  const j = complaint.complainant;
  if (
    (encryptedShare && (encryptedShare.sender !== i || encryptedShare.recipient !== j)) ||
    (answer && (answer.dealer !== i || answer.complainant !== j))
  ) {
    throw new VerificationError('complaint-mismatch', 'inputs name different pairs');
  }
  const expected = T3_3_expectedShareCommitment(dealerC, j);
  if (answer && !s2_mul(s3_decodeScalar(answer.share), G).equals(expected))
    return { outcome: 'dealer-disqualified', atFault: 'dealer' };
  let opened = false;
  if (encryptedShare) {
    const pt = T3_openWithKey(
      s1_fixedHex(complaint.evidence, 32, 'evidence'),
      s1_fixedHex(encryptedShare.ciphertext, 112, 'ciphertext'),
    );
    if (pt !== null) {
      opened = true;
      try {
        T3_3_checkShare(pt, baseHash, i, j, dealerC);
        return { outcome: 'complaint-rejected', atFault: 'complainant' };
      } catch (e) {
        if (!(e instanceof VerificationError)) throw e;
      }
    }
  }
  if (answer) return { outcome: 'share-revealed', atFault: opened ? 'dealer' : 'nobody' };
  return { outcome: 'dealer-disqualified', atFault: 'dealer' };
}

/** T3.5 joint key and public shares from the qualified dealers' commitments. */
function T3_5_jointKey(commitmentsByDealer, qualified, n) {
  const t = commitmentsByDealer.get(qualified[0]).length;
  const Chat = range(0, t - 1).map((k) => qualified.reduce((acc, i) => acc.add(commitmentsByDealer.get(i)[k]), O));
  const K = Chat[0];
  if (K.equals(O)) throw new VerificationError('joint-key-identity', 'K = O');
  const S = new Map(range(1, n).map((j) => [j, T3_3_expectedShareCommitment(Chat, j)]));
  return { K, S };
}

// ---------------------------------------------------------------------------------------------
// T4 Threshold decryption

function T4_1_partialContext(baseHash, j, B) {
  return [item.str('partial-decryption'), item.bytes(baseHash), item.u64(j), item.point(B)];
}

/** T4.3 step 3: λ_j = Π_{m∈U, m≠j} m·(m − j)^{-1} mod L. */
function T4_3_lagrange(U) {
  return new Map(
    U.map((j) => [
      j,
      U.filter((m) => m !== j).reduce((acc, m) => mod(acc * BigInt(m) * invert(mod(BigInt(m - j), L), L), L), 1n),
    ]),
  );
}

/** T4.3 combination: verify partials, take the t smallest valid indices, M = B − Σ λ_j·D_j. */
function T4_3_combine(ct, partials, S, t, n, baseHash) {
  const counts = new Map();
  for (const p of partials) counts.set(p.trustee, (counts.get(p.trustee) ?? 0) + 1);
  const excluded = [];
  const valid = new Map();
  const reported = new Map();
  for (const p of partials) {
    if (counts.get(p.trustee) > 1) {
      // excluded entirely; one report per extra copy
      reported.set(p.trustee, (reported.get(p.trustee) ?? 0) + 1);
      if (reported.get(p.trustee) > 1) excluded.push({ trustee: p.trustee, check: 'partial-duplicate' });
      continue;
    }
    if (p.trustee < 1 || p.trustee > n) {
      excluded.push({ trustee: p.trustee, check: 'partial-trustee' });
      continue;
    }
    try {
      T2_2_verifyChaumPedersen(ct.a, S.get(p.trustee), p.D, T4_1_partialContext(baseHash, p.trustee, ct.b), p.proof);
      valid.set(p.trustee, p.D);
    } catch (e) {
      if (!(e instanceof VerificationError)) throw e;
      excluded.push({ trustee: p.trustee, check: 'partial-proof' });
    }
  }
  if (valid.size < t) throw new VerificationError('too-few-partials', `${valid.size} < t`);
  const U = [...valid.keys()].sort((x, y) => x - y).slice(0, t);
  const lambda = T4_3_lagrange(U);
  const M = ct.b.subtract(U.reduce((acc, j) => acc.add(s2_mul(lambda.get(j), valid.get(j))), O));
  return { M, U, lambda, excluded };
}

function T4_decodePartial(obj, what = 'partial') {
  exactKeys(obj, ['trustee', 'decryption_share', 'proof'], what);
  return {
    trustee: s1_smallInt(obj.trustee),
    D: s3_decodePoint(obj.decryption_share, `${what}.decryption_share`),
    proof: T2_decodeProof(obj.proof, `${what}.proof`),
  };
}

// =============================================================================================
// The vector checks

class Report {
  constructor() {
    this.failures = [];
    this.groups = [];
  }

  group(file, name) {
    const g = { file, name, ok: 0, bad: 0 };
    this.groups.push(g);
    const rep = this;
    return {
      /** run fn for vector `where`; any thrown error or returned mismatch counts as a failure */
      vector(where, fn) {
        const mismatches = [];
        const eq = (field, expected, actual) => {
          if (expected !== actual) mismatches.push(`${field}: expected ${expected}, got ${actual}`);
        };
        try {
          fn(eq);
        } catch (e) {
          mismatches.push(`error: ${e.message}`);
        }
        if (mismatches.length) {
          g.bad += 1;
          for (const m of mismatches) rep.failures.push(`${file} ${name}[${where}] ${m}`);
        } else {
          g.ok += 1;
        }
      },
    };
  }
}

/** Expect a VerificationError with the named check (and subject when given). */
function expectFailure(eq, field, check, fn, subject) {
  try {
    fn();
  } catch (e) {
    if (e instanceof VerificationError || e instanceof InvalidEncoding) {
      eq(`${field} check`, check, e.check ?? 'invalid-encoding');
      if (subject !== undefined) eq(`${field} subject`, subject, e.subject);
      return;
    }
    throw e;
  }
  eq(`${field} check`, check, 'accepted');
}

function expectRejected(eq, field, fn) {
  try {
    fn();
  } catch (e) {
    if (e instanceof InvalidEncoding) return;
    throw e;
  }
  eq(field, 'rejected', 'accepted');
}

/** Transcript items as the vector files type them: {type, value} (hash.json) or [type, value] (proofs.json). */
function vectorItem(raw) {
  const [type, value] = Array.isArray(raw) ? raw : [raw.type, raw.value];
  switch (type) {
    case 'point':
      return item.point(s3_decodePoint(value));
    case 'scalar':
      return item.scalar(s3_decodeScalar(value));
    case 'bytes':
      return item.bytes(hexToBytes(value));
    case 'str':
      return item.str(value);
    case 'u64':
      return item.u64(typeof value === 'number' ? BigInt(value) : BigInt(value));
    default:
      throw new Error(`unknown item type ${type}`);
  }
}

function checkGroup(file, data, report) {
  const scalars = report.group(file, 'scalars');
  data.scalars.valid.forEach((v, idx) =>
    scalars.vector(`valid ${idx}`, (eq) => {
      const s = s3_decodeScalar(v.hex);
      eq('value', v.value, s.toString());
      eq('re-encoding', v.hex, scalarHex(s));
    }),
  );
  data.scalars.invalid.forEach((v, idx) =>
    scalars.vector(`invalid ${idx} (${v.reason})`, (eq) => expectRejected(eq, 'hex', () => s3_decodeScalar(v.hex))),
  );

  const consts = report.group(file, 'constants');
  consts.vector('L', (eq) => eq('L', data.L, L.toString()));
  consts.vector('base_point', (eq) => {
    eq('base_point', data.base_point, hexOf(G));
    eq('G', data.base_point, G_HEX);
    eq('decode', data.base_point, hexOf(s3_decodePoint(data.base_point)));
  });
  consts.vector('identity', (eq) => {
    eq('identity', data.identity, hexOf(O));
    eq('O', data.identity, O_HEX);
    eq('decode', true, s3_decodePoint(data.identity).equals(O));
  });

  const points = report.group(file, 'points');
  data.points.invalid.forEach((v, idx) =>
    points.vector(`invalid ${idx} (${v.reason})`, (eq) => expectRejected(eq, 'hex', () => s3_decodePoint(v.hex))),
  );

  const bm = report.group(file, 'base_mult');
  data.base_mult.forEach((v, idx) =>
    bm.vector(idx, (eq) => {
      const P = s2_mul(s3_decodeScalar(v.scalar), G);
      eq('point', v.point, hexOf(P));
      eq('decode', v.point, hexOf(s3_decodePoint(v.point)));
    }),
  );

  const sm = report.group(file, 'small_multiples');
  data.small_multiples.forEach((v, idx) => sm.vector(idx, (eq) => eq('point', v.point, hexOf(s2_smallMultiple(v.k)))));

  const ar = report.group(file, 'arithmetic');
  data.arithmetic.forEach((v, idx) =>
    ar.vector(idx, (eq) => {
      const P = s3_decodePoint(v.p);
      const Q = s3_decodePoint(v.q);
      eq('p_plus_q', v.p_plus_q, hexOf(P.add(Q)));
      eq('p_minus_q', v.p_minus_q, hexOf(P.subtract(Q)));
      eq('scalar_times_p', v.scalar_times_p, hexOf(s2_mul(s3_decodeScalar(v.scalar), P)));
    }),
  );
}

function checkHash(file, data, report) {
  const g = report.group(file, 'cases');
  data.cases.forEach((c, idx) =>
    g.vector(`${idx} (${c.purpose})`, (eq) => {
      const items = c.items.map(vectorItem);
      eq('transcript', c.transcript, bytesToHex(s4_transcript(c.purpose, items)));
      eq('challenge', c.challenge, scalarHex(s4_challenge(c.purpose, items)));
      eq('tagged_sha256', c.tagged_sha256, bytesToHex(s4_taggedSha256(c.purpose, items)));
    }),
  );
}

function checkElGamal(file, data, report) {
  const g = report.group(file, 'cases');
  const s = s3_decodeScalar(data.secret_key);
  const K = s3_decodePoint(data.public_key);
  g.vector('public_key', (eq) => eq('public_key', data.public_key, hexOf(s2_mul(s, G))));
  const cts = [];
  data.cases.forEach((c, idx) =>
    g.vector(idx, (eq) => {
      const ct = s6_encrypt(K, s1_smallInt(c.m), s3_decodeScalar(c.r));
      cts.push(ct);
      eq('ciphertext.a', c.ciphertext.a, hexOf(ct.a));
      eq('ciphertext.b', c.ciphertext.b, hexOf(ct.b));
      const M = s6_decrypt(s, decodeCiphertext(c.ciphertext));
      eq('decrypted_point', c.decrypted_point, hexOf(M));
      eq('dlog', c.m, s7_dlog(M, Math.max(c.m, 1)));
    }),
  );
  const sums = report.group(file, 'sums');
  sums.vector('sum', (eq) => {
    const total = s6_sum(cts);
    eq('count', data.cases.length, cts.length);
    eq('sum.a', data.sum.ciphertext.a, hexOf(total.a));
    eq('sum.b', data.sum.ciphertext.b, hexOf(total.b));
    eq('sum.m', data.sum.m, s7_dlog(s6_decrypt(s, decodeCiphertext(data.sum.ciphertext)), 10000));
  });
  sums.vector('zero_sum', (eq) => {
    const total = s6_sum([]);
    eq('zero_sum.a', data.zero_sum.ciphertext.a, hexOf(total.a));
    eq('zero_sum.b', data.zero_sum.ciphertext.b, hexOf(total.b));
    eq('zero_sum.m', data.zero_sum.m, s7_dlog(s6_decrypt(s, decodeCiphertext(data.zero_sum.ciphertext)), 10000));
  });
}

function checkDisjunctive(file, data, report) {
  const K = s3_decodePoint(data.public_key);
  const g = report.group(file, 'cases');
  data.cases.forEach((c, idx) =>
    g.vector(idx, (eq) => {
      const ctx = c.context.map(vectorItem);
      const ct = s6_encrypt(K, c.plaintext, s3_decodeScalar(c.randomness));
      eq('ciphertext.a', c.ciphertext.a, hexOf(ct.a));
      eq('ciphertext.b', c.ciphertext.b, hexOf(ct.b));
      const fake = new Map(c.fake_branches.map((f) => [f.value, { c: s3_decodeScalar(f.c), v: s3_decodeScalar(f.v) }]));
      const made = s8_proveDisjunctive(
        K,
        ct,
        c.allowed,
        ctx,
        c.plaintext,
        s3_decodeScalar(c.randomness),
        s3_decodeScalar(c.nonce_u),
        fake,
      );
      eq('proof (produced)', JSON.stringify(c.proof), JSON.stringify(encodeDisjunctiveProof(made.proof)));
      eq('challenge (produced)', c.challenge, scalarHex(made.H));
      made.commitments.forEach((cm, k) => {
        eq(`commitments[${k}].a (produced)`, c.commitments[k].a, hexOf(cm.a));
        eq(`commitments[${k}].b (produced)`, c.commitments[k].b, hexOf(cm.b));
      });
      const checked = s8_verifyDisjunctive(
        K,
        decodeCiphertext(c.ciphertext),
        c.allowed,
        ctx,
        decodeDisjunctiveProof(c.proof),
      );
      eq('challenge (verified)', c.challenge, scalarHex(checked.H));
      checked.commitments.forEach((cm, k) => {
        eq(`commitments[${k}].a (verified)`, c.commitments[k].a, hexOf(cm.a));
        eq(`commitments[${k}].b (verified)`, c.commitments[k].b, hexOf(cm.b));
      });
    }),
  );
  const bad = report.group(file, 'invalid');
  data.invalid.forEach((v, idx) =>
    bad.vector(`${idx} (${v.change})`, (eq) => {
      const c = data.cases[v.case];
      expectFailure(eq, 'proof', 'disjunctive-challenge', () =>
        s8_verifyDisjunctive(
          K,
          decodeCiphertext(c.ciphertext),
          c.allowed,
          c.context.map(vectorItem),
          decodeDisjunctiveProof(v.proof),
        ),
      );
    }),
  );
  bad.vector('identity key', (eq) => {
    const c = data.cases[0];
    expectFailure(eq, 'K = O', 'disjunctive-key', () =>
      s8_verifyDisjunctive(
        O,
        decodeCiphertext(c.ciphertext),
        c.allowed,
        c.context.map(vectorItem),
        decodeDisjunctiveProof(c.proof),
      ),
    );
  });
}

function decodeElection(e) {
  return {
    baseHash: s1_fixedHex(e.base_hash, 32, 'base_hash'),
    K: s3_decodePoint(e.public_key),
    contests: e.contests.map((c) => ({
      contestId: c.contest_id,
      selectionIds: c.selection_ids,
      min: c.min_selections,
      max: c.max_selections,
    })),
  };
}

function checkBallots(file, data, report) {
  const election = decodeElection(data.election);
  const secret = s3_decodeScalar(data.election.secret_key);
  const g = report.group(file, 'ballots');
  g.vector('election key', (eq) => eq('public_key', data.election.public_key, hexOf(s2_mul(secret, G))));
  data.ballots.forEach((b, idx) =>
    g.vector(idx, (eq) => {
      const ballot = s9_decodeBallot(b.ballot);
      s9_verifyBallot(election, ballot);
      eq('canonical_json', b.canonical_json, s1_jcs(b.ballot));
      const h = s10_ballotHash(b.ballot);
      eq('ballot_hash', b.ballot_hash, bytesToHex(h));
      eq('tracking_code', b.tracking_code, s10_trackingCode(h));
      eq(
        'tracking_code (read back)',
        b.tracking_code.replace(/-/g, ''),
        s10_readTrackingCode(b.tracking_code.toLowerCase().replace(/0/g, 'o')),
      );
      // The device's secrets re-encrypt to the published ciphertexts and match the choices.
      const secrets = s11_decodeSecretContests(exactKeys(b.secrets, ['contests'], 'secrets').contests, 'secrets');
      secrets.forEach((sc, ci) => {
        const contest = ballot.contests[ci];
        eq(`secrets.contests[${ci}].contest_id`, contest.contestId, sc.contestId);
        sc.selections.forEach((ss, si) => {
          const where = `${sc.contestId}/${ss.selectionId}`;
          const ct = s6_encrypt(election.K, ss.plaintext, ss.r);
          eq(`ciphertext ${where}.a (produced)`, hexOf(contest.selections[si].ct.a), hexOf(ct.a));
          eq(`ciphertext ${where}.b (produced)`, hexOf(contest.selections[si].ct.b), hexOf(ct.b));
          eq(`plaintext ${where}`, b.choices[sc.contestId].includes(ss.selectionId) ? 1 : 0, ss.plaintext);
          eq(`decryption ${where}`, ss.plaintext, s7_dlog(s6_decrypt(secret, contest.selections[si].ct), 1));
        });
      });
      const chosen = s11_verifyRevealed(election, b.ballot, s11_decodeRevealed(b.revealed));
      eq('revealed choices', JSON.stringify(b.choices), JSON.stringify(chosen));
    }),
  );
  const benaloh = report.group(file, 'revealed-negative');
  benaloh.vector('wrong ballot_hash', (eq) => {
    const b = data.ballots[0];
    const rev = s11_decodeRevealed(b.revealed);
    rev.ballotHash = s10_ballotHash(data.ballots[1].ballot);
    expectFailure(eq, 'revealed', 'revealed-ballot-hash', () => s11_verifyRevealed(election, b.ballot, rev));
  });
  benaloh.vector('flipped plaintext', (eq) => {
    const b = data.ballots[0];
    const rev = s11_decodeRevealed(b.revealed);
    const sel = rev.contests[0].selections[0];
    sel.plaintext = 1 - sel.plaintext;
    expectFailure(
      eq,
      'revealed',
      'revealed-reencryption',
      () => s11_verifyRevealed(election, b.ballot, rev),
      `${rev.contests[0].contestId}/${sel.selectionId}`,
    );
  });
  benaloh.vector('other ballot randomness', (eq) => {
    const b = data.ballots[0];
    const rev = s11_decodeRevealed(b.revealed);
    rev.contests = s11_decodeRevealed(data.ballots[1].revealed).contests;
    expectFailure(eq, 'revealed', 'revealed-reencryption', () => s11_verifyRevealed(election, b.ballot, rev));
  });
  const bad = report.group(file, 'invalid');
  data.invalid.forEach((v, idx) =>
    bad.vector(`${idx} (${v.check})`, (eq) => {
      expectFailure(
        eq,
        'ballot',
        v.check,
        () => s9_verifyBallot(election, s9_decodeBallot(v.ballot)),
        v.subject ?? undefined,
      );
    }),
  );
}

function checkProofs(file, data, report) {
  const sch = report.group(file, 'schnorr');
  data.schnorr.forEach((v, idx) =>
    sch.vector(`${idx} (${v.label})`, (eq) => {
      const ctx = v.context.map(vectorItem);
      const made = T2_1_proveSchnorr(s3_decodeScalar(v.secret), ctx, s3_decodeScalar(v.nonce));
      eq('statement', v.statement, hexOf(s2_mul(s3_decodeScalar(v.secret), G)));
      eq('commitment', v.commitment, hexOf(made.R));
      eq('transcript', v.transcript, bytesToHex(made.transcript));
      eq('proof (produced)', JSON.stringify(v.proof), JSON.stringify(T2_encodeProof(made.proof)));
      T2_1_verifySchnorr(s3_decodePoint(v.statement), ctx, T2_decodeProof(v.proof));
    }),
  );
  const cp = report.group(file, 'chaum_pedersen');
  data.chaum_pedersen.forEach((v, idx) =>
    cp.vector(`${idx} (${v.label})`, (eq) => {
      const ctx = v.context.map(vectorItem);
      const A = s3_decodePoint(v.base);
      const made = T2_2_proveChaumPedersen(s3_decodeScalar(v.secret), A, ctx, s3_decodeScalar(v.nonce));
      eq('statement.X', v.statement.X, hexOf(made.X));
      eq('statement.Y', v.statement.Y, hexOf(made.Y));
      eq('commitments.R1', v.commitments.R1, hexOf(made.R1));
      eq('commitments.R2', v.commitments.R2, hexOf(made.R2));
      eq('transcript', v.transcript, bytesToHex(made.transcript));
      eq('proof (produced)', JSON.stringify(v.proof), JSON.stringify(T2_encodeProof(made.proof)));
      T2_2_verifyChaumPedersen(
        A,
        s3_decodePoint(v.statement.X),
        s3_decodePoint(v.statement.Y),
        ctx,
        T2_decodeProof(v.proof),
      );
    }),
  );
  const neg = report.group(file, 'negative');
  data.negative.forEach((v, idx) =>
    neg.vector(`${idx} (${v.why})`, (eq) => {
      const ctx = v.context.map(vectorItem);
      const proof = T2_decodeProof(v.proof);
      if (v.kind === 'schnorr') {
        expectFailure(eq, 'proof', v.check, () => T2_1_verifySchnorr(s3_decodePoint(v.statement), ctx, proof));
      } else if (v.kind === 'chaum-pedersen') {
        expectFailure(eq, 'proof', v.check, () =>
          T2_2_verifyChaumPedersen(
            s3_decodePoint(v.base),
            s3_decodePoint(v.statement.X),
            s3_decodePoint(v.statement.Y),
            ctx,
            proof,
          ),
        );
      } else {
        throw new Error(`unknown kind ${v.kind}`);
      }
    }),
  );
}

function checkThreshold(file, data, report) {
  const baseHash = s1_fixedHex(data.base_hash, 32, 'base_hash');
  const t = s1_smallInt(data.threshold);
  const n = s1_smallInt(data.trustees);
  const dealers = new Map(); // i -> {C, pk, sk, coefficients}

  const ceremony = report.group(file, 'commitments');
  data.trustee_secrets.forEach((ts, idx) =>
    ceremony.vector(`trustee_secrets[${idx}]`, (eq) => {
      exactKeys(
        ts,
        [
          'format',
          'trustee',
          'threshold',
          'trustees',
          'base_hash',
          'coefficients',
          'x25519_private_key',
          'commitments',
        ],
        'TrusteeKeyGen',
      );
      eq('format', 'tvote-trustee-keygen/1', ts.format);
      eq('threshold', t, ts.threshold);
      eq('trustees', n, ts.trustees);
      eq('base_hash', data.base_hash, ts.base_hash);
      const i = ts.trustee;
      const a = ts.coefficients.map((h) => s3_decodeScalar(h));
      const sk = s1_fixedHex(ts.x25519_private_key, 32, 'x25519_private_key');
      const pk = x25519.getPublicKey(sk);
      eq('x25519_public_key', ts.commitments.x25519_public_key, bytesToHex(pk));
      const nonces = data.coefficient_proof_nonces[String(i)];
      a.forEach((aik, k) => {
        eq(`coefficients[${k}] nonzero`, true, aik !== 0n);
        const made = T2_1_proveSchnorr(
          aik,
          T3_1_coefficientContext(baseHash, t, n, i, k, pk),
          s3_decodeScalar(nonces[k]),
        );
        eq(`commitments[${k}]`, ts.commitments.commitments[k], hexOf(s2_mul(aik, G)));
        eq(
          `proofs[${k}] (produced)`,
          JSON.stringify(ts.commitments.proofs[k]),
          JSON.stringify(T2_encodeProof(made.proof)),
        );
      });
      const verified = T3_1_verifyCommitments(ts.commitments, baseHash, t, n);
      eq('trustee', i, verified.i);
      dealers.set(i, { C: verified.C, pk, sk, a });
    }),
  );
  ceremony.vector('tampered coefficient proof', (eq) => {
    const ts = structuredClone(data.trustee_secrets[0]);
    ts.commitments.proofs[1] = ts.commitments.proofs[2];
    expectFailure(eq, 'commitments', 'coefficient-proof', () => T3_1_verifyCommitments(ts.commitments, baseHash, t, n));
  });
  ceremony.vector('commitments replayed into another election', (eq) => {
    expectFailure(eq, 'commitments', 'coefficient-proof', () =>
      T3_1_verifyCommitments(data.trustee_secrets[0].commitments, new Uint8Array(32), t, n),
    );
  });

  const shares = report.group(file, 'shares');
  for (const [iKey, row] of Object.entries(data.shares)) {
    for (const [jKey, sigmaHex] of Object.entries(row)) {
      shares.vector(`${iKey}->${jKey}`, (eq) => {
        const i = Number(iKey);
        const j = Number(jKey);
        const { a, C } = dealers.get(i);
        const sigma = a.reduceRight((acc, ak) => mod(acc * BigInt(j) + ak, L), 0n);
        eq('share P_i(j)', sigmaHex, scalarHex(sigma));
        eq('share-commitment', true, s2_mul(sigma, G).equals(T3_3_expectedShareCommitment(C, j)));
      });
    }
  }

  const boxes = report.group(file, 'encrypted_shares');
  data.encrypted_shares.forEach((es, idx) =>
    boxes.vector(`${idx} (${es.sender}->${es.recipient})`, (eq) => {
      exactKeys(es, ['sender', 'recipient', 'ciphertext'], 'EncryptedShare');
      const i = es.sender;
      const j = es.recipient;
      const ct = s1_fixedHex(es.ciphertext, 112, 'ciphertext');
      const pt = T3_openWithKey(T3_4_boxSharedKey(dealers.get(j).sk, dealers.get(i).pk), ct);
      if (pt === null)
        throw new VerificationError('share-decryption', 'Box does not authenticate', `dealer ${i} -> trustee ${j}`);
      const sigma = T3_3_checkShare(pt, baseHash, i, j, dealers.get(i).C);
      eq('share', data.shares[String(i)][String(j)], scalarHex(sigma));
      const again = T3_2_boxEncrypt(
        dealers.get(i).sk,
        dealers.get(j).pk,
        T3_2_plaintext(baseHash, i, j, sigma),
        ct.slice(0, 24),
      );
      eq('ciphertext (produced with its nonce)', es.ciphertext, bytesToHex(again));
    }),
  );

  const complaints = report.group(file, 'complaints');
  data.complaints.forEach((cv, idx) =>
    complaints.vector(`${idx} (${cv.outcome})`, (eq) => {
      exactKeys(cv.complaint, ['complainant', 'dealer', 'evidence'], 'Complaint');
      const { complainant: j, dealer: i } = cv.complaint;
      eq(
        'evidence = Box shared key (complainant side)',
        cv.complaint.evidence,
        bytesToHex(T3_4_boxSharedKey(dealers.get(j).sk, dealers.get(i).pk)),
      );
      eq(
        'evidence = Box shared key (dealer side)',
        cv.complaint.evidence,
        bytesToHex(T3_4_boxSharedKey(dealers.get(i).sk, dealers.get(j).pk)),
      );
      const res = T3_4_resolveComplaint(baseHash, cv.complaint, dealers.get(i).C, cv.encrypted_share, cv.answer);
      eq('outcome', cv.outcome, res.outcome);
      eq('at_fault', cv.at_fault, res.atFault);
    }),
  );

  const joint = report.group(file, 'joint_key');
  let S;
  let K;
  joint.vector('joint_key', (eq) => {
    const jk = exactKeys(
      data.joint_key,
      ['base_hash', 'threshold', 'qualified', 'joint_key', 'public_shares'],
      'JointKey',
    );
    const commitmentsByDealer = new Map([...dealers].map(([i, d]) => [i, d.C]));
    ({ K, S } = T3_5_jointKey(commitmentsByDealer, jk.qualified, n));
    eq('joint_key', jk.joint_key, hexOf(K));
    eq('threshold', t, jk.threshold);
    for (const j of range(1, n)) eq(`public_shares.${j}`, jk.public_shares[String(j)], hexOf(S.get(j)));
  });
  const secretShares = new Map();
  data.trustee_keys.forEach((tk, idx) =>
    joint.vector(`trustee_keys[${idx}]`, (eq) => {
      exactKeys(
        tk,
        ['format', 'trustee', 'threshold', 'trustees', 'base_hash', 'secret_share', 'public_share'],
        'TrusteeKey',
      );
      eq('format', 'tvote-trustee-key/1', tk.format);
      const j = tk.trustee;
      const sj = data.joint_key.qualified.reduce(
        (acc, i) => mod(acc + s3_decodeScalar(data.shares[String(i)][String(j)]), L),
        0n,
      );
      eq('secret_share', tk.secret_share, scalarHex(sj));
      eq('public_share = s_j·G', tk.public_share, hexOf(s2_mul(sj, G)));
      eq('public_share = S_j', tk.public_share, hexOf(S.get(j)));
      secretShares.set(j, sj);
    }),
  );

  const dec = report.group(file, 'decryption');
  const ct = decodeCiphertext(data.ciphertext.ct);
  dec.vector('ciphertext', (eq) => {
    const again = s6_encrypt(K, data.ciphertext.m, s3_decodeScalar(data.ciphertext.r));
    eq('ct.a', data.ciphertext.ct.a, hexOf(again.a));
    eq('ct.b', data.ciphertext.ct.b, hexOf(again.b));
  });
  const partials = [];
  data.partials.forEach((pv, idx) =>
    dec.vector(`partials[${idx}]`, (eq) => {
      const p = T4_decodePartial(pv);
      const j = p.trustee;
      const made = T2_2_proveChaumPedersen(
        secretShares.get(j),
        ct.a,
        T4_1_partialContext(baseHash, j, ct.b),
        s3_decodeScalar(data.partial_nonces[String(j)]),
      );
      eq('decryption_share', pv.decryption_share, hexOf(made.Y));
      eq('proof (produced)', JSON.stringify(pv.proof), JSON.stringify(T2_encodeProof(made.proof)));
      T2_2_verifyChaumPedersen(ct.a, S.get(j), p.D, T4_1_partialContext(baseHash, j, ct.b), p.proof);
      partials.push(p);
    }),
  );
  data.combinations.forEach((cv, idx) =>
    dec.vector(`combinations[${idx}] ${JSON.stringify(cv.trustees)}`, (eq) => {
      const chosen = partials.filter((p) => cv.trustees.includes(p.trustee));
      const res = T4_3_combine(ct, chosen, S, t, n, baseHash);
      eq('U', JSON.stringify(cv.trustees), JSON.stringify(res.U));
      for (const j of res.U) eq(`lagrange.${j}`, cv.lagrange[String(j)], scalarHex(res.lambda.get(j)));
      eq('result', cv.result, hexOf(res.M));
      eq('m', data.ciphertext.m, s7_dlog(res.M, 100));
    }),
  );
  dec.vector('combine all partials', (eq) => {
    const res = T4_3_combine(ct, partials, S, t, n, baseHash);
    eq('U', '[1,2,3]', JSON.stringify(res.U));
    eq('result', data.combinations[0].result, hexOf(res.M));
  });
  dec.vector('bad partial excluded', (eq) => {
    const forged = partials.map((p) => (p.trustee === 1 ? { ...p, D: p.D.add(G) } : p));
    const res = T4_3_combine(ct, forged, S, t, n, baseHash);
    eq('excluded', '[{"trustee":1,"check":"partial-proof"}]', JSON.stringify(res.excluded));
    eq('U', '[2,3,4]', JSON.stringify(res.U));
    eq('result', data.combinations[0].result, hexOf(res.M));
  });
  dec.vector('duplicate partial excluded', (eq) => {
    const res = T4_3_combine(ct, [partials[0], ...partials, partials[0]], S, t, n, baseHash);
    eq(
      'excluded',
      '[{"trustee":1,"check":"partial-duplicate"},{"trustee":1,"check":"partial-duplicate"}]',
      JSON.stringify(res.excluded),
    );
    eq('U', '[2,3,4]', JSON.stringify(res.U));
    eq('result', data.combinations[0].result, hexOf(res.M));
  });
  dec.vector('too few partials', (eq) => {
    expectFailure(eq, 'combine', 'too-few-partials', () =>
      T4_3_combine(ct, partials.slice(0, t - 1), S, t, n, baseHash),
    );
  });

  const zero = report.group(file, 'zero_tally');
  const zct = decodeCiphertext(data.zero_tally.ct);
  const zpartials = [];
  data.zero_tally.partials.forEach((pv, idx) =>
    zero.vector(`partials[${idx}]`, (eq) => {
      const p = T4_decodePartial(pv);
      const j = p.trustee;
      const made = T2_2_proveChaumPedersen(
        secretShares.get(j),
        zct.a,
        T4_1_partialContext(baseHash, j, zct.b),
        s3_decodeScalar(data.zero_tally.partial_nonces[String(j)]),
      );
      eq('decryption_share', pv.decryption_share, hexOf(made.Y));
      eq('proof (produced)', JSON.stringify(pv.proof), JSON.stringify(T2_encodeProof(made.proof)));
      T2_2_verifyChaumPedersen(zct.a, S.get(j), p.D, T4_1_partialContext(baseHash, j, zct.b), p.proof);
      zpartials.push(p);
    }),
  );
  zero.vector('result', (eq) => {
    const res = T4_3_combine(zct, zpartials, S, t, n, baseHash);
    eq('result', data.zero_tally.result, hexOf(res.M));
    eq('m', 0, s7_dlog(res.M, 100));
  });
}

const CHECKERS = {
  'group.json': checkGroup,
  'hash.json': checkHash,
  'elgamal.json': checkElGamal,
  'disjunctive.json': checkDisjunctive,
  'ballots.json': checkBallots,
  'proofs.json': checkProofs,
  'threshold.json': checkThreshold,
};

/**
 * JSON.parse loses integers beyond 2^53 (proofs.json has u64 2^64-1 as a JSON number): quote every
 * integer literal of 16+ digits outside strings before parsing; the u64 item reader takes strings.
 */
function parseJsonKeepingBigIntegers(text) {
  return JSON.parse(text.replace(/"(?:[^"\\]|\\.)*"|-?\d{16,}(?![.eE\d])/g, (m) => (m.startsWith('"') ? m : `"${m}"`)));
}

function main() {
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = resolve(process.argv[2] ?? join(here, '..', 'vectors'));
  let files;
  const loaded = [];
  try {
    files = readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort();
    if (files.length === 0) throw new Error(`no *.json in ${dir}`);
    for (const f of files) loaded.push([f, parseJsonKeepingBigIntegers(readFileSync(join(dir, f), 'utf8'))]);
  } catch (e) {
    console.error(`cannot read vectors: ${e.message}`);
    process.exit(2);
  }
  const report = new Report();
  const unknown = [];
  for (const [f, data] of loaded) {
    const checker = CHECKERS[basename(f)];
    if (!checker) {
      unknown.push(f);
      continue;
    }
    try {
      checker(f, data, report);
    } catch (e) {
      // A checker that stops early (e.g. a vector file of another shape) is one failure of that file.
      report.groups.push({ file: f, name: '(file)', ok: 0, bad: 1 });
      report.failures.push(`${f}: checker stopped: ${e.message}`);
    }
  }
  for (const g of report.groups) console.log(`${g.file} ${g.name}: ${g.ok} ok, ${g.bad} failed`);
  for (const f of unknown) {
    console.log(`${f}: no checker for this vector file`);
    report.failures.push(`${f}: no checker (add one to tests/interop/check_vectors.mjs)`);
  }
  for (const msg of report.failures) console.log(`MISMATCH ${msg}`);
  const ok = report.groups.reduce((s, g) => s + g.ok, 0);
  const bad = report.groups.reduce((s, g) => s + g.bad, 0);
  console.log(`interop: ${ok} passed, ${bad + unknown.length} failed`);
  process.exit(report.failures.length === 0 ? 0 : 1);
}

main();
