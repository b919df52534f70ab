// Checking a receipt in the browser against the public record, as the Python VoterClient.verify_receipt does
// (docs/voting.md §4): the checkpoint is signed by the log key (the manifest's pins.log_key, else the key the
// server announces, trusted on first use and said so), the inclusion proof puts the entry under its root, the
// entry is this ballot's, the newest checkpoint extends the receipt's tree, and a checkpoint covering it is
// cosigned by the manifest's witness quorum. Each failure throws a ReceiptCheckFailed naming the check.
// Also: whether a cast ballot is the one that counts (the counting rule last-internet-kiosk-overrides).

import * as api from './api.js';

export class ReceiptCheckFailed extends Error {
  constructor(check, message) {
    super(message);
    this.check = check;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A pending receipt (no checkpoint yet) fetched again until a checkpoint covers it. */
export async function completeReceipt(receipt, { timeoutMs = 60_000, pollMs = 1000, onPending = () => {} } = {}) {
  const deadline = Date.now() + timeoutMs;
  let current = receipt;
  while (current.checkpoint === null || current.inclusion_proof === null) {
    onPending();
    if (Date.now() > deadline) throw new ReceiptCheckFailed('receipt-pending', `no checkpoint covers entry ${receipt.leaf_index} yet`);
    await sleep(pollMs);
    current = await api.lookupBallot(receipt.tracking_code);
    for (const k of ['kind', 'leaf_index', 'entry_hash', 'ballot_hash', 'tracking_code'])
      if (current[k] !== receipt[k]) throw new ReceiptCheckFailed('receipt-ballot', "the server's receipt names another entry");
  }
  return current;
}

async function logKey(manifest) {
  const pinned = manifest.pins?.log_key;
  if (typeof pinned === 'string') return { vkey: pinned, source: 'manifest' };
  const w = await api.ledgerWitnesses();
  return { vkey: w.log_key, source: 'server' };
}

async function entryAt(index) {
  const d = await api.entries(index, index + 1);
  const e = d.entries?.[0];
  if (!e || e.index !== index || typeof e.entry !== 'string') throw new ReceiptCheckFailed('entry', `the server has no entry ${index}`);
  return e;
}

/**
 * Verify a (complete) receipt; `steps(name)` is called as each check passes. Returns
 * {entry (parsed), payload, witnessed: {count, total} | null, witnessesNamed, keySource}.
 */
export async function verifyReceipt(engine, manifest, receipt, { requireWitnessed = null, steps = () => {} } = {}) {
  const key = await logKey(manifest);
  const wrap = async (check, fn) => {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof ReceiptCheckFailed) throw e;
      throw new ReceiptCheckFailed(check, e.message);
    }
  };
  const cp = await wrap('checkpoint-signature', () => engine.verifyCheckpointNote(receipt.checkpoint, key.vkey));
  steps('signature');
  await wrap('inclusion', () => engine.verifyInclusion(receipt.entry_hash, receipt.leaf_index, cp.size, receipt.inclusion_proof, cp.root));
  steps('inclusion');
  const raw = await entryAt(receipt.leaf_index);
  const parsed = await wrap('entry', () => {
    if (engine.entryLeafHash(raw.entry) !== receipt.entry_hash) throw new Error("the entry does not hash to the receipt's entry hash");
    return JSON.parse(raw.entry);
  });
  const want = receipt.kind === 'cast' ? 'ballot.cast' : 'ballot.spoiled';
  const p = parsed.payload ?? {};
  if (parsed.type !== want || p.ballot_hash !== receipt.ballot_hash || p.tracking_code !== receipt.tracking_code)
    throw new ReceiptCheckFailed('entry', `entry ${receipt.leaf_index} is not the ${want} of this ballot`);
  const identity = await wrap('entry', () => engine.ballotIdentity(p.ballot));
  if (identity.ballotHash !== receipt.ballot_hash) throw new ReceiptCheckFailed('entry', 'the published ballot does not hash to the ballot hash');
  steps('entry');
  // the newest checkpoint extends the receipt's tree
  const latest = await api.latestCheckpoint();
  const newest = await wrap('consistency', () => engine.verifyCheckpointNote(latest.note, key.vkey));
  await wrap('consistency', async () => {
    if (newest.size === cp.size) {
      if (latest.root !== receiptRootHex(cp)) throw new Error('two different signed trees of the same size');
    } else {
      const [a, b] = newest.size > cp.size ? [cp, newest] : [newest, cp];
      const proof = await api.consistencyProof(a.size, b.size);
      engine.verifyConsistency(a.size, b.size, a.root, b.root, proof.proof);
    }
  });
  steps('consistency');
  const witnesses = manifest.witnesses ?? { quorum: 0, keys: [] };
  const needed = requireWitnessed ?? witnesses.quorum >= 1;
  let witnessed = null;
  if (needed) {
    const tryOne = (c) => (c?.cosignatures ? engine.verifyCosignatures(c.note, c.cosignatures, witnesses) : null);
    try {
      witnessed = tryOne(latest);
    } catch {
      witnessed = null;
    }
    if (!witnessed || witnessed.count < witnesses.quorum) {
      const own = await api.checkpointAt(cp.size);
      witnessed = await wrap('checkpoint-cosignature', () => tryOne(own));
    }
    if (!witnessed || witnessed.count < witnesses.quorum)
      throw new ReceiptCheckFailed('checkpoint-unwitnessed', `${witnessed?.count ?? 0} of the ${witnesses.quorum} cosignatures needed`);
    witnessed = { count: witnessed.count, total: witnesses.keys.length };
    steps('witnessed');
  }
  return { entry: parsed, payload: p, witnessed, witnessesNamed: witnesses.quorum >= 1, keySource: key.source };
}

function receiptRootHex(cp) {
  return [...cp.root].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Whether a cast ballot counts (last-internet-kiosk-overrides): scan the entries after it for a ballot.cast
 * of the same voter alias. 'counts' | 'revoted' | 'overridden' | 'kiosk'.
 */
export async function countingStatus(castPayload, leafIndex) {
  if (castPayload.channel === 'kiosk') return 'kiosk';
  // every published entry after it, also those the newest checkpoint does not cover yet (a ballot cast a
  // moment ago already replaces this one); the server clips a page to what exists, and past the end is 404
  let status = 'counts';
  for (let start = leafIndex + 1; ; start += 1000) {
    let page;
    try {
      page = (await api.entries(start, start + 1000)).entries ?? [];
    } catch (e) {
      if (e instanceof api.ApiError && e.status === 404) break;
      throw e;
    }
    for (const e of page) {
      const entry = JSON.parse(e.entry);
      if (entry.type !== 'ballot.cast' || entry.payload?.voter_alias !== castPayload.voter_alias) continue;
      if (entry.payload.channel === 'kiosk') return 'overridden';
      status = 'revoted';
    }
    if (page.length < 1000) break;
  }
  return status;
}
