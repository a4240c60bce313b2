//! One robot, live: its state (online, battery, mode), the mission progress
//! bar, alerts, the event stream (with every recovery notice shown), command
//! buttons with their results, the robot's REST views through the relay's
//! proxy, and the video panel (`video.js`). All robot data is shown as text.

import { h, replace, setText, clock, compactJson, batteryText, modeText, missionText } from './dom.js';
import { videoPanel } from './video.js';

/** Items kept in the event list and the alert list. */
const MAX_EVENTS = 200;
const MAX_ALERTS = 50;

/** The robot's REST views: tab → proxied path (default `proxy.allowed_paths`). */
const REST_VIEWS = [
  { key: 'missions', label: 'Missions', path: 'missions/available' },
  { key: 'programs', label: 'Programs', path: 'programs/available' },
  { key: 'reports', label: 'Reports', path: 'reports/weekly' },
];

const MODES = ['idle', 'training', 'guard', 'play', 'sleep', 'manual'];

/**
 * @param {import('./sdk/wimz.js').WimzClient} client
 * @param {string} deviceId
 * @param {object[]} history events already received for it (oldest first)
 */
export function robotPage(client, deviceId, history = []) {
  const off = [];
  const sub = client.subscribe(deviceId);

  // ---- header ----
  const title = h('h1', { 'data-testid': 'robot-title' }, deviceId);
  const statusPill = h('span', { class: 'pill', 'data-testid': 'robot-status' }, '…');
  const battery = h('span', { 'data-testid': 'robot-page-battery' }, '—');
  const mode = h('span', { 'data-testid': 'robot-page-mode' }, '—');
  const streamState = h('span', { class: 'muted small', 'data-testid': 'stream-state' });
  const head = h('div', { class: 'page-head' },
    h('a', { href: '#/', class: 'back', 'data-testid': 'nav-back' }, '← All robots'),
    h('div', { class: 'title-row' }, title, statusPill),
    h('div', { class: 'facts' },
      h('span', {}, h('span', { class: 'muted' }, 'Battery '), battery),
      h('span', {}, h('span', { class: 'muted' }, 'Mode '), mode),
      streamState));

  // ---- mission ----
  const missionLabel = h('div', { class: 'mission-label', 'data-testid': 'mission-label' }, 'No mission yet');
  const progress = h('progress', { class: 'mission', max: 1, value: 0, 'data-testid': 'mission-progress' });
  const stage = h('div', { class: 'muted small', 'data-testid': 'mission-stage' }, '');
  const missionCard = card('Mission', 'mission-card', missionLabel, progress, stage);

  // ---- alerts ----
  const alertList = h('ul', { class: 'alerts', 'data-testid': 'alert-list' });
  const noAlerts = h('p', { class: 'muted small', 'data-testid': 'alert-empty' }, 'No alerts.');
  const alertsCard = card('Alerts', 'alerts-card', noAlerts, alertList);

  // ---- events ----
  const eventList = h('ol', { class: 'events', 'data-testid': 'event-list', reversed: true });
  const noEvents = h('p', { class: 'muted small', 'data-testid': 'event-empty' }, 'Waiting for the robot\'s events…');
  const eventsCard = card('Live events', 'events-card', noEvents, eventList);

  // ---- commands ----
  const commandsCard = card('Commands', 'commands-card', ...commandControls(client, deviceId));

  // ---- REST views ----
  const restCard = card('Robot data', 'rest-card', ...restViews(client, deviceId));

  // ---- video ----
  const video = videoPanel(client, deviceId);
  off.push(video.leave);

  const element = h('section', { class: 'page robot', 'data-testid': 'robot-page', 'data-device-id': deviceId },
    head,
    h('div', { class: 'grid' },
      h('div', { class: 'col' }, missionCard, commandsCard, video.element, restCard),
      h('div', { class: 'col' }, alertsCard, eventsCard)));

  // ---- live state ----
  function paintState() {
    const s = sub.snapshotView();
    const online = s.online;
    statusPill.className = `pill ${online ? 'ok' : online === false ? 'off' : ''}`;
    statusPill.dataset.online = String(!!online);
    setText(statusPill, online === null ? '…' : online ? 'online' : 'offline');
    setText(battery, batteryText(s.battery));
    setText(mode, modeText(s.mode));
    paintMission(s.mission);
    paintStream();
  }

  // The stream's position: the seq moves with every event; the epoch (an
  // opaque number, a timestamp on this relay) is kept in the tooltip.
  function paintStream() {
    setText(streamState, sub.state === 'subscribed'
      ? `live · seq ${sub.position.seq}`
      : sub.state === 'subscribing' ? 'reconnecting…' : 'not subscribed');
    streamState.title = sub.state === 'subscribed' ? `epoch ${sub.position.epoch}` : '';
  }

  function paintMission(m) {
    if (!m || typeof m !== 'object') {
      setText(missionLabel, 'No mission yet');
      progress.max = 1;
      progress.value = 0;
      setText(stage, '');
      return;
    }
    setText(missionLabel, missionText(m));
    const total = typeof m.total_stages === 'number' && m.total_stages > 0 ? m.total_stages : null;
    const at = typeof m.stage === 'number' ? m.stage : null;
    if (total !== null && at !== null) {
      progress.max = total;
      progress.value = Math.min(Math.max(at, 0), total);
      setText(stage, `Stage ${at} of ${total}`);
    } else if (typeof m.progress === 'number') {
      progress.max = 1;
      progress.value = Math.min(Math.max(m.progress > 1 ? m.progress / 100 : m.progress, 0), 1);
      setText(stage, `${Math.round(progress.value * 100)}%`);
    } else {
      progress.removeAttribute('value'); // indeterminate
      setText(stage, '');
    }
    progress.dataset.stage = at === null ? '' : String(at);
    progress.dataset.total = total === null ? '' : String(total);
  }

  function addEvent(frame) {
    const name = typeof frame.event === 'string' ? frame.event : '?';
    const detail = frame.data !== undefined ? compactJson(frame.data, 400) : frame.reason !== undefined ? `reason: ${compactJson(frame.reason)}` : '';
    const item = h('li', {
      class: `event ev-${name.replace(/[^a-z0-9_]/gi, '')}`,
      'data-testid': 'event-item', 'data-event': name, 'data-seq': String(frame.seq ?? ''),
    },
    h('span', { class: 'ev-time mono' }, clock(typeof frame.ts_ms === 'number' ? frame.ts_ms : Date.now())),
    h('span', { class: 'ev-seq mono' }, `#${frame.seq ?? '—'}`),
    h('span', { class: 'ev-name' }, name),
    h('span', { class: 'ev-data mono', 'data-testid': 'event-data' }, detail));
    noEvents.hidden = true;
    prepend(eventList, item, MAX_EVENTS);
    if (name === 'alert') addAlert(frame);
  }

  function addNotice(kind, text) {
    prepend(eventList, h('li', { class: `notice notice-${kind}`, 'data-testid': 'event-notice', 'data-kind': kind },
      h('span', { class: 'ev-time mono' }, clock(Date.now())), h('span', { class: 'ev-name' }, text)), MAX_EVENTS);
  }

  function addAlert(frame) {
    const d = frame.data && typeof frame.data === 'object' ? frame.data : {};
    const level = typeof d.level === 'string' ? d.level : typeof d.severity === 'string' ? d.severity : 'warning';
    const text = typeof d.message === 'string' ? d.message : typeof d.text === 'string' ? d.text : compactJson(frame.data ?? '');
    noAlerts.hidden = true;
    prepend(alertList, h('li', {
      class: `alert level-${level.replace(/[^a-z]/gi, '')}`, 'data-testid': 'alert-item', 'data-level': level,
    },
    h('span', { class: 'alert-level' }, level),
    h('span', { class: 'alert-text', 'data-testid': 'alert-text' }, text),
    h('span', { class: 'muted small mono' }, clock(typeof frame.ts_ms === 'number' ? frame.ts_ms : Date.now()))), MAX_ALERTS);
  }

  for (const frame of history) addEvent(frame);
  off.push(sub.on('event', (frame) => { addEvent(frame); paintStream(); }));
  off.push(sub.on('snapshot', paintState));
  off.push(sub.on('state', paintState));
  off.push(sub.on('recovered', (r) => addNotice(r.complete ? 'recovered' : 'incomplete',
    r.complete ? 'Reconnected: nothing was missed' : `Reconnected: some events were missed${r.reason ? ` (${r.reason})` : ''}`)));
  off.push(sub.on('epoch_changed', () => addNotice('epoch', 'The relay restarted this robot\'s stream (new epoch)')));
  off.push(sub.on('gap', (g) => addNotice('gap', `Events ${g.from_seq}–${g.to_seq} were not received`)));
  off.push(sub.on('unsubscribed', (u) => addNotice('unsubscribed', `Stream ended${u.reason ? `: ${u.reason}` : ''}`)));
  off.push(sub.on('error', (e) => addNotice('error', `${e.code}: ${e.message}`)));
  paintState();

  client.devices().then((list) => {
    const d = list.find((x) => x.device_id === deviceId);
    if (d && d.name) setText(title, d.name);
    if (!d) addNotice('error', 'This robot is not one of yours.');
  }).catch(() => {});

  return { element, leave: () => off.forEach((f) => f()) };
}

