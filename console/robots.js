//! "Your robots": the caller's devices (`GET /api/devices`), each kept live
//! by its subscription (online state, battery, mode, last mission from the
//! snapshot and the events), with a link to the robot's live page.

import { h, replace, setText, ago, batteryText, batteryPercent, modeText, missionText } from './dom.js';

/** Refresh of the list from the REST API (names, last_seen of offline robots). */
const LIST_REFRESH_MS = 30000;

export function robotsPage(client) {
  const body = h('tbody', { 'data-testid': 'robot-list-body' });
  const status = h('p', { class: 'muted', 'data-testid': 'robot-list-status' }, 'Loading your robots…');
  const table = h('table', { class: 'robots', 'data-testid': 'robot-list' },
    h('thead', {}, h('tr', {},
      h('th', {}, 'Robot'), h('th', {}, 'Status'), h('th', {}, 'Battery'), h('th', {}, 'Mode'),
      h('th', {}, 'Last mission'), h('th', {}, 'Last seen'), h('th', { class: 'right' }, ''))),
    body);
  const element = h('section', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Your robots'), status),
    h('div', { class: 'card flush' }, table));

  /** device id → {row, cells, device, off} */
  const rows = new Map();
  let alive = true;
  let timer = null;

  function rowFor(d) {
    const cells = {
      name: h('td', { 'data-testid': 'robot-name' }),
      online: h('td', {}),
      battery: h('td', { 'data-testid': 'robot-battery' }),
      mode: h('td', { 'data-testid': 'robot-mode' }),
      mission: h('td', { 'data-testid': 'robot-mission' }),
      seen: h('td', { class: 'muted', 'data-testid': 'robot-last-seen' }),
    };
    const pill = h('span', { class: 'pill', 'data-testid': 'robot-online' });
    cells.online.append(pill);
    const href = `#/robot/${encodeURIComponent(d.device_id)}`;
    const open = h('a', { class: 'button small', href, 'data-testid': 'robot-open' }, 'Open');
    const row = h('tr', { 'data-testid': 'robot-row', 'data-device-id': d.device_id },
      cells.name, cells.online, cells.battery, cells.mode, cells.mission, cells.seen,
      h('td', { class: 'right' }, open));
    row.addEventListener('click', (e) => {
      if (e.target instanceof Element && e.target.closest('a')) return;
      location.hash = href;
    });
    const entry = { row, cells, pill, device: d, off: [] };
    const sub = client.subscribe(d.device_id);
    entry.off.push(sub.on('snapshot', () => paint(entry, sub)));
    entry.off.push(sub.on('event', () => {
      entry.lastEventMs = Date.now();
      paintSeen(entry, sub);
    }));
    paint(entry, sub);
    return entry;
  }

  function paint(entry, sub) {
    const d = entry.device;
    const snap = sub && sub.state === 'subscribed' ? sub.snapshotView() : null;
    const online = snap && snap.online !== null ? snap.online : d.online;
    replace(entry.cells.name, h('strong', {}, d.name || d.device_id),
      d.name && d.name !== d.device_id ? h('div', { class: 'muted small mono' }, d.device_id) : null);
    entry.pill.dataset.online = String(!!online);
    entry.pill.className = `pill ${online ? 'ok' : 'off'}`;
    setText(entry.pill, online ? 'online' : 'offline');
    const battery = snap ? snap.battery : null;
    const pct = batteryPercent(battery);
    replace(entry.cells.battery, batteryText(battery),
      pct !== null ? h('meter', { class: 'battery', min: 0, max: 100, low: 20, high: 50, optimum: 100, value: pct }) : null);
    setText(entry.cells.mode, modeText(snap ? snap.mode : d.mode));
    setText(entry.cells.mission, missionText(snap ? snap.mission : d.mission));
    paintSeen(entry, sub);
  }

  function paintSeen(entry, sub) {
    const online = sub && sub.robotOnline !== null ? sub.robotOnline : entry.device.online;
    if (online) setText(entry.cells.seen, entry.lastEventMs ? `event ${ago(entry.lastEventMs / 1000)}` : 'now');
    else setText(entry.cells.seen, ago(entry.device.last_seen));
  }

  async function load() {
    let list;
    try {
      list = await client.devices();
    } catch (err) {
      if (!alive) return;
      setText(status, `Cannot load your robots: ${err.message}`);
      status.dataset.state = 'error';
      return;
    }
    if (!alive) return;
    const seen = new Set();
    for (const d of list) {
      seen.add(d.device_id);
      let entry = rows.get(d.device_id);
      if (!entry) {
        entry = rowFor(d);
        rows.set(d.device_id, entry);
      } else {
        entry.device = d;
        paint(entry, client.subscription(d.device_id));
      }
    }
    for (const [id, entry] of rows) {
      if (!seen.has(id)) {
        entry.off.forEach((f) => f());
        rows.delete(id);
      }
    }
    const sorted = [...rows.values()].sort((a, b) => (a.device.name || a.device.device_id).localeCompare(b.device.name || b.device.device_id));
    replace(body, sorted.map((e) => e.row));
    status.dataset.state = 'ok';
    setText(status, list.length === 0
      ? 'No robots yet. Add one with `wimz-relay device add ID --owner YOU` or POST /api/devices.'
      : `${list.length} robot${list.length === 1 ? '' : 's'} · updates live`);
  }

  load();
  timer = setInterval(load, LIST_REFRESH_MS);
  return {
    element,
    leave() {
      alive = false;
      clearInterval(timer);
      for (const e of rows.values()) e.off.forEach((f) => f());
    },
  };
}
