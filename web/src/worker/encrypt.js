// The encryption worker's one job, apart from the Worker plumbing (encrypt-worker.js), so that node
// tests run it as it is.
//
// Request (postMessage to the worker):
//   {id, manifest, jointKey: "<64 hex>", baseHash: "<64 hex>" | null, choices: {contest_id: [selection_id, …]}}
// Answers (postMessage from the worker), in order:
//   {type: "progress", id, done, total}      after each selection and each contest proof (then the
//                                             device re-verifies its own ballot before the result)
//   {type: "result", id, ballot, secrets, ballotHash: "<64 hex>", trackingCode: "XXXX-XXXX-XXXX-XXXX"}
//   {type: "error", id, name, check, message} the request was refused (bad choices: name "Error" and a
//                                             message starting "ValueError: "), nothing was encrypted
// The secrets never leave the page that asked: keep them until cast (then drop) or challenge (reveal).

// The protocol modules it needs, not index.js: the worker bundle carries no ledger or BLS code.
import { bytesToHex } from '@noble/hashes/utils.js';
import { encryptBallot, verifyBallot } from '../protocol/ballot.js';
import { electionFromManifest } from '../protocol/manifest.js';
import { ballotHash, trackingCode } from '../protocol/tracking.js';

export function handleEncryptRequest(data, post) {
  const id = data?.id ?? null;
  try {
    const election = electionFromManifest(data.manifest, data.jointKey, { baseHash: data.baseHash ?? null });
    const { ballot, secrets } = encryptBallot(election, data.choices, {
      onProgress: ({ done, total }) => post({ type: 'progress', id, done, total }),
    });
    verifyBallot(election, ballot); // the device checks its own output before showing the tracking code
    const h = ballotHash(ballot);
    post({ type: 'result', id, ballot, secrets, ballotHash: bytesToHex(h), trackingCode: trackingCode(h) });
  } catch (e) {
    post({ type: 'error', id, name: e?.name ?? 'Error', check: e?.check ?? null, message: String(e?.message ?? e) });
  }
}
