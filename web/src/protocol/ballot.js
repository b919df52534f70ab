// §9 Ballots: the election context, encrypting a ballot (§9.3), the ballot JSON and its strict decoding
// (§9.4), verification in the document's order (§9.5).

import { mod } from '@noble/curves/abstract/modular.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import {
  decodeDisjunctiveProof,
  disjunctiveEquations,
  disjunctiveVerifyEquations,
  disjunctiveVerifyHash,
  encodeDisjunctiveProof,
  proveDisjunctive,
} from './disjunctive.js';
import { decodeCiphertext, encodeCiphertext, encrypt, sumCiphertexts } from './elgamal.js';
import { exactKeys, fixedHex, identifier, jsonInteger, nonEmptyList, parseJsonText, range } from './encoding.js';
import { InvalidEncoding, VerificationError } from './errors.js';
import { L, fixedBase, scalarHex } from './group.js';
import { csprng } from './random.js';
import { PROTOCOL_VERSION, item } from './transcript.js';

// ---------------------------------------------------------------------------------------------
// §9 Ballots

export const MAX_SELECTIONS = 1023;

/** §9.1-§9.2 election context (base_hash, K ≠ O, contests in manifest order with distinct ids). */
export function electionContext(baseHash, K, contestList) {
  if (K.is0()) throw new InvalidEncoding('election key is the identity');
  fixedBase(K);
  const contests = nonEmptyList(contestList, 'election.contests').map((c, ci) => {
    const w = `election.contests[${ci}]`;
    exactKeys(c, ['contest_id', 'selection_ids', 'min', 'max'], w);
    const selectionIds = nonEmptyList(c.selection_ids, `${w}.selection_ids`).map((id) =>
      identifier(id, `${w}.selection_ids`),
    );
    if (selectionIds.length > MAX_SELECTIONS) throw new InvalidEncoding(`${w}: more than ${MAX_SELECTIONS} selections`);
    if (new Set(selectionIds).size !== selectionIds.length) throw new InvalidEncoding(`${w}: duplicate selection id`);
    const min = jsonInteger(c.min, `${w}.min`);
    const max = jsonInteger(c.max, `${w}.max`);
    if (!(min <= max && max <= selectionIds.length)) throw new InvalidEncoding(`${w}: bad min/max`);
    return { contestId: identifier(c.contest_id, `${w}.contest_id`), selectionIds, min, max };
  });
  if (new Set(contests.map((c) => c.contestId)).size !== contests.length)
    throw new InvalidEncoding('election: duplicate contest id');
  return { baseHash, K, contests };
}

/** §9.3 contexts. */
export function selectionContext(baseHash, nonce, contestId, selectionId) {
  return [
    item.str('ballot-selection'),
    item.bytes(baseHash),
    item.bytes(nonce),
    item.str(contestId),
    item.str(selectionId),
  ];
}
export function contestContext(baseHash, nonce, contestId) {
  return [item.str('ballot-contest'), item.bytes(baseHash), item.bytes(nonce), item.str(contestId)];
}

/** §9.4 strict decoding of the ballot JSON (a parsed value). */
export function decodeBallot(obj) {
  exactKeys(obj, ['version', 'election_hash', 'ballot_nonce', 'contests'], 'ballot');
  if (jsonInteger(obj.version, 'ballot.version') !== PROTOCOL_VERSION)
    throw new InvalidEncoding(`ballot.version: ${obj.version}, not ${PROTOCOL_VERSION}`);
  return {
    electionHash: fixedHex(obj.election_hash, 32, 'election_hash'),
    nonce: fixedHex(obj.ballot_nonce, 32, 'ballot_nonce'),
    contests: nonEmptyList(obj.contests, 'contests').map((c, ci) => {
      exactKeys(c, ['contest_id', 'selections', 'proof'], `contests[${ci}]`);
      return {
        contestId: identifier(c.contest_id, `contests[${ci}].contest_id`),
        selections: nonEmptyList(c.selections, `contests[${ci}].selections`).map((s, si) => {
          const w = `contests[${ci}].selections[${si}]`;
          exactKeys(s, ['selection_id', 'ciphertext', 'proof'], w);
          return {
            selectionId: identifier(s.selection_id, `${w}.selection_id`),
            ct: decodeCiphertext(s.ciphertext, `${w}.ciphertext`),
            proof: decodeDisjunctiveProof(s.proof, `${w}.proof`),
          };
        }),
        proof: decodeDisjunctiveProof(c.proof, `contests[${ci}].proof`),
      };
    }),
  };
}

