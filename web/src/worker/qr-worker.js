// Web Worker entry (built to voting/web/static/qr-worker.js): reads QR codes in camera frames off the page's
// main thread. Message protocol: ./qr.js.
import { handleQrRequest } from './qr.js';

self.onmessage = (event) => handleQrRequest(event.data, (message) => self.postMessage(message));
