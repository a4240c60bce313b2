//! `DeviceSubscription`: one device's live stream for the caller. It owns
//! the device's `(epoch, seq)` position (an `EventSequence`), its latest
//! known state (online, mode, mission, battery: PROTOCOL Part 2 D's snapshot
//! rules, kept live from events), and hands events out as callbacks
//! (`on('event', fn)`, `onEvent(name, fn)`) and as async iterators
//! (`for await (const m of sub.messages())`). Every break in the stream is
//! surfaced, never hidden: `recovered` (with `complete`), `epoch_changed`
//! and `gap`, as events and as items of the iterators.
//!
//! The client (`client.js`) creates it, sends `subscribe`/`unsubscribe` for
//! it, and feeds it the frames of its device in arrival order.

import { StateEmitter } from './emitter.js';
import { EventSequence } from './sequence.js';
import { WimzError, ErrorCode } from './errors.js';

/** Errors after which subscribing again cannot help. */
const FINAL_SUBSCRIBE_ERRORS = new Set(['not_owner', 'unknown_device', 'bad_message', 'unsupported']);

/** A bounded queue behind one async iterator. */
class MessageQueue {
  constructor(filter, bufferSize, onReturn) {
    this.filter = filter;
    this.bufferSize = bufferSize;
    this.onReturn = onReturn;
    this.items = [];
    this.waiters = [];
    this.done = false;
    this.failure = null;
  }

  push(item) {
    if (this.done || !this.filter(item)) return;
    const w = this.waiters.shift();
    if (w) return w.resolve({ value: item, done: false });
    if (this.items.length >= this.bufferSize) {
      this.fail(new WimzError(ErrorCode.OVERFLOW, `iterator fell ${this.bufferSize} messages behind`));
      return;
    }
    this.items.push(item);
  }

  fail(err) {
    if (this.done) return;
    this.failure = err;
    this.finish();
  }

  finish() {
    if (this.done) return;
    this.done = true;
    for (const w of this.waiters.splice(0)) {
      if (this.failure && this.items.length === 0) w.reject(this.failure);
      else w.resolve({ value: undefined, done: true });
    }
    this.onReturn(this);
  }

