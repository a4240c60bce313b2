//! Reconnect delays: jittered exponential backoff, capped, reset only after
//! a connection has stayed up long enough to count as stable.
//!
//! The delay for attempt n (0-based) is drawn uniformly from
//! [d/2, d] with d = min(maxDelayMs, minDelayMs * 2^n) ("equal jitter"):
//! never shorter than half the step, so a thousand clients dropped at once
//! do not come back in the same millisecond, and never longer than the cap.

/** Default reconnect settings (milliseconds). */
export const BACKOFF_DEFAULTS = Object.freeze({
  minDelayMs: 500,
  maxDelayMs: 30000,
  /** A connection open this long resets the attempt count. */
  stableAfterMs: 10000,
  /** Attempts before giving up; Infinity = never. */
  maxAttempts: Infinity,
});

export class Backoff {
  /**
   * @param {object} [opts] BACKOFF_DEFAULTS overrides, plus `random`
   *   (a `Math.random`-like function, injectable for tests).
   */
  constructor(opts = {}) {
    const o = { ...BACKOFF_DEFAULTS, ...opts };
    if (!(o.minDelayMs > 0) || !(o.maxDelayMs >= o.minDelayMs)) {
      throw new RangeError('backoff: need 0 < minDelayMs <= maxDelayMs');
    }
    this.minDelayMs = o.minDelayMs;
    this.maxDelayMs = o.maxDelayMs;
    this.stableAfterMs = o.stableAfterMs;
    this.maxAttempts = o.maxAttempts;
    this.random = o.random || Math.random;
    /** Failed attempts since the last stable connection. */
    this.attempts = 0;
  }

  /** The ceiling of the delay for attempt `n` (before jitter). */
  ceiling(n) {
    // 2^n overflows to Infinity for large n; min() keeps the cap.
    return Math.min(this.maxDelayMs, this.minDelayMs * Math.pow(2, Math.min(n, 64)));
  }

  /** True once `maxAttempts` delays have been handed out. */
  get exhausted() {
    return this.attempts >= this.maxAttempts;
  }

  /** The next delay in ms (and counts the attempt). */
  next() {
    const d = this.ceiling(this.attempts);
    this.attempts += 1;
    const r = Math.min(Math.max(this.random(), 0), 1);
    return Math.round(d / 2 + r * (d / 2));
  }

  /** Forget past failures (after a stable connection). */
  reset() {
    this.attempts = 0;
  }
}
