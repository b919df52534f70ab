// QR codes for the receipt, the second-device check of a spoiled ballot and the Digital Authentication App
// link, drawn on a <canvas> from the module matrix of the `uqr` encoder (npm, bundled by esbuild). The canvas
// is an image with a text alternative; the address it holds is always also shown as text and as a link, so
// nothing depends on the QR code alone.

import { h } from './ui.js';

const MODULE = 6; // pixels per module
const QUIET = 4; // modules of quiet zone

/** A canvas holding `text` as a QR code (role img, labelled); null if no encoder could be loaded. */
export async function qrCanvas(text, label) {
  let encode;
  try {
    ({ encode } = await import('uqr'));
  } catch {
    return null;
  }
  const { data, size } = encode(text, { ecc: 'M' });
  const side = (size + 2 * QUIET) * MODULE;
  const canvas = h('canvas', { width: side, height: side, class: 'qr', role: 'img', 'aria-label': label });
  const g = canvas.getContext('2d');
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, side, side);
  g.fillStyle = '#000000';
  for (let y = 0; y < size; y += 1)
    for (let x = 0; x < size; x += 1) if (data[y][x]) g.fillRect((x + QUIET) * MODULE, (y + QUIET) * MODULE, MODULE, MODULE);
  return canvas;
}

/** A PNG of a QR canvas, for "save as image". */
export function canvasPng(canvas) {
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('no image'))), 'image/png'));
}

/** Offer a Blob as a download named `name` (no navigation, no inline script). */
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, class: 'visually-hidden' }, name);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
