// tvote's protocol library for the booth: the safe recipes of docs/protocol.md (version 2) and of the
// ledger's receipts, on @noble/curves and @noble/hashes. web/README.md documents every export with its
// arguments and results. Bytes are Uint8Array; JSON values are the plain objects the server serves.
//
// The low-level modules (group.js, transcript.js, elgamal.js, disjunctive.js, proofs.js, batch.js,
// threshold.js, random.js) are hazardous material: raw group, ElGamal and Σ-proof arithmetic that the
// recipes below compose correctly. A page imports only this module.

export { InvalidEncoding, VerificationError } from './errors.js';
export { PROTOCOL_VERSION } from './transcript.js';
export { canonicalJson, parseJsonText } from './encoding.js';
export { electionFromManifest, jointKeyOf, manifestBaseHash } from './manifest.js';
export { MAX_SELECTIONS, checkChoices, decodeBallotText, encryptBallot, verifyBallot } from './ballot.js';
export { ballotHash, readTrackingCode, trackingCode } from './tracking.js';
export { reveal, verifyRevealed } from './benaloh.js';
export { JPKI_MESSAGE_PREFIX, jpkiDigest, jpkiMessage } from './jpki.js';
export { EMPTY_ROOT, leafHash, verifyConsistency, verifyInclusion } from './merkle.js';
export { parseCheckpointBody, parseLogKey, parseSignedNote, verifyCheckpoint } from './checkpoint.js';
export { BLS_POP_DST, BLS_SIG_DST, cosignMessage, verifyCosignatures, witnessPolicy } from './cosign.js';
export { parseReceipt, verifyEntry, verifyReceipt } from './receipt.js';
export { boothDigest } from './booth.js';
export { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
