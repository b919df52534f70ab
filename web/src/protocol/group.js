// HAZMAT. §2-§3 the group: ristretto255 (RFC 9496, @noble/curves), L, G, O, scalars and points on the wire
// (canonical, validated on decoding). Raw group arithmetic: pages use the recipes of index.js.

import { mod } from '@noble/curves/abstract/modular.js';
import { ristretto255 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { fixedHex } from './encoding.js';
import { InvalidEncoding } from './errors.js';

// ---------------------------------------------------------------------------------------------
// §2 The group: ristretto255 (RFC 9496)

export const Point = ristretto255.Point;
export const L = 2n ** 252n + 27742317777372353535851937790883648493n;
if (L !== Point.Fn.ORDER) throw new Error('L of docs/protocol.md §2 differs from @noble/curves ristretto255');
export const G = Point.BASE;
export const O = Point.ZERO;
export const G_HEX = 'e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76';
export const O_HEX = '00'.repeat(32);

/**
 * §2 encoding of a point (RFC 9496 §4.3.2). Encoding costs a field inversion, so each point object's
 * encoding is remembered (points are immutable; a decoded point's encoding is the bytes it came from).
 */
export const encodings = new WeakMap();
export function encodePoint(P) {
  let bytes = encodings.get(P);
  if (bytes === undefined) {
    bytes = P.toBytes();
    encodings.set(P, bytes);
  }
  return bytes;
}

export function pointHex(P) {
  return bytesToHex(encodePoint(P));
}

/**
 * §3 identity rule: k·P with 0·P = k·O = O (noble's multiply refuses 0). noble's constant-time multiply
 * is used for public scalars too: with @noble/curves 2.x it is faster than its variable-time
 * multiplyUnsafe, markedly so on a point with precomputed windows (fixedBase).
 */
export function mul(k, P) {
  const s = mod(k, L);
  if (s === 0n || P.is0()) return O;
  return P.multiply(s);
}

/** A point that many multiplications will use (G, an election key K, public shares): precomputed windows. */
export function fixedBase(P) {
  if (!P.is0()) P.precompute(8);
  return P;
}
fixedBase(G);

/** §2 small multiple j·G, j >= 0 (0·G = O), cached. */
export const smallMultipleCache = new Map();
export function smallMultiple(j) {
  const key = BigInt(j);
  if (key < 0n) throw new Error('small multiple of a negative number');
  if (!smallMultipleCache.has(key)) smallMultipleCache.set(key, mul(key, G));
  return smallMultipleCache.get(key);
}

// ---------------------------------------------------------------------------------------------
// §3 Scalars and points on the wire

/** §3 Scalar: 32 bytes little-endian, value < L (no silent reduction). */
export function decodeScalar(hex, what = 'scalar') {
  const v = bytesToNumberLE(fixedHex(hex, 32, what));
  if (v >= L) throw new InvalidEncoding(`${what}: not canonical (>= L)`);
  return v;
}

export function encodeScalar(v) {
  return numberToBytesLE(mod(v, L), 32);
}

export function scalarHex(v) {
  return bytesToHex(encodeScalar(v));
}

/**
 * §3 Point: exactly what RFC 9496 §4.3.1 decodes (the identity 00..00 included). A set top bit is refused
 * first, by name (the document's rule; RFC 9496 decoding refuses it too, as s >= p); then the RFC 9496
 * decoder, which accepts only the one canonical encoding of each element (checkGroup re-encodes every
 * valid point of group.json afresh to confirm it).
 */
export function decodePoint(hex, what = 'point') {
  const bytes = fixedHex(hex, 32, what);
  if (bytes[31] & 0x80) throw new InvalidEncoding(`${what}: top bit set`);
  let P;
  try {
    P = Point.fromBytes(bytes);
  } catch (e) {
    throw new InvalidEncoding(`${what}: not a ristretto255 encoding (${e.message})`);
  }
  encodings.set(P, bytes);
  return P;
}

