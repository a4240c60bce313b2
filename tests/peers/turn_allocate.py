"""One TURN Allocate with the given credentials, using aioice (the TURN
client the robots run). Prints one JSON line and exits 0 when the server
granted a relayed address, 1 when it refused (e.g. 401), 2 on bad usage.

usage: turn_allocate.py HOST PORT USERNAME CREDENTIAL
"""

import asyncio
import json
import sys

from aioice import turn


async def main(host: str, port: int, username: str, credential: str) -> int:
    try:
        transport, protocol = await asyncio.wait_for(
            turn.create_turn_endpoint(
                asyncio.DatagramProtocol,
                server_addr=(host, port),
                username=username,
                password=credential,
                lifetime=60,
                transport="udp",
            ),
            timeout=10,
        )
    except Exception as e:  # the refusal is the answer we report
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        return 1
    relayed = transport.get_extra_info("sockname")
    print(json.dumps({"ok": True, "relayed": list(relayed)}))
    transport.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])))
