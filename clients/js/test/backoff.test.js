// Reconnect backoff: jitter bounds, the cap, the reset after a stable
// connection, final close codes, and a refused token at reconnect.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../wimz.js';
import { setup, connected, record } from '../test-support/setup.js';
import { fakeToken } from '../test-support/fakes.js';

test('delays lie in [d/2, d] with d doubling from minDelayMs up to the cap', () => {
  const low = new Backoff({ minDelayMs: 500, maxDelayMs: 8000, random: () => 0 });
  const high = new Backoff({ minDelayMs: 500, maxDelayMs: 8000, random: () => 0.999999 });
  const lows = Array.from({ length: 8 }, () => low.next());
  const highs = Array.from({ length: 8 }, () => high.next());
  assert.deepEqual(lows, [250, 500, 1000, 2000, 4000, 4000, 4000, 4000]);
  assert.deepEqual(highs, [500, 1000, 2000, 4000, 8000, 8000, 8000, 8000]);
});

test('with real randomness every delay stays within its bounds, and the cap holds at any attempt', () => {
  const b = new Backoff({ minDelayMs: 100, maxDelayMs: 30000 });
  for (let n = 0; n < 200; n++) {
    const d = b.ceiling(n);
    const x = b.next();
    assert.ok(x >= d / 2 && x <= d, `attempt ${n}: ${x} not in [${d / 2}, ${d}]`);
    assert.ok(x <= 30000);
  }
  assert.equal(b.ceiling(10_000), 30000);
});

test('jitter spreads clients: many draws are not all equal', () => {
  const b = new Backoff({ minDelayMs: 1000, maxDelayMs: 1000 });
  const seen = new Set(Array.from({ length: 50 }, () => b.next()));
  assert.ok(seen.size > 10);
});

/** Connected, with delays at the top of their range (1 s doubling) and stableAfterMs 5 s. */
function backingOff() {
  const s = setup({
    client: { reconnect: { minDelayMs: 1000, maxDelayMs: 60000, stableAfterMs: 5000 } },
    random: () => 0.999999,
  });
  const log = record(s.client, ['connecting']);
  s.client.connect();
  s.ws.last.open();
  return { ...s, log };
}

test('the client backs off more after each failed attempt, and resets only after a stable connection', async () => {
  const { clock, ws, log } = backingOff();
  // flapping: open, then closed at once, three times
  for (let i = 0; i < 3; i++) {
    ws.last.serverClose(1001, 'relay_shutdown');
    const { delayMs } = log[log.length - 1][1];
    await clock.tick(delayMs);
    ws.last.open();
  }
  const delays = log.slice(1).map(([, x]) => x.delayMs);
  assert.deepEqual(delays, [1000, 2000, 4000]);
  // now it stays up past stableAfterMs: the next loss starts again at the first step
  await clock.tick(5000);
  ws.last.serverClose(1001, 'heartbeat_timeout');
  assert.equal(log[log.length - 1][1].delayMs, 1000);
  assert.equal(log[log.length - 1][1].attempt, 1);
});

test('a connection that drops just before stableAfterMs does not reset the backoff', async () => {
  const { clock, ws, log } = backingOff();
  ws.last.serverClose(1006);
  await clock.tick(1000);
  ws.last.open();
  await clock.tick(4999);
  ws.last.serverClose(1006);
  assert.equal(log[log.length - 1][1].delayMs, 2000);
});

test('no reconnect after a final close code (4001 replaced, 4003 device_deleted)', async () => {
  for (const code of [4001, 4003]) {
    const { clock, ws, client } = connected();
    const log = record(client, ['disconnected', 'connecting']);
    ws.last.serverClose(code, 'replaced');
    await clock.tick(10 * 60 * 1000);
    assert.equal(ws.sockets.length, 1, `code ${code}: no new socket`);
    assert.equal(client.state, 'disconnected');
    assert.deepEqual(log, [['disconnected', { code, reason: 'replaced', final: true }]]);
  }
});

test('reconnects after 1001, 1008, 1009, 1011 and a lost connection', async () => {
  for (const code of [1001, 1008, 1009, 1011, 1006]) {
    const { clock, ws, client } = connected();
    ws.last.serverClose(code, 'x');
    assert.equal(client.state, 'connecting');
    await clock.tick(1000); // the first delay is at most minDelayMs (500)
    assert.equal(ws.sockets.length, 2, `code ${code}: a new socket`);
  }
});

test('a 401 at reconnect is reported once and not retried', async () => {
  let refuse = false;
  const { clock, ws, client, fetch } = connected({
    fetchHandler: () => (refuse ? { status: 401, body: { error: { code: 'unauthorized', message: 'invalid or expired token' } } } : { status: 200, body: [] }),
  });
  const log = record(client, ['unauthorized', 'disconnected']);
  refuse = true; // e.g. the user was deleted, or the secret rotated
  ws.last.serverClose(1001, 'relay_shutdown');
  await clock.tick(60000);
  assert.equal(ws.sockets.length, 2);
  ws.last.serverClose(1006); // the handshake is refused: browsers only see 1006
  await clock.tick(10 * 60 * 1000);
  assert.equal(ws.sockets.length, 2, 'no further attempts');
  assert.equal(fetch.calls.length, 1, 'one probe of the token');
  assert.match(fetch.calls[0].url, /\/api\/devices$/);
  assert.equal(client.state, 'disconnected');
  assert.deepEqual(log.map(([n, x]) => [n, x.code]), [['unauthorized', undefined], ['disconnected', 'unauthorized']]);
});

