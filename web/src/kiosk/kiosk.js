// The polling-place kiosk's page (/ of the kiosk service `tvote-kiosk serve`; docs/kiosk.md, "The kiosk
// screen"). Poll workers: closed → open (zero report) → locked ⇄ unlock for one voter → … → close (closing
// report). One voter: choose → review → insert card → signing password on the on-screen pad → casting (the
// ballot is encrypted here, in the booth's worker; the service signs it with the card and casts it) → "take
// your receipt" with the tracking code → locked. Every refusal has its own screen (lib/screens.js). An idle
// voter gets a countdown, then the kiosk locks and everything of that voter is dropped: choices, password,
// encrypted ballot, receipt, the language they chose, and every node that showed them.
//
// The booth's libraries do the rest: choices.js (the contests as a form), i18n.js (Japanese first; the kiosk's
// texts are web/src/kiosk/i18n/), election.js + engine.js (the manifest, the joint key, the encryption worker),
// api.js (the service passes /api/v1/election… through to the election server).

import { ApiError, NetworkError } from '../booth/lib/api.js';
import { Choices, focusContest, renderContests, renderReview } from '../booth/lib/choices.js';
import { loadElection, verifiedContext } from '../booth/lib/election.js';
import { addTexts, language, localized, plain, setLanguage, t } from '../booth/lib/i18n.js';
import { announce, byId, fillEl, h, initChrome, message, paintChrome, setTitle, trackingCodeBlock } from '../booth/lib/ui.js';
import en from './i18n/en.json' with { type: 'json' };
import ja from './i18n/ja.json' with { type: 'json' };
import { IdleTimer } from './lib/idle.js';
import * as kiosk from './lib/kiosk-api.js';
import { PinBuffer, POLL_WORKER_PIN, VOTER_PIN, keyOf } from './lib/pinpad.js';
import { RECEIPT_SECONDS, VOTER_SCREENS, errorScreen, screenOfState, warnSeconds } from './lib/screens.js';

addTexts({ ja, en });

const s = {
  kiosk: null, // the service's last GET /kiosk/api/state
  election: null, // {election, manifest, baseHash}: the election, not the voter
  screen: 'loading',
  notice: null, // a poll worker's message on the next screen: {kind, key, vars}
  pin: null, // the PinBuffer of the pad on screen (the voter's signing password or the poll worker's PIN)
  // the voter's, all dropped by forgetVoter():
  voterSession: null,
  choices: null,
  encrypted: null, // {ballot, trackingCode}
  progress: null, // {done, total} while encrypting
  casting: null, // 'encrypt' | 'send'
  error: null, // {code, status, details}
  receipt: null, // {tracking_code, ledger_index, …} and printed
};

let ctx = null; // the protocol's election context (the election's, not the voter's)
let main;
let idle = null;

// ------------------------------------------------------------------------------------------------ drawing

function go(screen, { focus = true } = {}) {
  s.screen = screen;
  if (screen === 'pin' || screen === 'closed' || screen === 'locked' || screen === 'unconfirmed') s.pin?.clear();
  draw(focus);
  if (VOTER_SCREENS.has(screen)) idleFor(s.kiosk?.idle_seconds ?? 90);
  else if (screen === 'receipt') idleFor(RECEIPT_SECONDS);
  else stopIdle();
}

function section(titleKey, ...content) {
  const heading = h('h2', { id: 'step-heading', tabindex: '-1' }, t(titleKey));
  return h('section', { 'aria-labelledby': 'step-heading', 'data-screen': s.screen }, heading, ...content);
}

function draw(focus = true) {
  paintHeader();
  const view = SCREENS[s.screen]();
  fillEl(main, h('h1', { class: 'page-title' }, t('kiosk.title')), view);
  if (focus) {
    byId('step-heading').focus();
    announce(plain('a11y.new_step', { title: byId('step-heading').textContent }));
  }
}

function paintHeader() {
  const k = s.kiosk;
  fillEl(byId('kiosk-place'), k?.polling_place ? plain('kiosk.place', { place: k.polling_place, kiosk: k.kiosk_id }) : '');
  setTitle(plain('kiosk.page_title'), s.election ? localized(s.election.manifest.name) : null);
}

