//! The video quality monitor: per metric (RTT, packet loss, jitter, frames
//! per second) a warning threshold and a lower clearing threshold
//! (hysteresis), and a number of consecutive samples needed to raise and to
//! clear a warning, so a single bad sample or a value hovering at the
//! threshold does not make the warning flap. Pure: fed metrics (from
//! `stats.extractMetrics`), it emits `warning` / `cleared` per metric and
//! `quality` (`good` | `poor`) when the overall level changes.

import { Emitter } from './emitter.js';

/**
 * Defaults. `warn`/`clear` per metric; `worse: 'above'` means high values are
 * bad (RTT, loss, jitter), `'below'` low ones (fps).
 */
export const QUALITY_DEFAULTS = Object.freeze({
  rttMs: Object.freeze({ warn: 300, clear: 200, worse: 'above' }),
  lossPct: Object.freeze({ warn: 5, clear: 2, worse: 'above' }),
  jitterMs: Object.freeze({ warn: 50, clear: 30, worse: 'above' }),
  fps: Object.freeze({ warn: 10, clear: 15, worse: 'below' }),
  /** Consecutive bad samples that raise a warning. */
  raiseAfter: 2,
  /** Consecutive good samples (past `clear`) that clear it. */
  clearAfter: 3,
});

export const QUALITY_METRICS = Object.freeze(['rttMs', 'lossPct', 'jitterMs', 'fps']);

export class QualityMonitor extends Emitter {
  /** @param {object} [opts] overrides of QUALITY_DEFAULTS (a metric set to null is not watched) */
  constructor(opts = {}) {
    super();
    this.raiseAfter = opts.raiseAfter ?? QUALITY_DEFAULTS.raiseAfter;
    this.clearAfter = opts.clearAfter ?? QUALITY_DEFAULTS.clearAfter;
    this.rules = {};
    for (const k of QUALITY_METRICS) {
      const rule = k in opts ? opts[k] : QUALITY_DEFAULTS[k];
      if (rule === null) continue;
      const r = { ...QUALITY_DEFAULTS[k], ...rule };
      const ok = r.worse === 'above' ? r.clear <= r.warn : r.clear >= r.warn;
      if (!ok) throw new RangeError(`quality: ${k}.clear must be on the good side of ${k}.warn`);
      this.rules[k] = r;
    }
    /** metric → {active, bad, good} */
    this.state = {};
    for (const k of Object.keys(this.rules)) this.state[k] = { active: false, bad: 0, good: 0 };
    /** 'good' | 'poor' */
    this.level = 'good';
    this.last = null;
  }

  /** Metrics currently warned about. */
  get warnings() {
    return Object.keys(this.state).filter((k) => this.state[k].active);
  }

  /** Feeds one sample of metrics; returns the warnings active after it. */
  update(metrics) {
    this.last = metrics;
    for (const [k, rule] of Object.entries(this.rules)) {
      const v = metrics[k];
      const st = this.state[k];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue; // unknown: hold
      const bad = rule.worse === 'above' ? v > rule.warn : v < rule.warn;
      const good = rule.worse === 'above' ? v < rule.clear : v > rule.clear;
      st.bad = bad ? st.bad + 1 : 0;
      st.good = good ? st.good + 1 : 0;
      if (!st.active && st.bad >= this.raiseAfter) {
        st.active = true;
        st.good = 0;
        this.emit('warning', { metric: k, value: v, threshold: rule.warn, metrics });
      } else if (st.active && st.good >= this.clearAfter) {
        st.active = false;
        st.bad = 0;
        this.emit('cleared', { metric: k, value: v, threshold: rule.clear, metrics });
      }
    }
    const warnings = this.warnings;
    const level = warnings.length > 0 ? 'poor' : 'good';
    if (level !== this.level) {
      this.level = level;
      this.emit('quality', { level, warnings, metrics });
    }
    return warnings;
  }

  /** Forgets all counts and warnings (e.g. after an ICE restart). */
  reset() {
    for (const st of Object.values(this.state)) Object.assign(st, { active: false, bad: 0, good: 0 });
    if (this.level !== 'good') {
      this.level = 'good';
      this.emit('quality', { level: 'good', warnings: [], metrics: null });
    }
  }
}