test('a handshake that fails for network reasons keeps retrying (the probe says the token is fine or cannot tell)', async () => {
  let down = true;
  const { clock, ws, client } = setup({
    fetchHandler: () => {
      if (down) throw new TypeError('fetch failed');
      return { status: 200, body: [] };
    },
  });
  client.connect();
  ws.last.serverClose(1006);
  await clock.tick(2000);
  ws.last.serverClose(1006);
  down = false;
  await clock.tick(2000);
  ws.last.serverClose(1006);
  await clock.tick(2000); // delays 375, 750, 1500 ms (random 0.5), all below the connect timeout
  assert.equal(ws.sockets.length, 4);
  assert.equal(client.state, 'connecting');
});

test('with getToken, a refused token is replaced once; a second refusal stops', async () => {
  const { clock, ws, client } = setup({
    fetchHandler: () => ({ status: 401, body: {} }),
    client: { getToken: async () => fakeToken(Math.floor(Date.now() / 1000) + 7200, 'fresh') },
  });
  client.connect();
  const first = ws.last.url;
  ws.last.serverClose(1006);
  await clock.tick(0);
  assert.equal(ws.sockets.length, 2, 'retried at once with the new token');
  assert.notEqual(ws.last.url, first);
  assert.match(ws.last.url, /^ws:\/\/relay\.test\/ws\/app\?token=/);
  ws.last.serverClose(1006);
  await clock.tick(10 * 60 * 1000);
  assert.equal(ws.sockets.length, 2);
  assert.equal(client.state, 'disconnected');
});

test('an expired token is not sent: connect() reports token_expired and opens no socket', async () => {
  const { clock, ws, client } = setup({ tokenTtlS: -10 });
  const log = record(client, ['token_expired', 'disconnected']);
  client.connect();
  await clock.tick(0);
  assert.equal(ws.sockets.length, 0);
  assert.deepEqual(log.map(([n, x]) => [n, x.code]), [['token_expired', undefined], ['disconnected', 'token_expired']]);
});

test('token expiry is surfaced when it happens', async () => {
  const { clock, client } = connected({ tokenTtlS: 120 });
  const log = record(client, ['token_expired']);
  await clock.tick(119000);
  assert.equal(log.length, 0);
  await clock.tick(1000);
  assert.equal(log.length, 1);
  assert.equal(client.tokenExpired, true);
});

test('maxAttempts bounds the attempts, then the client stops', async () => {
  const { clock, ws, client } = setup({
    client: { reconnect: { minDelayMs: 100, maxDelayMs: 100, maxAttempts: 3 } },
    fetchHandler: () => ({ status: 200, body: [] }),
  });
  const log = record(client, ['disconnected']);
  client.connect();
  for (let i = 0; i < 10; i++) {
    ws.last.serverClose(1006);
    await clock.tick(1000);
  }
  assert.equal(ws.sockets.length, 4);
  assert.equal(log[0][1].code, 'reconnect_failed');
});

test('a silent connection (no answer to ping) is dropped and reconnected', async () => {
  const { clock, ws, client } = connected({ client: { pingIntervalMs: 20000, pongTimeoutMs: 5000 } });
  const first = ws.last;
  await clock.tick(20000);
  assert.deepEqual(first.sentOf('ping'), [{ type: 'ping' }]);
  first.receive({ type: 'pong', ts_ms: 1 });
  await clock.tick(20000);
  assert.equal(first.sentOf('ping').length, 2);
  await clock.tick(5000);
  assert.equal(client.state, 'connecting');
  assert.ok(first.closedWith);
  await clock.tick(1000);
  assert.equal(ws.sockets.length, 2);
});

test('close() stops for good: no reconnect, state disconnected', async () => {
  const { clock, ws, client } = connected();
  client.close();
  await clock.tick(10 * 60 * 1000);
  assert.equal(ws.sockets.length, 1);
  assert.equal(client.state, 'disconnected');
  assert.equal(ws.last.closedWith.code, 1000);
});

test('a socket that reports an error but never a close (Node\'s WebSocket on a refused handshake) is still retried', async () => {
  const { clock, ws, client } = setup();
  client.connect();
  ws.last.onerror({});
  await clock.tick(1000);
  assert.equal(ws.sockets.length, 2);
  assert.equal(client.state, 'connecting');
});

test('connect() after giving up starts again from the first step', async () => {
  const { clock, ws, client } = setup({
    client: { reconnect: { minDelayMs: 100, maxDelayMs: 100, maxAttempts: 1 } },
  });
  client.connect();
  ws.last.serverClose(1006);
  await clock.tick(1000);
  ws.last.serverClose(1006);
  await clock.tick(1000);
  assert.equal(client.state, 'disconnected');
  client.connect();
  ws.last.serverClose(1006);
  await clock.tick(1000);
  assert.equal(ws.sockets.length, 4, 'a fresh attempt budget');
});
