// Which screen the kiosk page shows (no DOM: tested in node). The kiosk service's state (GET /kiosk/api/state,
// docs/kiosk.md "The kiosk screen") chooses the screen when no voter is at the kiosk; while one is, the
// page's own flow does (choose → review → card → pin → casting → receipt), and each refusal the service
// answers has exactly one screen, with the way on from there.

/** The service's states and the screen each shows when the page holds no voter session. */
const STATE_SCREENS = Object.freeze({
  closed: 'closed', // polls not open: a poll worker opens them
  locked: 'locked', // open, between voters: a poll worker unlocks for one voter, or closes
  ready: 'locked', // unlocked, but not for this page (reloaded): the poll worker locks
  revoked: 'revoked',
  offline: 'offline',
});

/**
 * `state`: the service's; `voterSession`: the page's voter, if any; `unconfirmed`: the tracking code of a
 * ballot the service sent without an answer (GET /kiosk/api/state's `unconfirmed`): that screen stays until
 * the ballot is settled or a poll worker locks.
 */
export function screenOfState(state, { voterSession = null, unconfirmed = null } = {}) {
  if (state === 'ready' && unconfirmed) return 'unconfirmed';
  if (state === 'ready' && voterSession) return 'choose';
  return Object.hasOwn(STATE_SCREENS, state) ? STATE_SCREENS[state] : 'offline';
}

/**
 * An error code (the service's `error.code`, or 'network' when the page got no answer from the service) →
 * {screen, next}: `next` is the screen its "try again" button leads to (null: only "finish", which locks).
 * `pollWorker`: the screen stays until a poll worker acts (no idle reset, no way on for the voter).
 */
export const ERROR_SCREENS = Object.freeze({
  'card.pin_wrong': { screen: 'pin_wrong', next: 'pin' },
  'card.pin_format': { screen: 'pin_format', next: 'pin' },
  'card.locked': { screen: 'card_locked', next: null },
  'card.removed': { screen: 'card_removed', next: 'card' },
  'card.absent': { screen: 'card_absent', next: 'card' },
  'card.different': { screen: 'card_different', next: 'card' },
  'card.reader_unavailable': { screen: 'card_unusable', next: null },
  'card.no_signing_key': { screen: 'card_unusable', next: null },
  'card.signature': { screen: 'card_unusable', next: null },
  'kiosk.unconfirmed': { screen: 'unconfirmed', next: null, pollWorker: true },
  'kiosk.not_cast': { screen: 'not_cast', next: 'card' },
  'kiosk.no_card': { screen: 'card_absent', next: 'card' },
  network: { screen: 'device', next: null, pollWorker: true },
});

/**
 * Refusals that mean "this voter's turn is over": the voter session is not the service's (it locked, e.g.
 * after its own idle time, or a poll worker locked it), or the kiosk is in no state for a voter.
 */
export const SESSION_OVER = Object.freeze(new Set(['kiosk.voter_session', 'kiosk.state']));

export function errorScreen(code) {
  if (SESSION_OVER.has(code)) return { screen: 'session_over', next: null };
  return Object.hasOwn(ERROR_SCREENS, code) ? ERROR_SCREENS[code] : { screen: 'refused', next: null };
}

/** Screens where a voter holds the kiosk: the idle reset runs (and is the only way the screen ends alone). */
export const VOTER_SCREENS = Object.freeze(new Set([
  'choose', 'review', 'card', 'pin', 'pin_wrong', 'pin_format', 'card_locked', 'card_removed', 'card_absent',
  'card_different', 'card_unusable', 'not_cast', 'refused', 'session_over',
]));

/** Seconds the receipt screen stays before the kiosk shows its locked screen again. */
export const RECEIPT_SECONDS = 30;
/** The idle countdown's length, at most (a shorter idle time counts down for a third of it). */
export const WARN_SECONDS = 20;

export function warnSeconds(idleSeconds) {
  return Math.max(1, Math.min(WARN_SECONDS, Math.floor(idleSeconds / 3)));
}
