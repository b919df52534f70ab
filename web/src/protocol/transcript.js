// §4 Transcript hashing: transcript(purpose, items) = u32be(len D) || D || (u32be(len x_i) || x_i)*, with
// D = "tvote/2/" + purpose; challenges are SHA-512 mod L, tagged hashes SHA-256.

import { mod } from '@noble/curves/abstract/modular.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { range } from './encoding.js';
import { L, encodePoint, encodeScalar } from './group.js';

// ---------------------------------------------------------------------------------------------
// §4 Transcript hashing

export const PROTOCOL_VERSION = 2;

export function u32be(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}

export function u64be(n) {
  const v = BigInt(n);
  if (v < 0n || v >= 2n ** 64n) throw new Error(`u64 out of range: ${n}`);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, false);
  return b;
}

/** A typed transcript item (§4 "Items are typed by the protocol step"). */
export const item = {
  point: (P) => ({ bytes: encodePoint(P) }),
  scalar: (v) => ({ bytes: encodeScalar(v) }),
  bytes: (b) => ({ bytes: b }),
  str: (s) => ({ bytes: utf8ToBytes(s) }),
  u64: (n) => ({ bytes: u64be(n) }),
};

/** §4 transcript(purpose, x_1..x_n) = u32be(len D) || D || (u32be(len x_i) || x_i)*, D = "tvote/2/" + purpose. */
export function transcript(purpose, items) {
  const parts = [];
  for (const x of [utf8ToBytes(`tvote/${PROTOCOL_VERSION}/${purpose}`), ...items.map((i) => i.bytes)]) {
    parts.push(u32be(x.length), x);
  }
  return concatBytes(...parts);
}

/** §4 challenge = SHA-512(transcript) little-endian mod L. */
export function challenge(purpose, items) {
  return mod(bytesToNumberLE(sha512(transcript(purpose, items))), L);
}

/** §4 tagged_sha256 = SHA-256(transcript). */
export function taggedSha256(purpose, items) {
  return sha256(transcript(purpose, items));
}

/** §4 context: u64(number of items) then the items. */
export function contextItems(ctx) {
  return [item.u64(ctx.length), ...ctx];
}

