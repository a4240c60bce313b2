"""Test peer acting as the owner's app: connects to the relay's /ws/app
with a user token, sends webrtc_request for the device, answers the robot's
offer over relay-only ICE with the credentials from webrtc_credentials, and
answers the robot's data-channel ping. Signaling goes through the relay
only.

usage: app.py WS_BASE USER_TOKEN DEVICE_ID
"""

import asyncio
import json
import sys

import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription

from common import DEADLINE_S, fail, nominated_types, relay_only_config, report


async def run(ws_base: str, token: str, device_id: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(f"{ws_base}/ws/app", additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "webrtc_request", "device_id": device_id, "id": "e2e"}))
        pc = None
        got_ping = asyncio.get_running_loop().create_future()
        session_id = None
        async for text in ws:
            msg = json.loads(text)
            ty = msg.get("type")
            if ty == "webrtc_credentials":
                session_id = msg["session_id"]
                pc = RTCPeerConnection(relay_only_config(msg["credentials"]))

                @pc.on("datachannel")
                def on_datachannel(channel):
                    @channel.on("message")
                    def on_message(m):
                        if m == "ping-from-robot":
                            channel.send("pong-from-app")
                            if not got_ping.done():
                                got_ping.set_result(m)
            elif ty == "webrtc_offer" and pc is not None:
                assert msg["session_id"] == session_id
                await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                await ws.send(json.dumps({
                    "type": "webrtc_answer",
                    "session_id": session_id,
                    "sdp": pc.localDescription.sdp,
                    "sdp_type": pc.localDescription.type,
                }))
            elif ty == "webrtc_close" and msg.get("session_id") == session_id:
                await asyncio.wait_for(got_ping, 1)
                pairs = nominated_types(pc)
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
