// Commands as promises (command_result, robot_offline / error with ref,
// timeout, a dropped socket), REST calls through the relay, and the URLs the
// client derives from its base.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WimzClient, relayBases, WimzError } from '../wimz.js';
import { connected, setup } from '../test-support/setup.js';
import { fakeFetch } from '../test-support/fakes.js';

test('a command resolves with its command_result (ok:false is an answer, not an error)', async () => {
  const { ws, client } = connected();
  const p1 = client.command('d1', 'start_mission', { mission: 'sit_training' });
  const p2 = client.command('d1', 'dispense_treat');
  const [f1, f2] = ws.last.sentOf('command');
  assert.deepEqual(f1, { type: 'command', device_id: 'd1', id: f1.id, command: 'start_mission', data: { mission: 'sit_training' } });
  assert.notEqual(f1.id, f2.id);
  // answers may come in any order
  ws.last.receive({ type: 'command_result', reply_to: 'i.7', id: f2.id, ok: false, data: { error: 'empty' } });
  ws.last.receive({ type: 'command_result', reply_to: 'i.7', id: f1.id, ok: true, data: { started: true } });
  assert.deepEqual((await p1).data, { started: true });
  const r2 = await p2;
  assert.equal(r2.ok, false);
  assert.deepEqual(r2.data, { error: 'empty' });
});

test('robot_offline (ref = the command id) rejects that command only', async () => {
  const { ws, client } = connected();
  const p1 = client.command('d1', 'stop_mission');
  const p2 = client.command('d2', 'stop_mission');
  const [f1, f2] = ws.last.sentOf('command');
  ws.last.receive({ type: 'error', code: 'robot_offline', message: 'robot is offline', ref: f1.id });
  await assert.rejects(p1, (e) => e instanceof WimzError && e.code === 'robot_offline' && e.ref === f1.id);
  ws.last.receive({ type: 'command_result', id: f2.id, ok: true, reply_to: 'x' });
  assert.equal((await p2).ok, true);
});

test('other relay errors with ref reject too (not_owner, rate_limited)', async () => {
  const { ws, client } = connected();
  const p = client.command('d1', 'set_mode', { mode: 'training' });
  const { id } = ws.last.sentOf('command')[0];
  ws.last.receive({ type: 'error', code: 'rate_limited', message: 'slow down', ref: id });
  await assert.rejects(p, { code: 'rate_limited' });
});

test('no answer within the timeout rejects with timeout; a late result is ignored', async () => {
  const { clock, ws, client } = connected();
  const p = client.command('d1', 'start_mission', {}, { timeoutMs: 3000 });
  let settled = false;
  p.catch(() => {}).finally(() => (settled = true));
  await clock.tick(2999);
  assert.equal(settled, false);
  await clock.tick(1);
  await assert.rejects(p, { code: 'timeout' });
  const { id } = ws.last.sentOf('command')[0];
  ws.last.receive({ type: 'command_result', id, ok: true, reply_to: 'x' }); // nothing happens
});

test('the socket dropping after the command went out rejects it with disconnected', async () => {
  const { ws, client } = connected();
  const p = client.command('d1', 'start_mission');
  ws.last.serverClose(1006);
  await assert.rejects(p, { code: 'disconnected' });
});

test('a command made while connecting is sent once the socket opens', async () => {
  const { ws, client } = setup();
  client.connect();
  const p = client.command('d1', 'dispense_treat', { count: 1 });
  assert.equal(ws.last.sent.length, 0);
  ws.last.open();
  const f = ws.last.sentOf('command')[0];
  assert.equal(f.command, 'dispense_treat');
  ws.last.receive({ type: 'command_result', id: f.id, ok: true, reply_to: 'x' });
  assert.equal((await p).ok, true);
});

test('close() rejects waiting commands with closed', async () => {
  const { client } = connected();
  const p = client.command('d1', 'start_mission');
  client.close();
  await assert.rejects(p, { code: 'closed' });
});

