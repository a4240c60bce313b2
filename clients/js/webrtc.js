//! `VideoSession`: one WebRTC session with a robot, signaled through the
//! relay (docs/PROTOCOL.md §3.5, docs/WEBRTC.md). It owns the
//! `RTCPeerConnection`, its ICE servers (from the relay-issued TURN
//! credentials; `iceTransportPolicy: "relay"` on request), the answer to
//! the robot's offer, trickled ICE both ways, the path type (`direct` /
//! `relay`, read from `getStats()`'s selected candidate pair and reported to
//! the relay as `webrtc_stats` with the RTT), a `QualityMonitor` on the
//! receive-side stats, ICE restarts (on `failed`, or `disconnected` past a
//! grace period, or `restartIce()`: the relay's `ice_restart` brings fresh
//! credentials, applied with `setConfiguration`, and the robot's new offer),
//! bounded, after which the session closes with a reason.
//!
//! The robot offers, the app answers. The client routes the session's
//! signaling frames here by `session_id`.

import { StateEmitter } from './emitter.js';
import { NamedTimers } from './timers.js';
import { WimzError, ErrorCode } from './errors.js';
import { connectionInfo, extractMetrics } from './stats.js';
import { QualityMonitor } from './quality.js';

/** Session defaults (milliseconds unless named otherwise). */
export const VIDEO_DEFAULTS = Object.freeze({
  /** 'all' or 'relay' (TURN only). */
  iceTransportPolicy: 'all',
  /** How often stats are read for the quality monitor. */
  statsIntervalMs: 2000,
  /** How often `webrtc_stats` goes to the relay (also on a path change). */
  reportIntervalMs: 10000,
  /** `disconnected` for this long starts an ICE restart. */
  disconnectedGraceMs: 5000,
  /** ICE restarts in a row before giving up (`ice_failed`). */
  maxIceRestarts: 3,
  /** A restart not connected within this counts as failed. */
  restartTimeoutMs: 15000,
  /** `start()` gives up (`connect_timeout`) after this. */
  connectTimeoutMs: 45000,
  /** Wait this long for local candidates before sending the answer (robots that do not trickle). */
  iceGatheringTimeoutMs: 2000,
});

/** The RTCIceServer list in relay-issued credentials (PROTOCOL §4). */
export function iceServersOf(credentials) {
  if (!credentials || typeof credentials !== 'object') return [];
  if (Array.isArray(credentials.ice_servers) && credentials.ice_servers.length > 0) {
    return credentials.ice_servers;
  }
  if (Array.isArray(credentials.urls) && credentials.urls.length > 0) {
    return [{ urls: credentials.urls, username: credentials.username, credential: credentials.credential }];
  }
  return [];
}

/** The `a=fingerprint:` lines of an SDP, sorted and joined (the peer's DTLS identity). */
export function sdpFingerprints(sdp) {
  return sdp
    .split(/\r?\n/)
    .filter((l) => l.startsWith('a=fingerprint:'))
    .map((l) => l.trim().toLowerCase())
    .sort()
    .join('|');
}

export class VideoSession extends StateEmitter {
  /**
   * @param {import('./client.js').WimzClient} client
   * @param {string} deviceId
   * @param {object} [opts] VIDEO_DEFAULTS overrides, `quality` (QualityMonitor
   *   options), `RTCPeerConnection` (constructor, injectable)
   */
  constructor(client, deviceId, opts = {}) {
    super('new');
    this.client = client;
    this.deviceId = deviceId;
    this.options = { ...VIDEO_DEFAULTS, ...opts };
    this._RTC = opts.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    // this.state: 'new' | 'requesting' | 'negotiating' | 'connected' | 'restarting' | 'closed'
    this.sessionId = null;
    this.credentials = null;
    this.pc = null;
    this.stream = null;
    /** 'direct' | 'relay' | null, and the details behind it. */
    this.connectionType = null;
    this.connectionInfo = null;
    this.metrics = null;
    this.closeReason = null;
    this.iceRestarts = 0;
    this.monitor = new QualityMonitor(this.options.quality);
    for (const ev of ['warning', 'cleared', 'quality']) this.monitor.on(ev, (x) => this.emit(ev, x));

    this._early = []; // signaling frames that came before the peer connection
    this._remoteCandidates = [];
    this._chain = Promise.resolve();
    this._answerSent = false;
    this._everAnswered = false;
    /** The DTLS fingerprints of the last remote offer (a changed set = a new robot peer). */
    this._remoteFingerprints = null;
    this._restarting = false;
    this._restartAttempts = 0;
    /** grace, restart, connect, stats */
    this._timer = new NamedTimers(client._timers);
    this._lastReport = { at: -Infinity, type: null };
    this._startWaiter = null;
  }

