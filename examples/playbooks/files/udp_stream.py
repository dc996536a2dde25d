"""Send UDP datagrams to an address at a steady rate for a while; run inside the peer's network namespace.

Usage: udp_stream.py ADDRESS RATE SECONDS [PORT]
Sends RATE datagrams a second for SECONDS seconds to ADDRESS:PORT (default 9) and prints {"udp": n},
the datagrams sent. Health checks of a rollout need traffic while they watch; this is that traffic.
"""

import json
import socket
import sys
import time


def stream(address: str, rate: float, seconds: float, port: int) -> int:
    sent = 0
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while time.monotonic() - start < seconds:
            sock.sendto(b"whistler", (address, port))
            sent += 1
            delay = start + sent / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    return sent


if __name__ == "__main__":
    argv = sys.argv[1:]
    if len(argv) not in (3, 4):
        raise SystemExit(__doc__)
    print(json.dumps({"udp": stream(argv[0], float(argv[1]), float(argv[2]), int(argv[3]) if len(argv) == 4 else 9)}))
