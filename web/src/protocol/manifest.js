// The election manifest (docs/events.md, `tvote-manifest/1`) to the election context of §9.2:
//
//   base_hash = tagged_sha256("election-base-hash", JCS(manifest))
//
// with the manifest's RFC 8785 bytes as one byte-string item (§4). The contests, in manifest order,
// become (contest_id, selection ids, min, max); the joint key K comes from `election.joint-key`
// (GET /api/v1/election/joint-key). The manifest is not otherwise validated here: the server and the
// verifier do that; what the booth needs is that the manifest it shows hashes to the base hash it was
// given, and that the contests it encrypts for are the manifest's.

import { bytesToHex } from '@noble/hashes/utils.js';
import { electionContext } from './ballot.js';
import { canonicalJsonBytes, exactKeys, fixedHex } from './encoding.js';
import { InvalidEncoding, VerificationError } from './errors.js';
import { decodePoint } from './group.js';
import { item, taggedSha256 } from './transcript.js';

/** The election base hash (32 bytes) of a manifest object (the published form, as on the ledger). */
export function manifestBaseHash(manifest) {
  return taggedSha256('election-base-hash', [item.bytes(canonicalJsonBytes(manifest))]);
}

/**
 * The election context for encrypting and verifying ballots: {electionId, baseHash (32 bytes),
 * baseHashHex, K, contests: [{contestId, selectionIds, min, max}], manifest}.
 * `jointKeyHex` is the joint election key (64 hex). With `baseHash` (64 hex, obtained out of band: the
 * commission publishes it, or the booth page pins it), a manifest that hashes to anything else is
 * refused (VerificationError `base-hash`). A manifest without contests, or a contest without the
 * fields the protocol needs, is InvalidEncoding.
 */
export function electionFromManifest(manifest, jointKeyHex, { baseHash = null } = {}) {
  if (manifest === null || typeof manifest !== 'object' || Array.isArray(manifest))
    throw new InvalidEncoding('manifest: not an object');
  const computed = manifestBaseHash(manifest);
  if (baseHash !== null && bytesToHex(fixedHex(baseHash, 32, 'base hash')) !== bytesToHex(computed))
    throw new VerificationError('base-hash', 'the manifest does not hash to the election base hash');
  if (!Array.isArray(manifest.contests)) throw new InvalidEncoding('manifest.contests: not a list');
  const contests = manifest.contests.map((c, ci) => {
    if (c === null || typeof c !== 'object' || !Array.isArray(c.selections))
      throw new InvalidEncoding(`manifest.contests[${ci}]: no selections`);
    return {
      contest_id: c.id,
      selection_ids: c.selections.map((s) => (s !== null && typeof s === 'object' ? s.id : undefined)),
      min: c.min,
      max: c.max,
    };
  });
  const K = decodePoint(jointKeyHex, 'joint key');
  const ctx = electionContext(computed, K, contests);
  return { ...ctx, electionId: manifest.election_id, baseHashHex: bytesToHex(computed), manifest };
}

/** The joint key of a JointKey JSON (GET /api/v1/election/joint-key), checked to be for this base hash. */
export function jointKeyOf(jointKeyJson, baseHashHex) {
  exactKeys(jointKeyJson, ['base_hash', 'threshold', 'qualified', 'joint_key', 'public_shares'], 'JointKey');
  if (jointKeyJson.base_hash !== baseHashHex)
    throw new VerificationError('base-hash', 'the joint key belongs to another election');
  return jointKeyJson.joint_key;
}