  /**
   * Asks the relay for a session and answers the robot's offer. Resolves
   * when media is connected; rejects with a `WimzError` (`robot_offline`,
   * `session_limit`, `timeout`, or `session_closed` with the `reason`).
   */
  async start() {
    if (this.state !== 'new') throw new WimzError('bad_state', `start() in state ${this.state}`);
    if (typeof this._RTC !== 'function') throw new WimzError('unsupported', 'RTCPeerConnection is not available');
    this._setState('requesting');
    const connected = new Promise((resolve, reject) => {
      this._startWaiter = { resolve, reject };
    });
    connected.catch(() => {}); // rejection is returned below; avoid an unhandled copy
    let creds;
    try {
      if (this.client.state !== 'connected') {
        await this.client.ready();
        if (this.state === 'closed') throw this._closedError();
      }
      creds = await this.client._requestWebrtc(this.deviceId, null, this);
    } catch (err) {
      if (this.state !== 'closed') this._finish(err.code || 'request_failed', 'local', false);
      throw err;
    }
    if (this.state === 'closed') throw this._closedError();
    this.credentials = creds.credentials;
    this._createPc();
    this._setState('negotiating');
    this._timer.set('connect', this.options.connectTimeoutMs, () => {
      if (this.state !== 'connected') this.close('connect_timeout');
    });
    for (const f of this._early.splice(0)) this._onSignal(f);
    this._startStats();
    return connected;
  }

  /** Restarts ICE now (fresh credentials, the robot re-offers); resets the attempt count. */
  restartIce() {
    return this._restart('manual', true);
  }

  /** Ends the session: `webrtc_close{reason}` to the robot, the peer connection closed. */
  close(reason = 'closed_by_app') {
    this._finish(reason, 'local', true);
  }

  /** The path in use right now (reads `getStats()`), or null before one is chosen. */
  async getConnectionType() {
    if (!this.pc) return null;
    return connectionInfo(await this.pc.getStats());
  }

  /** The relay's session id, as soon as its credentials arrive (called by the client). */
  _bindSession(sessionId) {
    if (this.state === 'closed') {
      // closed while the request travelled: end the session the relay made
      this.client._send({ type: 'webrtc_close', session_id: sessionId, reason: this.closeReason });
      return;
    }
    this.sessionId = sessionId;
    this.client._registerSession(sessionId, this);
  }

  // ---- the peer connection ------------------------------------------------

  _createPc() {
    const pc = new this._RTC({
      iceServers: iceServersOf(this.credentials),
      iceTransportPolicy: this.options.iceTransportPolicy,
    });
    this.pc = pc;
    this._answerSent = false;
    pc.ontrack = (e) => {
      if (pc !== this.pc) return;
      const stream = (e.streams && e.streams[0]) || (globalThis.MediaStream ? new globalThis.MediaStream([e.track]) : null);
      this.stream = stream;
      this.emit('track', { track: e.track, stream });
    };
    pc.onicecandidate = (e) => {
      if (pc !== this.pc || !e.candidate || !this._answerSent) return;
      const c = typeof e.candidate.toJSON === 'function' ? e.candidate.toJSON() : e.candidate;
      this.client._send({ type: 'webrtc_ice', session_id: this.sessionId, candidate: c });
    };
    pc.oniceconnectionstatechange = () => pc === this.pc && this._evaluate();
    pc.onconnectionstatechange = () => pc === this.pc && this._evaluate();
    return pc;
  }

  /** Replaces the peer connection (a re-offer the old one cannot take). */
  _replacePc() {
    const old = this.pc;
    this.pc = null;
    try {
      old.close();
    } catch {
      /* already closed */
    }
    this._remoteCandidates = [];
    return this._createPc();
  }

  /** The connection's state as one of connected / disconnected / failed / other. */
  _linkState() {
    const pc = this.pc;
    const cs = pc.connectionState;
    const ice = pc.iceConnectionState;
    if (cs === 'failed' || ice === 'failed') return 'failed';
    if (cs === 'connected' || (cs === undefined && (ice === 'connected' || ice === 'completed'))) return 'connected';
    if (cs === 'disconnected' || ice === 'disconnected') return 'disconnected';
    return 'other';
  }

