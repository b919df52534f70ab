// §1 Encodings: fixed-length lowercase hex, JSON integers and the lexical integer rule, identifiers,
// RFC 8785 canonical JSON (the `canonicalize` package), strict "exactly these keys" decoding.

import canonicalize from 'canonicalize';
import { hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { InvalidEncoding } from './errors.js';

// ---------------------------------------------------------------------------------------------
// §1 Encodings

/** §1 "Bytes in JSON": lowercase hex of exactly 2*length digits, nothing else. */
export function fixedHex(value, length, what = 'hex') {
  if (typeof value !== 'string') throw new InvalidEncoding(`${what}: not a string`);
  if (value.length !== 2 * length)
    throw new InvalidEncoding(`${what}: need ${2 * length} hex digits, got ${value.length}`);
  if (!/^[0-9a-f]*$/.test(value)) throw new InvalidEncoding(`${what}: not lowercase hex`);
  return hexToBytes(value);
}

/**
 * §1 "Integers in JSON": a JSON integer, never a string or a boolean, no sign (no field of the document
 * allows a negative value). `-0` is refused too: JSON.parse maps the token `-0` to a value that `=== 0`.
 * The lexical half of the rule (no `2.0`, `2e0`) is lexicalCheck, on the text before JSON.parse.
 */
export function jsonInteger(value, what = 'integer') {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || Object.is(value, -0))
    throw new InvalidEncoding(`${what}: not a JSON integer >= 0`);
  return value;
}

/**
 * §1 the lexical integer rule, as the document prescribes it for a browser: scan the JSON text once,
 * skipping string literals (a `"` opens one; inside, `\` escapes the next character; the next unescaped
 * `"` closes it); outside string literals every maximal run of the characters `-+.0123456789eE` that
 * starts with `-` or a digit is a number token and must match `0|[1-9][0-9]*` (`-0`, `2.0`, `2e0`, `02`
 * are refused). The `e` of the literals `true` and `false` starts no such run.
 */
const LEXICAL_RUN = '-+.0123456789eE';
export function lexicalCheck(text) {
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      i += 1;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      if (i >= text.length) throw new InvalidEncoding('lexical: unterminated string literal');
      i += 1;
    } else if (ch === '-' || (ch >= '0' && ch <= '9')) {
      let j = i;
      while (j < text.length && LEXICAL_RUN.includes(text[j])) j += 1;
      const run = text.slice(i, j);
      if (!/^(0|[1-9][0-9]*)$/.test(run))
        throw new InvalidEncoding(`lexical: number token ${JSON.stringify(run)} at ${i} is not 0|[1-9][0-9]*`);
      i = j;
    } else {
      i += 1;
    }
  }
  return text;
}

/** §1 a JSON text to a value: the lexical rule first, then JSON.parse (a syntax error is an InvalidEncoding). */
export function parseJsonText(text) {
  lexicalCheck(text);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InvalidEncoding(`not JSON: ${e.message}`);
  }
}

/** §1 "Identifiers": 1..64 characters of [A-Za-z0-9_.-]. */
export function identifier(value, what = 'identifier') {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(value))
    throw new InvalidEncoding(`${what}: bad identifier`);
  return value;
}

/**
 * §1 "Structured data": RFC 8785 canonical JSON (JCS) of a value the protocol hashes, by the maintained
 * `canonicalize` package. Before it serializes, the value is held to what the protocol allows in hashed
 * JSON (the ledger's rule, ledger/record/_entry.py): objects, arrays, strings without lone surrogates,
 * integers in the I-JSON safe range, booleans and null. Anything else (a float, NaN, undefined, a
 * BigInt, a lone surrogate) is refused with InvalidEncoding instead of being written in a form another
 * implementation would not reproduce. Returns the canonical text (its UTF-8 bytes are what is hashed).
 */
export function canonicalJson(value) {
  checkHashable(value, '$', 0);
  return canonicalize(value);
}

/** The bytes of canonicalJson(value): what §9.2, §10 and the ledger hash. */
export function canonicalJsonBytes(value) {
  return utf8ToBytes(canonicalJson(value));
}

const MAX_DEPTH = 65;

function checkHashable(value, where, depth) {
  if (depth > MAX_DEPTH) throw new InvalidEncoding(`jcs: nested deeper than ${MAX_DEPTH} at ${where}`);
  if (value === null || typeof value === 'boolean') return;
  if (typeof value === 'string') {
    if (!value.isWellFormed()) throw new InvalidEncoding(`jcs: lone surrogate at ${where}`);
    return;
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || Object.is(value, -0))
      throw new InvalidEncoding(`jcs: ${String(value)} at ${where} is not a safe integer`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkHashable(v, `${where}[${i}]`, depth + 1));
    return;
  }
  if (typeof value === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(value))) {
    for (const [k, v] of Object.entries(value)) {
      if (!k.isWellFormed()) throw new InvalidEncoding(`jcs: lone surrogate in a key at ${where}`);
      checkHashable(v, `${where}.${k}`, depth + 1);
    }
    return;
  }
  throw new InvalidEncoding(`jcs: unsupported value at ${where}`);
}

/** Strict "exactly these keys" check used by every JSON decoder of the doc. */
export function exactKeys(obj, keys, what) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
    throw new InvalidEncoding(`${what}: not an object`);
  const got = Object.keys(obj).sort();
  const want = [...keys].sort();
  if (got.length !== want.length || got.some((k, i) => k !== want[i])) {
    throw new InvalidEncoding(`${what}: keys ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
  }
  return obj;
}

/** A JSON list (InvalidEncoding otherwise). */
export function asList(value, what) {
  if (!Array.isArray(value)) throw new InvalidEncoding(`${what}: not a list`);
  return value;
}

/** A JSON list with at least one element (InvalidEncoding otherwise). */
export function nonEmptyList(value, what) {
  if (asList(value, what).length === 0) throw new InvalidEncoding(`${what}: empty list`);
  return value;
}

/** The integers lo..hi, both included. */
export function range(lo, hi) {
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

