"""Send TCP and UDP packets to an address; run inside the peer's network namespace.

Usage: send_traffic.py ADDRESS TCP_COUNT UDP_COUNT [PORT]
Each TCP packet is a SYN to a closed port (answered by a RST, so no retransmissions); each UDP
packet is one datagram. Prints {"tcp": n, "udp": n} as JSON: the packets sent.
"""

import json
import socket
import sys


def send(address: str, tcp_count: int, udp_count: int, port: int) -> dict:
    for _attempt in range(tcp_count):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            try:
                sock.connect((address, port))
            except ConnectionRefusedError:
                pass
            else:
                raise SystemExit(f"{address}:{port} accepted a connection; pick a closed port")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _datagram in range(udp_count):
            sock.sendto(b"whistler", (address, port))
    return {"tcp": tcp_count, "udp": udp_count}


if __name__ == "__main__":
    argv = sys.argv[1:]
    if len(argv) not in (3, 4):
        raise SystemExit(__doc__)
    print(json.dumps(send(argv[0], int(argv[1]), int(argv[2]), int(argv[3]) if len(argv) == 4 else 9)))
