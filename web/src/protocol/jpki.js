// The JPKI message: the exact bytes a My Number card signs for a ballot (docs/authentication.md,
// voting/auth/_jpki.py), RSASSA-PKCS1-v1_5 with SHA-256 over
//
//   "tvote/2/jpki-ballot\n" || election_base_hash (32) || ballot_hash (32) || server_challenge (32)
//
// (116 bytes). The Digital Authentication App's signing transaction takes a SHA-256 digest: jpkiDigest.

import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { InvalidEncoding } from './errors.js';
import { PROTOCOL_VERSION } from './transcript.js';

export const JPKI_MESSAGE_PREFIX = utf8ToBytes(`tvote/${PROTOCOL_VERSION}/jpki-ballot\n`);
export const JPKI_MESSAGE_BYTES = JPKI_MESSAGE_PREFIX.length + 96;

/** The 116-byte message for (base hash, ballot hash, server challenge), each 32 bytes (Uint8Array). */
export function jpkiMessage(electionBaseHash, ballotHashBytes, challengeBytes) {
  for (const [what, b] of [
    ['election base hash', electionBaseHash],
    ['ballot hash', ballotHashBytes],
    ['challenge', challengeBytes],
  ]) {
    if (!(b instanceof Uint8Array) || b.length !== 32) throw new InvalidEncoding(`jpki: ${what} must be 32 bytes`);
  }
  return concatBytes(JPKI_MESSAGE_PREFIX, electionBaseHash, ballotHashBytes, challengeBytes);
}

/** SHA-256 of the JPKI message: the digest a signing service (the card's PKCS#1 v1.5 DigestInfo) signs. */
export function jpkiDigest(electionBaseHash, ballotHashBytes, challengeBytes) {
  return sha256(jpkiMessage(electionBaseHash, ballotHashBytes, challengeBytes));
}
