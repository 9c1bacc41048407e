"""Healthy background traffic of the busy sample: TCP request/response connections and DNS queries.

``server`` answers TCP (echoes each request) and DNS over UDP (an A record for any name);
``client`` opens CONNS TCP connections one after another, each with ROUNDS request/response
exchanges of SIZE bytes, and sends QUERIES DNS queries. Everything is bounded: counts, socket
timeouts and a --duration after which both sides stop by themselves.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import socketserver
import struct
import sys
import threading
import time


def dns_query(txid: int, name: str) -> bytes:
    """A DNS query (RFC 1035) for NAME, type A, class IN, recursion desired."""
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)


def dns_answer(query: bytes, txid_address: int) -> bytes | None:
    """The response to a one-question A query: the question echoed and one A record."""
    if len(query) < 17:
        return None
    txid = struct.unpack("!H", query[:2])[0]
    question = query[12:]
    address = struct.pack("!BBH", 10, 99, txid_address & 0xFFFF)
    header = struct.pack("!HHHHHH", txid, 0x8180, 1, 1, 0, 0)
    record = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + address
    return header + question + record


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(10)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class EchoServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(args: argparse.Namespace) -> int:
    host, port = args.tcp.rsplit(":", 1)
    tcp = EchoServer((host, int(port)), EchoHandler)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    udp = None
    if args.udp:
        uhost, uport = args.udp.rsplit(":", 1)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((uhost, int(uport)))
        udp.settimeout(0.5)
    deadline = time.monotonic() + args.duration
    answered = 0
    while time.monotonic() < deadline:
        if udp is None:
            time.sleep(0.5)
            continue
        try:
            query, peer = udp.recvfrom(2048)
        except TimeoutError:
            continue
        answer = dns_answer(query, answered)
        if answer:
            udp.sendto(answer, peer)
            answered += 1
    tcp.shutdown()
    return 0


def client(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.duration
    payload = bytes(range(256)) * (args.size // 256 + 1)
    payload = payload[: args.size]
    exchanges = queries = 0
    udp = None
    if args.udp:
        uhost, uport = args.udp.rsplit(":", 1)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(1)
        udp.connect((uhost, int(uport)))
    host, port = args.tcp.rsplit(":", 1)
    per_conn_queries = args.queries // max(args.conns, 1) + 1
    for conn in range(args.conns):
        if time.monotonic() > deadline:
            break
        with socket.create_connection((host, int(port)), timeout=2) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(args.rounds):
                s.sendall(payload)
                got = 0
                while got < len(payload):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += len(chunk)
                exchanges += 1
        for q in range(per_conn_queries):
            if udp is None or queries >= args.queries:
                break
            udp.send(dns_query((conn * 131 + q) & 0xFFFF, f"svc-{conn % 40}.{args.domain}"))
            with contextlib.suppress(TimeoutError):  # an unanswered query is just counted
                udp.recv(2048)
            queries += 1
        if args.pause:
            time.sleep(args.pause)
    print(f"loadgen client: {exchanges} exchanges, {queries} queries", file=sys.stderr)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--tcp", required=True, help="ADDR:PORT")
    s.add_argument("--udp", help="ADDR:PORT of the DNS responder")
    s.add_argument("--duration", type=float, default=60)
    c = sub.add_parser("client")
    c.add_argument("--tcp", required=True, help="HOST:PORT")
    c.add_argument("--udp", help="HOST:PORT of the DNS responder")
    c.add_argument("--conns", type=int, default=100)
    c.add_argument("--rounds", type=int, default=50)
    c.add_argument("--size", type=int, default=200)
    c.add_argument("--queries", type=int, default=0)
    c.add_argument("--domain", default="internal.example")
    c.add_argument("--pause", type=float, default=0.0, help="seconds between connections")
    c.add_argument("--duration", type=float, default=60)
    args = ap.parse_args()
    return serve(args) if args.mode == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())
