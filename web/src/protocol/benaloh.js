// §11 the Benaloh challenge: the revealed ballot, its strict decoding and its verification against the
// encrypted ballot (what the choices were).

import { bytesToHex } from '@noble/hashes/utils.js';
import { decodeBallot, verifyDecodedBallot } from './ballot.js';
import { encrypt } from './elgamal.js';
import { exactKeys, fixedHex, identifier, jsonInteger, nonEmptyList } from './encoding.js';
import { InvalidEncoding, VerificationError } from './errors.js';
import { decodeScalar } from './group.js';
import { ballotHash } from './tracking.js';

// ---------------------------------------------------------------------------------------------
// §11 Benaloh challenge

export function decodeRevealed(obj) {
  exactKeys(obj, ['ballot_hash', 'contests'], 'revealed');
  return {
    ballotHash: fixedHex(obj.ballot_hash, 32, 'revealed.ballot_hash'),
    contests: decodeSecretContests(obj.contests, 'revealed'),
  };
}

export function decodeSecrets(obj) {
  return decodeSecretContests(exactKeys(obj, ['contests'], 'secrets').contests, 'secrets');
}

export function decodeSecretContests(value, what) {
  return nonEmptyList(value, `${what}.contests`).map((c, ci) => {
    exactKeys(c, ['contest_id', 'selections'], `${what}.contests[${ci}]`);
    return {
      contestId: identifier(c.contest_id, `${what}.contests[${ci}].contest_id`),
      selections: nonEmptyList(c.selections, `${what}.contests[${ci}].selections`).map((s, si) => {
        const w = `${what}.contests[${ci}].selections[${si}]`;
        exactKeys(s, ['selection_id', 'plaintext', 'randomness'], w);
        const plaintext = jsonInteger(s.plaintext, `${w}.plaintext`);
        if (plaintext !== 0 && plaintext !== 1) throw new InvalidEncoding(`${w}.plaintext: not 0 or 1`);
        return {
          selectionId: identifier(s.selection_id, `${w}.selection_id`),
          plaintext,
          r: decodeScalar(s.randomness, `${w}.randomness`),
        };
      }),
    };
  });
}

/**
 * §11 verifying a revealed ballot against its encrypted ballot (JSON): steps 1-4 (version 2 has no
 * step 5). Returns {contest_id: [chosen selection ids in contest order]}.
 */
export function verifyRevealedDecoded(election, ballotJson, revealed) {
  const ballot = decodeBallot(ballotJson);
  verifyDecodedBallot(election, ballot);
  if (bytesToHex(revealed.ballotHash) !== bytesToHex(ballotHash(ballotJson))) {
    throw new VerificationError('revealed-ballot-hash', 'revealed ballot_hash differs from the ballot hash');
  }
  const shape = (cs) => JSON.stringify(cs.map((c) => [c.contestId, c.selections.map((s) => s.selectionId)]));
  if (shape(revealed.contests) !== shape(ballot.contests))
    throw new VerificationError('revealed-structure', 'contests or selections differ');
  const chosen = {};
  revealed.contests.forEach((rc, ci) => {
    rc.selections.forEach((rs, si) => {
      const published = ballot.contests[ci].selections[si].ct;
      const again = encrypt(election.K, rs.plaintext, rs.r);
      if (!again.a.equals(published.a) || !again.b.equals(published.b)) {
        throw new VerificationError(
          'revealed-reencryption',
          'Enc_K(plaintext; randomness) differs',
          `${rc.contestId}/${rs.selectionId}`,
        );
      }
    });
    chosen[rc.contestId] = rc.selections.filter((s) => s.plaintext === 1).map((s) => s.selectionId);
  });
  return chosen;
}


/**
 * §11 the revealed ballot the device publishes on *challenge*: {ballot_hash, contests} from the ballot
 * JSON and the secrets JSON that encryptBallot returned. The secrets are decoded strictly first.
 */
export function reveal(ballotJson, secretsJson) {
  decodeSecrets(secretsJson);
  return { ballot_hash: bytesToHex(ballotHash(ballotJson)), contests: structuredClone(secretsJson.contests) };
}

/**
 * §11 verification of a revealed ballot (JSON, as published) against its encrypted ballot (JSON):
 * strict decoding, then steps 1-4. Returns {contest_id: [chosen selection ids, contest order]}: what the
 * voter compares with what they meant to vote.
 */
export function verifyRevealed(election, ballotJson, revealedJson) {
  return verifyRevealedDecoded(election, ballotJson, decodeRevealed(revealedJson));
}