function card(titleText, testid, ...children) {
  return h('div', { class: 'card', 'data-testid': testid }, h('h2', {}, titleText), ...children);
}

function prepend(list, item, max) {
  list.prepend(item);
  while (list.children.length > max) list.lastElementChild.remove();
}

/** The command buttons, each with its result area. */
function commandControls(client, deviceId) {
  const missionName = h('input', { type: 'text', value: 'sit_training', 'data-testid': 'cmd-mission-name', 'aria-label': 'Mission name' });
  const modeSelect = h('select', { 'data-testid': 'cmd-mode-value', 'aria-label': 'Mode' },
    MODES.map((m) => h('option', { value: m }, m)));
  return [
    commandRow(client, deviceId, { key: 'start-mission', label: 'Start mission', command: 'start_mission', input: missionName,
      data: () => ({ mission: missionName.value.trim() || 'sit_training' }), primary: true }),
    commandRow(client, deviceId, { key: 'stop-mission', label: 'Stop mission', command: 'stop_mission', data: () => ({}) }),
    commandRow(client, deviceId, { key: 'set-mode', label: 'Set mode', command: 'set_mode', input: modeSelect,
      data: () => ({ mode: modeSelect.value }) }),
    commandRow(client, deviceId, { key: 'dispense-treat', label: 'Dispense treat', command: 'dispense_treat', data: () => ({ count: 1 }) }),
  ];
}

