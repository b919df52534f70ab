// HAZMAT. Randomness sources: the CSPRNG (WebCrypto) for everything real, and Appendix A's named
// SHAKE-256 streams (tests only: they regenerate the known-answer vectors byte for byte).

import { mod } from '@noble/curves/abstract/modular.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { shake256 } from '@noble/hashes/sha3.js';
import { bytesToHex, concatBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { L } from './group.js';
import { PROTOCOL_VERSION } from './transcript.js';

// ---------------------------------------------------------------------------------------------
// Appendix A. Random streams (and §4 "Random scalars")

export const SEED_VECTORS = `tvote/vectors/${PROTOCOL_VERSION}`; // group, hash, elgamal, disjunctive, ballots, batch
export const SEED_THRESHOLD = `tvote/threshold-vectors/${PROTOCOL_VERSION}`; // proofs, threshold

/**
 * Appendix A: the named stream SHAKE-256(seed || "/" || label), read front to back (each read of n
 * bytes takes the next n). A randomness source: `bytes(n)`, `scalar()` (64 bytes little-endian mod L),
 * `nonZeroScalar()` (redrawn while zero) and `weight()` (a §12 batch weight: 16 bytes little-endian).
 */
export function namedStream(seed, label) {
  const xof = shake256.create({}).update(utf8ToBytes(`${seed}/${label}`));
  return randomnessSource((n) => xof.xof(n));
}

/**
 * The production source: the operating system's CSPRNG through WebCrypto's getRandomValues (browsers,
 * Web Workers and Node >= 20 alike; @noble/hashes' randomBytes), for ballot nonces, encryption
 * randomness, proof nonces and the batch weights of §12.
 */
export const csprng = randomnessSource((n) => randomBytes(n));

/**
 * A randomness source over `read(n)` (n fresh bytes): {bytes(n), scalar() (a 64-byte read, little-endian,
 * mod L), nonZeroScalar() (redrawn while zero), weight() (16 bytes little-endian, a §12 weight)}.
 */
export function randomnessSource(read) {
  const source = {
    bytes: read,
    scalar: () => mod(bytesToNumberLE(read(64)), L),
    nonZeroScalar() {
      for (;;) {
        const s = source.scalar();
        if (s !== 0n) return s;
      }
    },
    weight: () => bytesToNumberLE(read(16)),
  };
  return source;
}

/** A randomness source replaying published scalars in draw order (reproducing "without the stream"). */
export function replaySource(scalars) {
  const queue = [...scalars];
  const next = () => {
    if (queue.length === 0) throw new Error('replay: more draws than published values');
    return queue.shift();
  };
  return {
    scalar: next,
    nonZeroScalar: next,
    bytes: () => {
      throw new Error('replay: no bytes were published');
    },
    left: () => queue.length,
  };
}

/** Self-check of the stream reader: reading front to back equals one long SHAKE-256 output (dkLen). */
export function streamSelfCheck() {
  const whole = shake256(utf8ToBytes(`${SEED_VECTORS}/self-check`), { dkLen: 200 });
  const s = namedStream(SEED_VECTORS, 'self-check');
  const pieces = concatBytes(s.bytes(32), s.bytes(64), s.bytes(1), s.bytes(103));
  if (bytesToHex(pieces) !== bytesToHex(whole)) throw new Error('SHAKE-256 stream reads are not sequential');
}

