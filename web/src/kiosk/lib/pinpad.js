// The on-screen PIN pads' rules (no DOM here: web/test/kiosk.test.mjs tests them in node).
//
// The voter's pad is for the My Number card's signing password (JPKI): 6 to 16 characters, upper-case
// letters A–Z and digits 0–9 (docs/kiosk.md, "PIN rules"). The poll worker's pad is for the kiosk's
// poll-worker PIN: digits, 8 of them as the commission issues it (up to 16 accepted, the server decides).
// A key outside the pad's alphabet, or one more than the maximum, is refused and changes nothing; the PIN
// only leaves the pad when it is complete. The pad shows a mask (one dot per character), never the PIN.

export const VOTER_PIN = Object.freeze({ keys: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', min: 6, max: 16 });
export const POLL_WORKER_PIN = Object.freeze({ keys: '1234567890', min: 8, max: 16 });
export const MASK = '●';

export class PinBuffer {
  #chars = [];

  constructor(rule) {
    this.rule = rule;
  }

  /** Add one key; false (nothing changed) for a key not on the pad or when the PIN is at its maximum. */
  press(key) {
    if (typeof key !== 'string' || key.length !== 1 || !this.rule.keys.includes(key)) return false;
    if (this.#chars.length >= this.rule.max) return false;
    this.#chars.push(key);
    return true;
  }

  /** Remove the last key; false when empty. */
  backspace() {
    return this.#chars.pop() !== undefined;
  }

  /** Forget every key (overwritten first: the array is the only copy the pad kept). */
  clear() {
    this.#chars.fill('');
    this.#chars.length = 0;
  }

  get length() {
    return this.#chars.length;
  }

  get full() {
    return this.#chars.length >= this.rule.max;
  }

  /** Long enough to submit. */
  get complete() {
    return this.#chars.length >= this.rule.min;
  }

  /** What the screen shows: one mask character per key. */
  masked() {
    return MASK.repeat(this.#chars.length);
  }

  /** The PIN, for the one request that needs it; throws if it is not complete (the pad keeps its button off). */
  value() {
    if (!this.complete) throw new Error(`a PIN needs at least ${this.rule.min} characters`);
    return this.#chars.join('');
  }
}

/** Whether `pin` obeys `rule` (what the pad can produce). */
export function validPin(rule, pin) {
  return typeof pin === 'string' && pin.length >= rule.min && pin.length <= rule.max && [...pin].every((c) => rule.keys.includes(c));
}

/** The key a physical keyboard press means on this pad (letters upper-cased), or null. */
export function keyOf(rule, eventKey) {
  if (typeof eventKey !== 'string' || eventKey.length !== 1) return null;
  const key = eventKey.toUpperCase();
  return rule.keys.includes(key) ? key : null;
}