/** §9.4 + §1: a ballot as a JSON text (the lexical rule, then JSON.parse, then strict decoding). */
export function decodeBallotText(text) {
  return decodeBallot(parseJsonText(text));
}

/** §9.5 steps 2-3: the four passes of a list of ids against the expected ids. */
export function checkIds(got, want, names, subjectOf) {
  const seen = new Set();
  for (const id of got) {
    if (seen.has(id)) throw new VerificationError(names.duplicate, 'appears twice', subjectOf(id));
    seen.add(id);
  }
  for (const id of got) if (!want.includes(id)) throw new VerificationError(names.unknown, 'unknown', subjectOf(id));
  for (const id of want) if (!seen.has(id)) throw new VerificationError(names.missing, 'missing', subjectOf(id));
  if (got.some((id, i) => id !== want[i])) throw new VerificationError(names.order, 'out of order', subjectOf(null));
}

/**
 * §9.5 steps 1-3: election hash; the four contest passes; for every contest (manifest order) the four
 * selection passes. Returns the (contest spec, ballot contest) pairs in manifest order.
 */
export function verifyBallotStructure(election, ballot) {
  if (bytesToHex(ballot.electionHash) !== bytesToHex(election.baseHash)) {
    throw new VerificationError('election-hash', 'election_hash differs from base_hash');
  }
  checkIds(
    ballot.contests.map((c) => c.contestId),
    election.contests.map((c) => c.contestId),
    { duplicate: 'duplicate-contest', unknown: 'unknown-contest', missing: 'missing-contest', order: 'contest-order' },
    (id) => id,
  );
  // Step 2 passed: the ballot's contests are exactly the manifest's, in manifest order.
  const pairs = election.contests.map((spec, ci) => [spec, ballot.contests[ci]]);
  for (const [spec, c] of pairs) {
    checkIds(
      c.selections.map((s) => s.selectionId),
      spec.selectionIds,
      {
        duplicate: 'duplicate-selection',
        unknown: 'unknown-selection',
        missing: 'missing-selection',
        order: 'selection-order',
      },
      (id) => (id === null ? c.contestId : `${c.contestId}/${id}`),
    );
  }
  return pairs;
}

/** A proof's own failure (disjunctive-…) becomes the ballot-level check, with the proof's as its cause. */
export function asBallotCheck(check, subject, fn) {
  try {
    return fn();
  } catch (e) {
    if (e instanceof VerificationError) throw new VerificationError(check, e.message, subject, e);
    throw e;
  }
}

/**
 * §9.5 steps 4 and 5 for one contest, or (batch, §12 step 1) only their parts that need no group
 * equation: each selection in order (pad ≠ O, then its proof), then the contest's sum proof. With
 * `equations` an array, the proofs' §8.3 steps 1-3 run here and their step-4 equations are appended to
 * it in §12's order instead of being checked.
 */
export function verifyContestProofs(election, ballot, spec, c, equations = null) {
  const K = election.K;
  const verifyProof = (ct, allowed, ctx, proof) => {
    disjunctiveVerifyHash(K, ct, allowed, ctx, proof);
    if (equations === null) disjunctiveVerifyEquations(K, ct, allowed, proof);
    else equations.push(...disjunctiveEquations(K, ct, allowed, proof));
  };
  for (const s of c.selections) {
    const subject = `${c.contestId}/${s.selectionId}`;
    if (s.ct.a.is0()) throw new VerificationError('selection-randomness', 'the pad A is O', subject);
    const ctx = selectionContext(election.baseHash, ballot.nonce, c.contestId, s.selectionId);
    asBallotCheck('selection-proof', subject, () => verifyProof(s.ct, [0, 1], ctx, s.proof));
  }
  const total = sumCiphertexts(c.selections.map((s) => s.ct));
  const ctx = contestContext(election.baseHash, ballot.nonce, c.contestId);
  asBallotCheck('contest-proof', c.contestId, () => verifyProof(total, range(spec.min, spec.max), ctx, c.proof));
}

/** §9.5 verification of a decoded ballot, in the document's order; throws at the first failure. */
export function verifyDecodedBallot(election, ballot) {
  for (const [spec, c] of verifyBallotStructure(election, ballot)) verifyContestProofs(election, ballot, spec, c);
}

