//! Reading `RTCPeerConnection.getStats()` reports (W3C webrtc-stats): which
//! candidate pair carries the media and so whether the path is `direct` or
//! through a TURN `relay`, and the receive-side numbers the quality monitor
//! watches (RTT, packet loss, jitter, frames per second). Pure functions over
//! a report (a Map-like `RTCStatsReport`, or an array / object of stats), so
//! they are tested on recorded reports.

/** The stats of a report as an array, whatever its container. */
export function statsList(report) {
  if (!report) return [];
  if (Array.isArray(report)) return report;
  if (typeof report.values === 'function') return [...report.values()];
  return Object.values(report);
}

function byId(list) {
  const m = new Map();
  for (const s of list) if (s && s.id !== undefined) m.set(s.id, s);
  return m;
}

/**
 * The candidate pair in use: the one a `transport` names as
 * `selectedCandidatePairId` (the spec's way, Chromium and Safari), else one
 * marked `selected` (Firefox), else a nominated `succeeded` pair.
 */
export function selectedCandidatePair(report) {
  const list = statsList(report);
  const ids = byId(list);
  for (const s of list) {
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      const pair = ids.get(s.selectedCandidatePairId);
      if (pair) return pair;
    }
  }
  const pairs = list.filter((s) => s.type === 'candidate-pair');
  return (
    pairs.find((p) => p.selected === true) ||
    pairs.find((p) => p.nominated === true && p.state === 'succeeded') ||
    null
  );
}

/**
 * `{connectionType, localCandidateType, remoteCandidateType, protocol,
 * relayProtocol, rttMs}` for the pair in use, or null before one is chosen.
 * `relay` when either end of the pair is a TURN relay candidate.
 */
export function connectionInfo(report) {
  const list = statsList(report);
  const pair = selectedCandidatePair(list);
  if (!pair) return null;
  const ids = byId(list);
  const local = ids.get(pair.localCandidateId) || {};
  const remote = ids.get(pair.remoteCandidateId) || {};
  const localType = local.candidateType ?? null;
  const remoteType = remote.candidateType ?? null;
  if (localType === null && remoteType === null) return null;
  return {
    connectionType: localType === 'relay' || remoteType === 'relay' ? 'relay' : 'direct',
    localCandidateType: localType,
    remoteCandidateType: remoteType,
    protocol: local.protocol ?? remote.protocol ?? null,
    relayProtocol: local.relayProtocol ?? null,
    rttMs: typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null,
  };
}

function inboundVideo(list) {
  const rtp = list.filter((s) => s.type === 'inbound-rtp');
  return rtp.find((s) => (s.kind ?? s.mediaType) === 'video') || null;
}

/**
 * The receive-side metrics of `report`, with rates over the interval since
 * `previous` (the metrics this returned for the last report, or null):
 * `{rttMs, lossPct, jitterMs, fps, framesDecoded, packetsReceived,
 * packetsLost, frameWidth, frameHeight, timestamp}`; a number is null when
 * the report does not have it (yet).
 */
export function extractMetrics(report, previous = null) {
  const list = statsList(report);
  const pair = selectedCandidatePair(list);
  const video = inboundVideo(list);
  const m = {
    rttMs: pair && typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null,
    lossPct: null,
    jitterMs: null,
    fps: null,
    framesDecoded: null,
    packetsReceived: null,
    packetsLost: null,
    frameWidth: null,
    frameHeight: null,
    timestamp: null,
  };
  if (!video) return m;
  m.timestamp = typeof video.timestamp === 'number' ? video.timestamp : null;
  m.packetsReceived = num(video.packetsReceived);
  m.packetsLost = num(video.packetsLost);
  m.framesDecoded = num(video.framesDecoded);
  m.frameWidth = num(video.frameWidth);
  m.frameHeight = num(video.frameHeight);
  m.jitterMs = typeof video.jitter === 'number' ? video.jitter * 1000 : null;
  // Counters that went backwards belong to a new stream (a new
  // RTCPeerConnection after an ICE restart with a new DTLS fingerprint, a new
  // SSRC): rates over that "interval" mean nothing, so start afresh.
  const back = (k) => previous && previous[k] !== null && m[k] !== null && m[k] < previous[k];
  if (back('framesDecoded') || back('packetsReceived') || back('packetsLost')) previous = null;
  if (m.packetsReceived !== null && m.packetsLost !== null) {
    const base = previous && previous.packetsReceived !== null && previous.packetsLost !== null ? previous : null;
    const received = m.packetsReceived - (base ? base.packetsReceived : 0);
    const lost = m.packetsLost - (base ? base.packetsLost : 0);
    const expected = received + Math.max(lost, 0);
    if (expected > 0) m.lossPct = (Math.max(lost, 0) / expected) * 100;
    else if (base) m.lossPct = 0;
  }
  if (typeof video.framesPerSecond === 'number') {
    m.fps = video.framesPerSecond;
  } else if (previous && previous.framesDecoded !== null && m.framesDecoded !== null && previous.timestamp !== null && m.timestamp !== null && m.timestamp > previous.timestamp) {
    m.fps = ((m.framesDecoded - previous.framesDecoded) * 1000) / (m.timestamp - previous.timestamp);
  }
  return m;
}

function num(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
