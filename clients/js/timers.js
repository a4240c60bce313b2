//! `NamedTimers`: one-shot timers kept by name (at most one per name), on
//! an injectable `setTimeout`/`clearTimeout` pair, so an owner can ask
//! whether one is pending, replace it, or clear them all when it ends.

export class NamedTimers {
  /** @param {{setTimeout: Function, clearTimeout: Function}} timers */
  constructor(timers) {
    this.timers = timers;
    /** name → handle */
    this.handles = new Map();
  }

  /** Runs `fn` after `ms`, replacing a pending timer of the same name. */
  set(name, ms, fn) {
    this.clear(name);
    const handle = this.timers.setTimeout(() => {
      if (this.handles.get(name) === handle) this.handles.delete(name);
      fn();
    }, ms);
    this.handles.set(name, handle);
  }

  /** True while the timer `name` is pending. */
  has(name) {
    return this.handles.has(name);
  }

  clear(name) {
    const handle = this.handles.get(name);
    if (handle !== undefined) {
      this.timers.clearTimeout(handle);
      this.handles.delete(name);
    }
  }

  clearAll() {
    for (const name of [...this.handles.keys()]) this.clear(name);
  }
}
