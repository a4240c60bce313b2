//! `WimzClient`: an app's one connection to the relay. It owns the user
//! token (sign-in, expiry, optional refresh through `getToken`), the app
//! WebSocket (`/ws/app`) and its reconnects (jittered exponential backoff,
//! reset after a stable connection, none after a final close code or a
//! refused token), the device subscriptions (re-subscribed with
//! `since_seq` + `epoch` after every reconnect), commands waiting for their
//! `command_result`, WebRTC requests waiting for their credentials, and the
//! REST calls (`/api/devices`, the robot REST proxy).
//!
//! It speaks only docs/PROTOCOL.md. Everything time-related (WebSocket
//! constructor, timers, clock, randomness, fetch) is injectable, so the
//! Node tests drive it deterministically.

import { StateEmitter } from './emitter.js';
import { NamedTimers } from './timers.js';
import { Backoff } from './backoff.js';
import { WimzError, ErrorCode } from './errors.js';
import { DeviceSubscription } from './device.js';
import { login, readJson, tokenExpiresAtMs } from './token.js';
import { VideoSession } from './webrtc.js';

/** Longest delay a browser timer takes (2^31 - 1 ms). */
const MAX_TIMER_MS = 2147483647;

/** Client defaults (milliseconds unless named otherwise). */
export const CLIENT_DEFAULTS = Object.freeze({
  /** A command with no `command_result` or error within this is rejected `timeout`. */
  commandTimeoutMs: 15000,
  /** A socket not open within this is dropped and retried. */
  connectTimeoutMs: 15000,
  /** Send `{"type":"ping"}` after this long with nothing received. */
  pingIntervalMs: 25000,
  /** ...and drop the socket if nothing arrives within this after the ping. */
  pongTimeoutMs: 10000,
  /** With `getToken`: ask for a new token this long before `exp`. */
  refreshBeforeMs: 60000,
  /**
   * Close codes after which the client does not reconnect (PROTOCOL Part 2
   * C): 4001 `replaced` and 4003 `device_deleted` mean another connection
   * or the owner ended this one on purpose. Every other code (1001
   * shutdown or heartbeat, 1008 slow consumer, 1009, 1011, network loss)
   * is worth another try.
   */
  finalCloseCodes: Object.freeze([4001, 4003]),
});

function defaultBase() {
  const loc = globalThis.location;
  if (!loc || !loc.origin || loc.origin === 'null') {
    throw new TypeError('WimzClient: give `url` (the relay\'s http(s) base URL)');
  }
  return `${loc.origin}/`;
}

/** `url` as an http(s) base ending in `/`, and its ws(s) twin. */
export function relayBases(url) {
  const u = new URL(url ?? defaultBase());
  if (u.protocol === 'ws:') u.protocol = 'http:';
  if (u.protocol === 'wss:') u.protocol = 'https:';
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new TypeError(`WimzClient: unsupported URL scheme ${u.protocol}`);
  }
  u.search = '';
  u.hash = '';
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  const ws = new URL(u.href);
  ws.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return { http: u.href, ws: ws.href };
}

