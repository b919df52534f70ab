// Web Worker entry (built to voting/web/static/encrypt-worker.js): encrypts a ballot off the page's
// main thread. Message protocol: ./encrypt.js.
import { handleEncryptRequest } from './encrypt.js';

self.onmessage = (event) => handleEncryptRequest(event.data, (message) => self.postMessage(message));