const button = (key, onclick, cls = 'primary', attrs = {}) => h('button', { type: 'button', class: cls, onclick, ...attrs }, t(key));
const actions = (...buttons) => h('div', { class: 'actions' }, ...buttons);
const lead = (key, vars = {}) => h('p', { class: 'lead' }, t(key, vars));

function noticeBox() {
  const box = h('div', {});
  if (s.notice) message(box, s.notice.kind, s.notice.key ? t(s.notice.key, s.notice.vars ?? {}) : s.notice.text);
  return box;
}

/** A refusal's text in the language on screen: the service's message_ja / message_en, else its message. */
function refusalText(error) {
  const d = error?.details ?? {};
  const text = (language() === 'ja' ? d.message_ja : d.message_en) ?? d.message ?? error?.message ?? '';
  return plain('kiosk.refused', { message: text, code: error?.code ?? '' });
}

// --------------------------------------------------------------------------------------------- the pads

/**
 * An on-screen PIN pad: the keys of `rule`, a masked display, "delete one", "clear", and the `submits`
 * buttons ([key, action]); those stay off until the PIN is long enough. A physical keyboard works too.
 */
function pinPad(rule, labelKey, submits) {
  s.pin ??= new PinBuffer(rule);
  if (s.pin.rule !== rule) {
    s.pin.clear();
    s.pin = new PinBuffer(rule);
  }
  const pin = s.pin;
  const display = h('p', { class: 'pin-display', id: 'pin-display', role: 'img', 'aria-label': plain(labelKey) });
  const count = h('p', { class: 'pin-count', id: 'pin-count', 'aria-live': 'polite' });
  const submitButtons = submits.map(([key, action]) => button(key, () => pin.complete && action(pin), 'primary', { 'data-pin-submit': '' }));
  const update = () => {
    display.textContent = pin.masked();
    const parts = [t('kiosk.pin_count', { count: pin.length })];
    if (!pin.complete) parts.push(' ', t(rule === VOTER_PIN ? 'kiosk.pin_more' : 'kiosk.pw_needed', { count: rule.min - pin.length, min: rule.min }));
    else if (pin.full) parts.push(' ', t('kiosk.pin_full'));
    fillEl(count, ...parts);
    for (const b of submitButtons) b.disabled = !pin.complete;
  };
  const keys = [...rule.keys].map((k) => h('button', { type: 'button', class: 'key', 'data-key': k, onclick: () => pin.press(k) && update() }, k));
  const pad = h('div', { class: 'pinpad' },
    h('p', { class: 'pin-label', id: 'pin-label' }, t(labelKey)),
    display, count,
    h('div', { class: `pin-keys${rule === POLL_WORKER_PIN ? ' digits' : ''}`, role: 'group', 'aria-label': plain('kiosk.pin_keys') }, keys),
    h('div', { class: 'pin-edit' },
      button('kiosk.backspace', () => pin.backspace() && update(), 'secondary'),
      button('kiosk.clear', () => {
        pin.clear();
        update();
      }, 'secondary')),
    actions(...submitButtons));
  pad.dataset.rule = rule === VOTER_PIN ? 'voter' : 'poll-worker';
  update();
  padKeys = (event) => {
    if (event.key === 'Backspace') pin.backspace();
    else if (event.key === 'Enter') return;
    else {
      const key = keyOf(rule, event.key);
      if (!key || !pin.press(key)) return;
    }
    event.preventDefault();
    update();
  };
  return pad;
}

let padKeys = null; // the physical keyboard's handler of the pad on screen

/** Take the PIN out of the pad for one request; the pad forgets it at once. */
function takePin(pin) {
  const value = pin.value();
  pin.clear();
  return value;
}

// --------------------------------------------------------------------------------------------- screens

function pollWorkerPad(...submits) {
  return pinPad(POLL_WORKER_PIN, 'kiosk.pw_pin_label', submits);
}

function stats() {
  const k = s.kiosk;
  return k && k.session ? h('p', { class: 'stats' }, t('kiosk.ballots_cast', { session: k.session, count: k.ballots_cast ?? 0 })) : null;
}

