// The booth's ONE door to the protocol library (web/src/protocol/, docs/protocol.md). Every cryptographic
// step the booth takes goes through the functions exported here; nothing else in web/src/booth/ imports the
// library. The library is loaded only when a step needs it (this module is imported dynamically), so the
// pages render without it.
//
// REQUIRED from ../protocol/index.js (names as in tests/interop/check_vectors.mjs where it has them):
//   s1_jcs(value) -> string                           §1 RFC 8785 canonical JSON
//   s4_taggedSha256(purpose, items) -> Uint8Array       §4
//   item.bytes(Uint8Array) -> transcript item           §4
//   s3_decodePoint(hex, what) -> Point                  §3
//   s9_election(baseHash, K, contests) -> election      §9.1-§9.2 ({contest_id, selection_ids, min, max})
//   s10_ballotHash(ballotJson) -> Uint8Array            §10
//   s10_trackingCode(ballotHash) -> 'XXXX-XXXX-XXXX-XXXX'
//   s10_readTrackingCode(typed) -> 16 symbols           §10 (throws InvalidEncoding)
//   s11_decodeRevealed(obj) -> revealed                 §11
//   s11_verifyRevealed(election, ballotJson, revealed) -> {contest_id: [selection ids]}
// not in check_vectors.mjs (the library's ledger part; names proposed here):
//   verifyCheckpointNote(note, vkey) -> {origin, size, root: Uint8Array}   signed note, Ed25519 log key;
//                                                        throws on a bad signature or a key that differs
//   entryLeafHash(entryText) -> Uint8Array               RFC 9162 leaf hash SHA-256(0x00 || bytes)
//   verifyInclusion(leafHash, index, treeSize, proof: Uint8Array[], root) throws on failure
//   verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof: Uint8Array[]) throws on failure
//   verifyCosignatures(note, cosignatures {signers, aggregate}, witnesses {quorum, keys}) -> {count}
//                                                        BLS aggregate over the manifest's keys (with their
//                                                        proofs of possession); throws when it does not verify
// and the Web Worker ../protocol/encrypt-worker.js (module worker), message protocol:
//   in:  {manifest, base_hash, joint_key, choices}
//   out: {type: 'progress', done, total}*, then {type: 'done', ballot, secrets} or {type: 'error', message}

import * as protocol from '../protocol/index.js';

const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
const unhex = (text) => {
  if (typeof text !== 'string' || !/^([0-9a-f]{2})*$/.test(text)) throw new Error('not lowercase hex');
  return Uint8Array.from(text.match(/../g) ?? [], (b) => parseInt(b, 16));
};
const utf8 = (text) => new TextEncoder().encode(text);

export class ElectionMismatch extends Error {}

/**
 * The election context from the published manifest: the base hash is re-derived
 * (tagged_sha256("election-base-hash", rfc8785(manifest))) and must equal what the server publishes.
 */
export function electionContext(manifest, publishedBaseHash, jointKeyHex) {
  const baseHash = protocol.s4_taggedSha256('election-base-hash', [protocol.item.bytes(utf8(protocol.s1_jcs(manifest)))]);
  if (hex(baseHash) !== publishedBaseHash)
    throw new ElectionMismatch('the manifest does not hash to the published base hash');
  const K = protocol.s3_decodePoint(jointKeyHex, 'joint_key');
  const contests = manifest.contests.map((c) => ({
    contest_id: c.id,
    selection_ids: c.selections.map((s) => s.id),
    min: c.min,
    max: c.max,
  }));
  return { election: protocol.s9_election(baseHash, K, contests), baseHash: hex(baseHash), jointKey: jointKeyHex, manifest };
}

/** Encrypt in a Web Worker, with progress; resolves {ballot, secrets, ballotHash, trackingCode}. */
export function encryptBallot(ctx, choices, onProgress) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('../protocol/encrypt-worker.js', import.meta.url), { type: 'module' });
    worker.addEventListener('message', (event) => {
      const m = event.data;
      if (m.type === 'progress') onProgress(m.done, m.total);
      else {
        worker.terminate();
        if (m.type === 'done') {
          const ballotHash = protocol.s10_ballotHash(m.ballot);
          resolve({ ballot: m.ballot, secrets: m.secrets, ballotHash: hex(ballotHash), trackingCode: protocol.s10_trackingCode(ballotHash) });
        } else reject(new Error(m.message));
      }
    });
    worker.addEventListener('error', (e) => {
      worker.terminate();
      reject(new Error(e.message || 'the encryption worker failed'));
    });
    worker.postMessage({ manifest: ctx.manifest, base_hash: ctx.baseHash, joint_key: ctx.jointKey, choices });
  });
}

/** §11 the opening of a ballot: its hash and the secrets' contests. */
export function revealedOf(ballot, secrets) {
  return { ballot_hash: hex(protocol.s10_ballotHash(ballot)), contests: secrets.contests };
}

/** §11 verify an opened (spoiled) ballot; returns {contest_id: [chosen selection ids]}. */
export function verifyRevealed(ctx, ballotJson, revealedJson) {
  return protocol.s11_verifyRevealed(ctx.election, ballotJson, protocol.s11_decodeRevealed(revealedJson));
}

/** §10 the ballot hash (hex) and tracking code of a published ballot. */
export function ballotIdentity(ballotJson) {
  const h = protocol.s10_ballotHash(ballotJson);
  return { ballotHash: hex(h), trackingCode: protocol.s10_trackingCode(h) };
}

export const verifyCheckpointNote = (note, vkey) => protocol.verifyCheckpointNote(note, vkey);
export const entryLeafHash = (entryText) => hex(protocol.entryLeafHash(entryText));
export function verifyInclusion(leafHashHex, index, size, proofHex, root) {
  protocol.verifyInclusion(unhex(leafHashHex), index, size, proofHex.map(unhex), root);
}
export function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proofHex) {
  protocol.verifyConsistency(oldSize, newSize, oldRoot, newRoot, proofHex.map(unhex));
}
export const verifyCosignatures = (note, cosignatures, witnesses) =>
  protocol.verifyCosignatures(note, cosignatures, witnesses);

/** §10 a typed or scanned tracking code in its shown form XXXX-XXXX-XXXX-XXXX, or null if it is none. */
export function readTrackingCode(typed) {
  try {
    return protocol.s10_readTrackingCode(String(typed)).match(/.{4}/g).join('-');
  } catch {
    return null;
  }
}

/** The booth's digest (docs/record.md, "The booth"): tagged_sha256("booth-assets", JCS(assets)), hex. */
export function boothDigest(assets) {
  return hex(protocol.s4_taggedSha256('booth-assets', [protocol.item.bytes(utf8(protocol.s1_jcs(assets)))]));
}
