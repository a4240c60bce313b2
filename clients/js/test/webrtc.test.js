// VideoSession against a scripted relay and a stand-in RTCPeerConnection:
// the signaling order (request → credentials → robot's offer → answer, ICE
// both ways), ICE servers from the relay-issued credentials, the connection
// type reported as webrtc_stats, ICE restarts (failed, disconnected past the
// grace period, manual) with fresh credentials, the bound on restarts, and
// every way a session closes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connected, record, setup } from '../test-support/setup.js';
import { fakePeerConnections, flush } from '../test-support/fakes.js';

const relayReport = JSON.parse(readFileSync(new URL('./fixtures/chromium-relay.json', import.meta.url), 'utf8')).reports[1];

const creds = (n) => ({
  urls: [`turn:127.0.0.1:3478?transport=udp`],
  username: `${1700000000 + n}:d1`,
  credential: `cred-${n}`,
  ttl: 86400,
  expires_at: 1700000000 + n,
  ice_servers: [
    { urls: ['stun:127.0.0.1:3478'] },
    { urls: ['turn:127.0.0.1:3478?transport=udp'], username: `${1700000000 + n}:d1`, credential: `cred-${n}` },
  ],
});

/** A session whose robot has offered and been answered. */
async function negotiated(opts = {}) {
  const s = connected();
  const rtc = fakePeerConnections();
  const video = s.client.video('d1', { RTCPeerConnection: rtc.RTCPeerConnection, iceTransportPolicy: 'relay', ...opts });
  const started = video.start();
  started.catch(() => {});
  const req = s.ws.last.sentOf('webrtc_request')[0];
  assert.deepEqual(Object.keys(req).sort(), ['device_id', 'id', 'type']);
  s.ws.last.receive({ type: 'webrtc_credentials', session_id: 'S1', device_id: 'd1', credentials: creds(1) });
  // the robot's offer can be the very next frame
  s.ws.last.receive({ type: 'webrtc_offer', session_id: 'S1', sdp: 'offer-1', sdp_type: 'offer' });
  await s.clock.tick(0);
  const pc = rtc.made[0];
  return { ...s, rtc, video, started, pc };
}

test('request → credentials → the robot offers → the app answers; ICE servers come from the credentials, relay policy on request', async () => {
  const { ws, pc, video } = await negotiated();
  assert.deepEqual(pc.config.iceServers, creds(1).ice_servers);
  assert.equal(pc.config.iceTransportPolicy, 'relay');
  assert.deepEqual(pc.remoteDescription, { type: 'offer', sdp: 'offer-1' });
  assert.deepEqual(ws.last.sentOf('webrtc_answer'), [{ type: 'webrtc_answer', session_id: 'S1', sdp: 'answer-to:offer-1', sdp_type: 'answer' }]);
  assert.equal(video.sessionId, 'S1');
  assert.equal(video.state, 'negotiating');
});