const SCREENS = {
  loading: () => section('kiosk.loading'),

  closed: () => section('kiosk.closed_heading', lead('kiosk.closed_lead'), noticeBox(),
    pollWorkerPad(['kiosk.open', (pin) => pollWorker(() => kiosk.open(takePin(pin)), { kind: 'ok', key: 'kiosk.opened' })])),

  locked() {
    // unlocked for a voter this page does not hold (it was reloaded): a poll worker locks first
    const pad = s.kiosk?.state === 'ready'
      ? pollWorkerPad(['kiosk.lock', (pin) => pollWorkerLock(takePin(pin))])
      : pollWorkerPad(['kiosk.unlock', (pin) => unlock(takePin(pin))],
        ['kiosk.close', (pin) => pollWorker(() => kiosk.close(takePin(pin)), { kind: 'ok', key: 'kiosk.closed_done' })]);
    return section('kiosk.locked_heading', lead('kiosk.locked_lead'), stats(), noticeBox(), pad);
  },

  revoked: () => section('kiosk.revoked_heading', lead('kiosk.revoked_lead'), actions(button('kiosk.check_again', () => refresh(), 'secondary'))),
  offline: () => section('kiosk.offline_heading', lead('kiosk.offline_lead'), actions(button('kiosk.check_again', () => refresh(), 'secondary'))),
  // the service did not answer the page: whatever it held of a voter, a poll worker looks; the page forgets
  device: () => section('kiosk.device_heading', lead('kiosk.device_lead'), actions(button('kiosk.check_again', () => {
    forgetVoter();
    refresh();
  }, 'secondary'))),

  choose() {
    const form = h('form', { class: 'contests', novalidate: true });
    const summary = h('div', { id: 'choose-errors' });
    const contests = h('div', {});
    renderContests(contests, s.choices);
    form.append(contests, summary, actions(h('button', { type: 'submit', class: 'primary' }, t('choose.review')), button('kiosk.cancel', () => endVoter(), 'secondary')));
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
    return section('review.heading', h('p', {}, t('review.lead')), list,
      actions(button('kiosk.review_next', () => {
        s.encrypted = null; // these choices are the ones to encrypt
        go('card');
      }), button('kiosk.cancel', () => endVoter(), 'secondary')));
  },

  card() {
    const status = h('div', { id: 'card-status' });
    return section('kiosk.card_heading', lead('kiosk.card_lead'), status,
      actions(button('kiosk.card_ready', (event) => checkCard(event.currentTarget, status)),
        button('kiosk.back', () => go('review'), 'secondary'), button('kiosk.cancel', () => endVoter(), 'secondary')));
  },

  pin: () => section('kiosk.pin_heading', lead('kiosk.pin_lead'),
    pinPad(VOTER_PIN, 'kiosk.pin_display', [['kiosk.pin_submit', (pin) => cast(takePin(pin))]]),
    actions(button('kiosk.cancel', () => endVoter(), 'secondary'))),

  casting() {
    const parts = [];
    if (s.casting === 'encrypt') {
      const { done, total } = s.progress ?? { done: 0, total: 0 };
      const bar = h('progress', { id: 'encrypt-progress', max: total || 1, 'aria-labelledby': 'casting-status' });
      if (total) bar.value = done;
      parts.push(h('p', { id: 'casting-status', role: 'status' }, t('kiosk.casting_encrypt')), bar);
    } else {
      parts.push(h('p', { id: 'casting-status', role: 'status', class: 'lead' }, t('kiosk.casting_send')));
    }
    if (s.encrypted) parts.unshift(trackingCodeBlock(s.encrypted.trackingCode, 'tracking.code_label'));
    return section('kiosk.casting_heading', ...parts);
  },

  receipt() {
    const r = s.receipt;
    const box = h('div', {});
    if (!r.printed) message(box, 'error', t('kiosk.receipt_not_printed'));
    return section('kiosk.receipt_heading', lead('kiosk.receipt_lead'),
      trackingCodeBlock(r.tracking_code, 'tracking.code_label'),
      Number.isInteger(r.ledger_index) ? h('p', {}, t('kiosk.receipt_index', { index: r.ledger_index })) : null,
      box, h('p', { class: 'lead' }, t('kiosk.receipt_card')),
      actions(button('kiosk.done', () => finish())));
  },

  unconfirmed() {
    const code = s.encrypted?.trackingCode ?? s.error?.details?.tracking_code ?? s.kiosk?.unconfirmed;
    const again = s.voterSession
      ? actions(button('kiosk.check_again', () => settle(() => kiosk.recheckAsVoter(s.voterSession)), 'secondary'))
      : null;
    return section('kiosk.unconfirmed_heading',
      typeof code === 'string' ? trackingCodeBlock(code, 'tracking.code_label') : null,
      errorBox('kiosk.unconfirmed_text'), again, noticeBox(),
      h('p', {}, t('kiosk.unconfirmed_worker')),
      pollWorkerPad(['kiosk.check_again', (pin) => settle(() => kiosk.recheckAsPollWorker(takePin(pin)), { pollWorker: true })],
        ['kiosk.lock', (pin) => pollWorkerLock(takePin(pin))]));
  },

  pin_wrong: () => refusalScreen('pin_wrong', { tries: s.error?.details?.tries_left ?? '?' }),
  pin_format: () => refusalScreen('pin_format'),
  card_locked: () => refusalScreen('card_locked'),
  card_removed: () => refusalScreen('card_removed'),
  card_absent: () => refusalScreen('card_absent'),
  card_different: () => refusalScreen('card_different'),
  card_unusable: () => refusalScreen('card_unusable'),
  not_cast: () => refusalScreen('not_cast'),
  session_over: () => refusalScreen('session_over'),
  refused() {
    const box = errorBox('kiosk.refused_text');
    box.firstChild.append(' ', refusalText(s.error));
    return section('kiosk.refused_heading', box, actions(button('kiosk.finish', () => endVoter())));
  },
};

