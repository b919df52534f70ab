// Checking a receipt in the browser against the public record, as the Python VoterClient.verify_receipt does
// (docs/voting.md §4): this module fetches what the protocol library's verifyReceipt needs (the entry, a
// witnessed checkpoint and the consistency proof to it) and the log key (the manifest's pins.log_key, else the
// key the server announces, trusted on first use and said so), and checks that the newest checkpoint extends
// the receipt's tree. Each failure throws a ReceiptCheckFailed naming the check.
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

async function attempt(check, fn) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ReceiptCheckFailed) throw e;
    throw new ReceiptCheckFailed(e.check && e.check !== 'invalid-encoding' ? e.check : check, e.message);
  }
}

/** A checkpoint cosigned by the quorum that covers the receipt's tree: the newest witnessed, else its own. */
async function witnessedFor(size) {
  let witnessed = null;
  try {
    witnessed = await api.witnessedCheckpoint();
  } catch (e) {
    if (!(e instanceof api.ApiError && e.status === 404)) throw e;
  }
  if (!witnessed || witnessed.size < size) witnessed = await api.checkpointAt(size);
  const consistencyProof = witnessed.size > size ? (await api.consistencyProof(size, witnessed.size)).proof : null;
  return { witnessed, consistencyProof };
}

/**
 * Verify a (complete) receipt with the protocol library (engine.verifyReceipt: checkpoint signature,
 * inclusion, the entry, the witnesses' cosignatures), then that the newest checkpoint extends the receipt's
 * tree; `steps(name)` is called as each check passes. Returns {entry, payload, witnessed: {count, total} |
 * null, witnessesNamed, keySource}; a failure throws ReceiptCheckFailed naming the check (the library's names).
 */
export async function verifyReceipt(engine, manifest, receipt, { requireWitnessed = null, steps = () => {} } = {}) {
  const key = await logKey(manifest);
  const witnesses = manifest.witnesses ?? { quorum: 0, keys: [] };
  const needed = requireWitnessed ?? witnesses.quorum >= 1;
  const raw = await entryAt(receipt.leaf_index);
  const cp = await attempt('checkpoint-signature', () => engine.checkpointOf(receipt.checkpoint, key.vkey));
  const base = { logKey: key.vkey, witnesses, entry: raw.entry };
  let result;
  let unwitnessed = null;
  try {
    const w = needed ? await witnessedFor(cp.size) : { witnessed: null, consistencyProof: null };
    result = await attempt('receipt', () => engine.verifyReceipt(receipt, { ...base, ...w, requireWitnessed: needed }));
  } catch (e) {
    if (!(e instanceof ReceiptCheckFailed && e.check === 'checkpoint-unwitnessed')) throw e;
    unwitnessed = e; // not cosigned yet: the other checks still run and are reported
    result = await attempt('receipt', () => engine.verifyReceipt(receipt, { ...base, requireWitnessed: false }));
  }
  for (const step of ['signature', 'inclusion', 'entry']) steps(step);
  // the record only grew since: the newest checkpoint extends the receipt's tree
  const latest = await api.latestCheckpoint();
  await attempt('consistency', async () => {
    const newest = engine.checkpointOf(latest.note, key.vkey);
    if (newest.size < cp.size) throw new Error("the newest checkpoint is older than the receipt's");
    const proof = newest.size > cp.size ? (await api.consistencyProof(cp.size, newest.size)).proof : [];
    engine.verifyExtends(cp, newest, proof);
  });
  steps('consistency');
  if (unwitnessed) throw unwitnessed;
  if (needed) steps('witnessed');
  const parsed = result.entry ?? JSON.parse(raw.entry);
  const signers = result.signers ? [...result.signers].length : 0;
  return {
    entry: parsed,
    payload: parsed.payload ?? {},
    witnessed: needed ? { count: signers, total: witnesses.keys.length } : null,
    witnessesNamed: witnesses.quorum >= 1,
    keySource: key.source,
  };
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
