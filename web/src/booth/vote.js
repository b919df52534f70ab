// The voting page (/vote): intro → choose → review → encrypt (Web Worker) → tracking code → either
// check the encryption (Benaloh: publish the opening as spoiled, show what it held, QR for a second device,
// encrypt afresh) or authenticate (My Number card through the Digital Authentication App, or digital ID +
// face) → cast → receipt verified in the browser. Each step is drawn from `state` into <main>, so a language
// switch redraws the step as it is. The choices live in memory only; across the digital-ID redirect only the
// encrypted ballot is kept (sessionStorage, this tab), never the choices or the encryption's randomness.

import * as api from './lib/api.js';
import { Choices, describe, focusContest, renderContests, renderReview } from './lib/choices.js';
import { paintElection, periodBlock, startPage } from './lib/common.js';
import { phaseOf, verifiedContext } from './lib/election.js';
import { localized, plain, t } from './lib/i18n.js';
import { qrCanvas } from './lib/qr.js';
import { announce, byId, fillEl, h, message, trackingCodeBlock } from './lib/ui.js';
import { cameraStep } from './lib/vote-face.js';
import { receiptStep } from './lib/vote-receipt.js';

export const PENDING_KEY = 'tvote.booth.pending'; // sessionStorage: the encrypted ballot across the redirect

const s = {
  election: null, // {election, manifest, baseHash}
  step: 'intro',
  choices: null,
  ctx: null, // the protocol's election context (engine.js), once verified
  encrypted: null, // {ballot, secrets?, ballotHash, trackingCode}
  progress: { done: 0, total: 0 },
  challenge: null, // {status: 'sending'|'done'|'failed', opened?, match?, code, error?}
  jpki: null, // {transaction, appUrl, status}
  oidc: null, // {state, code}
  auth: null, // the cast's auth object
  cast: null, // {status: 'sending'|'network'|'failed', error?}
  receipt: null,
  error: null,
};

let main;

function go(step, { focus = true } = {}) {
  s.step = step;
  draw(focus);
}

function section(titleKey, ...content) {
  const heading = h('h2', { id: 'step-heading', tabindex: '-1' }, t(titleKey));
  return h('section', { 'aria-labelledby': 'step-heading', 'data-step': s.step }, heading, ...content);
}

function draw(focus = true) {
  const view = STEPS[s.step]();
  fillEl(main, h('h1', { class: 'page-title' }, t('vote.heading')), view);
  if (focus) {
    byId('step-heading').focus();
    announce(plain('a11y.new_step', { title: byId('step-heading').textContent }));
  }
}

const button = (key, onclick, cls = 'primary', vars = {}) => h('button', { type: 'button', class: cls, onclick }, t(key, vars));

function errorText(e) {
  if (e instanceof api.ApiError && e.status === 429) return plain('error.rate_limited');
  return e instanceof api.ApiError ? `${e.message} (${e.code})` : e.message;
}

