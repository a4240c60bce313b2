"""A simulated WIM-Z robot with a camera: connects to the relay's
`/ws/device` (device signature or device token), answers every
`webrtc_request` with an offer carrying a generated video track
(pattern.py), handles answer / ICE / close, and an ICE restart by offering
again from a fresh peer connection built with the restart's fresh TURN
credentials (aiortc cannot restart ICE on a live connection; browsers accept
the new offer as an ICE and DTLS restart of the same session). It answers
commands and REST-proxy calls it does not know with a polite refusal, and
can send a few events. Speaks only docs/PROTOCOL.md.

Run it beside `wimz-relay serve --demo` (README.md in this folder):

    python video_robot.py --relay http://127.0.0.1:8000 --device-id wimz-cam --secret SECRET

With `--control` it prints one JSON status line per step on stdout
(`{"status": "ready" | "offer" | "connected" | "closed" | ...}`) and obeys
JSON lines on stdin (`{"do": "event", "event": NAME, "data": {...}}`,
`{"do": "break"}` to drop every media transport without a word, as a robot
losing its network would, `{"do": "quit"}`) — the browser tests drive it so.
"""

import argparse
import asyncio
import urllib.error
import urllib.request
import hashlib
import hmac
import json
import logging
import os
import random
import sys
import time

import websockets
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp

from pattern import PatternTrack

log = logging.getLogger("video_robot")


def ws_base(relay: str) -> str:
    """`http://h:p` or `ws://h:p` (with or without a trailing slash) → `ws://h:p`."""
    relay = relay.rstrip("/")
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if relay.startswith(http):
            return ws + relay[len(http):]
    return relay


def ice_config(creds: dict, policy: str) -> RTCConfiguration:
    """RTCConfiguration from the relay's credentials object (PROTOCOL §4):
    its `ice_servers` as given (STUN and TURN), and `relay` to use TURN only."""
    servers = []
    for s in creds.get("ice_servers") or []:
        urls = s.get("urls")
        urls = urls if isinstance(urls, list) else [urls]
        # aiortc speaks stun:/turn: over UDP and TCP, not turns:.
        urls = [u for u in urls if isinstance(u, str) and u.split(":", 1)[0] in ("stun", "turn")]
        if urls:
            servers.append(RTCIceServer(urls=urls, username=s.get("username"), credential=s.get("credential")))
    transport = RTCIceTransportPolicy.RELAY if policy == "relay" else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=transport)


class Session:
    """One WebRTC session: its current peer connection and, during an ICE
    restart, the one it replaces (closed once the new one is answered)."""

    def __init__(self, session_id: str):
        self.id = session_id
        self.pc = None
        self.old = None
        self.restarts = 0


