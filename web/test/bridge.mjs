#!/usr/bin/env node
// A JSON-in, JSON-out door into the library for the Python tests (tests/system/test_web_protocol.py):
// one request object on stdin, one answer object on stdout. Errors the library throws are answers
// ({error: {name, check, message}}), so a test can assert which check refused what.
import { readFileSync } from 'node:fs';
import * as tvote from '../src/protocol/index.js';

const ops = {
  /** {manifest, joint_key, base_hash, choices, challenge?} -> {ballot, secrets, ballot_hash, tracking_code, jpki_message?} */
  encrypt(req) {
    const election = tvote.electionFromManifest(req.manifest, req.joint_key, { baseHash: req.base_hash });
    const { ballot, secrets } = tvote.encryptBallot(election, req.choices);
    const h = tvote.ballotHash(ballot);
    const answer = { ballot, secrets, ballot_hash: tvote.bytesToHex(h), tracking_code: tvote.trackingCode(h) };
    if (req.challenge)
      answer.jpki_message = tvote.bytesToHex(
        tvote.jpkiMessage(election.baseHash, h, tvote.hexToBytes(req.challenge)),
      );
    return answer;
  },
  /** {ballot, secrets} -> {revealed} */
  reveal: (req) => ({ revealed: tvote.reveal(req.ballot, req.secrets) }),
  /** {manifest, joint_key, ballot, revealed} -> {chosen} */
  verify_revealed(req) {
    const election = tvote.electionFromManifest(req.manifest, req.joint_key);
    return { chosen: tvote.verifyRevealed(election, req.ballot, req.revealed) };
  },
  /** {receipt, log_key, witnesses, witnessed?, consistency_proof?, entry?, require_witnessed?} -> {size, signers} */
  verify_receipt(req) {
    const policy = tvote.witnessPolicy(req.witnesses);
    const options = { logKey: req.log_key, policy, witnessed: req.witnessed ?? null };
    if (req.consistency_proof) options.consistencyProof = req.consistency_proof;
    if (req.entry) options.entry = req.entry;
    if (req.require_witnessed !== undefined) options.requireWitnessed = req.require_witnessed;
    const r = tvote.verifyReceipt(req.receipt, options);
    return { size: r.checkpoint.size, signers: r.signers, witnessed_size: r.witnessed?.size ?? null };
  },
};

const req = JSON.parse(readFileSync(0, 'utf8'));
let answer;
try {
  answer = ops[req.op](req);
} catch (e) {
  answer = { error: { name: e.name, check: e.check ?? null, message: e.message } };
}
process.stdout.write(JSON.stringify(answer));