const STEPS = {
  intro() {
    const open = phaseOf(s.election) === 'open';
    return section('site.nav_home',
      h('p', { class: 'election-title' }, localized(s.election.manifest.name)),
      h('p', {}, t('vote.explain')),
      periodBlock(s.election),
      h('h3', {}, t('index.what_heading')),
      h('ol', { class: 'steps' }, ['index.step1', 'index.step2', 'index.step3', 'index.step4', 'index.step5'].map((k) => h('li', {}, t(k)))),
      h('p', { class: 'note' }, t('index.revote')),
      open ? button('vote.start', () => go('choose')) : h('p', { class: 'msg msg-info', role: 'status' }, t(phaseOf(s.election) === 'closed' ? 'phase.closed_now' : 'phase.not_open_yet')));
  },

  choose() {
    const form = h('form', { class: 'contests', novalidate: true });
    const summary = h('div', { id: 'choose-errors' });
    const contests = h('div', {});
    renderContests(contests, s.choices);
    form.append(contests, summary, h('button', { type: 'submit', class: 'primary' }, t('choose.review')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const few = s.choices.tooFew();
      if (few.length === 0) return go('review');
      fillEl(summary);
      const alert = message(summary, 'error', h('span', {}, ...few.map((c, i) => [i ? ' ' : '',
        h('a', { href: `#contest-${c.id}` }, t('choose.too_few', { min: c.min, contest: localized(c.name) }))]).flat()));
      alert.setAttribute('tabindex', '-1');
      alert.focus();
    });
    return section('choose.heading', form);
  },

  review() {
    const list = h('div', {});
    renderReview(list, s.choices, (contestId) => {
      go('choose', { focus: false });
      focusContest(contestId);
    });
    return section('review.heading', h('p', {}, t('review.lead')), list, button('review.encrypt', () => encrypt()));
  },

  encrypt() {
    const { done, total } = s.progress;
    const bar = h('progress', { id: 'encrypt-progress', max: total || 1, 'aria-labelledby': 'encrypt-progress-label' });
    if (total) bar.value = done;
    const parts = [h('p', { id: 'encrypt-progress-label' }, t('encrypt.progress')), bar,
      h('p', { role: 'status', id: 'encrypt-status' }, total ? t('encrypt.status', { done, total }) : '')];
    if (s.error) {
      const box = h('div', {});
      message(box, 'error', t('encrypt.failed', { message: s.error }));
      parts.push(box, button('encrypt.retry', () => encrypt()));
    }
    return section('encrypt.heading', ...parts);
  },

  tracking() {
    return section('tracking.heading',
      trackingCodeBlock(s.encrypted.trackingCode, 'tracking.code_label'),
      h('p', {}, t('tracking.explain')),
      h('p', {}, t('tracking.choice')),
      h('div', { class: 'actions' }, button('tracking.cast', () => go('auth')), button('tracking.challenge', () => challenge(), 'secondary')),
      h('p', { class: 'note' }, t('tracking.challenge_explain')));
  },

  challenge() {
    const c = s.challenge;
    const box = h('div', {});
    if (c.status === 'sending') message(box, 'info', t('challenge.sending'));
    if (c.status === 'failed') message(box, 'error', t('challenge.failed', { message: c.error }));
    if (c.status === 'done') {
      box.append(h('h3', {}, t('challenge.result_heading')), h('dl', { class: 'review' }, describe(s.election.manifest, c.opened)));
      message(box, c.match ? 'ok' : 'error', t(c.match ? 'challenge.match' : 'challenge.mismatch'));
      const url = `${location.origin}/check?spoiled=${c.code}`;
      const qr = h('div', { class: 'qr-box' });
      qrCanvas(url, plain('challenge.qr_label', { code: c.code })).then((canvas) => canvas && qr.append(canvas));
      box.append(h('p', {}, t('challenge.second_device')), qr, h('p', {}, h('a', { href: url, class: 'url' }, url)));
    }
    const again = c.status === 'sending' ? null : button('challenge.again', () => encrypt());
    return section('challenge.heading', trackingCodeBlock(c.code, 'tracking.code_label'), box, again);
  },

  auth() {
    const methods = s.election.manifest.auth_methods ?? [];
    const options = [];
    if (methods.includes('jpki'))
      options.push(h('li', {}, button('auth.jpki', () => startJpki(), 'choice'), h('p', { class: 'note' }, t('auth.jpki_explain'))));
    if (methods.includes('oidc+face'))
      options.push(h('li', {}, button('auth.oidc', () => startOidc(), 'choice'), h('p', { class: 'note' }, t('auth.oidc_explain'))));
    const box = h('div', {});
    if (s.error) message(box, 'error', t('error.generic', { message: s.error }));
    const back = s.encrypted.secrets ? button('auth.back', () => go('tracking'), 'secondary') : null;
    return section('auth.heading', h('p', {}, t('auth.lead', { code: s.encrypted.trackingCode })), box, h('ul', { class: 'methods' }, options), back);
  },

  jpki() {
    const j = s.jpki;
    const box = h('div', {});
    if (j.appUrl) {
      const qr = h('div', { class: 'qr-box' });
      qrCanvas(j.appUrl, plain('jpki.qr_label')).then((canvas) => canvas && qr.append(canvas));
      // a new tab: on a phone the link starts the app and this page stays; where the "app" is a web page (the
      // demo's emulator) the booth keeps the encrypted ballot and goes on polling
      const link = h('a', { href: j.appUrl, class: 'button primary', target: '_blank', rel: 'noopener noreferrer' }, t('jpki.open_app'));
      box.append(h('p', {}, link), h('p', {}, t('jpki.stays')), h('p', {}, t('jpki.other_device')), qr);
    }
    const key = { starting: 'jpki.waiting', pending: 'jpki.waiting', approved: 'jpki.approved', refused: 'jpki.rejected', expired: 'jpki.expired', used: 'jpki.expired' }[j.status];
    const over = ['refused', 'expired', 'used'].includes(j.status);
    if (key) message(box, over ? 'error' : 'info', t(key));
    if (over) box.append(button('jpki.again', () => startJpki()));
    if (j.error) message(box, 'error', t('error.generic', { message: j.error }));
    return section('jpki.heading', box, button('jpki.cancel', () => {
      s.jpki = null;
      go('auth');
    }, 'secondary'));
  },

  face: () => cameraStep(s, { section, button, go, cast }),
  cast() {
    const box = h('div', {});
    const c = s.cast;
    if (c.status === 'sending') message(box, 'info', t('cast.sending'));
    if (c.status === 'unknown') message(box, 'info', t('cast.unknown_outcome'));
    if (c.status === 'network') {
      message(box, 'error', t('cast.network'));
      box.append(button('cast.retry', () => cast(s.auth)));
    }
    if (c.status === 'failed') {
      message(box, 'error', t('cast.failed', { message: c.error }));
      box.append(button('cast.restart_auth', () => {
        s.error = null;
        go('auth');
      }));
    }
    return section('cast.heading', trackingCodeBlock(s.encrypted.trackingCode, 'tracking.code_label'), box);
  },

  receipt: () => receiptStep(s, { section, button, trackingCodeBlock, voteAgain }),
};

