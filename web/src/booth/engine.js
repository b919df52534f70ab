// The booth's ONE door to the protocol library (web/src/protocol/, served as /static/tvote-protocol.js and
// documented in web/README.md). Every cryptographic step the booth takes goes through the functions exported
// here; nothing else in web/src/booth/ imports the library. This module is imported dynamically when a step
// needs it, so the pages render before the library has loaded.
//
// What the booth needs from /static/tvote-protocol.js:
//   electionFromManifest(manifest, jointKeyHex, {baseHash})  the election context; base hash re-derived
//   reveal(ballot, secrets), verifyRevealed(election, ballot, revealed)   §11 Benaloh
//   ballotHash(ballot), trackingCode(hashBytes), readTrackingCode(typed)  §10 (tracking codes typed or scanned)
//   boothDigest(assets)                                   docs/record.md "The booth"
//   verifyCheckpoint(note, vkey), witnessPolicy(witnesses), verifyReceipt(receipt, options)  receipts (§4)
//   verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof)  RFC 9162
//   bytesToHex, hexToBytes, VerificationError
// and the worker /static/encrypt-worker.js: post {id, manifest, jointKey, baseHash, choices}; it answers
// {type: 'progress', id, done, total}*, then {type: 'result', id, ballot, secrets, ballotHash, trackingCode}
// or {type: 'error', id, name, check, message}.

// loaded here, not at the top of the page's bundle: esbuild inlines this module into each page, and a static
// import would become the page's own (the page would wait for the library before drawing anything)
const protocol = await import('/static/tvote-protocol.js');

const hex = (bytes) => protocol.bytesToHex(bytes);

export class ElectionMismatch extends Error {}

/**
 * The election context from the published manifest and joint key; the manifest must hash to the base hash
 * the server publishes (VerificationError base-hash otherwise, here an ElectionMismatch).
 */
export function electionContext(manifest, publishedBaseHash, jointKeyHex) {
  try {
    const election = protocol.electionFromManifest(manifest, jointKeyHex, { baseHash: publishedBaseHash });
    return { election, baseHash: election.baseHashHex, jointKey: jointKeyHex, manifest };
  } catch (e) {
    if (e instanceof protocol.VerificationError && e.check === 'base-hash') throw new ElectionMismatch(e.message);
    throw e;
  }
}

let sequence = 0;

/** Encrypt in the Web Worker, with progress; resolves {ballot, secrets, ballotHash, trackingCode}. */
export function encryptBallot(ctx, choices, onProgress) {
  const id = `ballot-${(sequence += 1)}`;
  return new Promise((resolve, reject) => {
    const worker = new Worker('/static/encrypt-worker.js');
    worker.addEventListener('message', (event) => {
      const m = event.data;
      if (m.id !== id) return;
      if (m.type === 'progress') return onProgress(m.done, m.total);
      worker.terminate();
      if (m.type === 'result') resolve({ ballot: m.ballot, secrets: m.secrets, ballotHash: m.ballotHash, trackingCode: m.trackingCode });
      else reject(new Error(m.check ? `${m.check}: ${m.message}` : m.message));
    });
    worker.addEventListener('error', (e) => {
      worker.terminate();
      reject(new Error(e.message || 'the encryption worker failed'));
    });
    worker.postMessage({ id, manifest: ctx.manifest, jointKey: ctx.jointKey, baseHash: ctx.baseHash, choices });
  });
}

/** §11 the opening of a ballot (what POST /voter/spoil takes beside it). */
export const revealedOf = (ballot, secrets) => protocol.reveal(ballot, secrets);

/** §11 verify an opened (spoiled) ballot; returns {contest_id: [chosen selection ids]}. */
export const verifyRevealed = (ctx, ballotJson, revealedJson) => protocol.verifyRevealed(ctx.election, ballotJson, revealedJson);

/** §10 the ballot hash (hex) and tracking code of a published ballot. */
export function ballotIdentity(ballotJson) {
  const h = protocol.ballotHash(ballotJson);
  return { ballotHash: hex(h), trackingCode: protocol.trackingCode(h) };
}

/** §10 a typed or scanned tracking code in its shown form XXXX-XXXX-XXXX-XXXX, or null if it is none. */
export function readTrackingCode(typed) {
  try {
    return protocol.readTrackingCode(String(typed)).match(/.{4}/g).join('-');
  } catch {
    return null;
  }
}

/** §10 the tracking code of a ballot hash (64 hex), e.g. one scanned from a QR code. */
export const trackingCodeOfHash = (hashHex) => protocol.trackingCode(protocol.hexToBytes(hashHex));

/** A signed checkpoint note, its signature checked with the log key: {origin, size, root, time, body}. */
export const checkpointOf = (note, vkey) => protocol.verifyCheckpoint(note, vkey);

/** `newer` (a verified checkpoint) extends `older`: the same root at the same size, else RFC 9162 consistency. */
export function verifyExtends(older, newer, proofHex) {
  if (newer.size === older.size) {
    if (hex(newer.root) !== hex(older.root)) throw new protocol.VerificationError('fork', `two different signed trees of size ${older.size}`);
    return;
  }
  protocol.verifyConsistency(older.size, newer.size, older.root, newer.root, proofHex.map((x) => protocol.hexToBytes(x)));
}

const policies = new WeakMap();

/** docs/voting.md §4 in the library: the receipt against the log key, its entry and a witnessed checkpoint. */
export function verifyReceipt(receipt, { logKey, witnesses, witnessed, consistencyProof, entry, requireWitnessed }) {
  let policy = policies.get(witnesses);
  if (!policy) {
    policy = protocol.witnessPolicy(witnesses);
    policies.set(witnesses, policy);
  }
  return protocol.verifyReceipt(receipt, { logKey, policy, witnessed, consistencyProof, entry, requireWitnessed });
}

/** The booth's digest (docs/record.md, "The booth"): tagged_sha256("booth-assets", JCS(assets)), hex. */
export const boothDigest = (assets) => protocol.boothDigest(assets);
