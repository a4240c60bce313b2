"""Shared by the robot and app test peers: relay-only RTCConfiguration from
the relay's credentials, the data-channel exchange check, and reporting.
Both peers print one JSON line as their last output:
{"ok": true, ...} on success, {"ok": false, "error": ...} otherwise."""

import json
import sys

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

# The whole run must finish well within this many seconds.
DEADLINE_S = 40


def relay_only_config(creds: dict) -> RTCConfiguration:
    """TURN servers from the relay's credentials object (PROTOCOL §4),
    iceTransportPolicy=relay: every candidate is a TURN relayed address, so
    media can only flow through the TURN server with these credentials."""
    servers = []
    for s in creds.get("ice_servers", []):
        urls = s["urls"] if isinstance(s["urls"], list) else [s["urls"]]
        turn = [u for u in urls if u.startswith("turn:")]
        if turn and "username" in s:
            servers.append(
                RTCIceServer(urls=turn, username=s["username"], credential=s["credential"])
            )
    if not servers:
        raise RuntimeError(f"no TURN server in credentials: {creds}")
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=RTCIceTransportPolicy.RELAY)


def nominated_types(pc) -> list:
    """[local, remote] candidate types of the pair(s) ICE settled on: the
    nominated pairs (controlling side) or, on the controlled side, the
    succeeded ones. With iceTransportPolicy=relay both must be 'relay'."""
    sctp = pc.sctp
    if sctp is None:
        return []
    conn = sctp.transport.transport._connection  # aioice.Connection
    pairs = list(conn._nominated.values())
    if not pairs:
        pairs = [p for p in conn._check_list if p.state.name == "SUCCEEDED"]
    return [[p.local_candidate.type, p.remote_candidate.type] for p in pairs]


def report(result: dict) -> None:
    print(json.dumps(result), flush=True)


def fail(error: str) -> None:
    report({"ok": False, "error": error})
    sys.exit(1)
