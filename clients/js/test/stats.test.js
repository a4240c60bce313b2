// Connection-type detection and metrics on getStats() reports recorded from
// Chromium (test/fixtures: a loopback host pair, and a relay-only pair
// through coturn), plus reports built from the webrtc-stats spec for the
// other shapes (Firefox's `selected`, a remote-only relay, none chosen yet).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connectionInfo, extractMetrics, selectedCandidatePair } from '../wimz.js';

const fixture = (name) => JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8'));
const asMap = (list) => new Map(list.map((s) => [s.id, s]));

test('Chromium, relay-only through coturn: relay (udp), with the pair RTT', () => {
  const { reports } = fixture('chromium-relay');
  const info = connectionInfo(asMap(reports[1]));
  assert.equal(info.connectionType, 'relay');
  assert.equal(info.localCandidateType, 'relay');
  assert.equal(info.remoteCandidateType, 'relay');
  assert.equal(info.relayProtocol, 'udp');
  assert.equal(info.protocol, 'udp');
  assert.equal(typeof info.rttMs, 'number');
});

test('Chromium, loopback host candidates: direct — the transport picks the pair even where two are nominated', () => {
  const { reports } = fixture('chromium-direct');
  const list = reports[1];
  const nominated = list.filter((s) => s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded');
  assert.ok(nominated.length >= 2, 'this recording has more than one nominated pair');
  const transport = list.find((s) => s.type === 'transport');
  assert.equal(selectedCandidatePair(asMap(list)).id, transport.selectedCandidatePairId);
  // in any order of the report, not just whichever nominated pair comes first
  assert.equal(selectedCandidatePair([...list].reverse()).id, transport.selectedCandidatePairId);
  const info = connectionInfo(asMap(list));
  assert.equal(info.connectionType, 'direct');
  assert.equal(info.localCandidateType, 'host');
  assert.equal(info.relayProtocol, null);
});

// Recorded by the browser tests (tests/browser/record_stats.py): Chromium
// answering an aiortc robot through the relay, as the console does.
test('Chromium ↔ aiortc robot through coturn (relay-issued credentials): relay', () => {
  const info = connectionInfo(fixture('getstats-chromium-relay'));
  assert.equal(info.connectionType, 'relay');
  assert.deepEqual([info.localCandidateType, info.remoteCandidateType], ['relay', 'relay']);
});

test('Chromium ↔ aiortc robot on host candidates: direct, although an unselected pair to a relay candidate exists', () => {
  const list = fixture('getstats-chromium-direct');
  const ids = new Map(list.map((s) => [s.id, s]));
  const relayPair = list.find((s) => s.type === 'candidate-pair' && ids.get(s.remoteCandidateId).candidateType === 'relay');
  assert.ok(relayPair && relayPair.state !== 'succeeded', 'the recording has a waiting pair to the robot\'s relay candidate');
  const info = connectionInfo(list);
  assert.equal(info.connectionType, 'direct');
  assert.deepEqual([info.localCandidateType, info.remoteCandidateType], ['prflx', 'host']);
  const m = extractMetrics(list);
  assert.ok(m.framesDecoded > 0 && m.frameWidth === 320);
});

test('a report as an array or a plain object works the same as the Map', () => {
  const { reports } = fixture('chromium-relay');
  const list = reports[1];
  assert.equal(connectionInfo(list).connectionType, 'relay');
  assert.equal(connectionInfo(Object.fromEntries(list.map((s) => [s.id, s]))).connectionType, 'relay');
});

test('the transport\'s selected pair wins over another nominated, succeeded pair', () => {
  const r = [
    { id: 'P1', type: 'candidate-pair', localCandidateId: 'L1', remoteCandidateId: 'R', state: 'succeeded', nominated: true },
    { id: 'P2', type: 'candidate-pair', localCandidateId: 'L2', remoteCandidateId: 'R', state: 'succeeded', nominated: true },
    { id: 'T', type: 'transport', selectedCandidatePairId: 'P2' },
    { id: 'L1', type: 'local-candidate', candidateType: 'host' },
    { id: 'L2', type: 'local-candidate', candidateType: 'relay', relayProtocol: 'udp' },
    { id: 'R', type: 'remote-candidate', candidateType: 'host' },
  ];
  assert.equal(connectionInfo(r).connectionType, 'relay');
});

test('only the remote end is a relay candidate (the robot behind TURN): still relay', () => {
  const r = [
    { id: 'T', type: 'transport', selectedCandidatePairId: 'P' },
    { id: 'P', type: 'candidate-pair', localCandidateId: 'L', remoteCandidateId: 'R', state: 'succeeded', nominated: true, currentRoundTripTime: 0.042 },
    { id: 'L', type: 'local-candidate', candidateType: 'srflx', protocol: 'udp' },
    { id: 'R', type: 'remote-candidate', candidateType: 'relay', protocol: 'udp' },
  ];
  const info = connectionInfo(r);
  assert.equal(info.connectionType, 'relay');
  assert.equal(info.rttMs, 42);
});

test('Firefox marks the pair `selected` and has no selectedCandidatePairId', () => {
  const r = [
    { id: 'P1', type: 'candidate-pair', localCandidateId: 'L1', remoteCandidateId: 'R', state: 'succeeded', nominated: true },
    { id: 'P2', type: 'candidate-pair', localCandidateId: 'L2', remoteCandidateId: 'R', state: 'succeeded', nominated: true, selected: true },
    { id: 'L1', type: 'local-candidate', candidateType: 'host' },
    { id: 'L2', type: 'local-candidate', candidateType: 'relay', relayProtocol: 'tcp' },
    { id: 'R', type: 'remote-candidate', candidateType: 'host' },
  ];
  const info = connectionInfo(r);
  assert.equal(info.connectionType, 'relay');
  assert.equal(info.relayProtocol, 'tcp');
});

test('before a pair is chosen there is no connection type', () => {
  assert.equal(connectionInfo([{ id: 'T', type: 'transport' }, { id: 'P', type: 'candidate-pair', state: 'in-progress' }]), null);
  assert.equal(connectionInfo(new Map()), null);
});

test('metrics from the recorded reports: frames decoded, fps, no loss, RTT', () => {
  const { reports } = fixture('chromium-relay');
  const m0 = extractMetrics(asMap(reports[0]));
  const m1 = extractMetrics(asMap(reports[1]), m0);
  assert.ok(m1.framesDecoded > m0.framesDecoded, 'frames keep being decoded');
  assert.ok(m1.fps > 0);
  assert.equal(m1.lossPct, 0);
  assert.equal(typeof m1.rttMs, 'number');
  assert.equal(m1.frameWidth, 320);
});

test('loss is over the interval since the previous sample; fps falls back to frames decoded over time', () => {
  const at = (t, recv, lost, frames) => [
    { id: 'V', type: 'inbound-rtp', kind: 'video', timestamp: t, packetsReceived: recv, packetsLost: lost, framesDecoded: frames, jitter: 0.012 },
  ];
  const a = extractMetrics(at(1000, 1000, 100, 300));
  assert.ok(Math.abs(a.lossPct - (100 / 1100) * 100) < 1e-9, 'first sample: cumulative');
  const b = extractMetrics(at(3000, 1180, 120, 340), a);
  assert.ok(Math.abs(b.lossPct - 10) < 1e-9, '20 lost of 200 in the interval');
  assert.equal(b.fps, 20);
  assert.equal(b.jitterMs, 12);
  const c = extractMetrics(at(5000, 1180, 120, 340), b);
  assert.equal(c.fps, 0, 'a frozen stream');
  assert.equal(c.lossPct, 0);
});

test('counters that restart (a new peer connection after an ICE restart) give no negative fps or loss', () => {
  const at = (t, recv, lost, frames) => [
    { id: 'V', type: 'inbound-rtp', kind: 'video', timestamp: t, packetsReceived: recv, packetsLost: lost, framesDecoded: frames },
  ];
  const before = extractMetrics(at(1000, 5000, 10, 900));
  const after = extractMetrics(at(3000, 40, 0, 18), before);
  assert.equal(after.fps, null, 'no rate across the reset');
  assert.ok(after.lossPct === 0, `loss ${after.lossPct}`);
  const next = extractMetrics(at(5000, 80, 0, 48), after);
  assert.equal(next.fps, 15);
});