class Robot:
    def __init__(self, args):
        self.args = args
        self.sessions = {}
        self.ws = None

    # ------------------------------------------------------------ output --
    def status(self, status: str, **fields) -> None:
        if self.args.control:
            print(json.dumps({"status": status, **fields}), flush=True)
        log.info("%s %s", status, fields or "")

    async def send(self, msg: dict) -> None:
        if self.ws is not None:
            await self.ws.send(json.dumps(msg))

    # ------------------------------------------------------------ socket --
    def auth_headers(self) -> dict:
        if self.args.token:
            return {"Authorization": f"Bearer {self.args.token}"}
        ts = int(time.time())
        msg = f"{self.args.device_id}:{ts}".encode()
        sig = hmac.new(self.args.secret.encode(), msg, hashlib.sha256).hexdigest()
        return {"X-Device-Id": self.args.device_id, "X-Timestamp": str(ts), "X-Signature": sig}

    async def run(self) -> None:
        """Stays connected: reconnects with jittered exponential backoff,
        except after 4001 (another connection of this device replaced us:
        reconnecting would only replace it back) or 4003 (device deleted)."""
        url = ws_base(self.args.relay) + "/ws/device"
        backoff = 0.5
        while True:
            code = None
            try:
                async with websockets.connect(url, additional_headers=self.auth_headers()) as ws:
                    self.ws = ws
                    backoff = 0.5
                    self.status("ready", device_id=self.args.device_id)
                    await self.on_connected()
                    async for text in ws:
                        await self.handle(text)
                code = ws.close_code
                self.status("disconnected", code=code)
            except websockets.ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
                self.status("disconnected", code=code)
            except (OSError, websockets.WebSocketException) as e:
                self.status("disconnected", error=str(e))
            finally:
                self.ws = None
                await self.close_all("robot_disconnected")
            if self.args.once or code in (4001, 4003):
                return
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 30)

    async def on_connected(self) -> None:
        if self.args.events:
            await self.send({"type": "event", "event": "status_update",
                             "data": {"camera": "ready", "video": "pattern"}})

    async def handle(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            return
        ty = msg.get("type")
        sid = msg.get("session_id")
        try:
            if ty == "webrtc_request" and sid:
                await self.offer(sid, msg.get("turn_credentials") or {}, bool(msg.get("ice_restart")))
            elif ty == "webrtc_answer" and sid in self.sessions:
                await self.answer(self.sessions[sid], msg.get("sdp", ""))
            elif ty == "webrtc_ice" and sid in self.sessions:
                await self.remote_candidate(self.sessions[sid], msg.get("candidate"))
            elif ty == "webrtc_close" and sid in self.sessions:
                await self.close(sid, msg.get("reason") or "closed_by_app", tell=False)
            elif ty == "command":
                await self.send({"type": "command_result", "reply_to": msg.get("reply_to"),
                                 "id": msg.get("id"), "ok": False,
                                 "data": {"error": "the video robot only streams video"}})
            elif ty == "http_request":
                await self.send({"type": "http_response", "request_id": msg.get("request_id"),
                                 "status": 404, "body": {"error": "the video robot has no REST API"}})
            elif ty == "error":
                self.status("relay_error", code=msg.get("code"), message=msg.get("message"))
        except Exception as e:  # one bad frame never ends the robot
            log.exception("handling %s", ty)
            self.status("session_error", session_id=sid, error=f"{type(e).__name__}: {e}")

    # ------------------------------------------------------------ WebRTC --
    async def offer(self, sid: str, creds: dict, restart: bool) -> None:
        """A new offer with a video track, from a new peer connection made
        with these credentials (a first request or an ICE restart)."""
        session = self.sessions.get(sid)
        if session is None:
            session = self.sessions[sid] = Session(sid)
        elif restart:
            session.restarts += 1
            if session.old is not None:
                await session.old.close()
            session.old = session.pc
        pc = RTCPeerConnection(ice_config(creds, self.args.ice_policy))
        session.pc = pc
        pc.addTrack(PatternTrack(self.args.width, self.args.height, self.args.fps, label=self.args.label))

        @pc.on("connectionstatechange")
        async def on_state():
            if session.pc is not pc:
                return
            state = pc.connectionState
            if state == "connected":
                await self.retire_old(session)
                self.status("connected", session_id=sid, restarts=session.restarts)
                if self.args.events:
                    await self.send({"type": "event", "event": "status_update",
                                     "data": {"video": "streaming", "session_id": sid}})
            elif state in ("failed", "closed"):
                self.status(state, session_id=sid)

        await pc.setLocalDescription(await pc.createOffer())
        await self.send({"type": "webrtc_offer", "session_id": sid,
                         "sdp": pc.localDescription.sdp, "sdp_type": "offer"})
        self.status("offer", session_id=sid, restart=restart)

    async def answer(self, session: Session, sdp: str) -> None:
        await session.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        self.status("answered", session_id=session.id)

    async def retire_old(self, session: Session) -> None:
        old, session.old = session.old, None
        if old is not None:
            await old.close()

    async def remote_candidate(self, session: Session, cand) -> None:
        """A trickled browser candidate (`RTCIceCandidateInit`); an empty
        one means end of candidates."""
        if not isinstance(cand, dict) or session.pc.remoteDescription is None:
            return
        line = cand.get("candidate") or ""
        if not line:
            return
        c = candidate_from_sdp(line.split(":", 1)[1] if line.startswith("candidate:") else line)
        c.sdpMid = cand.get("sdpMid")
        c.sdpMLineIndex = cand.get("sdpMLineIndex")
        await session.pc.addIceCandidate(c)

    async def close(self, sid: str, reason: str, tell: bool) -> None:
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        if tell:
            await self.send({"type": "webrtc_close", "session_id": sid, "reason": reason})
        for pc in (session.pc, session.old):
            if pc is not None:
                await pc.close()
        self.status("closed", session_id=sid, reason=reason)

    async def close_all(self, reason: str) -> None:
        for sid in list(self.sessions):
            await self.close(sid, reason, tell=False)

    async def break_transports(self) -> None:
        """Drops every session's media path silently: the ICE transports
        stop answering, nothing is signaled (the app sees its connection
        fail and must restart ICE)."""
        for session in self.sessions.values():
            for pc in (session.pc, session.old):
                if pc is None:
                    continue
                for t in pc.getTransceivers():
                    ice = t.sender.transport.transport
                    await ice.stop()
        self.status("broken")

    # ----------------------------------------------------------- control --
    async def control(self) -> None:
        """JSON lines on stdin (only with --control)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            try:
                cmd = json.loads(line)
            except ValueError:
                continue
            do = cmd.get("do")
            if do == "event":
                await self.send({"type": "event", "event": cmd.get("event"), "data": cmd.get("data")})
                self.status("sent", event=cmd.get("event"))
            elif do == "break":
                await self.break_transports()
            elif do == "quit":
                break
        await self.close_all("quit")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--relay", default="http://127.0.0.1:8000", help="the relay's base URL")
    p.add_argument("--device-id", required=True)
    p.add_argument("--secret", default=os.environ.get("WIMZ_DEVICE_SECRET"),
                   help="device secret (or WIMZ_DEVICE_SECRET); signs the connection")
    p.add_argument("--token", default=os.environ.get("WIMZ_DEVICE_TOKEN"),
                   help="a device token instead of the secret (or WIMZ_DEVICE_TOKEN)")
    p.add_argument("--user", help="register --device-id as this user's first (with --password)")
    p.add_argument("--password", default=os.environ.get("WIMZ_PASSWORD"),
                   help="--user's password (or WIMZ_PASSWORD)")
    p.add_argument("--name", default="Camera robot", help="the device's name when --user registers it")
    p.add_argument("--ice-policy", choices=["all", "relay"], default="all",
                   help="'relay' offers TURN candidates only")
    p.add_argument("--host-ip", action="append", default=[],
                   help="offer host candidates on this address only (repeatable; e.g. 127.0.0.1 "
                        "for a browser on the same machine: aiortc skips loopback by default)")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--label", default="WIM-Z", help="text drawn on the picture (W I M Z F - digits)")
    p.add_argument("--events", action="store_true", help="send status_update events")
    p.add_argument("--control", action="store_true", help="JSON status on stdout, commands on stdin")
    p.add_argument("--once", action="store_true", help="exit when the socket closes")
    args = p.parse_args(argv)
    if args.user and not args.password:
        p.error("--user needs --password (or WIMZ_PASSWORD)")
    if not args.secret and not args.token and not args.user:
        p.error("--secret, --token or --user is required")
    return args


def http_json(url: str, body: dict, token: str = None) -> tuple:
    """POSTs JSON; `(status, parsed body)` (also for an HTTP error)."""
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def provision(args) -> str:
    """Logs in as --user and registers --device-id for that user; returns
    the device secret (the relay shows it only at creation, so a device
    that already exists needs --secret instead)."""
    base = args.relay.rstrip("/").replace("ws://", "http://").replace("wss://", "https://")
    status, body = http_json(f"{base}/api/auth/login", {"username": args.user, "password": args.password})
    if status != 200:
        sys.exit(f"video_robot: login as {args.user} failed: HTTP {status} {body}")
    token = body["access_token"]
    status, body = http_json(f"{base}/api/devices", {"device_id": args.device_id, "name": args.name}, token)
    if status != 201:
        sys.exit(f"video_robot: creating {args.device_id} failed: HTTP {status} {body} "
                 "(an existing device needs its --secret)")
    return body["device_secret"]


def only_host_addresses(addresses: list) -> None:
    """Makes aioice gather host candidates on `addresses` only."""
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(addresses)


async def main_async(args) -> None:
    if args.user and not args.secret and not args.token:
        args.secret = await asyncio.to_thread(provision, args)
    if args.host_ip:
        only_host_addresses(args.host_ip)
    robot = Robot(args)
    runner = asyncio.create_task(robot.run())
    if args.control:
        ctl = asyncio.create_task(robot.control())
        done, _ = await asyncio.wait({runner, ctl}, return_when=asyncio.FIRST_COMPLETED)
        for t in (runner, ctl):
            t.cancel()
        await robot.close_all("quit")
    else:
        await runner


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO if not args.control else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
