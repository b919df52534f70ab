// The booth's own digest (docs/record.md, "The booth"): what Check my ballot recomputes from the files this
// browser is served, to compare with the digest published on the ledger before voting opened.

import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

import { canonicalJson } from './encoding.js';
import { item, taggedSha256 } from './transcript.js';

/** digest = tagged_sha256("booth-assets", JCS(assets)), 64 lowercase hex; `assets` = [{path, sha256, bytes}]. */
export function boothDigest(assets) {
  return bytesToHex(taggedSha256('booth-assets', [item.bytes(utf8ToBytes(canonicalJson(assets)))]));
}
