// Check my ballot's QR scanning without a browser: what a scanned text may be (src/booth/lib/scanned.js) and
// the worker's decoder (src/worker/qr.js) on frames drawn from QR codes of the `qr` package's encoder.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import encodeQR from 'qr';

import { readScanned } from '../src/booth/lib/scanned.js';
import { readTrackingCode } from '../src/protocol/tracking.js';
import { handleQrRequest } from '../src/worker/qr.js';

const ORIGIN = 'https://vote.example.jp';
const CODE = 'ABCD-EFGH-JKMN-PQRS';
const readCode = (typed) => {
  try {
    return readTrackingCode(typed).match(/.{4}/g).join('-');
  } catch {
    return null;
  }
};
const read = (text) => readScanned(text, ORIGIN, readCode);

test('a tracking code, as printed or as typed', () => {
  assert.deepEqual(read(CODE), { kind: 'code', code: CODE, expect: 'auto' });
  assert.deepEqual(read(' abcd efgh jkmn pqrs\n'), { kind: 'code', code: CODE, expect: 'auto' });
  assert.deepEqual(read('ABCDEFGHJKMNPQRS'), { kind: 'code', code: CODE, expect: 'auto' });
});

test('a ballot hash (64 hex), lower-cased', () => {
  const hash = 'AB'.repeat(32);
  assert.deepEqual(read(hash), { kind: 'hash', hash: hash.toLowerCase() });
  assert.deepEqual(read('ab'.repeat(31)), { kind: 'junk' });
  assert.deepEqual(read(`${'ab'.repeat(32)}0`), { kind: 'junk' });
});

test("this booth's Check my ballot addresses, as its receipt and second-device QR codes hold them", () => {
  assert.deepEqual(read(`${ORIGIN}/check?code=${CODE}`), { kind: 'code', code: CODE, expect: 'auto' });
  assert.deepEqual(read(`${ORIGIN}/check?spoiled=${CODE}`), { kind: 'code', code: CODE, expect: 'spoiled' });
  assert.deepEqual(read(`${ORIGIN}/check?spoiled=${CODE.toLowerCase()}&lang=en`), { kind: 'code', code: CODE, expect: 'spoiled' });
  assert.deepEqual(read(`${ORIGIN.toUpperCase()}/check?code=${CODE}`), { kind: 'code', code: CODE, expect: 'auto' });
  assert.deepEqual(read(`${ORIGIN}:443/check?code=${CODE}`), { kind: 'code', code: CODE, expect: 'auto' });
});

test('an address of another origin is foreign, whatever it looks like', () => {
  const foreign = (text, site) => assert.deepEqual(read(text), { kind: 'foreign', site }, text);
  foreign(`https://evil.example/check?code=${CODE}`, 'evil.example');
  foreign(`http://vote.example.jp/check?code=${CODE}`, 'vote.example.jp'); // another scheme
  foreign(`https://vote.example.jp:8443/check?code=${CODE}`, 'vote.example.jp:8443'); // another port
  foreign(`https://vote.example.jp.evil.example/check?code=${CODE}`, 'vote.example.jp.evil.example');
  foreign(`https://vote.example.jp@evil.example/check?code=${CODE}`, 'evil.example');
  foreign('javascript:alert(1)', 'javascript');
  foreign('data:text/html,<script>alert(1)</script>', 'data');
  foreign(`WIFI:S:net;T:WPA;P:secret;;`, 'wifi');
  assert.ok(read(`https://${'a'.repeat(300)}.example/`).site.length <= 100);
});

test('anything else is junk', () => {
  for (const text of [
    '',
    'hello, world',
    'ABCD-EFGH-JKMN-PQR', // 15 symbols
    'ABCD-EFGH-JKMN-PQRU', // U is no Crockford symbol
    `//evil.example/check?code=${CODE}`, // no scheme: never resolved against the page
    `/check?code=${CODE}`,
    `${ORIGIN}/vote?code=${CODE}`,
    `${ORIGIN}/check`,
    `${ORIGIN}/check?code=not-a-code`,
    `${ORIGIN}/check?code=${CODE}&spoiled=${CODE}`,
    `${ORIGIN}/check?code=${CODE}&code=${CODE}`,
    `${ORIGIN}/check?code=${CODE}&next=https://evil.example/`,
    `https://user:pw@vote.example.jp/check?code=${CODE}`,
    `${ORIGIN}/check?code=${CODE}${' '.repeat(1024)}`,
    'https://[bad',
  ])
    assert.deepEqual(read(text), { kind: 'junk' }, text);
  assert.deepEqual(readScanned(null, ORIGIN, readCode), { kind: 'junk' });
});

/** The RGBA pixels of `text` as a QR code: `scale` pixels a module, 4 modules of white quiet zone. */
function frame(text, scale = 4) {
  const modules = encodeQR(text, 'raw', { ecc: 'medium' });
  const side = (modules.length + 8) * scale;
  const data = new Uint8ClampedArray(side * side * 4).fill(255);
  modules.forEach((row, y) =>
    row.forEach((dark, x) => {
      if (!dark) return;
      for (let dy = 0; dy < scale; dy += 1)
        for (let dx = 0; dx < scale; dx += 1) {
          const i = (((y + 4) * scale + dy) * side + (x + 4) * scale + dx) * 4;
          data.fill(0, i, i + 3);
        }
    }),
  );
  return { width: side, height: side, data };
}

const answer = (message) => {
  let said;
  handleQrRequest(message, (m) => (said = m));
  return said;
};

test('the worker reads the QR code in a frame, and says null for a frame without one', () => {
  const url = `${ORIGIN}/check?spoiled=${CODE}`;
  assert.deepEqual(answer({ id: 7, ...frame(url) }), { id: 7, text: url });
  assert.deepEqual(answer({ id: 8, ...frame('ab'.repeat(32), 3) }), { id: 8, text: 'ab'.repeat(32) });
  const blank = { width: 320, height: 240, data: new Uint8ClampedArray(320 * 240 * 4).fill(255) };
  assert.deepEqual(answer({ id: 9, ...blank }), { id: 9, text: null });
});

test('the worker answers null to what is not a frame', () => {
  const good = frame(CODE);
  for (const bad of [
    null,
    'text',
    { id: 1 },
    { id: 1, ...good, width: good.width + 1 }, // the pixels do not fill width × height
    { id: 1, ...good, data: Array.from(good.data) },
    { id: 1, width: 5000, height: 5000, data: new Uint8ClampedArray(4) },
    { id: 1, ...good, width: 1.5 },
  ])
    assert.equal(answer(bad).text, null);
});
