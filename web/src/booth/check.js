// Check my ballot (/check, /check?code=…, /check?spoiled=…): enter or scan a tracking code; this browser
// verifies the receipt against the public record (ledger.js: signed checkpoint, inclusion, the entry, the
// record only grew, the witnesses' cosignatures), says whether a cast ballot is the one that counts
// (re-voted, overridden at a polling place), opens a spoiled ballot (the Benaloh second device), and shows
// how many checks were made and the booth's published software digest against the one served.

import * as api from './lib/api.js';
import { describe } from './lib/choices.js';
import { startPage } from './lib/common.js';
import { verifiedContext } from './lib/election.js';
import { plain, t } from './lib/i18n.js';
import { CameraRefused, startCamera, stopCamera } from './lib/camera.js';
import { ReceiptCheckFailed, completeReceipt, countingStatus, verifyReceipt } from './lib/ledger.js';
import { scanVideo } from './lib/scan.js';
import { readScanned } from './lib/scanned.js';
import { announce, fillEl, h, message } from './lib/ui.js';

const STEPS = ['signature', 'inclusion', 'entry', 'consistency', 'witnessed'];
const page = { typed: '', result: null, scanning: null, scanNote: null };
let election;

function draw() {
  const main = document.getElementById('main');
  const input = h('input', { id: 'code', name: 'code', type: 'text', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false',
    inputmode: 'text', 'aria-describedby': 'code-hint', value: page.typed, class: 'code-input' });
  const error = h('p', { id: 'code-error', class: 'field-error' });
  const form = h('form', { class: 'check-form', novalidate: true },
    h('label', { for: 'code' }, t('check.code_label')),
    h('p', { id: 'code-hint', class: 'hint' }, t('check.code_hint')),
    input, error,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('check.submit')),
      h('button', { type: 'button', class: 'secondary', id: 'scan', onclick: () => scan() }, t(page.scanning ? 'check.scan_stop' : 'check.scan'))));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    stopScanning();
    page.scanNote = null;
    page.typed = input.value;
    check(input.value, 'auto');
  });
  const scanBox = h('div', { id: 'scan-box' });
  if (page.scanNote) message(scanBox, page.scanNote.kind, t(page.scanNote.key, page.scanNote.vars));
  if (page.scanning?.video) scanBox.append(page.scanning.video);
  const result = h('section', { id: 'result', 'aria-labelledby': 'result-heading', 'aria-live': 'polite' });
  fillEl(main, h('h1', {}, t('check.heading')), h('p', {}, t('check.lead')), form, scanBox, result, ...boothBlock());
  paintResult();
  if (page.inputError) {
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', 'code-hint code-error');
    fillEl(error, h('span', { class: 'msg-icon', 'aria-hidden': 'true', text: '⚠ ' }), t(page.inputError));
  }
}

function paintResult() {
  const box = document.getElementById('result');
  const r = page.result;
  if (!box || !r) return;
  fillEl(box, h('h2', { id: 'result-heading' }, r.code ?? t('check.heading')));
  if (r.status === 'checking') message(box, 'info', t('check.checking'));
  if (r.status === 'not-found') message(box, 'error', t('check.not_found'));
  if (r.passed?.length)
    box.append(h('ul', { class: 'checks' }, STEPS.filter((x) => r.passed.includes(x)).map((x) =>
      h('li', {}, h('span', { class: 'msg-icon', 'aria-hidden': 'true', text: '✓ ' }), t(`verify.step_${x}`)))));
  if (r.receipt?.kind === 'cast' && r.status === 'done')
    message(box, 'ok', t('check.on_record_cast', { channel: plain(`check.channel_${r.channel === 'kiosk' ? 'kiosk' : 'internet'}`), index: r.receipt.leaf_index }));
  if (r.receipt?.kind === 'spoiled' && r.status === 'done') message(box, 'ok', t('check.on_record_spoiled', { index: r.receipt.leaf_index }));
  if (r.witnessed) message(box, 'ok', t('receipt.verified', r.witnessed));
  if (r.unwitnessed) message(box, 'info', t('receipt.verified_unwitnessed'));
  if (r.logOnly && r.status === 'done') message(box, 'ok', t('receipt.verified_log'));
  if (r.keySource === 'server') message(box, 'info', t('check.pin_server'));
  if (r.counting) {
    const key = { counts: 'check.counts', revoted: 'check.revoted', overridden: 'check.overridden', kiosk: 'check.kiosk_counts' }[r.counting];
    message(box, r.counting === 'revoted' || r.counting === 'overridden' ? 'info' : 'ok', t(key));
  }
  if (r.opened) box.append(h('h3', {}, t('check.spoiled_contents')), h('dl', { class: 'review' }, describe(election.manifest, r.opened)));
  if (r.status === 'failed') message(box, 'error', t('receipt.failed', { check: r.check, message: r.message }));
}

/**
 * The booth's digest published on the ledger before voting opened, against the digest of what THIS browser
 * is served, recomputed here from every listed file (not the server's own claim); and the checks count.
 */
function boothBlock() {
  const count = h('p', { id: 'checked-count', class: 'note' });
  const published = h('p', {}, t('check.digest_published', { digest: plain('check.digest_unknown') }));
  const served = h('p', {}, t('check.digest_served', { digest: plain('check.digest_unknown') }));
  const verdict = h('div', {});
  (async () => {
    const info = await api.boothInfo();
    fillEl(count, t('check.checked_count', { count: info.checked_ballots }));
    if (!info.published) return;
    fillEl(published, t('check.digest_published', { digest: info.published.digest }));
    const engine = await import('./engine.js');
    const mine = engine.boothDigest(await api.servedAssets(info.published.assets));
    fillEl(served, t('check.digest_served', { digest: mine }));
    const same = mine === info.published.digest;
    message(verdict, same ? 'ok' : 'error', t(same ? 'check.digest_same' : 'check.digest_differs'));
  })().catch(() => {
    if (!count.textContent) count.remove();
  });
  return [count, h('section', { 'aria-labelledby': 'digest-heading', class: 'digest' }, h('h2', { id: 'digest-heading' }, t('check.digest_heading')), published, served, verdict)];
}

