//! The console's entry: makes the one `WimzClient` (base URL derived from
//! where this file was served, so it works on any port and behind a path
//! prefix), keeps the token for this browser tab (sessionStorage), shows
//! the connection state in the top bar, and routes between the pages by the
//! URL's hash: sign-in, `#/` (your robots), `#/robot/<id>` (one robot live).

import { WimzClient } from './sdk/wimz.js';
import { replace, setText } from './dom.js';
import { signInPage } from './signin.js';
import { robotsPage } from './robots.js';
import { robotPage } from './robot.js';

/** The relay's base: this file is served at <base>/console/app.js. */
const BASE = new URL('../', import.meta.url).href;
const TOKEN_KEY = 'wimz.console.token';
const USER_KEY = 'wimz.console.user';

const view = document.getElementById('view');
const connPill = document.getElementById('conn-state');
const userLabel = document.getElementById('user-name');
const signOutButton = document.getElementById('sign-out');

let client = null;
let leave = () => {};
/** device id → the last events received this session (so a robot page opens with some history). */
const recent = new Map();
const RECENT_MAX = 100;

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage denied: the tab simply forgets the token
  }
}

function newClient(token) {
  const c = new WimzClient({ url: BASE, token });
  c.on('state', ({ state }) => showConnection(state));
  c.on('connecting', ({ delayMs, attempt }) => {
    if (attempt > 0) connPill.title = `reconnecting in ${Math.round(delayMs / 100) / 10} s (attempt ${attempt})`;
  });
  c.on('connected', () => {
    connPill.title = 'live connection to the relay';
  });
  c.on('disconnected', ({ code, reason }) => {
    connPill.title = `${code}: ${reason}`;
    if (code === 'unauthorized' || code === 'token_expired') signOut('Your session has ended. Please sign in again.');
  });
  c.on('token_expired', () => signOut('Your session has expired. Please sign in again.'));
  c.on('event', (frame) => {
    let list = recent.get(frame.device_id);
    if (!list) recent.set(frame.device_id, (list = []));
    list.push(frame);
    if (list.length > RECENT_MAX) list.shift();
  });
  return c;
}

function showConnection(state) {
  connPill.dataset.state = state;
  setText(connPill, state === 'connected' ? 'live' : state === 'connecting' ? 'connecting…' : 'offline');
}

async function signIn(username, password) {
  const c = newClient(null);
  await c.login(username, password);
  storage()?.setItem(TOKEN_KEY, c.token);
  storage()?.setItem(USER_KEY, username);
  start(c, username);
  if (!location.hash || location.hash === '#/signin') location.hash = '#/';
  else route();
}

function start(c, username) {
  client = c;
  setText(userLabel, username || '');
  signOutButton.hidden = false;
  client.connect();
}

function signOut(message) {
  storage()?.removeItem(TOKEN_KEY);
  storage()?.removeItem(USER_KEY);
  if (client) client.close();
  client = null;
  recent.clear();
  setText(userLabel, '');
  signOutButton.hidden = true;
  showConnection('disconnected');
  leave();
  leave = () => {};
  replace(view, signInPage({ onSubmit: signIn, message }));
}

function route() {
  leave();
  leave = () => {};
  if (!client) {
    replace(view, signInPage({ onSubmit: signIn }));
    return;
  }
  const m = /^#\/robot\/([^/]+)$/.exec(location.hash);
  let page;
  if (m) {
    const id = decodeURIComponent(m[1]);
    page = robotPage(client, id, recent.get(id) || []);
  } else {
    page = robotsPage(client);
  }
  replace(view, page.element);
  leave = page.leave;
  window.scrollTo(0, 0);
}

signOutButton.addEventListener('click', () => signOut());
window.addEventListener('hashchange', route);

const saved = storage()?.getItem(TOKEN_KEY);
if (saved) {
  const c = newClient(saved);
  if (c.tokenExpired) {
    signOut('Your session has expired. Please sign in again.');
  } else {
    start(c, storage()?.getItem(USER_KEY));
    route();
  }
} else {
  showConnection('disconnected');
  route();
}

// For the browser tests and the curious: the live client and video session.
window.wimzConsole = {
  get client() {
    return client;
  },
  video: null,
};
