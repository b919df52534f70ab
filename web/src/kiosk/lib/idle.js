// The idle reset's clock (no DOM: tested in node with mocked timers). While a voter has the kiosk, every
// touch or key press starts the idle time again; after `limit - warn` seconds without one the page shows a
// countdown of the last `warn` seconds (a touch on "Continue" starts again), and at 0 `onExpire` locks the
// kiosk and forgets the voter. One tick a second; `now` and the interval functions can be injected.

export class IdleTimer {
  #last = 0;
  #handle = null;
  #warned = false;

  /**
   * @param {{limit: number, warn: number, onTick?: (remaining: number) => void, onWarn?: (remaining: number) => void,
   *   onExpire: () => void, now?: () => number, setInterval?: Function, clearInterval?: Function}} options
   *   limit: seconds without activity before the reset (≥ 1); warn: the countdown's length (≤ limit)
   */
  constructor({ limit, warn, onTick = () => {}, onWarn = () => {}, onExpire, now = () => Date.now(), setInterval: si = (fn, ms) => globalThis.setInterval(fn, ms), clearInterval: ci = (handle) => globalThis.clearInterval(handle) }) {
    if (!Number.isFinite(limit) || limit < 1) throw new Error(`idle limit ${limit}`);
    this.limit = limit;
    this.warn = Math.max(0, Math.min(warn, limit));
    this.onTick = onTick;
    this.onWarn = onWarn;
    this.onExpire = onExpire;
    // called as plain functions, never as methods of this object (a browser's setInterval refuses that)
    this.now = now;
    this.si = si;
    this.ci = ci;
  }

  get running() {
    return this.#handle !== null;
  }

  /** Whole seconds left before the reset (0 when it is due). */
  remaining() {
    const left = this.limit - ((0, this.now)() - this.#last) / 1000;
    return Math.max(0, Math.ceil(left));
  }

  /** Whether the countdown is showing. */
  get warning() {
    return this.#warned;
  }

  start() {
    this.stop();
    this.#last = (0, this.now)();
    this.#warned = false;
    this.#handle = (0, this.si)(() => this.#tick(), 1000);
  }

  /** Activity: the idle time starts again (and the countdown, if showing, goes away). */
  poke() {
    if (!this.running) return;
    this.#last = (0, this.now)();
    this.#warned = false;
  }

  stop() {
    if (this.#handle !== null) (0, this.ci)(this.#handle);
    this.#handle = null;
    this.#warned = false;
  }

  #tick() {
    const left = this.remaining();
    if (left <= 0) {
      this.stop();
      this.onExpire();
      return;
    }
    if (left <= this.warn) {
      if (!this.#warned) {
        this.#warned = true;
        this.onWarn(left);
      }
      this.onTick(left);
    }
  }
}