async function encrypt() {
  s.error = null;
  s.encrypted = null;
  s.challenge = null;
  s.progress = { done: 0, total: 0 };
  go('encrypt');
  try {
    s.ctx ??= await verifiedContext();
    const engine = await import('./engine.js');
    s.encrypted = await engine.encryptBallot(s.ctx, s.choices.toProtocol(), (done, total) => {
      s.progress = { done, total };
      const bar = document.getElementById('encrypt-progress');
      if (bar) {
        bar.max = total;
        bar.value = done;
        fillEl(byId('encrypt-status'), t('encrypt.status', { done, total }));
      }
    });
    go('tracking');
  } catch (e) {
    s.error = e instanceof Error ? e.message : String(e);
    draw();
  }
}

async function challenge() {
  const { ballot, secrets, trackingCode } = s.encrypted;
  s.challenge = { status: 'sending', code: trackingCode };
  go('challenge');
  try {
    const engine = await import('./engine.js');
    const revealed = engine.revealedOf(ballot, secrets);
    await api.spoilBallot(ballot, revealed);
    // this device's own reading of the opening (the second device re-checks it from the ledger)
    const opened = engine.verifyRevealed(s.ctx, ballot, revealed);
    const want = s.choices.toProtocol();
    const match = s.election.manifest.contests.every((c) => [...(opened[c.id] ?? [])].sort().join() === [...want[c.id]].sort().join());
    s.challenge = { status: 'done', code: trackingCode, opened, match };
  } catch (e) {
    s.challenge = { status: 'failed', code: trackingCode, error: errorText(e) };
  }
  s.encrypted = null; // spoiled: never cast; the next step encrypts afresh
  draw();
}

async function startJpki() {
  s.jpki = { status: 'starting' };
  go('jpki');
  try {
    const { challenge } = await api.jpkiChallenge();
    const started = await api.jpkiAppStart(s.encrypted.ballotHash, challenge);
    s.jpki = { transaction: started.transaction, appUrl: started.app_url, status: 'pending' };
    draw(false);
    for (;;) {
      await new Promise((r) => setTimeout(r, 2000));
      if (s.step !== 'jpki' || s.jpki?.transaction !== started.transaction) return; // cancelled
      const st = await api.jpkiAppStatus(started.transaction);
      if (st.status === 'pending') continue;
      s.jpki.status = st.status;
      draw(false);
      if (st.status === 'approved') return cast({ method: 'jpki-app', transaction: started.transaction });
      return;
    }
  } catch (e) {
    if (s.jpki) s.jpki.error = errorText(e);
    draw(false);
  }
}

async function startOidc() {
  try {
    const started = await api.oidcStart(s.encrypted.ballotHash);
    const { ballot, ballotHash, trackingCode } = s.encrypted; // no secrets, no choices
    sessionStorage.setItem(PENDING_KEY, JSON.stringify({ ballot, ballotHash, trackingCode, state: started.state, lang: document.documentElement.lang }));
    fillEl(main, h('p', { role: 'status' }, t('oidc.redirecting')));
    location.assign(started.authorization_url);
  } catch (e) {
    s.error = errorText(e);
    draw();
  }
}

/** Cast with `auth`; a lost connection is resolved by looking the tracking code up (no half-cast ballot). */
async function cast(auth) {
  s.auth = auth;
  s.cast = { status: 'sending' };
  go('cast');
  try {
    s.receipt = await api.castBallot(s.encrypted.ballot, auth);
  } catch (e) {
    if (e instanceof api.NetworkError || (e instanceof api.ApiError && e.code === 'ballot.duplicate')) {
      s.cast = { status: 'unknown' };
      draw(false);
      try {
        s.receipt = await api.lookupBallot(s.encrypted.trackingCode);
      } catch (e2) {
        s.cast = e instanceof api.ApiError ? { status: 'failed', error: errorText(e) } : { status: 'network' };
        return draw();
      }
    } else {
      s.cast = { status: 'failed', error: errorText(e) };
      return draw();
    }
  }
  sessionStorage.removeItem(PENDING_KEY);
  go('receipt');
}

function voteAgain() {
  s.choices = new Choices(s.election.manifest);
  s.encrypted = null;
  s.receipt = null;
  s.jpki = null;
  s.oidc = null;
  go('choose');
}

/** Back from the digital-ID provider (oidc-callback.js put code and state beside the pending ballot). */
function resume() {
  const raw = sessionStorage.getItem(PENDING_KEY);
  const pending = raw ? JSON.parse(raw) : null;
  if (!pending?.code || !pending?.state || !pending.ballot) return false;
  s.encrypted = { ballot: pending.ballot, ballotHash: pending.ballotHash, trackingCode: pending.trackingCode };
  s.oidc = { state: pending.state, code: pending.code };
  s.choices = new Choices(s.election.manifest);
  s.step = 'face';
  return true;
}

startPage('site.nav_vote', (election, { redraw }) => {
  main = byId('main');
  if (!redraw) {
    s.election = election;
    s.choices = new Choices(election.manifest);
    if (new URLSearchParams(location.search).get('resume') === 'oidc') resume();
  }
  paintElection(election, 'site.nav_vote');
  draw(!redraw && s.step !== 'intro');
});
