// Receipts (docs/voting.md §4, voting/receipt.py) verified on the voter's device: the signed checkpoint,
// the RFC 9162 inclusion proof of the ballot's ledger entry, the entry itself, and the witnesses'
// cosignatures on a checkpoint that covers it (the manifest's quorum). The library does no HTTP: the
// page fetches what the server serves and passes it in. Each failure throws VerificationError whose
// `check` is the one the Python VoterClient names: receipt-shape, receipt-pending, checkpoint-signature,
// inclusion, entry, fork, consistency, checkpoint-cosignature, checkpoint-unwitnessed.

import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson, fixedHex } from './encoding.js';
import { InvalidEncoding, VerificationError } from './errors.js';
import { verifyCheckpoint } from './checkpoint.js';
import { verifyCosignatures } from './cosign.js';
import { leafHash, verifyConsistency, verifyInclusion } from './merkle.js';
import { ballotHash, trackingCode } from './tracking.js';

/** Run fn; a VerificationError or InvalidEncoding it throws becomes `check` (the original as cause). */
function as(check, fn) {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Unwitnessed) throw e;
    if (e instanceof VerificationError || e instanceof InvalidEncoding)
      throw new VerificationError(check, e.message, e.subject ?? null, e);
    throw e;
  }
}

const hashList = (list, what) => {
  if (!Array.isArray(list)) throw new InvalidEncoding(`${what}: not a list`);
  return list.map((h, i) => fixedHex(h, 32, `${what}[${i}]`));
};

/**
 * A receipt JSON (the server's answer, or the file the voter kept), strictly: kind `cast` | `spoiled`,
 * election_id, ballot_hash (64 hex), tracking_code, leaf_index, entry_hash (64 hex), checkpoint (a signed
 * note, or null while pending), inclusion_proof (list of 64 hex, or null), optional channel and seq;
 * other fields are ignored (as voting/receipt.py does). Throws VerificationError `receipt-shape`.
 */
export function parseReceipt(obj) {
  return as('receipt-shape', () => {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new InvalidEncoding('not an object');
    const allowed = ['kind', 'election_id', 'ballot_hash', 'tracking_code', 'leaf_index', 'entry_hash'];
    for (const k of allowed) if (!(k in obj)) throw new InvalidEncoding(`the receipt lacks ${k}`);
    if (obj.kind !== 'cast' && obj.kind !== 'spoiled') throw new InvalidEncoding("kind is 'cast' or 'spoiled'");
    if (typeof obj.election_id !== 'string' || typeof obj.tracking_code !== 'string')
      throw new InvalidEncoding('election_id and tracking_code are text');
    fixedHex(obj.ballot_hash, 32, 'ballot_hash');
    fixedHex(obj.entry_hash, 32, 'entry_hash');
    if (!Number.isSafeInteger(obj.leaf_index) || obj.leaf_index < 0) throw new InvalidEncoding('leaf_index');
    if (obj.channel !== undefined && obj.channel !== null && typeof obj.channel !== 'string')
      throw new InvalidEncoding('channel: not text');
    if (obj.seq !== undefined && obj.seq !== null && !Number.isSafeInteger(obj.seq))
      throw new InvalidEncoding('seq: not an integer');
    const pending = obj.checkpoint === null || obj.checkpoint === undefined;
    if (pending !== (obj.inclusion_proof === null || obj.inclusion_proof === undefined))
      throw new InvalidEncoding('checkpoint and inclusion_proof are both present or both null');
    if (!pending) {
      if (typeof obj.checkpoint !== 'string') throw new InvalidEncoding('checkpoint: not a signed note');
      hashList(obj.inclusion_proof, 'inclusion_proof');
    }
    return { ...obj, pending };
  });
}

/**
 * A ledger entry's canonical text (GET /api/v1/ledger/entries → entries[i].entry) checked against a
 * receipt: canonical RFC 8785 text, its leaf hash is the receipt's entry_hash, its index the leaf index,
 * type `ballot.cast` / `ballot.spoiled` by the receipt's kind, payload ballot_hash and tracking_code the
 * receipt's, and the published ballot hashes to that ballot hash. Throws `entry`; returns the entry.
 */
