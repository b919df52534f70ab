// Witness cosignatures (docs/ledger.md "Witnessing", ledger/record/_cosign.py): BLS over BLS12-381 in
// the IETF proof-of-possession scheme exactly as py_ecc's G2ProofOfPossession runs it: public keys in
// G1 (48 bytes compressed), signatures in G2 (96 bytes compressed), hash to G2 with
//   signatures:            BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_
//   proofs of possession:  BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_   (over the 48-byte public key)
// Every witness signs m = tagged_sha256("ledger/witness-cosign", checkpoint body), so a bundle verifies
// with one FastAggregateVerify (the aggregate of the signers' keys). The pinned keys come from the
// manifest's `witnesses` (KeyValidate and PopVerify before use: what makes aggregation safe).
// Failures throw VerificationError (`witness-cosignature`, `checkpoint-unwitnessed`) or InvalidEncoding.

import { bls12_381 } from '@noble/curves/bls12-381.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { exactKeys, fixedHex, jsonInteger } from './encoding.js';
import { InvalidEncoding, VerificationError } from './errors.js';
import { item, taggedSha256 } from './transcript.js';

export const BLS_SIG_DST = 'BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_';
export const BLS_POP_DST = 'BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_';
const WITNESS_NAME_RE = /^[a-z0-9][a-z0-9.-]{0,63}$/;
const bls = bls12_381.longSignatures;

/** The 32-byte message every witness signs for a checkpoint body. */
export function cosignMessage(checkpointBody) {
  return taggedSha256('ledger/witness-cosign', [item.bytes(utf8ToBytes(checkpointBody))]);
}

function g1(bytes, what) {
  let P;
  try {
    P = bls12_381.G1.Point.fromBytes(bytes);
    P.assertValidity();
  } catch (e) {
    throw new InvalidEncoding(`${what}: not a BLS12-381 G1 point (${e.message})`);
  }
  if (P.is0() || !P.isTorsionFree()) throw new InvalidEncoding(`${what}: identity or outside the subgroup`);
  return P;
}

function g2(bytes, what) {
  let P;
  try {
    P = bls12_381.G2.Point.fromBytes(bytes);
    P.assertValidity();
  } catch (e) {
    throw new InvalidEncoding(`${what}: not a BLS12-381 G2 point (${e.message})`);
  }
  if (!P.isTorsionFree()) throw new InvalidEncoding(`${what}: outside the subgroup`);
  return P;
}

function blsVerify(publicKey, message, signature, dst) {
  try {
    return bls.verify(signature, bls.hash(message, dst), publicKey);
  } catch {
    return false;
  }
}

/**
 * The manifest's `witnesses` ({quorum, keys: [{name, bls_public_key, pop}]}) as a policy
 * {quorum, keys: Map(name -> G1 point)}: each key decoded, KeyValidate'd and its proof of possession
 * verified (a pairing per witness); names and keys distinct; 1 <= quorum <= number of keys, or 0 with
 * none. A manifest without `witnesses` is the policy of quorum 0.
 */
export function witnessPolicy(witnessesJson) {
  if (witnessesJson === undefined || witnessesJson === null) return { quorum: 0, keys: new Map() };
  exactKeys(witnessesJson, ['quorum', 'keys'], 'witnesses');
  const quorum = jsonInteger(witnessesJson.quorum, 'witnesses.quorum');
  if (!Array.isArray(witnessesJson.keys)) throw new InvalidEncoding('witnesses.keys: not a list');
  const keys = new Map();
  const seen = new Set();
  witnessesJson.keys.forEach((k, i) => {
    const what = `witnesses.keys[${i}]`;
    exactKeys(k, ['name', 'bls_public_key', 'pop'], what);
    if (typeof k.name !== 'string' || !WITNESS_NAME_RE.test(k.name)) throw new InvalidEncoding(`${what}.name`);
    const pkBytes = fixedHex(k.bls_public_key, 48, `${what}.bls_public_key`);
    const pk = g1(pkBytes, `${what}.bls_public_key`);
    const pop = g2(fixedHex(k.pop, 96, `${what}.pop`), `${what}.pop`);
    if (!blsVerify(pk, pkBytes, pop, BLS_POP_DST))
      throw new InvalidEncoding(`${what}: the proof of possession does not verify`);
    if (keys.has(k.name) || seen.has(k.bls_public_key)) throw new InvalidEncoding(`${what}: a repeated witness`);
    keys.set(k.name, pk);
    seen.add(k.bls_public_key);
  });
  if (!((quorum >= 1 && quorum <= keys.size) || (quorum === 0 && keys.size === 0)))
    throw new InvalidEncoding('witnesses.quorum: between 1 and the number of witnesses (0 if none)');
  return { quorum, keys };
}

/**
 * Verify a cosignature bundle ({signers: sorted distinct names, aggregate: 192 hex}) on a checkpoint body
 * under the policy: every signer is a pinned witness and the aggregate verifies (FastAggregateVerify),
 * else `witness-cosignature`; then the signers reach the quorum (at least 1), else
 * `checkpoint-unwitnessed`. Returns the signers.
 */
export function verifyCosignatures(checkpointBody, bundle, policy) {
  if (bundle === null || bundle === undefined)
    throw new VerificationError('checkpoint-unwitnessed', 'the checkpoint carries no witness cosignature');
  exactKeys(bundle, ['signers', 'aggregate'], 'cosignatures');
  const { signers } = bundle;
  if (!Array.isArray(signers) || signers.length === 0 || signers.length > 1000)
    throw new InvalidEncoding('cosignatures.signers: a non-empty list');
  signers.forEach((n, i) => {
    if (typeof n !== 'string' || !WITNESS_NAME_RE.test(n) || (i > 0 && !(signers[i - 1] < n)))
      throw new InvalidEncoding('cosignatures.signers: sorted distinct witness names');
  });
  const aggregate = fixedHex(bundle.aggregate, 96, 'cosignatures.aggregate');
  const unknown = signers.find((n) => !policy.keys.has(n));
  if (unknown !== undefined)
    throw new VerificationError('witness-cosignature', `${unknown} is not a witness of the manifest`);
  let ok = false;
  try {
    const pk = bls.aggregatePublicKeys(signers.map((n) => policy.keys.get(n)));
    ok = blsVerify(pk, cosignMessage(checkpointBody), g2(aggregate, 'cosignatures.aggregate'), BLS_SIG_DST);
  } catch {
    ok = false;
  }
  if (!ok) throw new VerificationError('witness-cosignature', 'aggregate witness cosignature does not verify');
  if (policy.quorum < 1 || signers.length < policy.quorum)
    throw new VerificationError(
      'checkpoint-unwitnessed',
      `the checkpoint has ${signers.length} of the ${policy.quorum} cosignatures needed`,
    );
  return signers;
}