test('robotFetch is fetch-like: the proxy URL, the token, JSON bodies, query', async () => {
  const { client, fetch } = setup({ fetchHandler: () => ({ status: 200, body: { missions: ['sit'] } }) });
  const res = await client.robotFetch('d1', '/missions/start', { method: 'POST', body: { mission: 'sit' }, query: { dry: 1 } });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { missions: ['sit'] });
  const { url, init } = fetch.calls[0];
  assert.equal(url, 'http://relay.test/api/devices/d1/robot/missions/start?dry=1');
  assert.equal(init.method, 'POST');
  assert.equal(init.body, '{"mission":"sit"}');
  assert.equal(init.headers['content-type'], 'application/json');
  assert.match(init.headers.authorization, /^Bearer ey/);
});

test('robotJson rejects non-2xx with the relay error code and status (503 offline, 504 timeout)', async () => {
  for (const [status, code] of [[503, 'unavailable'], [504, 'timeout'], [404, 'not_found']]) {
    const { client } = setup({ fetchHandler: () => ({ status, body: { error: { code, message: 'x' } } }) });
    await assert.rejects(client.robotJson('d1', 'missions/available'), (e) => e.code === code && e.status === status);
  }
});

test('devices() lists the caller devices; a relay that cannot be reached is a network error', async () => {
  const list = [{ device_id: 'd1', name: 'Rex', online: true, last_seen: 1, mode: 'idle', mission: null }];
  const { client } = setup({ fetchHandler: () => ({ status: 200, body: list }) });
  assert.deepEqual(await client.devices(), list);
  const down = setup({ fetchHandler: () => { throw new TypeError('fetch failed'); } });
  await assert.rejects(down.client.devices(), { code: 'network' });
});

test('login keeps the token and its expiry; bad credentials are unauthorized', async () => {
  const fetch = fakeFetch((url, init) => {
    const { password } = JSON.parse(init.body);
    return password === 'right-password'
      ? { status: 200, body: { access_token: 'a.eyJleHAiOjE4MDAwMDAwMDB9.s', token_type: 'bearer', expires_in: 86400, user_id: 'u1' } }
      : { status: 401, body: { error: { code: 'unauthorized', message: 'bad credentials' } } };
  });
  const client = new WimzClient({ url: 'https://relay.test/wimz/', fetch });
  await assert.rejects(client.login('alice', 'wrong'), { code: 'unauthorized', status: 401 });
  await client.login('alice', 'right-password');
  assert.equal(fetch.calls[1].url, 'https://relay.test/wimz/api/auth/login');
  assert.equal(client.tokenExpiresAt, 1_800_000_000_000);
  assert.equal(client.userId, 'u1');
  client.close(); // its expiry timer is a real one
});

test('a throttled login (429 login_throttled) says when to try again', async () => {
  const fetch = fakeFetch(() => ({ status: 429, headers: { 'retry-after': '42' }, body: { error: { code: 'login_throttled', message: 'too many attempts' } } }));
  const client = new WimzClient({ url: 'http://relay.test/', fetch });
  await assert.rejects(client.login('alice', 'pw-pw-pw-pw'), (e) => e.code === 'login_throttled' && e.status === 429 && e.retryAfterS === 42);
});

test('URLs: http→ws, https→wss, a path prefix (behind nginx) is kept', () => {
  assert.deepEqual(relayBases('http://localhost:8000'), { http: 'http://localhost:8000/', ws: 'ws://localhost:8000/' });
  assert.deepEqual(relayBases('https://r.example/wimz'), { http: 'https://r.example/wimz/', ws: 'wss://r.example/wimz/' });
  const { client, ws } = setup({ client: { url: 'https://r.example/wimz/' } });
  client.connect();
  assert.match(ws.last.url, /^wss:\/\/r\.example\/wimz\/ws\/app\?token=ey/);
});

test('a frame that is not JSON is reported, not fatal; unknown types reach the message event', () => {
  const { ws, client } = connected();
  const errors = [];
  const messages = [];
  client.on('error', (e) => errors.push(e.code));
  client.on('message', (m) => messages.push(m.type));
  ws.last.receive('not json');
  ws.last.receive('[1,2]');
  ws.last.receive({ type: 'something_new', x: 1 });
  assert.deepEqual(errors, ['bad_frame', 'bad_frame']);
  assert.deepEqual(messages, ['something_new']);
  assert.equal(client.state, 'connected');
});
