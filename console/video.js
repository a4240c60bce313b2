//! The live video panel of a robot's page: starts a `VideoSession` through
//! the relay (TURN credentials from the relay; "relay only" forces TURN),
//! shows the stream, the connection type, RTT / loss / fps, quality
//! warnings, ICE restarts and why a session closed, with buttons to start,
//! stop and restart ICE.

import { h, setText } from './dom.js';

const METRIC_NAMES = { rttMs: 'high latency', lossPct: 'packet loss', jitterMs: 'jitter', fps: 'low frame rate' };

export function videoPanel(client, deviceId) {
  const video = h('video', { class: 'video', 'data-testid': 'video', autoplay: true, playsInline: true, muted: true });
  const placeholder = h('div', { class: 'video-placeholder', 'data-testid': 'video-placeholder' }, 'No video');
  const stage = h('div', { class: 'video-stage' }, video, placeholder);

  const relayOnly = h('input', { type: 'checkbox', 'data-testid': 'video-relay-only', id: `relay-only-${deviceId}` });
  const start = h('button', { type: 'button', class: 'button primary', 'data-testid': 'video-start' }, 'Start video');
  const stop = h('button', { type: 'button', class: 'button', 'data-testid': 'video-stop', disabled: true }, 'Stop');
  const restart = h('button', { type: 'button', class: 'button', 'data-testid': 'video-ice-restart', disabled: true }, 'Restart ICE');

  const state = h('span', { class: 'pill', 'data-testid': 'video-state', 'data-state': 'idle' }, 'idle');
  const ctype = h('span', { 'data-testid': 'video-connection-type' }, '—');
  const rtt = h('span', { class: 'mono', 'data-testid': 'video-rtt' }, '—');
  const loss = h('span', { class: 'mono', 'data-testid': 'video-loss' }, '—');
  const fps = h('span', { class: 'mono', 'data-testid': 'video-fps' }, '—');
  const restarts = h('span', { class: 'mono', 'data-testid': 'video-restarts' }, '0');
  const warning = h('div', { class: 'quality-warning', role: 'status', 'data-testid': 'video-quality-warning', hidden: true });
  const closeReason = h('div', { class: 'muted small', 'data-testid': 'video-close-reason', hidden: true });

  const element = h('div', { class: 'card', 'data-testid': 'video-card' },
    h('h2', {}, 'Live video'),
    stage,
    h('div', { class: 'video-controls' }, start, stop, restart,
      h('label', { class: 'check', for: `relay-only-${deviceId}` }, relayOnly, ' relay only (TURN)')),
    h('dl', { class: 'video-stats' },
      h('dt', {}, 'State'), h('dd', {}, state),
      h('dt', {}, 'Path'), h('dd', {}, ctype),
      h('dt', {}, 'RTT'), h('dd', {}, rtt),
      h('dt', {}, 'Loss'), h('dd', {}, loss),
      h('dt', {}, 'Frames/s'), h('dd', {}, fps),
      h('dt', {}, 'ICE restarts'), h('dd', {}, restarts)),
    warning, closeReason);

  let session = null;

  function setState(s) {
    state.dataset.state = s;
    state.className = `pill ${s === 'connected' ? 'ok' : s === 'closed' ? 'off' : s === 'restarting' ? 'warn' : ''}`;
    setText(state, s);
    const live = session && s !== 'closed';
    start.disabled = !!live;
    stop.disabled = !live;
    restart.disabled = !(live && session.sessionId);
    relayOnly.disabled = !!live;
  }

  function showWarnings(list) {
    warning.hidden = list.length === 0;
    warning.dataset.metrics = list.join(' ');
    setText(warning, list.length ? `⚠ Poor video: ${list.map((m) => METRIC_NAMES[m] || m).join(', ')}` : '');
  }

  start.addEventListener('click', async () => {
    if (session && session.state !== 'closed') return;
    closeReason.hidden = true;
    setText(ctype, '—');
    ctype.dataset.type = '';
    showWarnings([]);
    // `window.wimzConsole.videoOptions` (VIDEO_DEFAULTS overrides) lets a
    // test shorten the restart timers; nothing in the page sets it.
    const extra = (window.wimzConsole && window.wimzConsole.videoOptions) || {};
    const s = client.video(deviceId, { ...extra, iceTransportPolicy: relayOnly.checked ? 'relay' : 'all' });
    session = s;
    window.wimzConsole && (window.wimzConsole.video = s);
    s.on('state', ({ state: st }) => s === session && setState(st));
    s.on('track', ({ stream }) => {
      if (s !== session || !stream) return;
      video.srcObject = stream;
      placeholder.hidden = true;
      video.play().catch(() => {});
    });
    s.on('connection_type', (info) => {
      ctype.dataset.type = info.connectionType;
      setText(ctype, `${info.connectionType}${info.relayProtocol ? ` (TURN/${info.relayProtocol})` : ''} · ${info.localCandidateType ?? '?'} ↔ ${info.remoteCandidateType ?? '?'}`);
    });
    s.on('stats', (m) => {
      setText(rtt, m.rttMs === null ? '—' : `${Math.round(m.rttMs)} ms`);
      setText(loss, m.lossPct === null ? '—' : `${m.lossPct.toFixed(1)} %`);
      setText(fps, m.fps === null ? '—' : `${Math.round(m.fps)}`);
    });
    s.on('quality', ({ warnings }) => showWarnings(warnings));
    s.on('ice_restart', ({ attempt, max, reason }) => {
      setText(restarts, String(s.iceRestarts));
      closeReason.hidden = false;
      setText(closeReason, `ICE restart ${attempt}/${max} (${reason})…`);
    });
    s.on('ice_restarted', () => {
      closeReason.hidden = false;
      setText(closeReason, 'ICE restart recovered the connection.');
    });
    s.on('closed', ({ reason }) => {
      if (s !== session) return;
      closeReason.hidden = false;
      closeReason.dataset.reason = reason;
      setText(closeReason, `Session closed: ${reason}`);
      video.srcObject = null;
      placeholder.hidden = false;
      showWarnings([]);
    });
    setState('requesting');
    try {
      await s.start();
    } catch (err) {
      if (s !== session) return;
      closeReason.hidden = false;
      closeReason.dataset.reason = err.reason || err.code;
      setText(closeReason, `Video failed: ${err.reason || err.code} — ${err.message}`);
      setState('closed');
    }
  });
  stop.addEventListener('click', () => session && session.close('closed_by_app'));
  restart.addEventListener('click', () => session && session.restartIce());

  return {
    element,
    leave() {
      if (session && session.state !== 'closed') session.close('closed_by_app');
      session = null;
    },
  };
}
