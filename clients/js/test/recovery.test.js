// Subscriptions across reconnects: re-subscribe with since_seq and epoch,
// duplicates and replayed events dropped by (epoch, seq), gaps and epoch
// changes and recovered{complete:false} surfaced (callbacks and iterators).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connected, record } from '../test-support/setup.js';
import { EventSequence } from '../wimz.js';

const E1 = 1_732_000_000_001;
const E2 = 1_732_000_999_999;
const ev = (seq, epoch = E1, extra = {}) => ({
  type: 'event', event: 'mission_progress', device_id: 'd1', epoch, seq, ts_ms: 1,
  data: { mission: 'sit', stage: seq }, ...extra,
});
const subscribed = (epoch, seq, extra = {}) => ({
  type: 'subscribed', device_id: 'd1', robot_online: true, epoch, seq,
  snapshot: { mode: 'idle', mission: null, battery: { level: 80 } }, ...extra,
});

/** A client subscribed to d1 at (E1, 5). */
function subscribedClient() {
  const s = connected();
  const sub = s.client.subscribe('d1');
  const frame = s.ws.last.sentOf('subscribe')[0];
  assert.deepEqual(Object.keys(frame).sort(), ['device_id', 'id', 'type']);
  s.ws.last.receive(subscribed(E1, 5));
  return { ...s, sub };
}

test('after a reconnect: subscribe carries since_seq and epoch; replayed duplicates are dropped, each event delivered once, in order', async () => {
  const { clock, ws, sub } = subscribedClient();
  const seqs = [];
  sub.on('event', (e) => seqs.push(e.seq));
  const notices = record(sub, ['recovered', 'gap', 'epoch_changed']);
  ws.last.receive(ev(6));
  ws.last.receive(ev(7));
  ws.last.serverClose(1001, 'relay_shutdown');
  assert.equal(sub.state, 'subscribing');
  await clock.tick(1000);
  ws.last.open();
  const again = ws.last.sentOf('subscribe')[0];
  assert.equal(again.since_seq, 7);
  assert.equal(again.epoch, E1);
  // the relay may replay from before what we had (e.g. another instance's buffer)
  ws.last.receive(subscribed(E1, 9));
  for (const s of [6, 7, 8, 9]) ws.last.receive(ev(s));
  ws.last.receive({ type: 'recovered', device_id: 'd1', complete: true });
  ws.last.receive(ev(10));
  ws.last.receive(ev(10)); // a duplicate live frame
  assert.deepEqual(seqs, [6, 7, 8, 9, 10]);
  assert.equal(sub.sequence.duplicates, 3);
  assert.deepEqual(notices.map(([n, x]) => [n, x.complete]), [['recovered', true]]);
  assert.deepEqual(sub.position, { epoch: E1, seq: 10 });
});

test('a gap in live numbering is surfaced (from_seq..to_seq) and the event still delivered', () => {
  const { ws, sub } = subscribedClient();
  const log = record(sub, ['gap', 'event']);
  ws.last.receive(ev(6));
  ws.last.receive(ev(9));
  assert.deepEqual(log.map(([n, x]) => (n === 'gap' ? [n, x.from_seq, x.to_seq, x.epoch] : [n, x.seq])), [
    ['event', 6],
    ['gap', 7, 8, E1],
    ['event', 9],
  ]);
});

test('an epoch change at reconnect is surfaced, the new epoch replayed in full, recovered{complete:false} passed on', async () => {
  const { clock, ws, sub } = subscribedClient();
  ws.last.receive(ev(6));
  ws.last.receive(ev(7));
  ws.last.serverClose(1006);
  await clock.tick(1000);
  ws.last.open();
  const log = record(sub, ['epoch_changed', 'event', 'recovered', 'gap']);
  ws.last.receive(subscribed(E2, 2));
  ws.last.receive(ev(1, E2)); // lower seqs than before, but a new epoch: not duplicates
  ws.last.receive(ev(2, E2));
  ws.last.receive({ type: 'recovered', device_id: 'd1', complete: false });
  ws.last.receive(ev(3, E2));
  assert.deepEqual(log.map(([n, x]) => [n, n === 'event' ? x.seq : n === 'recovered' ? x.complete : x.epoch]), [
    ['epoch_changed', E2],
    ['event', 1],
    ['event', 2],
    ['recovered', false],
    ['event', 3],
  ]);
  assert.equal(log[0][1].previous, E1);
});

