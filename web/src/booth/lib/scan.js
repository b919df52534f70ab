// Reading a QR code from the camera for Check my ballot: the browser's own BarcodeDetector where it has one
// that reads QR codes, else the booth's JavaScript decoder in a Web Worker (/static/qr-worker.js, the `qr`
// package: web/src/worker/qr.js) fed with frames drawn from the <video> into a canvas, so that the page stays
// responsive. Most browsers (Chromium on Linux and Windows, Firefox) have no BarcodeDetector.
// The text found is not interpreted here (./scanned.js does that).

const FRAME_MS = 150; // between two frames looked at
const MAX_SIDE = 800; // frames are scaled down to this many pixels on their longer side

export class ScanFailed extends Error {}

/** The browser's BarcodeDetector for QR codes, or null. */
async function nativeDetector() {
  const Detector = globalThis.BarcodeDetector;
  if (typeof Detector !== 'function') return null;
  try {
    if (!(await Detector.getSupportedFormats()).includes('qr_code')) return null;
    const detector = new Detector({ formats: ['qr_code'] });
    return {
      async read(video) {
        const found = await detector.detect(video).catch(() => []);
        return found.length && typeof found[0].rawValue === 'string' ? found[0].rawValue : null;
      },
      close() {},
    };
  } catch {
    return null;
  }
}

/** The worker decoder: one frame at a time, its pixels transferred (not copied) to the worker. */
function workerDecoder() {
  const worker = new Worker('/static/qr-worker.js');
  const canvas = document.createElement('canvas');
  const g = canvas.getContext('2d', { willReadFrequently: true });
  const waiting = new Map();
  let sequence = 0;
  let broken = null;
  const fail = (why) => {
    broken = new ScanFailed(why);
    for (const w of waiting.values()) w.reject(broken);
    waiting.clear();
  };
  worker.addEventListener('message', (event) => {
    const w = waiting.get(event.data?.id);
    if (!w) return;
    waiting.delete(event.data.id);
    w.resolve(typeof event.data.text === 'string' ? event.data.text : null);
  });
  worker.addEventListener('error', (e) => fail(e.message || 'the QR decoder could not start'));
  worker.addEventListener('messageerror', () => fail('the QR decoder could not be reached'));
  return {
    read(video) {
      if (broken) return Promise.reject(broken);
      const [w, hgt] = [video.videoWidth, video.videoHeight];
      if (!w || !hgt || !g) return Promise.resolve(null);
      const scale = Math.min(1, MAX_SIDE / Math.max(w, hgt));
      canvas.width = Math.round(w * scale);
      canvas.height = Math.round(hgt * scale);
      g.drawImage(video, 0, 0, canvas.width, canvas.height);
      const frame = g.getImageData(0, 0, canvas.width, canvas.height);
      const id = (sequence += 1);
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        worker.postMessage({ id, width: frame.width, height: frame.height, data: frame.data }, [frame.data.buffer]);
      });
    },
    close() {
      worker.terminate();
      fail('stopped');
    },
  };
}

/**
 * Look at frames of the playing `video` until one holds a QR code: resolves its text, or null once
 * `active()` has turned false (the resident stopped). Throws ScanFailed when no decoder can run.
 */
export async function scanVideo(video, active) {
  const reader = (await nativeDetector()) ?? workerDecoder();
  try {
    while (active()) {
      const text = await reader.read(video);
      if (!active()) return null;
      if (text !== null) return text;
      await new Promise((resolve) => setTimeout(resolve, FRAME_MS));
    }
    return null;
  } finally {
    reader.close();
  }
}