  _evaluate() {
    if (this.state === 'closed' || !this.pc) return;
    const link = this._linkState();
    if (link === 'connected') {
      this._timer.clear('grace');
      this._timer.clear('restart');
      this._timer.clear('connect');
      const wasRestarting = this._restarting;
      this._restarting = false;
      this._restartAttempts = 0;
      if (this.state !== 'connected') {
        this._setState('connected');
        if (wasRestarting) this.emit('ice_restarted', { restarts: this.iceRestarts });
        this._lastReport.type = null; // report the (maybe new) path at once
        this._pollStats();
      }
      if (this._startWaiter) {
        this._startWaiter.resolve(this);
        this._startWaiter = null;
      }
    } else if (link === 'failed') {
      this._timer.clear('grace');
      if (!this._restarting) this._restart('failed');
    } else if (link === 'disconnected') {
      if (!this._timer.has('grace') && !this._restarting) {
        this._timer.set('grace', this.options.disconnectedGraceMs, () => {
          if (this.pc && this._linkState() !== 'connected') this._restart('disconnected');
        });
      }
    }
  }

  // ---- signaling ------------------------------------------------------------

  /** A signaling frame for this session (routed by the client). */
  _onSignal(frame) {
    if (this.state === 'closed') return;
    if (frame.type === 'webrtc_close') {
      this._finish(typeof frame.reason === 'string' && frame.reason ? frame.reason : 'closed_by_robot', 'remote', false);
      return;
    }
    if (!this.pc) {
      this._early.push(frame);
      return;
    }
    const pc = this.pc;
    if (frame.type === 'webrtc_offer') {
      this._chain = this._chain.then(() => this._handleOffer(frame)).catch((err) => {
        if (this.state === 'closed') return;
        this.emit('error', new WimzError('negotiation_failed', `cannot answer the robot's offer: ${err && err.message}`, { cause: err }));
        this.close('negotiation_failed');
      });
    } else if (frame.type === 'webrtc_ice') {
      this._chain = this._chain.then(() => this._addCandidate(pc, frame)).catch(() => {
        /* a candidate the browser refuses is not fatal */
      });
    }
  }

  async _handleOffer(frame) {
    if (this.state === 'closed' || typeof frame.sdp !== 'string') return;
    const desc = { type: 'offer', sdp: frame.sdp };
    let pc = this.pc;
    const fingerprints = sdpFingerprints(frame.sdp);
    if (this._everAnswered && this._remoteFingerprints !== null && fingerprints !== this._remoteFingerprints) {
      // The robot answered the restart with a new peer connection (new DTLS
      // identity; robots on aiortc cannot restart ICE in place): a new
      // offer for a new connection, so a new RTCPeerConnection here too.
      pc = this._replacePc();
    }
    try {
      await pc.setRemoteDescription(desc);
    } catch (err) {
      if (!this._everAnswered) throw err;
      // A re-offer the old connection cannot take: start a fresh one.
      pc = this._replacePc();
      await pc.setRemoteDescription(desc);
    }
    this._remoteFingerprints = fingerprints;
    for (const c of this._remoteCandidates.splice(0)) await this._addCandidate(pc, c);
    this._answerSent = false;
    await pc.setLocalDescription(await pc.createAnswer());
    await this._gathered(pc);
    if (pc !== this.pc || this.state === 'closed') return;
    this.client._send({
      type: 'webrtc_answer',
      session_id: this.sessionId,
      sdp: pc.localDescription.sdp,
      sdp_type: 'answer',
    });
    this._answerSent = true;
    this._everAnswered = true;
  }

  /** Resolves when ICE gathering completes, or after `iceGatheringTimeoutMs`. */
  _gathered(pc) {
    if (pc.iceGatheringState === 'complete' || !this.options.iceGatheringTimeoutMs) return Promise.resolve();
    return new Promise((resolve) => {
      const t = this.client._timers.setTimeout(done, this.options.iceGatheringTimeoutMs);
      const prev = pc.onicegatheringstatechange;
      function done() {
        pc.onicegatheringstatechange = prev;
        resolve();
      }
      pc.onicegatheringstatechange = (e) => {
        if (typeof prev === 'function') prev.call(pc, e);
        if (pc.iceGatheringState === 'complete') {
          this.client._timers.clearTimeout(t);
          done();
        }
      };
    });
  }

  async _addCandidate(pc, frame) {
    if (pc !== this.pc) return;
    if (!pc.remoteDescription) {
      this._remoteCandidates.push(frame);
      return;
    }
    let c = frame.candidate;
    if (c === null || c === undefined || c === '') return; // end of candidates
    if (typeof c === 'string') c = { candidate: c, sdpMid: frame.sdpMid ?? '0', sdpMLineIndex: frame.sdpMLineIndex ?? 0 };
    await pc.addIceCandidate(c);
  }

  // ---- ICE restart ------------------------------------------------------------