export class WimzClient extends StateEmitter {
  /**
   * @param {object} [opts]
   * @param {string} [opts.url] the relay's base URL (default: this page's origin)
   * @param {string} [opts.token] a user token (or call `login`)
   * @param {() => Promise<string|null>} [opts.getToken] called for a new token
   *   when the current one expires or is refused; null/undefined = signed out
   * @param {object} [opts.reconnect] `Backoff` options (minDelayMs, maxDelayMs,
   *   stableAfterMs, maxAttempts)
   * @param {Function} [opts.WebSocket] WebSocket constructor (tests inject one)
   * @param {Function} [opts.fetch] fetch (tests inject one)
   * @param {{setTimeout: Function, clearTimeout: Function}} [opts.timers]
   * @param {() => number} [opts.now] clock, Unix ms
   * @param {() => number} [opts.random] `Math.random`-like
   */
  constructor(opts = {}) {
    super('disconnected');
    const bases = relayBases(opts.url);
    this.baseUrl = bases.http;
    this.wsBaseUrl = bases.ws;
    this.options = { ...CLIENT_DEFAULTS, ...opts };
    this._finalCodes = new Set(this.options.finalCloseCodes);
    this._WebSocket = opts.WebSocket ?? globalThis.WebSocket;
    const f = opts.fetch ?? globalThis.fetch;
    this._fetch = (...a) => f(...a);
    this._timers = opts.timers ?? {
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (t) => clearTimeout(t),
    };
    this._now = opts.now ?? Date.now;
    this._random = opts.random ?? Math.random;
    this._getToken = opts.getToken ?? null;
    this.backoff = new Backoff({ ...opts.reconnect, random: this._random });
    this._subRetry = new Backoff({ minDelayMs: 1000, maxDelayMs: 30000, random: this._random });

    // this.state: 'disconnected' | 'connecting' | 'connected'
    this._ws = null;
    this._wsOpened = false;
    this._seq = 0;
    /** connect, reconnect, stable, ping, pong, expiry */
    this._timer = new NamedTimers(this._timers);
    this._lastRx = 0;
    this._authRetried = false;

    /** device id → DeviceSubscription */
    this._subs = new Map();
    /** subscribe frame id → DeviceSubscription */
    this._subscribeIds = new Map();
    /** command id → {resolve, reject, timer, frame, sent} */
    this._commands = new Map();
    /** webrtc_request id → {deviceId, sessionId, restart, resolve, reject, timer} */
    this._webrtcRequests = new Map();
    /** session id → VideoSession */
    this._sessions = new Map();
    /** resolvers waiting for `connected` */
    this._readyWaiters = [];

    this.token = null;
    this.tokenExpiresAt = null;
    if (opts.token) this.setToken(opts.token);
  }

  // ---- token --------------------------------------------------------------

  /** Signs in with a username and password and keeps the token. */
  async login(username, password) {
    const r = await login(this._fetch, this.baseUrl, username, password, this._now);
    this.setToken(r.accessToken, r.expiresAtMs);
    this.userId = r.userId;
    return r;
  }

  /**
   * Uses `token` from now on (REST at once; the socket at its next connect —
   * the relay checks a socket's token only at the handshake).
   */
  setToken(token, expiresAtMs) {
    this.token = token;
    this.tokenExpiresAt = expiresAtMs ?? tokenExpiresAtMs(token);
    this._expiryTold = false;
    this._armExpiry();
  }

  /** True when the token's `exp` has passed. */
  get tokenExpired() {
    return this.tokenExpiresAt !== null && this._now() >= this.tokenExpiresAt;
  }

  _armExpiry() {
    this._timer.clear('expiry');
    if (this.tokenExpiresAt === null) return;
    const refreshAt = this._getToken ? this.tokenExpiresAt - this.options.refreshBeforeMs : this.tokenExpiresAt;
    const wait = refreshAt - this._now();
    this._timer.set(
      'expiry',
      Math.min(Math.max(wait, 0), MAX_TIMER_MS),
      () => {
        if (this._now() < refreshAt) return this._armExpiry(); // a very long wait, in steps
        if (this._getToken) {
          this._refreshToken().catch(() => {});
        } else {
          this._tellExpired();
        }
      },
    );
  }

  /** Emits `token_expired` once per token. */
  _tellExpired() {
    if (this._expiryTold) return;
    this._expiryTold = true;
    this.emit('token_expired', { expiresAt: this.tokenExpiresAt });
  }

  /** Asks `getToken` for a new token; resolves it, or null when signed out. */
  async _refreshToken() {
    let token;
    try {
      token = await this._getToken();
    } catch (cause) {
      this.emit('error', new WimzError('token_refresh_failed', 'getToken failed', { cause }));
      throw cause;
    }
    if (!token) {
      this._tellExpired();
      return null;
    }
    this.setToken(token);
    this.emit('token_refreshed', { expiresAt: this.tokenExpiresAt });
    return token;
  }

