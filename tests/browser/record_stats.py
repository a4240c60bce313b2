"""Records real `RTCPeerConnection.getStats()` reports from Chromium into
clients/js/test/fixtures/, for the SDK's connection-type unit tests.

The page speaks the relay's protocol by hand (no SDK, so the recording does
not depend on the code it will test): it opens /ws/app, sends
`webrtc_request`, answers the robot's offer with ICE servers from the
relay-issued credentials and waits until video frames are decoded, then
saves every stats object (a Map in the browser) as a JSON array.

usage: record_stats.py BASE_URL USER_TOKEN DEVICE_ID POLICY OUT.json
  POLICY: relay (iceTransportPolicy "relay": through TURN) or all (a direct
  host connection on loopback when the robot offers host candidates)
"""

import json
import sys

from chromium import browser_page, emit, run
from console_page import wait_until

PAGE_JS = r"""
({wsBase, token, deviceId, policy}) => {
  const st = window.__rec = {state: "new", log: []};
  const ws = new WebSocket(`${wsBase}/ws/app?token=${encodeURIComponent(token)}`);
  let pc = null, sid = null;
  ws.onopen = () => ws.send(JSON.stringify({type: "webrtc_request", device_id: deviceId, id: "rec-1"}));
  ws.onmessage = async (m) => {
    const msg = JSON.parse(m.data);
    st.log.push(msg.type);
    if (msg.type === "webrtc_credentials") {
      sid = msg.session_id;
      pc = new RTCPeerConnection({iceServers: msg.credentials.ice_servers, iceTransportPolicy: policy});
      st.pc = pc;
      pc.onicecandidate = (e) => { if (e.candidate) ws.send(JSON.stringify({type: "webrtc_ice", session_id: sid, candidate: e.candidate.toJSON()})); };
      pc.ontrack = (e) => { const v = document.querySelector("video"); v.srcObject = e.streams[0] || new MediaStream([e.track]); v.play().catch(() => {}); };
      pc.onconnectionstatechange = () => { st.state = pc.connectionState; };
    } else if (msg.type === "webrtc_offer" && pc) {
      await pc.setRemoteDescription({type: "offer", sdp: msg.sdp});
      await pc.setLocalDescription(await pc.createAnswer());
      ws.send(JSON.stringify({type: "webrtc_answer", session_id: sid, sdp: pc.localDescription.sdp}));
    } else if (msg.type === "error") {
      st.error = msg;
    }
  };
}
"""

STATS_JS = r"""
async () => {
  const pc = window.__rec.pc;
  const report = await pc.getStats();
  const out = [];
  report.forEach((s) => out.push(s));
  const inbound = out.find((s) => s.type === "inbound-rtp" && s.kind === "video");
  const v = document.querySelector("video");
  return {stats: out, framesDecoded: inbound ? inbound.framesDecoded : 0, videoWidth: v.videoWidth};
}
"""


def main():
    base, token, device_id, policy, out = sys.argv[1:6]
    ws_base = "ws" + base[len("http"):]
    with browser_page() as page:
        # Any page of the relay's origin will do: the script builds its own.
        page.goto(f"{base}/health")
        page.set_content("<video autoplay muted playsinline width=320 height=240></video>")
        page.evaluate(PAGE_JS, {"wsBase": ws_base, "token": token, "deviceId": device_id, "policy": policy})
        wait_until(page, "() => window.__rec.state === 'connected' || !!window.__rec.error", timeout_ms=60_000)
        for _ in range(120):
            rec = page.evaluate(STATS_JS)
            if rec["framesDecoded"] > 10 and rec["videoWidth"] > 0:
                break
            page.wait_for_timeout(250)
        else:
            raise RuntimeError(f"no frames decoded: {rec['framesDecoded']}")
        pair = next(s for s in rec["stats"] if s["type"] == "transport")["selectedCandidatePairId"]
        emit(step="recorded", pair=pair, framesDecoded=rec["framesDecoded"], videoWidth=rec["videoWidth"])
        with open(out, "w") as f:
            json.dump(rec["stats"], f, indent=1, sort_keys=True)
            f.write("\n")
        return {"out": out, "objects": len(rec["stats"])}


if __name__ == "__main__":
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    run(main)