test('ICE both ways: the app trickles its candidates after the answer; the robot\'s are added (queued until the offer is set)', async () => {
  const s = connected();
  const rtc = fakePeerConnections();
  const video = s.client.video('d1', { RTCPeerConnection: rtc.RTCPeerConnection });
  video.start().catch(() => {});
  s.ws.last.receive({ type: 'webrtc_credentials', session_id: 'S1', device_id: 'd1', credentials: creds(1) });
  await s.clock.tick(0);
  const pc = rtc.made[0];
  s.ws.last.receive({ type: 'webrtc_ice', session_id: 'S1', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ relay', sdpMid: '0', sdpMLineIndex: 0 } });
  await s.clock.tick(0);
  assert.equal(pc.addedCandidates.length, 0, 'no remote description yet');
  s.ws.last.receive({ type: 'webrtc_offer', session_id: 'S1', sdp: 'offer-1' });
  await s.clock.tick(0);
  assert.equal(pc.addedCandidates.length, 1);
  pc.emitCandidate({ candidate: 'candidate:2 1 udp 1 127.0.0.1 6000 typ relay', sdpMid: '0', sdpMLineIndex: 0 });
  assert.deepEqual(s.ws.last.sentOf('webrtc_ice'), [
    { type: 'webrtc_ice', session_id: 'S1', candidate: { candidate: 'candidate:2 1 udp 1 127.0.0.1 6000 typ relay', sdpMid: '0', sdpMLineIndex: 0 } },
  ]);
  s.ws.last.receive({ type: 'webrtc_ice', session_id: 'OTHER', candidate: { candidate: 'x' } });
  await s.clock.tick(0);
  assert.equal(pc.addedCandidates.length, 1, 'another session\'s candidate is not ours');
});

test('connected: start() resolves, the connection type is read from getStats and reported as webrtc_stats with RTT', async () => {
  const { ws, pc, video, started, clock } = await negotiated();
  const types = record(video, ['connection_type']);
  pc.statsReport = relayReport;
  pc.setState('connected');
  assert.equal(await started, video);
  await clock.tick(0);
  assert.equal(video.connectionType, 'relay');
  assert.equal(types.length, 1);
  const stats = ws.last.sentOf('webrtc_stats');
  assert.equal(stats.length, 1);
  assert.equal(stats[0].session_id, 'S1');
  assert.equal(stats[0].connection_type, 'relay');
  assert.equal(typeof stats[0].rtt_ms, 'number');
  assert.ok(stats[0].rtt_ms >= 0);
  // reported again on its period (it also keeps the relay's idle timer fed)
  await clock.tick(10000);
  assert.ok(ws.last.sentOf('webrtc_stats').length >= 2);
});

test('the quality monitor runs on the polled stats and raises a warning callback', async () => {
  const { pc, video, clock } = await negotiated({ quality: { raiseAfter: 2 } });
  const warnings = record(video, ['warning', 'quality']);
  pc.statsReport = relayReport;
  pc.setState('connected');
  await clock.tick(0);
  const frozen = relayReport.map((s) => (s.type === 'candidate-pair' ? { ...s, currentRoundTripTime: 0.9 } : s));
  pc.statsReport = frozen;
  await clock.tick(2000);
  await clock.tick(2000);
  assert.deepEqual(warnings.map(([n, x]) => [n, x.metric ?? x.level]).slice(0, 2), [['warning', 'rttMs'], ['quality', 'poor']]);
});

test('failed → ICE restart through the relay with fresh credentials (setConfiguration), the robot re-offers, connected again', async () => {
  const { ws, pc, video, clock } = await negotiated();
  pc.setState('connected');
  await clock.tick(0);
  const log = record(video, ['ice_restart', 'ice_restarted', 'state']);
  pc.setState('failed');
  const req = ws.last.sentOf('webrtc_request').at(-1);
  assert.equal(req.ice_restart, true);
  assert.equal(req.session_id, 'S1');
  assert.equal(req.device_id, 'd1');
  ws.last.receive({ type: 'webrtc_credentials', session_id: 'S1', device_id: 'd1', ice_restart: true, credentials: creds(2) });
  await clock.tick(0);
  assert.deepEqual(pc.configurations.at(-1).iceServers, creds(2).ice_servers);
  assert.equal(pc.configurations.at(-1).iceTransportPolicy, 'relay');
  ws.last.receive({ type: 'webrtc_offer', session_id: 'S1', sdp: 'offer-2' });
  await clock.tick(0);
  assert.equal(ws.last.sentOf('webrtc_answer').at(-1).sdp, 'answer-to:offer-2');
  pc.setState('connected');
  assert.equal(video.state, 'connected');
  assert.deepEqual(log.map(([n, x]) => (n === 'state' ? x.state : n === 'ice_restart' ? `${n}:${x.attempt}:${x.reason}` : n)), [
    'restarting', 'ice_restart:1:failed', 'connected', 'ice_restarted',
  ]);
});

test('disconnected for less than the grace period: no restart; past it: restart', async () => {
  const { ws, pc, clock } = await negotiated({ disconnectedGraceMs: 5000 });
  pc.setState('connected');
  pc.setState('disconnected');
  await clock.tick(4000);
  pc.setState('connected');
  await clock.tick(10000);
  assert.equal(ws.last.sentOf('webrtc_request').length, 1, 'only the first request');
  pc.setState('disconnected');
  await clock.tick(5000);
  assert.equal(ws.last.sentOf('webrtc_request').length, 2);
  assert.equal(ws.last.sentOf('webrtc_request')[1].ice_restart, true);
});

test('restarts are bounded: after maxIceRestarts failed attempts the session closes with ice_failed', async () => {
  const { ws, pc, video, clock, started } = await negotiated({ maxIceRestarts: 2, restartTimeoutMs: 15000 });
  pc.setState('connected');
  await started;
  const closed = record(video, ['closed']);
  pc.setState('failed');
  ws.last.receive({ type: 'webrtc_credentials', session_id: 'S1', device_id: 'd1', ice_restart: true, credentials: creds(2) });
  await clock.tick(15000); // attempt 1 never connects
  assert.equal(ws.last.sentOf('webrtc_request').length, 3, 'attempt 2');
  ws.last.receive({ type: 'webrtc_credentials', session_id: 'S1', device_id: 'd1', ice_restart: true, credentials: creds(3) });
  await clock.tick(15000); // attempt 2 never connects
  assert.equal(ws.last.sentOf('webrtc_request').length, 3, 'no third attempt');
  assert.deepEqual(ws.last.sentOf('webrtc_close'), [{ type: 'webrtc_close', session_id: 'S1', reason: 'ice_failed' }]);
  assert.deepEqual(closed.map(([, x]) => x), [{ reason: 'ice_failed', by: 'local' }]);
  assert.equal(video.closeReason, 'ice_failed');
  assert.equal(pc.closed, true);
});

test('a restart that recovers resets the count: later outages get their full budget again', async () => {
  const { ws, pc, clock } = await negotiated({ maxIceRestarts: 1 });
  for (let i = 0; i < 3; i++) {
    pc.setState('connected');
    pc.setState('failed');
    ws.last.receive({ type: 'webrtc_credentials', session_id: 'S1', device_id: 'd1', ice_restart: true, credentials: creds(10 + i) });
    await clock.tick(0);
  }
  pc.setState('connected');
  assert.equal(ws.last.sentOf('webrtc_request').length, 4);
  assert.equal(ws.last.sentOf('webrtc_close').length, 0);
});

test('manual restartIce() asks the relay for fresh credentials', async () => {
  const { ws, pc, video, clock } = await negotiated();
  pc.setState('connected');
  video.restartIce();
  const req = ws.last.sentOf('webrtc_request').at(-1);
  assert.equal(req.ice_restart, true);
  ws.last.receive({ type: 'webrtc_credentials', session_id: 'S1', device_id: 'd1', ice_restart: true, credentials: creds(5) });
  await clock.tick(0);
  assert.deepEqual(pc.configurations.at(-1).iceServers, creds(5).ice_servers);
});

test('a restart offer the old connection refuses (the robot started a new peer) gets a fresh RTCPeerConnection', async () => {
  const { ws, pc, rtc, clock } = await negotiated();
  pc.setState('connected');
  pc.setState('failed');
  ws.last.receive({ type: 'webrtc_credentials', session_id: 'S1', device_id: 'd1', ice_restart: true, credentials: creds(2) });
  await clock.tick(0);
  pc.rejectOffers = true;
  ws.last.receive({ type: 'webrtc_offer', session_id: 'S1', sdp: 'offer-new-peer' });
  await clock.tick(0);
  assert.equal(rtc.made.length, 2);
  assert.equal(pc.closed, true);
  assert.deepEqual(rtc.made[1].config.iceServers, creds(2).ice_servers);
  assert.equal(ws.last.sentOf('webrtc_answer').at(-1).sdp, 'answer-to:offer-new-peer');
});

test('the relay or the robot closing the session: closed with its reason, start() rejects with it', async () => {
  const { ws, video, started, pc } = await negotiated();
  const closed = record(video, ['closed']);
  ws.last.receive({ type: 'webrtc_close', session_id: 'S1', reason: 'timeout' });
  await assert.rejects(started, (e) => e.code === 'session_closed' && e.reason === 'timeout');
  assert.deepEqual(closed.map(([, x]) => x), [{ reason: 'timeout', by: 'remote' }]);
  assert.equal(pc.closed, true);
  assert.equal(ws.last.sentOf('webrtc_close').length, 0, 'nothing echoed back');
});

test('close() sends webrtc_close with the reason', async () => {
  const { ws, video } = await negotiated();
  video.close('user_left');
  assert.deepEqual(ws.last.sentOf('webrtc_close'), [{ type: 'webrtc_close', session_id: 'S1', reason: 'user_left' }]);
  assert.equal(video.state, 'closed');
});

test('robot_offline or session_limit for the request reject start()', async () => {
  for (const code of ['robot_offline', 'session_limit']) {
    const s = connected();
    const rtc = fakePeerConnections();
    const video = s.client.video('d1', { RTCPeerConnection: rtc.RTCPeerConnection });
    const p = video.start();
    const { id } = s.ws.last.sentOf('webrtc_request')[0];
    s.ws.last.receive({ type: 'error', code, message: 'no', ref: id });
    await assert.rejects(p, { code });
    assert.equal(video.state, 'closed');
    assert.equal(rtc.made.length, 0);
  }
});

test('the app socket dropping ends the session (the relay ends it too): closed signaling_lost', async () => {
  const { ws, video, pc } = await negotiated();
  pc.setState('connected');
  ws.last.serverClose(1006);
  await flush();
  assert.equal(video.state, 'closed');
  assert.equal(video.closeReason, 'signaling_lost');
  assert.equal(pc.closed, true);
});

test('no answer to the request in time: start() rejects with timeout', async () => {
  const s = connected();
  const rtc = fakePeerConnections();
  const video = s.client.video('d1', { RTCPeerConnection: rtc.RTCPeerConnection });
  const p = video.start();
  p.catch(() => {});
  await s.clock.tick(15000);
  await assert.rejects(p, { code: 'timeout' });
});

test('the robot never connecting: start() gives up after connectTimeoutMs with connect_timeout', async () => {
  const { ws, started, clock } = await negotiated({ connectTimeoutMs: 30000, maxIceRestarts: 0 });
  await clock.tick(30000);
  await assert.rejects(started, (e) => e.reason === 'connect_timeout');
  assert.equal(ws.last.sentOf('webrtc_close')[0].reason, 'connect_timeout');
});

test('a restart offer with a new DTLS fingerprint (the robot made a new peer) gets a new RTCPeerConnection; the same fingerprint restarts ICE in place', async () => {
  const s = connected();
  const rtc = fakePeerConnections();
  const video = s.client.video('d1', { RTCPeerConnection: rtc.RTCPeerConnection });
  video.start().catch(() => {});
  s.ws.last.receive({ type: 'webrtc_credentials', session_id: 'S1', device_id: 'd1', credentials: creds(1) });
  const sdp = (fp, ufrag) => `v=0\r\na=ice-ufrag:${ufrag}\r\na=fingerprint:sha-256 ${fp}\r\n`;
  s.ws.last.receive({ type: 'webrtc_offer', session_id: 'S1', sdp: sdp('AA:01', 'u1') });
  await s.clock.tick(0);
  const first = rtc.made[0];
  first.setState('connected');
  const restart = async (n, offerSdp) => {
    video.restartIce();
    s.ws.last.receive({ type: 'webrtc_credentials', session_id: 'S1', device_id: 'd1', ice_restart: true, credentials: creds(n) });
    s.ws.last.receive({ type: 'webrtc_offer', session_id: 'S1', sdp: offerSdp });
    await s.clock.tick(0);
  };
  // an in-place ICE restart: same DTLS identity, new ufrag
  await restart(2, sdp('AA:01', 'u2'));
  assert.equal(rtc.made.length, 1);
  assert.match(first.remoteDescription.sdp, /ice-ufrag:u2/);
  first.setState('connected');
  // the robot starts over with a new peer connection
  await restart(3, sdp('BB:02', 'u3'));
  assert.equal(rtc.made.length, 2);
  assert.equal(first.closed, true);
  assert.deepEqual(rtc.made[1].config.iceServers, creds(3).ice_servers);
  assert.match(rtc.made[1].remoteDescription.sdp, /BB:02/);
  assert.equal(s.ws.last.sentOf('webrtc_answer').length, 3);
});

test('start() while the socket is still connecting waits for it, then requests', async () => {
  const s = setup();
  s.client.connect();
  const rtc = fakePeerConnections();
  const video = s.client.video('d1', { RTCPeerConnection: rtc.RTCPeerConnection });
  video.start().catch(() => {});
  await s.clock.tick(0);
  assert.equal(video.state, 'requesting');
  s.ws.last.open();
  await s.clock.tick(0);
  assert.equal(s.ws.last.sentOf('webrtc_request').length, 1);
});
