"""Test peer acting as a WIM-Z robot: connects to the relay's /ws/device
with a device signature, waits for webrtc_request, offers a data channel
over relay-only ICE with the turn_credentials it was given, and checks a
ping/pong round trip with the app peer. Signaling goes through the relay
only.

usage: robot.py WS_BASE DEVICE_ID DEVICE_SECRET
"""

import asyncio
import hashlib
import hmac
import json
import sys
import time

import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription

from common import DEADLINE_S, fail, nominated_types, relay_only_config, report


async def run(ws_base: str, device_id: str, secret: str) -> dict:
    ts = int(time.time())
    sig = hmac.new(secret.encode(), f"{device_id}:{ts}".encode(), hashlib.sha256).hexdigest()
    headers = {"X-Device-Id": device_id, "X-Timestamp": str(ts), "X-Signature": sig}
    async with websockets.connect(f"{ws_base}/ws/device", additional_headers=headers) as ws:
        report({"ready": True})
        pc = None
        got_pong = asyncio.get_running_loop().create_future()
        session_id = None
        async for text in ws:
            msg = json.loads(text)
            ty = msg.get("type")
            if ty == "webrtc_request":
                session_id = msg["session_id"]
                pc = RTCPeerConnection(relay_only_config(msg["turn_credentials"]))
                channel = pc.createDataChannel("wimz")

                @channel.on("open")
                def on_open():
                    channel.send("ping-from-robot")

                @channel.on("message")
                def on_message(m):
                    if m == "pong-from-app" and not got_pong.done():
                        got_pong.set_result(m)

                await pc.setLocalDescription(await pc.createOffer())
                await ws.send(json.dumps({
                    "type": "webrtc_offer",
                    "session_id": session_id,
                    "sdp": pc.localDescription.sdp,
                    "sdp_type": pc.localDescription.type,
                }))
            elif ty == "webrtc_answer" and pc is not None:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
                await asyncio.wait_for(got_pong, DEADLINE_S)
                pairs = nominated_types(pc)
                await ws.send(json.dumps({
                    "type": "webrtc_stats", "session_id": session_id,
                    "connection_type": "relay", "rtt_ms": 1.0,
                }))
                await ws.send(json.dumps({
                    "type": "webrtc_close", "session_id": session_id, "reason": "done",
                }))
                await pc.close()
                return {"ok": True, "session_id": session_id, "pairs": pairs}
            elif ty == "error":
                raise RuntimeError(f"relay error: {msg}")
    raise RuntimeError("relay closed the socket")


def main() -> None:
    if len(sys.argv) != 4:
        fail(__doc__)
    try:
        report(asyncio.run(asyncio.wait_for(run(*sys.argv[1:4]), DEADLINE_S)))
    except Exception as e:
        fail(f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