function errorBox(key, vars = {}) {
  const box = h('div', {});
  message(box, 'error', t(key, vars));
  return box;
}

/** A refusal's screen: what happened, and "try again" (to the screen lib/screens.js names) or "finish". */
function refusalScreen(name, vars = {}) {
  const { next } = errorScreen(s.error?.code);
  const buttons = [];
  if (next && s.voterSession) buttons.push(button('kiosk.try_again', () => go(next)));
  buttons.push(button(s.voterSession ? 'kiosk.finish' : 'kiosk.done', () => endVoter(), buttons.length ? 'secondary' : 'primary'));
  return section(`kiosk.${name}_heading`, errorBox(`kiosk.${name}_text`, vars), actions(...buttons));
}

// --------------------------------------------------------------------------------------------- actions

/** Ask the service for its state and show its screen (after forgetting any voter). */
async function refresh({ focus = true } = {}) {
  try {
    s.kiosk = await kiosk.state();
  } catch (e) {
    s.kiosk = null;
    s.error = errorOf(e);
    return go(e instanceof NetworkError ? 'device' : 'offline', { focus });
  }
  go(screenOfState(s.kiosk.state, { voterSession: s.voterSession, unconfirmed: s.kiosk.unconfirmed }), { focus });
}

function errorOf(e) {
  if (e instanceof ApiError) return { code: e.code, status: e.status, message: e.message, details: e.details };
  if (e instanceof NetworkError) return { code: 'network', status: 0, message: e.message, details: {} };
  return { code: 'kiosk.page', status: 0, message: e instanceof Error ? e.message : String(e), details: {} };
}

/** A poll worker's PIN refused (wrong, locked, or another refusal): said on the same screen. */
function pollWorkerRefused(e) {
  const err = errorOf(e);
  if (err.code === 'network') return go('device');
  if (err.code === 'kiosk.poll_worker' && Number.isInteger(err.details.tries_left)) s.notice = { kind: 'error', key: 'kiosk.pw_wrong', vars: { tries: err.details.tries_left } };
  else if (err.code === 'kiosk.poll_worker_locked') s.notice = { kind: 'error', key: 'kiosk.pw_locked' };
  else s.notice = { kind: 'error', text: refusalText(err) };
  draw();
}

