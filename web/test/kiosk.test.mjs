// The kiosk page's pure logic (web/src/kiosk/lib/): the PIN pads' rules, the idle reset's clock, and which
// screen each service state and each refusal gets. The page itself runs in Chromium (tests/web/test_kiosk_ui.py).
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';

import { IdleTimer } from '../src/kiosk/lib/idle.js';
import { MASK, PinBuffer, POLL_WORKER_PIN, VOTER_PIN, keyOf, validPin } from '../src/kiosk/lib/pinpad.js';
import { ERROR_SCREENS, VOTER_SCREENS, errorScreen, screenOfState, warnSeconds } from '../src/kiosk/lib/screens.js';

const press = (pin, text) => [...text].map((c) => pin.press(c));

test("the voter's pad takes A–Z and 0–9 only, 6 to 16 of them, and shows a mask", () => {
  assert.equal(VOTER_PIN.keys, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789');
  const pin = new PinBuffer(VOTER_PIN);
  assert.deepEqual(press(pin, 'ab-. é'), [false, false, false, false, false, false]); // lower case, signs, space
  assert.equal(pin.press('AB'), false); // one key at a time
  assert.equal(pin.length, 0);
  press(pin, 'ABC12');
  assert.equal(pin.complete, false);
  assert.throws(() => pin.value(), /at least 6/);
  assert.equal(pin.press('Z'), true);
  assert.equal(pin.complete, true);
  assert.equal(pin.value(), 'ABC12Z');
  assert.equal(pin.masked(), MASK.repeat(6));
  assert.ok(!pin.masked().includes('A'));
  press(pin, '0123456789');
  assert.equal(pin.length, 16);
  assert.equal(pin.full, true);
  assert.equal(pin.press('X'), false); // the 17th key changes nothing
  assert.equal(pin.value(), 'ABC12Z0123456789');
});

test('backspace removes the last key, clear forgets all of them', () => {
  const pin = new PinBuffer(VOTER_PIN);
  assert.equal(pin.backspace(), false);
  press(pin, 'ABCDEFG');
  assert.equal(pin.backspace(), true);
  assert.equal(pin.value(), 'ABCDEF');
  pin.clear();
  assert.equal(pin.length, 0);
  assert.equal(pin.masked(), '');
  assert.throws(() => pin.value());
});

test("the poll worker's pad takes digits, at least 8", () => {
  const pin = new PinBuffer(POLL_WORKER_PIN);
  assert.equal(pin.press('A'), false);
  press(pin, '1234567');
  assert.equal(pin.complete, false);
  pin.press('8');
  assert.equal(pin.value(), '12345678');
});

test('validPin and keyOf (the physical keyboard) follow the same rules', () => {
  assert.ok(validPin(VOTER_PIN, 'ABC123'));
  assert.ok(validPin(VOTER_PIN, 'A'.repeat(16)));
  for (const bad of ['ABC12', 'A'.repeat(17), 'abc123', 'ABC 123', 'ＡＢＣ１２３', 123456, null]) assert.ok(!validPin(VOTER_PIN, bad), String(bad));
  assert.ok(validPin(POLL_WORKER_PIN, '12345678') && !validPin(POLL_WORKER_PIN, '1234567A'));
  assert.equal(keyOf(VOTER_PIN, 'a'), 'A');
  assert.equal(keyOf(VOTER_PIN, '7'), '7');
  assert.equal(keyOf(VOTER_PIN, 'Enter'), null);
  assert.equal(keyOf(VOTER_PIN, '-'), null);
  assert.equal(keyOf(POLL_WORKER_PIN, 'a'), null);
});

function fakeClock() {
  let now = 0;
  let handler = null;
  return {
    now: () => now,
    setInterval: (fn) => {
      handler = fn;
      return 1;
    },
    clearInterval: () => {
      handler = null;
    },
    advance(seconds) {
      for (let i = 0; i < seconds; i += 1) {
        now += 1000;
        handler?.();
      }
    },
    get running() {
      return handler !== null;
    },
  };
}

test('the idle timer warns for the last seconds, counts down, then expires once', () => {
  const clock = fakeClock();
  const events = [];
  const idle = new IdleTimer({
    limit: 10, warn: 4, ...clock,
    onWarn: (left) => events.push(['warn', left]),
    onTick: (left) => events.push(['tick', left]),
    onExpire: () => events.push(['expire']),
  });
  idle.start();
  clock.advance(5);
  assert.deepEqual(events, []);
  assert.equal(idle.remaining(), 5);
  clock.advance(1);
  assert.deepEqual(events, [['warn', 4], ['tick', 4]]);
  assert.equal(idle.warning, true);
  clock.advance(3);
  assert.deepEqual(events.slice(2), [['tick', 3], ['tick', 2], ['tick', 1]]);
  clock.advance(1);
  assert.deepEqual(events.at(-1), ['expire']);
  assert.equal(idle.running, false);
  assert.equal(clock.running, false);
  clock.advance(20);
  assert.equal(events.filter((e) => e[0] === 'expire').length, 1);
});

test('activity starts the idle time again, also during the countdown; stop() cancels', () => {
  const clock = fakeClock();
  let expired = 0;
  let warned = 0;
  const idle = new IdleTimer({ limit: 10, warn: 3, ...clock, onWarn: () => (warned += 1), onExpire: () => (expired += 1) });
  idle.start();
  clock.advance(6);
  idle.poke();
  clock.advance(6);
  assert.equal(expired, 0);
  assert.equal(warned, 0);
  clock.advance(2); // 8 s since the poke: the countdown shows
  assert.equal(warned, 1);
  idle.poke(); // "Continue"
  assert.equal(idle.warning, false);
  clock.advance(9);
  assert.equal(expired, 0);
  clock.advance(1);
  assert.equal(expired, 1);
  const again = new IdleTimer({ limit: 5, warn: 2, ...clock, onExpire: () => (expired += 1) });
  again.start();
  again.stop();
  again.poke(); // not running: nothing
  clock.advance(10);
  assert.equal(expired, 1);
  assert.throws(() => new IdleTimer({ limit: 0, warn: 0, onExpire() {} }), /idle limit/);
});

test('the idle timer runs on the real timers too (node mock timers)', () => {
  mock.timers.enable({ apis: ['setInterval', 'Date'] });
  try {
    let expired = false;
    const idle = new IdleTimer({ limit: 3, warn: 1, onExpire: () => (expired = true) });
    idle.start();
    mock.timers.tick(2000);
    assert.equal(expired, false);
    mock.timers.tick(1000);
    assert.equal(expired, true);
  } finally {
    mock.timers.reset();
  }
});

test("the service's states choose the screens", () => {
  assert.equal(screenOfState('closed'), 'closed');
  assert.equal(screenOfState('locked'), 'locked');
  assert.equal(screenOfState('ready', { voterSession: 'abc' }), 'choose');
  assert.equal(screenOfState('ready'), 'locked'); // unlocked, but not for this page (reloaded)
  // a ballot sent without an answer: its screen stays, with the page's voter or without (reloaded)
  assert.equal(screenOfState('ready', { voterSession: 'abc', unconfirmed: 'ABCD-EFGH-JKMN-PQRS' }), 'unconfirmed');
  assert.equal(screenOfState('ready', { unconfirmed: 'ABCD-EFGH-JKMN-PQRS' }), 'unconfirmed');
  assert.equal(screenOfState('locked', { unconfirmed: null }), 'locked');
  assert.equal(screenOfState('revoked'), 'revoked');
  assert.equal(screenOfState('offline'), 'offline');
  assert.equal(screenOfState('something new'), 'offline');
  assert.equal(screenOfState('__proto__'), 'offline');
});

test('each refusal has its screen and its way on', () => {
  assert.deepEqual(errorScreen('card.pin_wrong'), { screen: 'pin_wrong', next: 'pin' });
  assert.deepEqual(errorScreen('card.locked'), { screen: 'card_locked', next: null });
  for (const code of ['card.removed', 'card.absent', 'card.different', 'kiosk.not_cast']) assert.equal(errorScreen(code).next, 'card', code);
  assert.equal(errorScreen('kiosk.unconfirmed').screen, 'unconfirmed');
  assert.equal(errorScreen('kiosk.unconfirmed').pollWorker, true);
  assert.equal(errorScreen('kiosk.unconfirmed').next, null); // the voter cannot try again: nobody knows yet
  assert.deepEqual(errorScreen('kiosk.no_card'), { screen: 'card_absent', next: 'card' });
  // the service no longer holds this voter (its own idle reset, a poll worker's lock): the turn is over
  for (const code of ['kiosk.voter_session', 'kiosk.state']) assert.deepEqual(errorScreen(code), { screen: 'session_over', next: null });
  assert.deepEqual(errorScreen('ballot.certificate_revoked'), { screen: 'refused', next: null });
  assert.deepEqual(errorScreen('kiosk.ballot_invalid'), { screen: 'refused', next: null });
  assert.deepEqual(errorScreen('toString'), { screen: 'refused', next: null });
  const screens = new Set(Object.values(ERROR_SCREENS).map((e) => e.screen));
  // every refusal a voter can fix or end is a voter's screen (the idle reset runs there); the two a poll
  // worker must see are not
  for (const screen of screens) assert.equal(VOTER_SCREENS.has(screen), !['unconfirmed', 'device'].includes(screen), screen);
  assert.ok(!VOTER_SCREENS.has('casting') && !VOTER_SCREENS.has('locked') && !VOTER_SCREENS.has('receipt'));
});

test('the countdown is a third of a short idle time, 20 s at most', () => {
  assert.equal(warnSeconds(90), 20);
  assert.equal(warnSeconds(30), 10);
  assert.equal(warnSeconds(2), 1);
});
