// The face capture for the digital-ID method (docs/authentication.md, "Face match"): getUserMedia with the
// front camera, a liveness prompt (turn the head a little), two frames a moment apart. The first frame is the
// `image`; the liveness evidence is the second frame with the prompt that was shown, so the face-match engine
// can tell a live person from a photograph. Nothing is stored: the frames exist in memory until they are sent.

const WIDTH = 640;
const LIVENESS_DELAY_MS = 1500;

export class CameraRefused extends Error {
  constructor(reason, kind) {
    super(reason);
    this.kind = kind; // 'denied' | 'missing' | 'failed'
  }
}

/**
 * Start a camera into `video` (the front camera unless `facingMode` says 'environment', the rear one, for
 * reading a QR code); resolves the stream, or throws CameraRefused.
 */
export async function startCamera(video, { facingMode = 'user' } = {}) {
  if (!navigator.mediaDevices?.getUserMedia) throw new CameraRefused('getUserMedia unavailable', 'missing');
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: facingMode }, width: { ideal: WIDTH } }, audio: false });
  } catch (e) {
    const kind = e.name === 'NotAllowedError' || e.name === 'SecurityError' ? 'denied' : e.name === 'NotFoundError' || e.name === 'OverconstrainedError' ? 'missing' : 'failed';
    throw new CameraRefused(e.name || String(e), kind);
  }
  video.srcObject = stream;
  await video.play().catch(() => {});
  return stream;
}

export function stopCamera(stream, video) {
  for (const track of stream?.getTracks() ?? []) track.stop();
  if (video) video.srcObject = null;
}

async function frame(video, width) {
  const w = Math.min(width, video.videoWidth || width);
  const hgt = Math.round(((video.videoHeight || 480) * w) / (video.videoWidth || WIDTH));
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = hgt;
  canvas.getContext('2d').drawImage(video, 0, 0, w, hgt);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.85));
  if (!blob) throw new Error('the camera gave no picture');
  return new Uint8Array(await blob.arrayBuffer());
}

const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');

/** Two frames around the liveness prompt; resolves the `face` object of the cast's auth (hex fields). */
export async function captureFace(video, prompt = 'turn-left') {
  const first = await frame(video, WIDTH);
  await new Promise((r) => setTimeout(r, LIVENESS_DELAY_MS));
  const second = await frame(video, WIDTH / 2); // smaller: the evidence is hex inside hex, 256 KiB at most
  const evidence = JSON.stringify({ format: 'tvote-booth-liveness/1', prompt, delay_ms: LIVENESS_DELAY_MS, frame: hex(second) });
  return { media_type: 'image/jpeg', image: hex(first), liveness_evidence: hex(new TextEncoder().encode(evidence)) };
}