test('the relay re-subscribing unasked (Part 2 D) is handled like a replay: nothing seen is repeated, the break is surfaced', () => {
  const { ws, sub } = subscribedClient();
  ws.last.receive(ev(6));
  const log = record(sub, ['subscribed', 'epoch_changed', 'event', 'recovered']);
  ws.last.receive(subscribed(E2, 1));
  ws.last.receive(ev(1, E2));
  ws.last.receive({ type: 'recovered', device_id: 'd1', complete: false, reason: 'epoch_changed' });
  assert.deepEqual(log.map(([n]) => n), ['epoch_changed', 'subscribed', 'event', 'recovered']);
  assert.equal(log[3][1].reason, 'epoch_changed');
});

test('a replay in the same epoch that lost events beyond the buffer: recovered{complete:false}, no double report', async () => {
  const { clock, ws, sub } = subscribedClient();
  ws.last.serverClose(1006);
  await clock.tick(1000);
  ws.last.open();
  const log = record(sub, ['gap', 'event', 'recovered']);
  ws.last.receive(subscribed(E1, 600));
  ws.last.receive(ev(89)); // the buffer starts at 89: 6..88 are gone
  ws.last.receive({ type: 'recovered', device_id: 'd1', complete: false });
  assert.deepEqual(log.map(([n]) => n), ['event', 'recovered']);
});

test('an unnumbered relay event (robot_disconnected, instance_lost) is delivered and does not disturb the numbering', () => {
  const { ws, sub } = subscribedClient();
  const seqs = [];
  sub.on('event', (e) => seqs.push([e.event, e.seq]));
  ws.last.receive(ev(6));
  ws.last.receive({ type: 'event', event: 'robot_disconnected', device_id: 'd1', epoch: E1, seq: 6, unnumbered: true, reason: 'instance_lost' });
  ws.last.receive(ev(7));
  assert.deepEqual(seqs, [['mission_progress', 6], ['robot_disconnected', 6], ['mission_progress', 7]]);
  assert.equal(sub.sequence.seq, 7);
  assert.equal(sub.robotOnline, false, 'offline until robot_connected');
});

test('the snapshot follows events: mission, mode, battery, online', () => {
  const { ws, sub } = subscribedClient();
  assert.deepEqual(sub.snapshotView(), { device_id: 'd1', online: true, mode: 'idle', mission: null, battery: { level: 80 } });
  ws.last.receive(ev(6));
  ws.last.receive({ ...ev(7), event: 'mode_changed', data: { mode: 'training' } });
  ws.last.receive({ ...ev(8), event: 'status_update', data: { battery: 55 } });
  ws.last.receive({ ...ev(9), event: 'robot_disconnected', data: undefined, reason: 'closed' });
  assert.deepEqual(sub.snapshotView(), {
    device_id: 'd1', online: false, mode: 'training', mission: { mission: 'sit', stage: 6 }, battery: 55,
  });
});

test('the async iterator yields events and every notice, in order, and ends on unsubscribe', async () => {
  const { clock, ws, sub } = subscribedClient();
  const it = sub.messages();
  const seen = [];
  const done = (async () => {
    for await (const m of it) seen.push(m.type === 'event' ? `event:${m.seq}` : m.type);
  })();
  ws.last.receive(ev(6));
  ws.last.receive(ev(6));
  ws.last.serverClose(1006);
  await clock.tick(1000);
  ws.last.open();
  ws.last.receive(subscribed(E2, 1));
  ws.last.receive(ev(1, E2));
  ws.last.receive({ type: 'recovered', device_id: 'd1', complete: false });
  sub.unsubscribe();
  await done;
  assert.deepEqual(seen, ['event:6', 'epoch_changed', 'subscribed', 'event:1', 'recovered', 'unsubscribed']);
  assert.deepEqual(ws.last.sentOf('unsubscribe'), [{ type: 'unsubscribe', device_id: 'd1' }]);
});

