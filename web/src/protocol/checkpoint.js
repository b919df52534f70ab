// C2SP signed notes with Ed25519 and tlog-checkpoint bodies, as ledger/record/_note.py (docs/ledger.md):
//
//   <origin>\n<size>\n<base64 root>\ntime <unix seconds>\n      (the checkpoint body, tvote's one extension)
//   \n
//   — <key name> <base64(key id || signature)>\n               (one line per signature; "—" is U+2014)
//
// The key id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key); the signature is
// Ed25519 (RFC 8032, strict: @noble/curves with zip215 off, as libsodium) over the body's UTF-8 bytes.
// A verifier key (vkey) is `<name>+<8 hex key id>+<base64(0x01 || public key)>`. Failures throw
// VerificationError (`note-signature`, `checkpoint-origin`) or InvalidEncoding.

import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { InvalidEncoding, VerificationError } from './errors.js';

const EM_DASH = '\u2014';
const MAX_NOTE_BYTES = 64 * 1024;
const MAX_SIGNATURES = 100;
const NAME_RE = /^[\x21-\x7e]+$/;
const SIZE_RE = /^(0|[1-9][0-9]{0,18})$/;

/** Standard base64 to bytes, refusing anything but the canonical spelling of some bytes. */
export function base64Decode(text, what) {
  let raw;
  try {
    raw = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    throw new InvalidEncoding(`${what}: not standard base64`);
  }
  if (typeof text !== 'string' || base64Encode(raw) !== text) throw new InvalidEncoding(`${what}: not canonical base64`);
  return raw;
}

/** Bytes to standard base64. */
export function base64Encode(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function keyName(name) {
  if (typeof name !== 'string' || !NAME_RE.test(name) || name.includes('+') || name.length > 255)
    throw new InvalidEncoding(`key name ${JSON.stringify(name)}: printable ASCII without spaces or '+'`);
  return name;
}

function keyId(name, publicKey) {
  return sha256(concatBytes(utf8ToBytes(name), Uint8Array.of(0x0a, 0x01), publicKey)).slice(0, 4);
}

/** A log's verifier key from its text form: {name, publicKey (32 bytes), keyId (4 bytes), vkey}. */
export function parseLogKey(vkey) {
  if (typeof vkey !== 'string') throw new InvalidEncoding('verifier key: not text');
  const first = vkey.indexOf('+');
  const second = first < 0 ? -1 : vkey.indexOf('+', first + 1);
  if (second < 0) throw new InvalidEncoding('verifier key: not <name>+<hex id>+<base64 key>');
  const [name, kid, b64] = [vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1)];
  const raw = base64Decode(b64, 'verifier key');
  if (raw.length !== 33 || raw[0] !== 0x01) throw new InvalidEncoding('verifier key: not an Ed25519 key');
  const publicKey = raw.slice(1);
  try {
    ed25519.Point.fromBytes(publicKey);
  } catch {
    throw new InvalidEncoding('verifier key: not an Ed25519 point');
  }
  const id = keyId(keyName(name), publicKey);
  if (kid !== bytesToHex(id)) throw new InvalidEncoding('verifier key: key id does not match the key');
  return { name, publicKey, keyId: id, vkey };
}

function checkBody(body) {
  if (!body.endsWith('\n') || body.includes('\n\n') || body.startsWith('\n'))
    throw new InvalidEncoding('note body: non-empty lines each ending in a newline');
  if ([...body].some((c) => c.charCodeAt(0) < 0x20 && c !== '\n'))
    throw new InvalidEncoding('note body: control characters');
}

/** Split a signed note into {body, signatures: [{name, keyId, signature}]}; nothing is verified here. */
export function parseSignedNote(text) {
  if (typeof text !== 'string' || utf8ToBytes(text).length > MAX_NOTE_BYTES)
    throw new InvalidEncoding('signed note: text of at most 64 KiB');
  const cut = text.lastIndexOf('\n\n');
  if (cut < 0 || !text.endsWith('\n')) throw new InvalidEncoding('signed note: no signature block');
  const body = text.slice(0, cut + 1);
  checkBody(body);
  const signatures = text
    .slice(cut + 2, -1)
    .split('\n')
    .map((line) => {
      const parts = line.split(' ');
      if (parts.length !== 3 || parts[0] !== EM_DASH) throw new InvalidEncoding('signed note: malformed signature line');
      const raw = base64Decode(parts[2], 'note signature');
      if (raw.length < 5) throw new InvalidEncoding('signed note: signature too short');
      return { name: keyName(parts[1]), keyId: raw.slice(0, 4), signature: raw.slice(4) };
    });
  if (signatures.length < 1 || signatures.length > MAX_SIGNATURES)
    throw new InvalidEncoding('signed note: 1 to 100 signatures');
  return { body, signatures };
}

/** A checkpoint body to {origin, size, root (32 bytes), time (Unix seconds)}, strictly. */
export function parseCheckpointBody(body) {
  const lines = body.split('\n');
  if (lines.length !== 5 || lines[4] !== '')
    throw new InvalidEncoding('checkpoint body: exactly origin, size, root and time lines');
  const [origin, sizeText, rootText, timeLine] = lines;
  if (!origin || [...origin].some((c) => c.charCodeAt(0) < 0x20)) throw new InvalidEncoding('checkpoint origin');
  if (!SIZE_RE.test(sizeText)) throw new InvalidEncoding('checkpoint size: a decimal without leading zeros');
  if (!timeLine.startsWith('time ') || !SIZE_RE.test(timeLine.slice(5)))
    throw new InvalidEncoding("checkpoint extension line: 'time <decimal seconds>'");
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw new InvalidEncoding('checkpoint size: beyond 2^53 - 1');
  const root = base64Decode(rootText, 'checkpoint root');
  if (root.length !== 32) throw new InvalidEncoding('checkpoint root: not 32 bytes');
  return { origin, size, root, time: Number(timeLine.slice(5)) };
}

/**
 * Verify a signed checkpoint (the note text) under the log key (parseLogKey's result or its vkey text):
 * the origin is the log key's name (`checkpoint-origin`) and every signature line by that key verifies,
 * at least one (`note-signature`). Returns {origin, size, root, time, body, note}.
 */
export function verifyCheckpoint(note, logKey) {
  const key = typeof logKey === 'string' ? parseLogKey(logKey) : logKey;
  const { body, signatures } = parseSignedNote(note);
  const cp = parseCheckpointBody(body);
  if (cp.origin !== key.name)
    throw new VerificationError('checkpoint-origin', `origin ${cp.origin} is not the log ${key.name}`);
  const mine = signatures.filter((s) => s.name === key.name && bytesToHex(s.keyId) === bytesToHex(key.keyId));
  if (mine.length === 0) throw new VerificationError('note-signature', `no signature by the log key ${key.name}`);
  const message = utf8ToBytes(body);
  for (const s of mine) {
    let ok = false;
    try {
      ok = ed25519.verify(s.signature, message, key.publicKey, { zip215: false });
    } catch {
      ok = false;
    }
    if (!ok) throw new VerificationError('note-signature', `signature by ${key.name} does not verify`);
  }
  return { ...cp, body, note };
}
