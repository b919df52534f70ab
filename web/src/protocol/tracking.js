// §10 the ballot hash and tracking code; §9.6 uniqueness over the ledger (ballot hash, nonce, pads).

import { bytesToHex } from '@noble/hashes/utils.js';
import { canonicalJsonBytes } from './encoding.js';
import { InvalidEncoding } from './errors.js';
import { O } from './group.js';
import { item, taggedSha256 } from './transcript.js';

// ---------------------------------------------------------------------------------------------
// §10 Ballot hash and tracking code

export function ballotHash(ballotJson) {
  return taggedSha256('ballot-hash', [item.bytes(canonicalJsonBytes(ballotJson))]);
}

export const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export function trackingCode(ballotHash) {
  let v = 0n;
  for (const b of ballotHash.slice(0, 10)) v = (v << 8n) | BigInt(b);
  let symbols = '';
  for (let i = 15; i >= 0; i -= 1) symbols += CROCKFORD[Number((v >> BigInt(5 * i)) & 31n)];
  return symbols.match(/.{4}/g).join('-');
}

export function readTrackingCode(typed) {
  const s = typed.toUpperCase().replace(/[- ]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  if (s.length !== 16 || [...s].some((ch) => !CROCKFORD.includes(ch))) throw new InvalidEncoding('not a tracking code');
  return s;
}


/**
 * §9.6 uniqueness over the ledger: in ledger order, each value of a ballot (its ballot_hash, its
 * ballot_nonce, then each selection's pad in ballot order, named contest_id/selection_id) breaks its rule
 * (`ballot_hash`, `ballot_nonce`, `pad`) if an earlier ballot, or an earlier selection of the same ballot,
 * has the same value. Returns every break as {ballot, rule, where, first}.
 */
export function uniquenessBreaks(ballotJsons) {
  const seen = new Map(); // `${rule} ${value}` -> index of the ballot that published it first
  const breaks = [];
  for (const [i, bj] of ballotJsons.entries()) {
    const values = [
      ['ballot_hash', bytesToHex(ballotHash(bj)), ''],
      ['ballot_nonce', bj.ballot_nonce, ''],
    ];
    for (const c of bj.contests) {
      for (const s of c.selections) values.push(['pad', s.ciphertext.a, `${c.contest_id}/${s.selection_id}`]);
    }
    for (const [rule, value, where] of values) {
      const key = `${rule} ${value}`;
      if (seen.has(key)) breaks.push({ ballot: i, rule, where, first: seen.get(key) });
      else seen.set(key, i);
    }
  }
  return breaks;
}

/** The first break of §9.6 as [rule, where], or null (what a verifier that stops at the first reports). */
export function firstUniquenessViolation(ballotJsons) {
  const b = uniquenessBreaks(ballotJsons)[0];
  return b ? [b.rule, `ballot ${b.ballot}${b.where ? ' ' + b.where : ''}`] : null;
}

