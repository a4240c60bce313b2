//! A small event emitter (`on` / `off` / `once` / `emit`) shared by the
//! client, device subscriptions and video sessions, and `StateEmitter`, an
//! emitter with a `state` that announces its changes. A listener that throws
//! does not stop the others or the SDK: the error is reported on the
//! emitter's `listener_error` event (or the console when nobody listens).

export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
  }

  /** Adds `fn` for `event`; returns a function that removes it. */
  on(event, fn) {
    if (typeof fn !== 'function') throw new TypeError('listener must be a function');
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  /** Like `on`, but only for the next emission. */
  once(event, fn) {
    const off = this.on(event, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  off(event, fn) {
    const set = this._listeners.get(event);
    if (set) set.delete(fn);
  }

  /** Number of listeners for `event`. */
  listenerCount(event) {
    const set = this._listeners.get(event);
    return set ? set.size : 0;
  }

  emit(event, ...args) {
    const set = this._listeners.get(event);
    if (!set || set.size === 0) return false;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        if (event !== 'listener_error' && this.listenerCount('listener_error') > 0) {
          this.emit('listener_error', { event, error: err });
        } else if (typeof console !== 'undefined') {
          console.error(`wimz: a listener for "${event}" threw`, err);
        }
      }
    }
    return true;
  }
}

/** An emitter with a `state`; `_setState` emits `state {state, previous}` on a change. */
export class StateEmitter extends Emitter {
  constructor(initial) {
    super();
    this.state = initial;
  }

  _setState(state) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this.emit('state', { state, previous });
  }
}