function commandRow(client, deviceId, { key, label, command, input, data, primary }) {
  const result = h('output', { class: 'result', 'data-testid': `cmd-result-${key}`, 'data-state': 'idle' });
  const button = h('button', { type: 'button', class: `button${primary ? ' primary' : ''}`, 'data-testid': `cmd-${key}` }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    result.dataset.state = 'pending';
    setText(result, 'sent…');
    try {
      const r = await client.command(deviceId, command, data());
      result.dataset.state = r.ok ? 'ok' : 'failed';
      setText(result, `${r.ok ? '✓ ok' : '✗ refused'}${r.data !== undefined ? ` ${compactJson(r.data)}` : ''}`);
    } catch (err) {
      result.dataset.state = 'error';
      result.dataset.code = err.code || '';
      setText(result, `✗ ${err.code}: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });
  return h('div', { class: 'command' }, h('div', { class: 'command-controls' }, input || null, button), result);
}

/** Tabs over the robot's REST API, proxied by the relay. */
function restViews(client, deviceId) {
  const view = h('div', { class: 'rest-view', 'data-testid': 'rest-view', 'data-state': 'idle' },
    h('p', { class: 'muted small' }, 'Pick a view to ask the robot.'));
  const statusLine = h('div', { class: 'muted small mono', 'data-testid': 'rest-status' });
  const tabs = REST_VIEWS.map((v) => {
    const b = h('button', { type: 'button', class: 'tab', 'data-testid': `rest-tab-${v.key}`, 'aria-pressed': 'false' }, v.label);
    b.addEventListener('click', () => load(v, b));
    return b;
  });
  let ticket = 0;
  async function load(v, tab) {
    const mine = ++ticket;
    for (const t of tabs) t.setAttribute('aria-pressed', String(t === tab));
    view.dataset.state = 'loading';
    view.dataset.view = v.key;
    replace(view, h('p', { class: 'muted small' }, `GET ${v.path} …`));
    setText(statusLine, '');
    let res;
    let body;
    try {
      res = await client.robotFetch(deviceId, v.path);
      const text = await res.text();
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
    } catch (err) {
      if (mine !== ticket) return;
      view.dataset.state = 'error';
      replace(view, h('p', { class: 'form-error' }, `${err.code || 'error'}: ${err.message}`));
      return;
    }
    if (mine !== ticket) return;
    setText(statusLine, `GET /api/devices/${deviceId}/robot/${v.path} → ${res.status}`);
    view.dataset.status = String(res.status);
    if (!res.ok) {
      view.dataset.state = 'error';
      const e = body && body.error ? body.error : null;
      replace(view, h('p', { class: 'form-error' }, e ? `${e.code}: ${e.message}` : `HTTP ${res.status}`));
      return;
    }
    view.dataset.state = 'ok';
    replace(view, renderJson(body));
  }
  return [h('div', { class: 'tabs', role: 'group' }, tabs), view, statusLine];
}

/** JSON as a readable table / list, every value as text. */
export function renderJson(value, depth = 0) {
  if (Array.isArray(value)) {
    if (value.length === 0) return h('p', { class: 'muted small' }, '(empty)');
    const objects = value.every((x) => x && typeof x === 'object' && !Array.isArray(x));
    if (objects && depth < 2) {
      const cols = [...new Set(value.flatMap((x) => Object.keys(x)))].slice(0, 8);
      return h('table', { class: 'data' },
        h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))),
        h('tbody', {}, value.map((x) => h('tr', { 'data-testid': 'rest-row' }, cols.map((c) => h('td', {}, cell(x[c])))))));
    }
    return h('ul', { class: 'data' }, value.map((x) => h('li', { 'data-testid': 'rest-row' }, depth < 2 ? renderJson(x, depth + 1) : cell(x))));
  }
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) return h('p', { class: 'muted small' }, '(empty)');
    return h('dl', { class: 'data' }, entries.flatMap(([k, v]) => [
      h('dt', {}, k),
      h('dd', {}, v && typeof v === 'object' && depth < 2 ? renderJson(v, depth + 1) : cell(v)),
    ]));
  }
  return h('p', { class: 'mono' }, cell(value));
}

function cell(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object') return compactJson(v);
  return String(v);
}