  async _restart(reason, manual = false) {
    if (this.state === 'closed' || !this.sessionId) return;
    if (this._restarting && !manual) return;
    if (manual) this._restartAttempts = 0;
    if (this._restartAttempts >= this.options.maxIceRestarts) {
      this.close('ice_failed');
      return;
    }
    this._restartAttempts += 1;
    this.iceRestarts += 1;
    this._restarting = true;
    this._timer.clear('grace');
    this._setState('restarting');
    const attempt = this._restartAttempts;
    this.emit('ice_restart', { attempt, max: this.options.maxIceRestarts, reason, manual });
    this._timer.clear('restart');
    this._timer.set('restart', this.options.restartTimeoutMs, () => {
      if (this.state === 'closed' || (this.pc && this._linkState() === 'connected')) return;
      this._restarting = false;
      this._restart('restart_timeout');
    });
    let creds;
    try {
      creds = await this.client._requestWebrtc(this.deviceId, this.sessionId, this);
    } catch (err) {
      if (this.state === 'closed') return;
      this.emit('error', err);
      if (err.code === 'robot_offline' || err.code === 'unknown_session' || err.code === ErrorCode.DISCONNECTED) {
        this._finish(err.code === ErrorCode.DISCONNECTED ? 'signaling_lost' : err.code, 'remote', false);
      }
      return; // otherwise the restart timer tries again
    }
    if (this.state === 'closed' || !this.pc) return;
    this.credentials = creds.credentials;
    const config = {
      ...(typeof this.pc.getConfiguration === 'function' ? this.pc.getConfiguration() : {}),
      iceServers: iceServersOf(this.credentials),
      iceTransportPolicy: this.options.iceTransportPolicy,
    };
    try {
      this.pc.setConfiguration(config);
    } catch (err) {
      this.emit('error', new WimzError('ice_restart_failed', 'setConfiguration refused the new ICE servers', { cause: err }));
    }
    // The robot answers the restart with a new offer (PROTOCOL §3.5 step 6).
  }

  // ---- stats -------------------------------------------------------------------

  _startStats() {
    const tick = () => {
      if (this.state === 'closed') return;
      this._pollStats().finally(() => {
        if (this.state !== 'closed' && !this._timer.has('stats')) {
          this._timer.set('stats', this.options.statsIntervalMs, tick);
        }
      });
    };
    this._timer.set('stats', this.options.statsIntervalMs, tick);
  }

  async _pollStats() {
    const pc = this.pc;
    if (!pc || typeof pc.getStats !== 'function') return;
    let report;
    try {
      report = await pc.getStats();
    } catch {
      return;
    }
    if (pc !== this.pc || this.state === 'closed') return;
    const metrics = extractMetrics(report, this.metrics);
    this.metrics = metrics;
    this.emit('stats', metrics);
    if (this.state === 'connected') this.monitor.update(metrics);
    const info = connectionInfo(report);
    if (!info) return;
    const changed = !this.connectionInfo || info.connectionType !== this.connectionType ||
      info.localCandidateType !== this.connectionInfo.localCandidateType ||
      info.remoteCandidateType !== this.connectionInfo.remoteCandidateType;
    this.connectionInfo = info;
    this.connectionType = info.connectionType;
    if (changed) this.emit('connection_type', info);
    const now = this.client._now();
    if (changed || this._lastReport.type !== info.connectionType || now - this._lastReport.at >= this.options.reportIntervalMs) {
      const frame = { type: 'webrtc_stats', session_id: this.sessionId, connection_type: info.connectionType };
      const rtt = info.rttMs ?? metrics.rttMs;
      if (typeof rtt === 'number' && rtt >= 0) frame.rtt_ms = Math.round(rtt * 10) / 10;
      if (this.client._send(frame)) this._lastReport = { at: now, type: info.connectionType };
    }
  }

  // ---- ending -------------------------------------------------------------------

  /** The app's socket closed: the relay has ended this session with it. */
  _signalingLost() {
    this._finish('signaling_lost', 'local', false);
  }

  _finish(reason, by, tellRelay) {
    if (this.state === 'closed') return;
    if (tellRelay && this.sessionId) {
      this.client._send({ type: 'webrtc_close', session_id: this.sessionId, reason });
    }
    this._timer.clearAll();
    if (this.pc) {
      try {
        this.pc.close();
      } catch {
        /* already closed */
      }
    }
    if (this.sessionId) this.client._unregisterSession(this.sessionId, this);
    this.closeReason = reason;
    this._setState('closed');
    this.emit('closed', { reason, by });
    if (this._startWaiter) {
      this._startWaiter.reject(this._closedError());
      this._startWaiter = null;
    }
  }

  _closedError() {
    const e = new WimzError(ErrorCode.SESSION_CLOSED, `video session closed: ${this.closeReason}`);
    e.reason = this.closeReason;
    return e;
  }
}
