// RFC 9162 Merkle trees (SHA-256, leaf prefix 0x00, node prefix 0x01): leaf hashes and the verification
// of inclusion and consistency proofs, as ledger/merkle.py (docs/ledger.md). Every hash is exactly 32
// bytes; a proof of more than 128 hashes is refused unread. Verification throws VerificationError with
// check `inclusion` or `consistency`; a malformed input throws InvalidEncoding.

import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes } from '@noble/hashes/utils.js';
import { InvalidEncoding, VerificationError } from './errors.js';

export const HASH_SIZE = 32;
export const MAX_PROOF_LENGTH = 128;
/** The root of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT = sha256(new Uint8Array(0));
const MAX_SIZE = 2 ** 53 - 1; // sizes and indices travel as JSON numbers

/** SHA-256(0x00 || data): an RFC 9162 leaf hash (a ledger entry's hash, docs/ledger.md). */
export function leafHash(data) {
  return sha256(concatBytes(Uint8Array.of(0), data));
}

/** SHA-256(0x01 || left || right). */
export function nodeHash(left, right) {
  return sha256(concatBytes(Uint8Array.of(1), left, right));
}

function hash32(h, what) {
  if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) throw new InvalidEncoding(`${what}: not 32 bytes`);
  return h;
}

function size(n, what) {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_SIZE) throw new InvalidEncoding(`${what}: not an integer >= 0`);
  return n;
}

function proofList(proof) {
  if (!Array.isArray(proof) || proof.length > MAX_PROOF_LENGTH)
    throw new InvalidEncoding(`proof: not a list of at most ${MAX_PROOF_LENGTH} hashes`);
  return proof.map((p, i) => hash32(p, `proof[${i}]`));
}

const same = (a, b) => bytesToHex(a) === bytesToHex(b);

/**
 * RFC 9162 §2.1.3.2: throw unless `proof` shows the leaf hash `leaf` at `index` in the tree of
 * `treeSize` leaves whose root is `root` (all hashes as Uint8Array).
 */
export function verifyInclusion(leaf, index, treeSize, proof, root) {
  hash32(leaf, 'leaf hash');
  hash32(root, 'root');
  size(index, 'index');
  size(treeSize, 'tree size');
  const path = proofList(proof);
  if (index >= treeSize) throw new VerificationError('inclusion', `index ${index} is not below tree size ${treeSize}`);
  let fn = BigInt(index);
  let sn = BigInt(treeSize - 1);
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) throw new VerificationError('inclusion', 'proof is longer than the tree is deep');
    if (fn & 1n || fn === sn) {
      r = nodeHash(p, r);
      if (!(fn & 1n)) {
        while (fn && !(fn & 1n)) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new VerificationError('inclusion', 'proof is shorter than the tree is deep');
  if (!same(r, root)) throw new VerificationError('inclusion', 'computed root does not match');
}

/**
 * RFC 9162 §2.1.4.2: throw unless `proof` shows the tree (oldSize, oldRoot) is a prefix of
 * (newSize, newRoot). From size 0 (tvote's rule, ledger/merkle.py): oldRoot must be the empty root and
 * the proof empty; equal sizes need equal roots and an empty proof.
 */
export function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  size(oldSize, 'old size');
  size(newSize, 'new size');
  hash32(oldRoot, 'old root');
  hash32(newRoot, 'new root');
  let path = proofList(proof);
  const fail = (msg) => {
    throw new VerificationError('consistency', msg);
  };
  if (oldSize > newSize) fail(`old size ${oldSize} exceeds new size ${newSize}`);
  if (oldSize === 0) {
    if (!same(oldRoot, EMPTY_ROOT)) fail('the root of the empty tree is SHA-256 of the empty string');
    if (path.length) fail('a proof from the empty tree must be empty');
    if (newSize === 0 && !same(newRoot, EMPTY_ROOT)) fail('the root of the empty tree is SHA-256 of the empty string');
    return;
  }
  if (oldSize === newSize) {
    if (path.length) fail('a proof between equal sizes must be empty');
    if (!same(oldRoot, newRoot)) fail('equal sizes with different roots');
    return;
  }
  if (!path.length) fail('empty proof between different sizes');
  let fn = BigInt(oldSize - 1);
  let sn = BigInt(newSize - 1);
  if ((BigInt(oldSize) & (BigInt(oldSize) - 1n)) === 0n) path = [oldRoot, ...path];
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) fail('proof is longer than the tree is deep');
    if (fn & 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!(fn & 1n)) {
        while (fn && !(fn & 1n)) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail('proof is shorter than the tree is deep');
  if (!same(fr, oldRoot)) fail('old root does not match');
  if (!same(sr, newRoot)) fail('new root does not match');
}
