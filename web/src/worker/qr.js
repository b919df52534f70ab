// The QR decoder of Check my ballot, off the page's main thread (./qr-worker.js, built to
// voting/web/static/qr-worker.js): `decodeQR` of the `qr` package (npm; pure JavaScript, no WebAssembly, so
// it runs under the booth's Content-Security-Policy without 'wasm-unsafe-eval').
//
// Message protocol: post {id, width, height, data} where `data` is the frame's RGBA pixels (a
// Uint8ClampedArray of width × height × 4 bytes, e.g. an ImageData's, best transferred); the answer is
// {id, text} with the first QR code's text, or {id, text: null} when the frame holds none (or is not a frame).
// The worker only decodes: what the text may be is decided by the page (booth/lib/scanned.js).

import { decodeQR } from 'qr/decode.js';

/** The largest frame side decoded (the page scales frames down to about 800 px). */
export const MAX_SIDE = 2048;

function frameOf(m) {
  if (!m || typeof m !== 'object') return null;
  const { width, height, data } = m;
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height)) return null;
  if (width < 21 || height < 21 || width > MAX_SIDE || height > MAX_SIDE) return null;
  if (!(data instanceof Uint8ClampedArray || data instanceof Uint8Array) || data.length !== width * height * 4) return null;
  return { width, height, data };
}

/** Answer one request (see above) through `post`. */
export function handleQrRequest(message, post) {
  const id = message?.id ?? null;
  const frame = frameOf(message);
  let text = null;
  if (frame) {
    try {
      text = decodeQR(frame, { format: 'RGBA' });
    } catch {
      text = null; // no QR code in this frame (decodeQR throws), or one it could not read
    }
  }
  post({ id, text: typeof text === 'string' ? text : null });
}