  iterator() {
    return {
      next: () => {
        if (this.items.length > 0) return Promise.resolve({ value: this.items.shift(), done: false });
        if (this.done) {
          if (this.failure) {
            const f = this.failure;
            this.failure = null;
            return Promise.reject(f);
          }
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
      },
      return: () => {
        this.items = [];
        this.failure = null;
        this.finish();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}

export class DeviceSubscription extends StateEmitter {
  /**
   * @param {object} client the `WimzClient` (used to send frames)
   * @param {string} deviceId
   * @param {{since_seq?: number, epoch?: number}} [from] a position to
   *   resume from on the first subscribe (e.g. one saved by a previous page)
   */
  constructor(client, deviceId, from) {
    super('unsubscribed'); // | 'subscribing' | 'subscribed'
    this.client = client;
    this.deviceId = deviceId;
    /** From `subscribed` and live events; null until known. */
    this.robotOnline = null;
    this.snapshot = { mode: null, mission: null, battery: null };
    this.sequence = new EventSequence();
    if (from && typeof from.epoch === 'number' && typeof from.since_seq === 'number') {
      this.sequence.epoch = from.epoch;
      this.sequence.seq = from.since_seq;
    } else if (from && typeof from.since_seq === 'number') {
      this._firstSince = from.since_seq;
    }
    /** Pending `subscribe` (its frame id and whether a replay follows). */
    this._pending = null;
    this._queues = new Set();
    this._wanted = true;
    this._retryTimer = null;
  }

  /** `{epoch, seq}` of the last event delivered (seq 0: none yet in that epoch). */
  get position() {
    return { epoch: this.sequence.epoch, seq: this.sequence.seq };
  }

  /** Calls `fn(frame)` for each event named `name` (after de-duplication). */
  onEvent(name, fn) {
    return this.on('event', (ev) => {
      if (ev.event === name) fn(ev);
    });
  }

  /**
   * Async iterator over everything this subscription surfaces, in order:
   * event frames (`type: "event"`) and notices (`type: "subscribed"`,
   * `"recovered"`, `"epoch_changed"`, `"gap"`, `"unsubscribed"`). It ends
   * when the subscription ends for good, and throws `overflow` if the
   * consumer falls `bufferSize` items behind.
   */
  messages({ bufferSize = 1024 } = {}) {
    return this._iterator(() => true, bufferSize);
  }

  /** Async iterator over event frames only (optionally one event name). */
  events({ name, bufferSize = 1024 } = {}) {
    return this._iterator((m) => m.type === 'event' && (name === undefined || m.event === name), bufferSize);
  }

  _iterator(filter, bufferSize) {
    const q = new MessageQueue(filter, bufferSize, (done) => this._queues.delete(done));
    if (!this._wanted) q.finish();
    else this._queues.add(q);
    return q.iterator();
  }

  /** Stops the subscription (sends `unsubscribe`; the client forgets it). */
  unsubscribe() {
    if (!this._wanted) return;
    this._wanted = false;
    this._clearRetry();
    this.client._unsubscribe(this);
    this._end({ type: 'unsubscribed', device_id: this.deviceId, reason: 'client' });
  }

  // ---- called by the client --------------------------------------------

  /** The `subscribe` frame to send now (on connect, or when first asked). */
  _subscribeFrame(id) {
    const frame = { type: 'subscribe', device_id: this.deviceId, id };
    const pos = this.sequence.position();
    if (pos) {
      frame.since_seq = pos.since_seq;
      frame.epoch = pos.epoch;
    } else if (this._firstSince !== undefined) {
      frame.since_seq = this._firstSince;
    }
    this._pending = { id, replay: frame.since_seq !== undefined };
    this._setState('subscribing');
    return frame;
  }

  /** The socket closed: the subscription waits for the next connection. */
  _socketClosed() {
    this._pending = null;
    this._clearRetry();
    if (this._wanted) this._setState('subscribing');
  }

  /** The client is closed for good. */
  _clientClosed(reason) {
    this._wanted = false;
    this._clearRetry();
    this._end({ type: 'unsubscribed', device_id: this.deviceId, reason });
  }

  _onSubscribed(frame) {
    // Unasked (PROTOCOL Part 2 D: the relay lost the device's live state
    // and re-subscribed us): a replay of the whole buffer follows.
    const replay = this._pending ? this._pending.replay : true;
    this._pending = null;
    this._firstSince = undefined;
    const notices = this.sequence.subscribed(frame, replay);
    this.robotOnline = frame.robot_online === true;
    if (frame.snapshot && typeof frame.snapshot === 'object') {
      this.snapshot = {
        mode: frame.snapshot.mode ?? null,
        mission: frame.snapshot.mission ?? null,
        battery: frame.snapshot.battery ?? null,
      };
    }
    this._setState('subscribed');
    for (const n of notices) this._surface(n.type, n);
    this._surface('subscribed', frame);
    this.emit('snapshot', this.snapshotView());
  }

  _onEvent(frame) {
    const { deliver, notices } = this.sequence.event(frame);
    for (const n of notices) this._surface(n.type, n);
    if (!deliver) return false;
    this._applyToSnapshot(frame);
    this._surface('event', frame);
    return true;
  }

  _onRecovered(frame) {
    this.sequence.recovered();
    this._surface('recovered', frame);
  }

  _onUnsubscribed(frame) {
    this._pending = null;
    if (frame.reason === 'device_unavailable' && this._wanted) {
      // "may subscribe again" (Part 2 D): the client retries after a delay.
      this._surface('unsubscribed', frame);
      this._setState('subscribing');
      this._scheduleRetry();
      return;
    }
    if (this._wanted && frame.reason === undefined) return; // our own unsubscribe raced a resubscribe
    this._wanted = false;
    this.client._forget(this);
    this._end(frame);
  }

  _onError(err) {
    this._pending = null;
    this.emit('error', err);
    if (FINAL_SUBSCRIBE_ERRORS.has(err.code)) {
      this._wanted = false;
      this.client._forget(this);
      this._end({ type: 'unsubscribed', device_id: this.deviceId, reason: err.code, error: err });
    } else if (this._wanted) {
      this._scheduleRetry();
    }
  }

  // ---- internals ---------------------------------------------------------

  _scheduleRetry() {
    this._clearRetry();
    const delay = this.client._subscribeRetryDelay();
    this._retryTimer = this.client._timers.setTimeout(() => {
      this._retryTimer = null;
      if (this._wanted) this.client._sendSubscribe(this);
    }, delay);
  }

  _clearRetry() {
    if (this._retryTimer !== null) {
      this.client._timers.clearTimeout(this._retryTimer);
      this._retryTimer = null;
    }
  }

  _surface(kind, item) {
    this.emit(kind, item);
    for (const q of [...this._queues]) q.push(item);
  }

  _end(frame) {
    this._setState('unsubscribed');
    this._surface('unsubscribed', frame);
    for (const q of [...this._queues]) q.finish();
  }

  /** Snapshot rules of PROTOCOL Part 2 D, applied to live events. */
  _applyToSnapshot(frame) {
    const data = frame.data;
    let changed = true;
    switch (frame.event) {
      case 'mission_progress':
        this.snapshot.mission = data ?? null;
        break;
      case 'mode_changed':
        this.snapshot.mode = data && typeof data === 'object' && 'mode' in data ? data.mode : data ?? null;
        break;
      case 'battery':
        this.snapshot.battery = data ?? null;
        break;
      case 'status_update':
        changed = false;
        if (data && typeof data === 'object') {
          if ('mode' in data) {
            this.snapshot.mode = data.mode;
            changed = true;
          }
          if ('battery' in data) {
            this.snapshot.battery = data.battery;
            changed = true;
          }
        }
        break;
      case 'robot_connected':
        this.robotOnline = true;
        break;
      case 'robot_disconnected':
        this.robotOnline = false;
        break;
      default:
        changed = false;
    }
    if (changed) this.emit('snapshot', this.snapshotView());
  }

  /** `{device_id, online, mode, mission, battery}` as known now. */
  snapshotView() {
    return { device_id: this.deviceId, online: this.robotOnline, ...this.snapshot };
  }
}
