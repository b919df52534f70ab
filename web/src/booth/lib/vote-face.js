// The face-check step of the digital-ID method: turn on the camera (getUserMedia), show the liveness
// prompt, take the two frames, cast. A refused or missing camera leads to a clear way back: try again, or
// choose another way to sign in (the encrypted ballot stays the same), or vote at a polling place.

import { CameraRefused, captureFace, startCamera, stopCamera } from './camera.js';
import { plain, t } from './i18n.js';
import { h, message } from './ui.js';

export function cameraStep(s, { section, button, go, cast }) {
  s.face ??= { status: 'idle' };
  const f = s.face;
  const redraw = () => go('face', { focus: false });
  const box = h('div', { class: 'face' });
  box.append(h('p', {}, t('face.explain')));
  if (f.status === 'refused') {
    const alert = message(box, 'error', t(f.kind === 'missing' ? 'face.no_camera' : 'face.refused', { reason: f.reason }));
    alert.id = 'camera-refused';
    alert.setAttribute('tabindex', '-1');
    if (f.kind === 'missing') alert.append(' ', t('face.refused', { reason: f.reason }));
  }
  if (f.status === 'live' || f.status === 'capturing') {
    // the same <video> across redraws (a language switch must not stop the camera)
    f.video.setAttribute('aria-label', plain('face.video_label'));
    box.append(f.video, h('p', { class: 'prompt', role: 'status' }, t('face.prompt')));
  }
  const actions = h('div', { class: 'actions' });
  if (f.status === 'idle') actions.append(button('face.start', () => turnOn()));
  if (f.status === 'refused') actions.append(button('face.retry', () => turnOn()));
  if (f.status === 'live') actions.append(button('face.capture', () => capture()));
  if (f.status === 'refused' || f.status === 'idle' || f.status === 'live')
    actions.append(button('face.other_method', () => {
      stopCamera(f.stream, f.video);
      s.face = null;
      go('auth');
    }, 'secondary'));
  box.append(actions);

  async function turnOn() {
    f.status = 'starting';
    f.video = h('video', { class: 'camera', autoplay: true, muted: true, playsinline: true });
    f.video.muted = true;
    try {
      f.stream = await startCamera(f.video);
      f.status = 'live';
      redraw();
      document.querySelector('.face button')?.focus();
    } catch (e) {
      Object.assign(f, { status: 'refused', kind: e instanceof CameraRefused ? e.kind : 'failed', reason: e.message });
      redraw();
      document.getElementById('camera-refused')?.focus();
    }
  }

  async function capture() {
    f.status = 'capturing';
    redraw();
    try {
      const face = await captureFace(f.video);
      stopCamera(f.stream, f.video);
      s.face = null;
      await cast({ method: 'oidc+face', state: s.oidc.state, code: s.oidc.code, face });
    } catch (e) {
      stopCamera(f.stream, f.video);
      Object.assign(f, { status: 'refused', kind: 'failed', reason: e.message });
      redraw();
    }
  }

  return section('face.heading', box);
}
