// The quality monitor: thresholds per metric, hysteresis (raise after N bad
// samples, clear only below a lower threshold after M good ones), the
// overall level, and unknown values.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QualityMonitor } from '../wimz.js';
import { record } from '../test-support/setup.js';

const m = (o) => ({ rttMs: 50, lossPct: 0, jitterMs: 5, fps: 30, ...o });

test('one bad sample does not warn; two in a row do (raiseAfter 2)', () => {
  const q = new QualityMonitor();
  const log = record(q, ['warning', 'cleared', 'quality']);
  q.update(m({ rttMs: 400 }));
  q.update(m({ rttMs: 100 }));
  q.update(m({ rttMs: 400 }));
  assert.equal(log.length, 0);
  q.update(m({ rttMs: 450 }));
  assert.deepEqual(log.map(([n, x]) => [n, x.metric ?? x.level]), [['warning', 'rttMs'], ['quality', 'poor']]);
  assert.equal(log[0][1].value, 450);
  assert.equal(log[0][1].threshold, 300);
});

test('hysteresis: values between clear and warn keep the warning; three samples below clear end it', () => {
  const q = new QualityMonitor();
  const log = record(q, ['warning', 'cleared', 'quality']);
  q.update(m({ lossPct: 8 }));
  q.update(m({ lossPct: 9 }));
  assert.deepEqual(q.warnings, ['lossPct']);
  for (const v of [4, 3, 4.9, 2.5]) q.update(m({ lossPct: v })); // under warn (5), not under clear (2)
  assert.deepEqual(q.warnings, ['lossPct']);
  q.update(m({ lossPct: 1 }));
  q.update(m({ lossPct: 0 }));
  assert.deepEqual(q.warnings, ['lossPct'], 'two good samples are not enough');
  q.update(m({ lossPct: 0.5 }));
  assert.deepEqual(q.warnings, []);
  assert.deepEqual(log.map(([n, x]) => [n, x.metric ?? x.level]), [
    ['warning', 'lossPct'], ['quality', 'poor'], ['cleared', 'lossPct'], ['quality', 'good'],
  ]);
});

test('a value hovering at the threshold does not flap', () => {
  const q = new QualityMonitor();
  const log = record(q, ['warning', 'cleared']);
  for (let i = 0; i < 20; i++) q.update(m({ jitterMs: i % 2 ? 49 : 51 }));
  assert.equal(log.length, 0);
  for (let i = 0; i < 20; i++) q.update(m({ jitterMs: i % 2 ? 60 : 45 }));
  assert.deepEqual(log.map(([n]) => n), [], 'alternating bad/good never reaches two bad in a row');
});

test('fps is bad when low: warns under 10, clears above 15', () => {
  const q = new QualityMonitor();
  const log = record(q, ['warning', 'cleared']);
  q.update(m({ fps: 4 }));
  q.update(m({ fps: 0 }));
  for (const f of [12, 14, 15]) q.update(m({ fps: f }));
  assert.deepEqual(q.warnings, ['fps'], '15 is not above clear');
  for (const f of [24, 25, 30]) q.update(m({ fps: f }));
  assert.deepEqual(log.map(([n, x]) => [n, x.metric]), [['warning', 'fps'], ['cleared', 'fps']]);
});

test('several metrics: the level stays poor until every warning clears', () => {
  const q = new QualityMonitor({ raiseAfter: 1, clearAfter: 1 });
  const log = record(q, ['quality']);
  q.update(m({ rttMs: 500 }));
  q.update(m({ rttMs: 500, lossPct: 10 }));
  q.update(m({ rttMs: 100, lossPct: 10 }));
  assert.equal(q.level, 'poor');
  q.update(m({ rttMs: 100, lossPct: 0 }));
  assert.deepEqual(log.map(([, x]) => x.level), ['poor', 'good']);
});

test('unknown values (null) are skipped: they neither count nor reset a count', () => {
  const q = new QualityMonitor();
  q.update(m({ rttMs: 500 }));
  q.update(m({ rttMs: null }));
  assert.deepEqual(q.warnings, [], 'one bad sample so far');
  q.update(m({ rttMs: 500 }));
  assert.deepEqual(q.warnings, ['rttMs'], 'bad, unknown, bad = two bad in a row');
  const q2 = new QualityMonitor();
  q2.update(m({ rttMs: 500 }));
  q2.update(m({ rttMs: 500 }));
  for (let i = 0; i < 10; i++) q2.update(m({ rttMs: null }));
  assert.deepEqual(q2.warnings, ['rttMs']);
});

test('thresholds are configurable; a clear on the wrong side is refused; a metric can be switched off', () => {
  const q = new QualityMonitor({ rttMs: { warn: 100, clear: 80 }, fps: null });
  q.update(m({ rttMs: 150, fps: 0 }));
  q.update(m({ rttMs: 150, fps: 0 }));
  assert.deepEqual(q.warnings, ['rttMs']);
  assert.throws(() => new QualityMonitor({ rttMs: { warn: 100, clear: 150 } }), RangeError);
});