/**
 * §9.3 the device's input check: a choice for every contest, known selections, none twice, between min
 * and max of them. Throws ValueError-like errors; nothing is encrypted.
 */
export function checkChoices(election, choices) {
  if (choices === null || typeof choices !== 'object' || Array.isArray(choices))
    throw new Error('ValueError: choices not an object');
  const ids = new Set(election.contests.map((c) => c.contestId));
  for (const id of Object.keys(choices)) if (!ids.has(id)) throw new Error(`ValueError: unknown contest ${id}`);
  for (const spec of election.contests) {
    const chosen = choices[spec.contestId];
    if (!Array.isArray(chosen)) throw new Error(`ValueError: missing contest ${spec.contestId}`);
    if (new Set(chosen).size !== chosen.length)
      throw new Error(`ValueError: selection chosen twice in ${spec.contestId}`);
    for (const s of chosen)
      if (!spec.selectionIds.includes(s)) throw new Error(`ValueError: unknown selection ${spec.contestId}/${s}`);
    if (chosen.length > spec.max) throw new Error(`ValueError: over-vote in ${spec.contestId}`);
    if (chosen.length < spec.min) throw new Error(`ValueError: fewer than min in ${spec.contestId}`);
  }
}

/**
 * §9.3 encrypting a ballot, drawing from `rng` in the reference order: the nonce (32 bytes), then per
 * contest, per selection r_σ (non-zero) and that selection's proof draws (§8.4), then the contest proof's
 * draws. Returns the ballot JSON (§9.4) and the secrets JSON (§11), both as plain objects.
 *
 * `rng` is the randomness source (default: the CSPRNG; a named stream of Appendix A only in tests);
 * `onProgress({done, total})` is called after each selection and each contest proof (total = number of
 * selections + number of contests), for a progress bar. Unknown contests or selections, a missing
 * contest, a repeated selection, an over-vote or fewer than min selections throw `ValueError: …` before
 * anything is drawn.
 */
export function encryptBallot(election, choices, { rng = csprng, onProgress = null } = {}) {
  checkChoices(election, choices);
  const total = election.contests.reduce((n, spec) => n + spec.selectionIds.length + 1, 0);
  let done = 0;
  const progress = () => {
    done += 1;
    if (onProgress !== null) onProgress({ done, total });
  };
  const nonce = rng.bytes(32);
  const contests = [];
  const secrets = [];
  for (const spec of election.contests) {
    const chosen = choices[spec.contestId];
    const selections = [];
    const secretSelections = [];
    const cts = [];
    let rSum = 0n;
    for (const selectionId of spec.selectionIds) {
      const m = chosen.includes(selectionId) ? 1 : 0;
      const r = rng.nonZeroScalar();
      const ct = encrypt(election.K, m, r);
      const ctx = selectionContext(election.baseHash, nonce, spec.contestId, selectionId);
      const made = proveDisjunctive(election.K, ct, [0, 1], ctx, m, r, rng);
      selections.push({
        selection_id: selectionId,
        ciphertext: encodeCiphertext(ct),
        proof: encodeDisjunctiveProof(made.proof),
      });
      secretSelections.push({ selection_id: selectionId, plaintext: m, randomness: scalarHex(r) });
      cts.push(ct);
      rSum = mod(rSum + r, L);
      progress();
    }
    const sum = sumCiphertexts(cts);
    const ctx = contestContext(election.baseHash, nonce, spec.contestId);
    const made = proveDisjunctive(election.K, sum, range(spec.min, spec.max), ctx, chosen.length, rSum, rng);
    contests.push({ contest_id: spec.contestId, selections, proof: encodeDisjunctiveProof(made.proof) });
    secrets.push({ contest_id: spec.contestId, selections: secretSelections });
    progress();
  }
  return {
    ballot: {
      version: PROTOCOL_VERSION,
      election_hash: bytesToHex(election.baseHash),
      ballot_nonce: bytesToHex(nonce),
      contests,
    },
    secrets: { contests: secrets },
  };
}

/**
 * §9.4-§9.5 a ballot as JSON (a parsed object) verified against the election context: strict decoding
 * (InvalidEncoding), then every check of §9.5 in the document's order (VerificationError naming the
 * check and subject). Returns the decoded ballot.
 */
export function verifyBallot(election, ballotJson) {
  const ballot = decodeBallot(ballotJson);
  verifyDecodedBallot(election, ballot);
  return ballot;
}