async function check(typed, expectKind, { ballotHash = null } = {}) {
  const engine = await import('./engine.js');
  const code = engine.readTrackingCode(typed);
  page.inputError = code ? null : 'check.bad_code';
  if (!code) {
    page.result = null;
    draw();
    document.getElementById('code').focus();
    return;
  }
  page.typed = code;
  page.result = { status: 'checking', code, passed: [] };
  draw();
  const r = page.result;
  try {
    r.receipt = await completeReceipt(await api.checkBallot(code));
    if (ballotHash !== null && r.receipt.ballot_hash !== ballotHash)
      throw Object.assign(new Error(`the ballot with this tracking code has the ballot hash ${r.receipt.ballot_hash}, not the scanned ${ballotHash}`), { code: 'ballot-hash' });
    const spoiled = r.receipt.kind === 'spoiled';
    const res = await verifyReceipt(engine, election.manifest, r.receipt, {
      requireWitnessed: spoiled ? false : null,
      steps: (x) => (r.passed.push(x), paintResult()),
    }).catch((e) => {
      if (e instanceof ReceiptCheckFailed && e.check === 'checkpoint-unwitnessed') return { unwitnessed: true };
      throw e;
    });
    if (res.unwitnessed) r.unwitnessed = true;
    r.witnessed = res.witnessed ?? null;
    r.logOnly = !res.unwitnessed && !res.witnessesNamed;
    r.keySource = res.keySource;
    const payload = res.payload ?? JSON.parse((await api.entries(r.receipt.leaf_index, r.receipt.leaf_index + 1)).entries[0].entry).payload;
    r.channel = payload.channel;
    if (spoiled) r.opened = engine.verifyRevealed(await verifiedContext(), payload.ballot, payload.revealed);
    else r.counting = await countingStatus(payload, r.receipt.leaf_index);
    r.status = 'done';
    if (expectKind === 'spoiled' && !spoiled) Object.assign(r, { status: 'failed', check: 'kind', message: 'not a spoiled ballot' });
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 404) r.status = 'not-found';
    else Object.assign(r, { status: 'failed', check: e instanceof ReceiptCheckFailed ? e.check : e.code ?? 'error', message: e.message });
  }
  draw();
  document.getElementById('result-heading')?.setAttribute('tabindex', '-1');
  document.getElementById('result-heading')?.focus();
}

/**
 * Scan a QR code with the camera (lib/scan.js: BarcodeDetector, else the booth's decoder in a worker), then
 * act on what it holds (lib/scanned.js): a tracking code or this booth's /check address is checked here; a
 * ballot hash is checked by its tracking code and must be the receipt's; another site's address or any other
 * text is refused with a message, never opened. Pressing the button again stops the camera.
 */
async function scan() {
  if (page.scanning) {
    stopScanning();
    page.scanNote = null;
    draw();
    announce(plain('check.scan_stopped'));
    return focusScan();
  }
  const video = h('video', { class: 'camera scan-camera', autoplay: true, muted: true, playsinline: true, 'aria-label': plain('check.scan_video_label') });
  const session = { video, stream: null };
  Object.assign(page, { scanning: session, scanNote: { kind: 'info', key: 'check.scan_looking' }, inputError: null, result: null });
  draw();
  focusScan();
  announce(plain('check.scan_looking'));
  const active = () => page.scanning === session;
  let text = null;
  try {
    session.stream = await startCamera(video, { facingMode: 'environment' });
    if (!active()) return stopCamera(session.stream, video);
    text = await scanVideo(video, active);
  } catch (e) {
    if (!active()) return;
    stopScanning();
    page.scanNote = { kind: 'error', key: e instanceof CameraRefused && e.kind === 'denied' ? 'check.scan_denied' : 'check.scan_unavailable' };
    draw();
    return focusScan();
  }
  if (text === null || !active()) return;
  stopScanning();
  const engine = await import('./engine.js');
  const what = readScanned(text, location.origin, engine.readTrackingCode);
  if (what.kind === 'code') {
    page.scanNote = null;
    page.typed = what.code;
    return check(what.code, what.expect);
  }
  if (what.kind === 'hash') {
    page.scanNote = null;
    const code = engine.trackingCodeOfHash(what.hash);
    page.typed = code;
    return check(code, 'auto', { ballotHash: what.hash });
  }
  page.scanNote = what.kind === 'foreign' ? { kind: 'error', key: 'check.scan_foreign', vars: { site: what.site } } : { kind: 'error', key: 'check.scan_junk' };
  draw();
  focusScan();
}

function stopScanning() {
  const session = page.scanning;
  page.scanning = null;
  if (session) stopCamera(session.stream, session.video);
}

function focusScan() {
  document.getElementById('scan')?.focus();
}

startPage('site.nav_check', (state, { redraw }) => {
  election = state;
  draw();
  if (!redraw) {
    const q = new URLSearchParams(location.search);
    const given = q.get('spoiled') ?? q.get('code');
    if (given) {
      page.typed = given;
      check(given, q.has('spoiled') ? 'spoiled' : 'auto');
    }
  }
});