test('events() filters by name; an iterator that falls behind ends with overflow instead of growing', async () => {
  const { ws, sub } = subscribedClient();
  const barks = sub.events({ name: 'bark_detected', bufferSize: 2 });
  ws.last.receive(ev(6));
  ws.last.receive({ ...ev(7), event: 'bark_detected' });
  ws.last.receive({ ...ev(8), event: 'bark_detected' });
  ws.last.receive({ ...ev(9), event: 'bark_detected' });
  // what was buffered is still handed out, then the overflow
  assert.equal((await barks.next()).value.seq, 7);
  assert.equal((await barks.next()).value.seq, 8);
  await assert.rejects(barks.next(), { code: 'overflow' });
  assert.deepEqual(await barks.next(), { value: undefined, done: true });
  const all = sub.events();
  ws.last.receive(ev(10));
  assert.equal((await all.next()).value.seq, 10);
});

test('not_owner ends the subscription (no retry after reconnect); rate_limited retries', async () => {
  const { clock, ws, client } = connected();
  const sub = client.subscribe('d9');
  const log = record(sub, ['unsubscribed', 'error']);
  const id = ws.last.sentOf('subscribe')[0].id;
  ws.last.receive({ type: 'error', code: 'not_owner', message: 'not your device', ref: id });
  assert.equal(sub.state, 'unsubscribed');
  assert.deepEqual(log.map(([n, x]) => [n, x.code ?? x.reason]), [['error', 'not_owner'], ['unsubscribed', 'not_owner']]);
  ws.last.serverClose(1006);
  await clock.tick(1000);
  ws.last.open();
  assert.equal(ws.last.sentOf('subscribe').length, 0);

  const other = client.subscribe('d2');
  const id2 = ws.last.sentOf('subscribe')[0].id;
  ws.last.receive({ type: 'error', code: 'rate_limited', message: 'slow down', ref: id2 });
  assert.equal(other.state, 'subscribing');
  await clock.tick(1000);
  assert.equal(ws.last.sentOf('subscribe').length, 2);
});

test('unsubscribed{device_unavailable} is surfaced and the subscription comes back with since_seq', async () => {
  const { clock, ws, sub } = subscribedClient();
  ws.last.receive(ev(6));
  const log = record(sub, ['unsubscribed']);
  ws.last.receive({ type: 'unsubscribed', device_id: 'd1', reason: 'device_unavailable' });
  assert.equal(log.length, 1);
  await clock.tick(1000);
  const again = ws.last.sentOf('subscribe').at(-1);
  assert.equal(again.since_seq, 6);
  assert.equal(again.epoch, E1);
});

test('subscribing from a saved position sends it the first time', () => {
  const { ws, client } = connected();
  client.subscribe('d1', { epoch: E1, since_seq: 41 });
  const f = ws.last.sentOf('subscribe')[0];
  assert.equal(f.since_seq, 41);
  assert.equal(f.epoch, E1);
});

test('EventSequence on its own: first subscribe without replay starts at the current seq', () => {
  const s = new EventSequence();
  assert.deepEqual(s.subscribed({ device_id: 'd', epoch: 5, seq: 10 }, false), []);
  assert.deepEqual(s.event({ device_id: 'd', epoch: 5, seq: 10 }), { deliver: false, notices: [] });
  assert.equal(s.event({ device_id: 'd', epoch: 5, seq: 11 }).deliver, true);
  assert.deepEqual(s.position(), { epoch: 5, since_seq: 11 });
});