async function pollWorker(call, done) {
  s.notice = null;
  try {
    await call();
  } catch (e) {
    return pollWorkerRefused(e);
  }
  s.notice = done;
  await refresh();
}

async function unlock(pin) {
  s.notice = null;
  forgetVoter();
  let answer;
  try {
    s.election ??= await loadElection();
    answer = await kiosk.unlock(pin);
  } catch (e) {
    return pollWorkerRefused(e);
  }
  s.voterSession = String(answer.voter_session);
  lastTouch = Date.now();
  s.choices = new Choices(s.election.manifest);
  s.kiosk = { ...s.kiosk, state: 'ready' };
  go('choose');
}

async function pollWorkerLock(pin) {
  s.notice = null;
  try {
    await kiosk.lockAsPollWorker(pin);
  } catch (e) {
    return pollWorkerRefused(e);
  }
  forgetVoter();
  await refresh();
}

/** The voter leaves (cancel, idle, finish after a refusal): the service locks, the page forgets them. */
async function endVoter() {
  const session = s.voterSession;
  forgetVoter();
  go('loading', { focus: false });
  if (session) {
    try {
      await kiosk.lockAsVoter(session);
    } catch {
      // already locked (its own idle time, or after a cast): the state says so just below
    }
  }
  await refresh();
}

/** After the receipt: the service locked itself at the cast; the page forgets the voter. */
async function finish() {
  forgetVoter();
  await refresh();
}

async function checkCard(buttonEl, status) {
  buttonEl.disabled = true;
  fillEl(status);
  message(status, 'info', t('kiosk.card_checking'));
  try {
    await kiosk.card(s.voterSession);
  } catch (e) {
    return refusal(e);
  }
  go('pin');
}

function refusal(e) {
  s.error = errorOf(e);
  const { screen } = errorScreen(s.error.code);
  if (screen === 'session_over') s.voterSession = null;
  go(screen);
}

async function cast(cardPin) {
  try {
    if (!s.encrypted) {
      s.casting = 'encrypt';
      s.progress = { done: 0, total: 0 };
      go('casting');
      ctx ??= await verifiedContext();
      const engine = await import('../booth/engine.js');
      const done = await engine.encryptBallot(ctx, s.choices.toProtocol(), (d, total) => {
        s.progress = { done: d, total };
        const bar = document.getElementById('encrypt-progress');
        if (bar) {
          bar.max = total;
          bar.value = d;
        }
      });
      if (s.screen !== 'casting') return; // the voter is gone (cannot happen: no idle reset while casting)
      s.encrypted = { ballot: done.ballot, trackingCode: done.trackingCode }; // the secrets are not kept
    }
    s.casting = 'send';
    go('casting', { focus: false });
    announce(plain('kiosk.casting_send'));
    const answer = await kiosk.cast(s.voterSession, s.encrypted.ballot, cardPin);
    cardPin = null;
    castDone(answer);
  } catch (e) {
    cardPin = null;
    refusal(e);
  }
}

/** The service's answer to a cast (or to a re-check that found the ballot): the receipt screen. */
function castDone(answer) {
  s.voterSession = null; // the service locked and forgot it
  s.choices = null;
  s.encrypted = null;
  const p = answer.printed; // {path, printer, error}: printed unless `error`
  s.receipt = { ...answer.receipt, printed: p === true || (p !== null && typeof p === 'object' && !p.error) };
  go('receipt');
}

/** Ask the service again whether the unconfirmed ballot is on the record (the voter, or a poll worker). */
async function settle(call, { pollWorker: asPollWorker = false } = {}) {
  s.notice = null;
  try {
    castDone(await call());
  } catch (e) {
    const err = errorOf(e);
    if (asPollWorker && ['kiosk.poll_worker', 'kiosk.poll_worker_locked', 'kiosk.poll_worker_unknown'].includes(err.code)) return pollWorkerRefused(e);
    if (err.code === 'kiosk.not_cast' && !s.voterSession) {
      s.error = err; // the poll worker's re-check: nothing was cast; the voter's turn ends
      return endVoter();
    }
    refusal(e);
  }
}

