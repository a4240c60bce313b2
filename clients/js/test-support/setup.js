//! A `WimzClient` wired to the fakes, for the unit tests.

import { WimzClient } from '../wimz.js';
import { FakeClock, fakeWebSocket, fakeFetch, fakeToken } from './fakes.js';

export function setup({ fetchHandler, client = {}, tokenTtlS = 3600, random = () => 0.5 } = {}) {
  const clock = new FakeClock();
  const ws = fakeWebSocket();
  const fetch = fakeFetch(fetchHandler ?? (() => ({ status: 200, body: [] })));
  const c = new WimzClient({
    url: 'http://relay.test/',
    token: fakeToken(Math.floor(clock.t / 1000) + tokenTtlS),
    WebSocket: ws.WebSocket,
    fetch,
    timers: clock.timers,
    now: clock.now,
    random,
    ...client,
  });
  return { clock, ws, fetch, client: c };
}

/** Connects and opens the first socket. */
export function connected(opts) {
  const s = setup(opts);
  s.client.connect();
  s.ws.last.open();
  return s;
}

/** Collects what an emitter emits for `names`, in order, as [name, payload]. */
export function record(emitter, names) {
  const log = [];
  for (const n of names) emitter.on(n, (x) => log.push([n, x]));
  return log;
}