  // ---- connection ---------------------------------------------------------

  /** Opens the socket (and keeps it open until `close()` or a final close). */
  connect() {
    if (this.state !== 'disconnected') return;
    this._closing = false;
    this._authRetried = false;
    this.backoff.reset(); // a new start after a final stop begins at the first step
    this._setState('connecting');
    this.emit('connecting', { attempt: 0, delayMs: 0, reason: 'connect' });
    this._open();
  }

  /** Resolves when connected (at once if already), rejects after `timeoutMs`. */
  ready(timeoutMs = this.options.connectTimeoutMs) {
    if (this.state === 'connected') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { resolve, reject, timer: null };
      w.timer = this._timers.setTimeout(() => {
        this._readyWaiters = this._readyWaiters.filter((x) => x !== w);
        reject(new WimzError(ErrorCode.TIMEOUT, 'not connected in time'));
      }, timeoutMs);
      this._readyWaiters.push(w);
    });
  }

  /** Closes for good: ends subscriptions, rejects what waits, no reconnect. */
  close() {
    this._closing = true;
    this._teardown(new WimzError(ErrorCode.CLOSED, 'client closed'), 1000, 'client closed');
    for (const sub of [...this._subs.values()]) sub._clientClosed('client_closed');
    this._subs.clear();
    this._timer.clear('expiry');
    if (this.state !== 'disconnected') {
      this._setState('disconnected');
      this.emit('disconnected', { code: ErrorCode.CLOSED, reason: 'client closed', final: true });
    }
  }

  async _open() {
    if (this.state !== 'connecting') return;
    let token = this.token;
    if (!token || this.tokenExpired) {
      token = await this._tokenForConnect();
      if (!token || this.state !== 'connecting') return;
    }
    const url = `${this.wsBaseUrl}ws/app?token=${encodeURIComponent(token)}`;
    let ws;
    try {
      ws = new this._WebSocket(url);
    } catch (cause) {
      this.emit('error', new WimzError(ErrorCode.NETWORK, 'cannot open the socket', { cause }));
      this._scheduleReconnect('socket_error');
      return;
    }
    this._ws = ws;
    this._wsOpened = false;
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (e) => this._onMessage(ws, e.data);
    ws.onclose = (e) => this._onClose(ws, e.code, e.reason);
    // Browsers follow an error with a close event; some WebSocket
    // implementations (Node's) do not when the handshake fails: drop the
    // socket ourselves unless its close event came first.
    ws.onerror = () => {
      this._timers.setTimeout(() => {
        if (this._ws === ws) this._drop(ws, 'socket_error');
      }, 0);
    };
    this._timer.set('connect', this.options.connectTimeoutMs, () => {
      if (this._ws === ws && !this._wsOpened) this._drop(ws, 'connect_timeout');
    });
  }

  /** A token for the next handshake, refreshing or giving up as needed. */
  async _tokenForConnect() {
    if (this._getToken) {
      let token;
      try {
        token = await this._refreshToken();
      } catch {
        this._scheduleReconnect('token_refresh_failed');
        return null;
      }
      if (token) return token;
      this._stop(ErrorCode.UNAUTHORIZED, 'signed out: getToken gave no token');
    } else if (this.token) {
      this._tellExpired();
      this._stop(ErrorCode.TOKEN_EXPIRED, 'the token has expired');
    } else {
      this._stop(ErrorCode.UNAUTHORIZED, 'no token');
    }
    return null;
  }

  _onOpen(ws) {
    if (ws !== this._ws) return;
    this._wsOpened = true;
    this._authRetried = false;
    this._timer.clear('connect');
    this._lastRx = this._now();
    this._setState('connected');
    this._timer.set('stable', this.backoff.stableAfterMs, () => this.backoff.reset());
    this._armPing();
    for (const sub of this._subs.values()) this._sendSubscribe(sub);
    for (const c of this._commands.values()) {
      if (!c.sent) c.sent = this._send(c.frame);
    }
    for (const w of this._readyWaiters.splice(0)) {
      this._timers.clearTimeout(w.timer);
      w.resolve();
    }
    this.emit('connected', {});
  }

  _onClose(ws, code, reason) {
    if (ws !== this._ws) return;
    const wasOpen = this._wsOpened;
    this._teardown(new WimzError(ErrorCode.DISCONNECTED, 'connection lost before an answer'), null);
    if (this._closing || this.state === 'disconnected') return;
    const final = this._finalCodes.has(code);
    this.emit('connection_lost', { code, reason: reason || '', wasOpen, final });
    if (final) {
      this._stop(code, reason || 'closed by the relay');
    } else if (!wasOpen) {
      this._afterFailedHandshake();
    } else {
      this._scheduleReconnect(reason || `closed (${code})`);
    }
  }

  /**
   * The socket never opened. Browsers hide the handshake's HTTP status, so
   * ask the REST API whether the token is still good: a 401 is reported
   * (or answered with a new token from `getToken`), never retried forever.
   */
  async _afterFailedHandshake() {
    const verdict = await this._checkToken();
    if (this.state !== 'connecting' || this._ws) return;
    if (verdict !== 'refused') return this._scheduleReconnect('connect_failed');
    if (this._getToken && !this._authRetried) {
      this._authRetried = true;
      try {
        const t = await this._refreshToken();
        if (t && this.state === 'connecting') return this._open();
      } catch {
        return this._scheduleReconnect('token_refresh_failed');
      }
    }
    this.emit('unauthorized', {});
    this._stop(ErrorCode.UNAUTHORIZED, 'the relay refused the token (401)');
  }

  /** 'refused' (401 or expired), 'ok', or 'unknown' (network trouble). */
  async _checkToken() {
    if (this.tokenExpired) return 'refused';
    try {
      const res = await this._fetch(new URL('api/devices', this.baseUrl).href, {
        headers: { authorization: `Bearer ${this.token}` },
      });
      return res.status === 401 ? 'refused' : res.ok ? 'ok' : 'unknown';
    } catch {
      return 'unknown';
    }
  }

  _scheduleReconnect(reason) {
    if (this.state === 'disconnected' || this._timer.has('reconnect')) return;
    this._setState('connecting');
    if (this.backoff.exhausted) {
      this._stop('reconnect_failed', `gave up after ${this.backoff.attempts} attempts`);
      return;
    }
    const delayMs = this.backoff.next();
    this.emit('connecting', { attempt: this.backoff.attempts, delayMs, reason });
    this._timer.set('reconnect', delayMs, () => this._open());
  }

  /** Stops reconnecting; subscriptions are kept for a later `connect()`. */
  _stop(code, reason) {
    this._teardown(new WimzError(ErrorCode.DISCONNECTED, reason), 1000, reason);
    const err = new WimzError(String(code), reason);
    for (const w of this._readyWaiters.splice(0)) {
      this._timers.clearTimeout(w.timer);
      w.reject(err);
    }
    for (const [id, c] of this._commands) {
      this._commands.delete(id);
      this._timers.clearTimeout(c.timer);
      c.reject(err);
    }
    this._setState('disconnected');
    this.emit('disconnected', { code, reason, final: true });
  }

  /**
   * Forgets the current socket and everything bound to it: timers, waiting
   * commands already sent (`err`), subscribe ids, WebRTC sessions (the relay
   * ends them with the socket). Closes the socket when `closeCode` is given.
   */
  _teardown(err, closeCode, closeReason) {
    const ws = this._ws;
    this._ws = null;
    for (const k of ['connect', 'reconnect', 'stable', 'ping', 'pong']) this._timer.clear(k);
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (closeCode !== null) {
        try {
          ws.close(closeCode, closeReason);
        } catch {
          /* already closed */
        }
      }
    }
    this._subscribeIds.clear();
    for (const sub of this._subs.values()) sub._socketClosed();
    for (const [id, c] of this._commands) {
      if (c.sent || this._closing) {
        this._commands.delete(id);
        this._timers.clearTimeout(c.timer);
        c.reject(this._closing ? new WimzError(ErrorCode.CLOSED, 'client closed') : err);
      }
    }
    for (const [id, r] of this._webrtcRequests) {
      this._webrtcRequests.delete(id);
      this._timers.clearTimeout(r.timer);
      r.reject(err);
    }
    for (const s of [...this._sessions.values()]) s._signalingLost();
  }

  /** Drops a socket we no longer trust and handles it as lost (1006). */
  _drop(ws, reason) {
    if (ws !== this._ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(4000, reason);
    } catch {
      /* already closed */
    }
    this._onClose(ws, 1006, reason);
  }

  /** Pings after `pingIntervalMs` of silence; no answer within `pongTimeoutMs` drops the socket. */
  _armPing() {
    const interval = this.options.pingIntervalMs;
    const wait = Math.max(interval - (this._now() - this._lastRx), 1);
    this._timer.set('ping', wait, () => {
      const ws = this._ws;
      if (!ws || !this._wsOpened) return;
      if (this._now() - this._lastRx >= interval && !this._timer.has('pong')) {
        this._send({ type: 'ping' });
        this._timer.set('pong', this.options.pongTimeoutMs, () => this._drop(ws, 'no_pong'));
        this._lastRx = this._now(); // the next ping waits a full interval
      }
      this._armPing();
    });
  }

  /** Sends a frame now; false when not connected. */
  _send(frame) {
    if (!this._ws || !this._wsOpened) return false;
    this._ws.send(JSON.stringify(frame));
    return true;
  }

  _nextId(prefix) {
    this._seq += 1;
    return `${prefix}${this._seq}`;
  }

  // ---- incoming frames ----------------------------------------------------

  _onMessage(ws, data) {
    if (ws !== this._ws) return;
    this._lastRx = this._now();
    this._timer.clear('pong');
    let frame;
    try {
      frame = typeof data === 'string' ? JSON.parse(data) : null;
    } catch {
      frame = null;
    }
    if (!frame || typeof frame !== 'object' || Array.isArray(frame) || typeof frame.type !== 'string') {
      this.emit('error', new WimzError('bad_frame', 'the relay sent a frame that is not a JSON object with a type'));
      return;
    }
    this.emit('frame', frame);
    this._route(frame);
  }

  _route(frame) {
    const sub = typeof frame.device_id === 'string' ? this._subs.get(frame.device_id) : undefined;
    switch (frame.type) {
      case 'pong':
        return;
      case 'subscribed':
        if (!sub) return;
        if (sub._pending) this._subscribeIds.delete(sub._pending.id);
        this._subRetry.reset();
        return sub._onSubscribed(frame);
      case 'event':
        if (sub && sub._onEvent(frame)) this.emit('event', frame);
        return;
      case 'recovered':
        return sub && sub._onRecovered(frame);
      case 'unsubscribed':
        return sub && sub._onUnsubscribed(frame);
      case 'command_result':
        return this._onCommandResult(frame);
      case 'error':
        return this._onError(frame);
      case 'webrtc_credentials':
        return this._onCredentials(frame);
      case 'webrtc_offer':
      case 'webrtc_ice':
      case 'webrtc_close': {
        const s = this._sessions.get(frame.session_id);
        return s && s._onSignal(frame);
      }
      default:
        this.emit('message', frame);
    }
  }

  _onCommandResult(frame) {
    const c = typeof frame.id === 'string' ? this._commands.get(frame.id) : undefined;
    if (!c) return; // not ours, or already timed out
    this._commands.delete(frame.id);
    this._timers.clearTimeout(c.timer);
    c.resolve(frame);
  }

  _onError(frame) {
    const err = WimzError.fromFrame(frame);
    const ref = frame.ref;
    if (typeof ref === 'string') {
      const c = this._commands.get(ref);
      if (c) {
        this._commands.delete(ref);
        this._timers.clearTimeout(c.timer);
        return c.reject(err);
      }
      const sub = this._subscribeIds.get(ref);
      if (sub) {
        this._subscribeIds.delete(ref);
        return sub._onError(err);
      }
      const w = this._webrtcRequests.get(ref);
      if (w) {
        this._webrtcRequests.delete(ref);
        this._timers.clearTimeout(w.timer);
        return w.reject(err);
      }
    }
    this.emit('error', err);
  }

  _onCredentials(frame) {
    for (const [id, w] of this._webrtcRequests) {
      const match = frame.ice_restart === true
        ? w.restart && w.sessionId === frame.session_id
        : !w.restart && w.deviceId === frame.device_id;
      if (match) {
        this._webrtcRequests.delete(id);
        this._timers.clearTimeout(w.timer);
        // Registered now, not when the caller's await resumes: the robot's
        // offer may be the very next frame.
        if (!w.restart && w.session) w.session._bindSession(frame.session_id);
        return w.resolve(frame);
      }
    }
  }

  // ---- subscriptions ------------------------------------------------------

  /**
   * The subscription to `deviceId` (made and sent if new). `from`
   * (`{since_seq, epoch}`) resumes a stream saved earlier.
   */
  subscribe(deviceId, from) {
    let sub = this._subs.get(deviceId);
    if (sub) return sub;
    sub = new DeviceSubscription(this, deviceId, from);
    this._subs.set(deviceId, sub);
    sub._setState('subscribing');
    this._sendSubscribe(sub);
    return sub;
  }

  /** The current subscription to `deviceId`, if any. */
  subscription(deviceId) {
    return this._subs.get(deviceId);
  }

  _sendSubscribe(sub) {
    if (this.state !== 'connected' || this._subs.get(sub.deviceId) !== sub) return;
    const id = this._nextId('s');
    const frame = sub._subscribeFrame(id);
    this._subscribeIds.set(id, sub);
    this._send(frame);
  }

  _unsubscribe(sub) {
    this._forget(sub);
    this._send({ type: 'unsubscribe', device_id: sub.deviceId });
  }

  _forget(sub) {
    if (this._subs.get(sub.deviceId) === sub) this._subs.delete(sub.deviceId);
    for (const [id, s] of this._subscribeIds) if (s === sub) this._subscribeIds.delete(id);
  }

  _subscribeRetryDelay() {
    return this._subRetry.next();
  }

  // ---- commands -------------------------------------------------------------

  /**
   * Sends `command` to the device's robot. Resolves with the robot's
   * `command_result` frame (`{ok, data, id, ...}`; `ok:false` is the robot's
   * answer, not an error). Rejects with a `WimzError`: the relay's error
   * for it (`robot_offline`, `not_owner`, `rate_limited`, ... with `ref`),
   * `timeout`, `disconnected` (the socket dropped after sending: the robot
   * may still have acted), or `closed`. Waits for a connection first.
   */
  command(deviceId, command, data = {}, { timeoutMs = this.options.commandTimeoutMs } = {}) {
    const id = this._nextId('c');
    const frame = { type: 'command', device_id: deviceId, id, command, data };
    return new Promise((resolve, reject) => {
      const c = { resolve, reject, frame, sent: false, timer: null };
      c.timer = this._timers.setTimeout(() => {
        this._commands.delete(id);
        reject(new WimzError(ErrorCode.TIMEOUT, `no answer to ${command} within ${timeoutMs} ms`, { ref: id }));
      }, timeoutMs);
      this._commands.set(id, c);
      c.sent = this._send(frame);
    });
  }

  // ---- WebRTC -----------------------------------------------------------

  /** A video session with the device's robot (call `start()` on it). */
  video(deviceId, opts) {
    return new VideoSession(this, deviceId, opts);
  }

  /**
   * Sends `webrtc_request` and resolves with the `webrtc_credentials`
   * answer. `sessionId` given = an ICE restart of that session.
   */
  _requestWebrtc(deviceId, sessionId = null, session = null) {
    const id = this._nextId('w');
    const frame = { type: 'webrtc_request', device_id: deviceId, id };
    if (sessionId) {
      frame.session_id = sessionId;
      frame.ice_restart = true;
    }
    return new Promise((resolve, reject) => {
      if (!this._send(frame)) {
        reject(new WimzError(ErrorCode.DISCONNECTED, 'not connected'));
        return;
      }
      const w = { deviceId, sessionId, session, restart: !!sessionId, resolve, reject, timer: null };
      w.timer = this._timers.setTimeout(() => {
        this._webrtcRequests.delete(id);
        reject(new WimzError(ErrorCode.TIMEOUT, 'no webrtc_credentials in time', { ref: id }));
      }, this.options.commandTimeoutMs);
      this._webrtcRequests.set(id, w);
    });
  }

  _registerSession(sessionId, session) {
    this._sessions.set(sessionId, session);
  }

  _unregisterSession(sessionId, session) {
    if (this._sessions.get(sessionId) === session) this._sessions.delete(sessionId);
  }

  // ---- REST -----------------------------------------------------------------

  /**
   * `fetch` against the relay with the user's token. `path` is relative to
   * the relay base (`api/devices`); `init.query` (an object) becomes the
   * query string; a plain-object `init.body` is sent as JSON. Resolves the
   * `Response` whatever its status; rejects `network` when unreachable.
   * A 401 with `getToken` set is retried once with a new token.
   */
  async request(path, init = {}) {
    const url = new URL(String(path).replace(/^\/+/, ''), this.baseUrl);
    if (init.query) for (const [k, v] of Object.entries(init.query)) url.searchParams.set(k, String(v));
    const headers = { ...(init.headers || {}) };
    let body = init.body;
    if (body !== undefined && body !== null && typeof body === 'object' && Object.getPrototypeOf(body) === Object.prototype) {
      body = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    const send = async () => {
      if (this.token) headers.authorization = `Bearer ${this.token}`;
      try {
        return await this._fetch(url.href, { method: init.method || 'GET', headers, body, signal: init.signal });
      } catch (cause) {
        if (cause && cause.name === 'AbortError') throw cause;
        throw new WimzError(ErrorCode.NETWORK, 'the relay cannot be reached', { cause });
      }
    };
    let res = await send();
    if (res.status === 401 && this._getToken) {
      const t = await this._refreshToken().catch(() => null);
      if (t) res = await send();
    }
    if (res.status === 401) this.emit('unauthorized', { path: url.pathname });
    return res;
  }

  /** `request`, then the JSON body; a non-2xx answer rejects with `WimzError` (code from the body, `status`). */
  async requestJson(path, init) {
    const res = await this.request(path, init);
    const body = await readJson(res);
    if (!res.ok) throw WimzError.fromHttp(res.status, body, res.headers);
    return body;
  }

  /** `GET /api/devices`: the caller's devices. */
  devices() {
    return this.requestJson('api/devices');
  }

  /** `fetch`-like REST call proxied to the robot: `ANY /api/devices/{id}/robot/{path}`. */
  robotFetch(deviceId, path, init) {
    return this.request(`api/devices/${encodeURIComponent(deviceId)}/robot/${String(path).replace(/^\/+/, '')}`, init);
  }

  /** `robotFetch`, then the JSON body (non-2xx rejects: 503 robot offline, 504 timeout, 404 not allowed). */
  robotJson(deviceId, path, init) {
    return this.requestJson(`api/devices/${encodeURIComponent(deviceId)}/robot/${String(path).replace(/^\/+/, '')}`, init);
  }
}
