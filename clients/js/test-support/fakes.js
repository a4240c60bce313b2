//! Test doubles for the SDK's Node unit tests: a manual clock that owns
//! every timer (nothing waits on wall time), a WebSocket the test opens,
//! feeds and closes by hand, a fetch that answers from a function, and an
//! RTCPeerConnection whose states and stats the test sets. The real relay
//! and the real browser are exercised by the end-to-end tests instead.

/** Lets pending promise callbacks run (a macrotask turn). */
export function flush() {
  return new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock {
  constructor(start = 1_700_000_000_000) {
    this.t = start;
    this._timers = new Map();
    this._next = 1;
    this.now = () => this.t;
    this.timers = {
      setTimeout: (fn, ms) => {
        const id = this._next++;
        this._timers.set(id, { at: this.t + Math.max(0, Number(ms) || 0), fn, seq: id });
        return id;
      },
      clearTimeout: (id) => {
        this._timers.delete(id);
      },
    };
  }

  /** Delays (from now) of the timers still pending, soonest first. */
  pending() {
    return [...this._timers.values()].map((t) => t.at - this.t).sort((a, b) => a - b);
  }

  /** Advances the clock by `ms`, running due timers in order (and the promise work they start). */
  async tick(ms) {
    const end = this.t + ms;
    await flush();
    for (;;) {
      let due = null;
      for (const [id, t] of this._timers) {
        if (t.at <= end && (due === null || t.at < due[1].at || (t.at === due[1].at && t.seq < due[1].seq))) due = [id, t];
      }
      if (!due) break;
      this._timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

/** A WebSocket class whose instances the test drives; `sockets` lists them in creation order. */
export function fakeWebSocket() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      sockets.push(this);
    }
    send(data) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open');
      this.sent.push(JSON.parse(data));
    }
    close(code, reason) {
      this.closedWith = { code, reason };
      const wasOpen = this.readyState !== 3;
      this.readyState = 3;
      // as a browser: the close event comes later, to whoever still listens
      if (wasOpen) setImmediate(() => this.onclose && this.onclose({ code: 1005, reason: '' }));
    }
    // ---- the test's side ----
    open() {
      this.readyState = 1;
      this.onopen && this.onopen({});
    }
    receive(frame) {
      this.onmessage && this.onmessage({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
    }
    serverClose(code = 1006, reason = '') {
      this.readyState = 3;
      this.onclose && this.onclose({ code, reason });
    }
    /** Frames sent of one type. */
    sentOf(type) {
      return this.sent.filter((f) => f.type === type);
    }
  }
  return {
    WebSocket: FakeWebSocket,
    sockets,
    get last() {
      return sockets[sockets.length - 1];
    },
  };
}

/** A fetch that answers `handler(url, init)` → `{status, body}`, or throws to simulate a network failure; `calls` records them. */
export function fakeFetch(handler) {
  const calls = [];
  const f = async (url, init = {}) => {
    calls.push({ url, init });
    const r = await handler(url, init);
    const body = r.body === undefined ? '' : typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
    return new Response(r.status === 204 ? null : body, { status: r.status, headers: { 'content-type': 'application/json', ...(r.headers || {}) } });
  };
  f.calls = calls;
  return f;
}

/** A JWT-shaped token (unsigned) with the given `exp` (Unix seconds). */
export function fakeToken(exp, sub = 'u1') {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, role: 'user', exp, iat: exp - 86400 })}.c2ln`;
}

/** An RTCPeerConnection stand-in: records what the session does; the test sets states and stats. */
export function fakePeerConnections() {
  const made = [];
  class FakePC {
    constructor(config) {
      this.config = config;
      this.configurations = [config];
      this.connectionState = 'new';
      this.iceConnectionState = 'new';
      this.iceGatheringState = 'new';
      this.remoteDescription = null;
      this.localDescription = null;
      this.addedCandidates = [];
      this.closed = false;
      this.statsReport = [];
      this.rejectOffers = false;
      made.push(this);
    }
    async setRemoteDescription(d) {
      if (this.rejectOffers) throw new Error('fingerprint changed');
      this.remoteDescription = d;
    }
    async createAnswer() {
      return { type: 'answer', sdp: `answer-to:${this.remoteDescription.sdp}` };
    }
    async setLocalDescription(d) {
      this.localDescription = d;
      this.iceGatheringState = 'complete';
    }
    async addIceCandidate(c) {
      this.addedCandidates.push(c);
    }
    getConfiguration() {
      return this.configurations[this.configurations.length - 1];
    }
    setConfiguration(c) {
      this.configurations.push(c);
    }
    async getStats() {
      return new Map(this.statsReport.map((s) => [s.id, s]));
    }
    close() {
      this.closed = true;
      this.connectionState = 'closed';
    }
    // ---- the test's side ----
    setState(connectionState, iceConnectionState = connectionState) {
      this.connectionState = connectionState;
      this.iceConnectionState = iceConnectionState;
      this.oniceconnectionstatechange && this.oniceconnectionstatechange();
      this.onconnectionstatechange && this.onconnectionstatechange();
    }
    emitCandidate(candidate) {
      this.onicecandidate && this.onicecandidate({ candidate: { toJSON: () => candidate } });
    }
  }
  return { RTCPeerConnection: FakePC, made };
}