/** Drop everything of the voter: choices, password, ballot, receipt, language, the screen's nodes. */
function forgetVoter() {
  stopIdle();
  s.pin?.clear();
  s.pin = null;
  s.voterSession = null;
  s.choices = null;
  s.encrypted = null;
  s.progress = null;
  s.casting = null;
  s.error = null;
  s.receipt = null;
  s.notice = null;
  padKeys = null;
  const dialog = byId('idle-dialog');
  if (dialog.open) dialog.close();
  fillEl(dialog);
  fillEl(byId('announce'));
  fillEl(main);
  if (language() !== 'ja') {
    setLanguage('ja');
    paintChrome();
  }
}

// ------------------------------------------------------------------------------------------ idle reset

function idleFor(seconds) {
  stopIdle();
  const warn = warnSeconds(seconds);
  idle = new IdleTimer({
    limit: seconds,
    warn,
    onWarn: (left) => showCountdown(left),
    onTick: (left) => {
      const count = document.getElementById('idle-count');
      if (count) count.textContent = String(left);
    },
    onExpire: () => {
      hideCountdown();
      if (s.screen === 'receipt') finish();
      else endVoter();
    },
  });
  idle.start();
}

function stopIdle() {
  idle?.stop();
  idle = null;
  hideCountdown();
}

function showCountdown(left) {
  const dialog = byId('idle-dialog');
  const seconds = h('span', { id: 'idle-count', class: 'idle-count', text: String(left) });
  const text = t('kiosk.idle_text', { seconds: '\u0000' });
  // the number inside the sentence is its own element, so that it can count down
  const parts = [];
  for (const node of text.childNodes) {
    if (node.nodeType === Node.TEXT_NODE && node.textContent.includes('\u0000')) {
      const [before, after] = node.textContent.split('\u0000');
      parts.push(before, seconds, after);
    } else parts.push(node);
  }
  fillEl(dialog,
    h('h2', { id: 'idle-heading' }, t('kiosk.idle_heading')),
    h('p', { id: 'idle-text', class: 'lead' }, ...parts),
    actions(button('kiosk.idle_continue', () => {
      idle?.poke();
      hideCountdown();
      lastTouch = 0;
      activity();
    })));
  if (!dialog.open) dialog.showModal();
  dialog.querySelector('button').focus();
}

function hideCountdown() {
  const dialog = byId('idle-dialog');
  if (dialog.open) {
    dialog.close();
    fillEl(dialog);
    document.getElementById('step-heading')?.focus();
  }
}

const TOUCH_EVERY_MS = 15000;
let lastTouch = 0;

function activity() {
  if (!idle || idle.warning) return;
  idle.poke();
  // the service keeps its own idle time for the voter session (it locks without the page): tell it, now and
  // then, that the voter is still there
  if (s.voterSession && VOTER_SCREENS.has(s.screen) && Date.now() - lastTouch > TOUCH_EVERY_MS) {
    lastTouch = Date.now();
    const session = s.voterSession;
    kiosk.touch(session).catch((e) => {
      if (e instanceof ApiError && e.code === 'kiosk.voter_session' && s.voterSession === session) refusal(e);
    });
  }
}

// ------------------------------------------------------------------------------------------ start

async function start() {
  main = byId('main');
  initChrome(() => {
    if (s.screen !== 'loading') draw(false);
  });
  for (const type of ['pointerdown', 'keydown', 'input']) document.addEventListener(type, activity, { capture: true, passive: true });
  document.addEventListener('keydown', (event) => {
    if (padKeys && !byId('idle-dialog').open && !event.altKey && !event.ctrlKey && !event.metaKey && document.querySelector('.pinpad')) padKeys(event);
  });
  byId('idle-dialog').addEventListener('cancel', (event) => {
    // Escape: the same as "Continue"
    event.preventDefault();
    idle?.poke();
    hideCountdown();
  });
  draw(false);
  try {
    s.election = await loadElection();
  } catch {
    // the election server may be down at start: the state below says offline; unlocking loads it again
  }
  await refresh({ focus: false });
}

start();
