//! DOM helpers for the console. Everything that reaches the page from the
//! relay or a robot is put there as text (`textContent`) or as an attribute
//! value, never parsed as HTML: `h()` has no way to set `innerHTML`, and it
//! refuses event-handler attributes.

/**
 * Creates an element: `h('td', {class: 'x', 'data-testid': 'y'}, 'text', child)`.
 * Children may be strings (become text nodes), nodes, null/false (skipped)
 * or arrays of those.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (/^on/i.test(k)) throw new Error(`h(): event attributes are not allowed (${k}); use addEventListener`);
    if (k === 'class') el.className = String(v);
    else if (k in el && typeof v !== 'string') el[k] = v; // properties such as value, max, checked
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's content with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Sets text safely. */
export function setText(el, text) {
  el.textContent = text === null || text === undefined ? '' : String(text);
}

/** The element with `data-testid` under `root`. */
export function byTestId(root, id) {
  return root.querySelector(`[data-testid="${id}"]`);
}

/** "14:03:07" for Unix ms. */
export function clock(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** "5 s ago", "3 min ago", or a date, for Unix seconds. */
export function ago(unixS, nowMs = Date.now()) {
  if (typeof unixS !== 'number' || !Number.isFinite(unixS) || unixS <= 0) return '—';
  const s = Math.max(0, Math.round(nowMs / 1000 - unixS));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(unixS * 1000).toLocaleDateString();
}

/** A battery value as the robot reports it (a number, or an object with a level/percent), as text. */
export function batteryText(b) {
  const pct = batteryPercent(b);
  if (pct !== null) {
    const charging = b && typeof b === 'object' && (b.charging === true || b.status === 'charging');
    return `${Math.round(pct)}%${charging ? ' ⚡' : ''}`;
  }
  if (b === null || b === undefined) return '—';
  return typeof b === 'object' ? compactJson(b) : String(b);
}

/** The percentage in a battery value, or null. */
export function batteryPercent(b) {
  if (typeof b === 'number' && Number.isFinite(b)) return b <= 1 && b > 0 && !Number.isInteger(b) ? b * 100 : b;
  if (b && typeof b === 'object') {
    for (const k of ['level', 'percent', 'percentage', 'battery', 'soc', 'charge']) {
      if (typeof b[k] === 'number' && Number.isFinite(b[k])) return batteryPercent(b[k]);
    }
  }
  return null;
}

/** A mode value as text. */
export function modeText(m) {
  if (m === null || m === undefined || m === '') return '—';
  if (typeof m === 'object') return typeof m.mode === 'string' ? m.mode : compactJson(m);
  return String(m);
}

/** `{mission, status, stage, total_stages}` as "sit_training · watching · 3/5". */
export function missionText(m) {
  if (!m || typeof m !== 'object') return '—';
  const parts = [];
  if (m.mission !== undefined) parts.push(String(m.mission));
  if (m.status !== undefined) parts.push(String(m.status));
  if (typeof m.stage === 'number' && typeof m.total_stages === 'number') parts.push(`${m.stage}/${m.total_stages}`);
  return parts.length > 0 ? parts.join(' · ') : compactJson(m);
}

/** JSON on one line, shortened for a table cell. */
export function compactJson(v, max = 160) {
  let s;
  try {
    s = JSON.stringify(v);
  } catch {
    s = String(v);
  }
  if (s === undefined) s = String(v);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