export function verifyEntry(entryText, receipt) {
  return as('entry', () => {
    if (typeof entryText !== 'string') throw new InvalidEncoding('the entry is not text');
    let entry;
    try {
      entry = JSON.parse(entryText);
    } catch {
      throw new InvalidEncoding('the entry is not JSON');
    }
    if (canonicalJson(entry) !== entryText) throw new InvalidEncoding('the entry is not canonical JSON');
    if (bytesToHex(leafHash(utf8ToBytes(entryText))) !== receipt.entry_hash)
      throw new VerificationError('entry', "the entry does not hash to the receipt's entry hash");
    const type = receipt.kind === 'cast' ? 'ballot.cast' : 'ballot.spoiled';
    const p = entry.payload ?? {};
    if (entry.index !== receipt.leaf_index || entry.type !== type || p.ballot_hash !== receipt.ballot_hash)
      throw new VerificationError('entry', `entry ${entry.index} is not the ${type} of this ballot`);
    if (p.tracking_code !== receipt.tracking_code)
      throw new VerificationError('entry', "the entry's tracking code differs from the receipt's");
    const h = ballotHash(p.ballot);
    if (bytesToHex(h) !== receipt.ballot_hash || trackingCode(h) !== receipt.tracking_code)
      throw new VerificationError('entry', "the published ballot does not hash to the receipt's ballot hash");
    return entry;
  });
}

/**
 * Verify a receipt on the device. Options:
 *   logKey            the log's verifier key (vkey text; the manifest's pins.log_key, or pinned by the page)
 *   policy            witnessPolicy(manifest.witnesses) (cosign.js); quorum 0 means no witnesses
 *   witnessed         a checkpoint JSON as the ledger API serves it ({note, cosignatures, …}: GET
 *                     /ledger/checkpoint, /ledger/checkpoint/witnessed or /ledger/checkpoint/{size}),
 *                     required when policy.quorum >= 1 unless requireWitnessed is false
 *   consistencyProof  list of 64 hex: RFC 9162 proof from the receipt's tree to `witnessed`'s, when larger
 *   entry             the entry's canonical text (optional; verifyEntry)
 *   requireWitnessed  default policy.quorum >= 1 (a spoiled ballot's check may pass false: witnesses
 *                     cosign some time after a checkpoint is issued)
 * Returns {receipt, checkpoint: {origin, size, root, time, body}, witnessed: checkpoint | null,
 * signers: [names] | null, entry: object | null}.
 */
export function verifyReceipt(receiptJson, options) {
  const { logKey, policy = { quorum: 0, keys: new Map() }, witnessed = null, consistencyProof = null } = options;
  const { entry = null, requireWitnessed = policy.quorum >= 1 } = options;
  const receipt = parseReceipt(receiptJson);
  if (receipt.pending)
    throw new VerificationError('receipt-pending', 'no checkpoint covers the entry yet: fetch the receipt again');
  const cp = as('checkpoint-signature', () => verifyCheckpoint(receipt.checkpoint, logKey));
  as('inclusion', () =>
    verifyInclusion(
      hexToBytes(receipt.entry_hash),
      receipt.leaf_index,
      cp.size,
      hashList(receipt.inclusion_proof, 'inclusion_proof'),
      cp.root,
    ),
  );
  const checkedEntry = entry === null ? null : verifyEntry(entry, receipt);
  if (!requireWitnessed) return { receipt, checkpoint: cp, witnessed: null, signers: null, entry: checkedEntry };
  if (policy.quorum < 1)
    throw new VerificationError('checkpoint-unwitnessed', 'the manifest names no witnesses (quorum 0)');
  if (witnessed === null || typeof witnessed !== 'object')
    throw new VerificationError('checkpoint-unwitnessed', 'no witnessed checkpoint was given');
  const wcp = as('checkpoint-signature', () => verifyCheckpoint(witnessed.note, logKey));
  const signers = as('checkpoint-cosignature', () => {
    try {
      return verifyCosignatures(wcp.body, witnessed.cosignatures, policy);
    } catch (e) {
      if (e instanceof VerificationError && e.check === 'checkpoint-unwitnessed') throw new Unwitnessed(e.message);
      throw e;
    }
  });
  if (wcp.size < cp.size)
    throw new VerificationError('checkpoint-unwitnessed', `the witnessed tree (size ${wcp.size}) does not cover the entry`);
  if (wcp.size === cp.size) {
    if (bytesToHex(wcp.root) !== bytesToHex(cp.root))
      throw new VerificationError('fork', `two different signed trees of size ${cp.size}: a split view`);
  } else {
    as('consistency', () =>
      verifyConsistency(cp.size, wcp.size, cp.root, wcp.root, hashList(consistencyProof ?? [], 'consistency proof')),
    );
  }
  return { receipt, checkpoint: cp, witnessed: wcp, signers, entry: checkedEntry };
}

/** Quorum not reached: passes through `as` unchanged (it is not a cosignature failure). */
class Unwitnessed extends VerificationError {
  constructor(message) {
    super('checkpoint-unwitnessed', message);
  }
}
