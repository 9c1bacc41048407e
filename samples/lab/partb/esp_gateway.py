"""User-space IPsec gateway of the sample lab: tunnel-mode ESP between a TUN device and IP protocol 50.

The lab kernel has no ESP/xfrm support, so the data path of an IPsec gateway is emulated here, in the
way strongSwan's kernel-libipsec backend does it: packets routed into the TUN device (``ipsec0``) are
wrapped in RFC 4303 ESP and sent to the peer gateway as raw IP protocol 50; ESP packets from the peer
are checked and their inner packet written back into the TUN device. Which packets reach the TUN is
decided by the routing policy the lab script installs (``ip rule from <local_ts> to <remote_ts> lookup
220``), standing in for the kernel's IPsec policy (SPD) lookup of the configured traffic selectors.

Transform: NULL encryption (RFC 2410, so the inner packet is readable in the capture) with
HMAC-SHA-256-128 integrity (RFC 4868), i.e. strongSwan's ``esp=null-sha256``. No IKE: SPIs and the
integrity key are given on the command line. The program stops by itself after ``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import hmac
import os
import select
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPPROTO_ESP = 50
NEXT_HEADER_IPV4 = 4
ICV_LEN = 16  # HMAC-SHA-256 truncated to 128 bits (RFC 4868)


def open_tun(name: str) -> int:
    """Attach to the (already created) TUN device NAME; packets are bare IP (no packet info)."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def esp_wrap(spi: int, seq: int, inner: bytes, key: bytes) -> bytes:
    """ESP payload (RFC 4303 section 2) of one inner IPv4 packet: NULL cipher, so no IV."""
    pad_len = (-(len(inner) + 2)) % 4  # payload + padding + 2 trailer bytes: a multiple of 4
    padding = bytes(range(1, pad_len + 1))  # the default monotonic padding of section 2.4
    body = struct.pack("!II", spi, seq) + inner + padding + bytes([pad_len, NEXT_HEADER_IPV4])
    return body + hmac.new(key, body, hashlib.sha256).digest()[:ICV_LEN]


def esp_unwrap(esp: bytes, spi: int, key: bytes) -> bytes | None:
    """The inner packet of an ESP payload for SA SPI, or None if it is not ours or fails the ICV."""
    if len(esp) < 8 + 2 + ICV_LEN or struct.unpack("!I", esp[:4])[0] != spi:
        return None
    body, icv = esp[:-ICV_LEN], esp[-ICV_LEN:]
    if not hmac.compare_digest(icv, hmac.new(key, body, hashlib.sha256).digest()[:ICV_LEN]):
        return None
    pad_len, next_header = body[-2], body[-1]
    if next_header != NEXT_HEADER_IPV4:
        return None
    return body[8 : len(body) - 2 - pad_len]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tun", default="ipsec0")
    ap.add_argument("--local", required=True, help="own public address (outer source)")
    ap.add_argument("--peer", required=True, help="peer gateway's public address")
    ap.add_argument("--spi-out", type=lambda v: int(v, 0), required=True)
    ap.add_argument("--spi-in", type=lambda v: int(v, 0), required=True)
    ap.add_argument("--key", required=True, help="integrity key, hex")
    ap.add_argument("--duration", type=float, default=60.0, help="stop after this many seconds")
    args = ap.parse_args()

    key = bytes.fromhex(args.key)
    tun = open_tun(args.tun)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_ESP)
    raw.bind((args.local, 0))
    deadline = time.monotonic() + args.duration
    seq = 0
    sent = received = rejected = 0
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([tun, raw.fileno()], [], [], min(left, 0.5))
        if tun in ready:
            inner = os.read(tun, 65535)
            if inner and inner[0] >> 4 == 4:
                seq += 1
                raw.sendto(esp_wrap(args.spi_out, seq, inner, key), (args.peer, 0))
                sent += 1
        if raw.fileno() in ready:
            packet, (source, _) = raw.recvfrom(65535)
            header_len = (packet[0] & 0x0F) * 4
            decapsulated = (
                esp_unwrap(packet[header_len:], args.spi_in, key) if source == args.peer else None
            )
            if decapsulated is None:
                rejected += 1
            else:
                os.write(tun, decapsulated)
                received += 1
    print(
        f"esp_gateway {args.tun}: sent {sent} received {received} rejected {rejected}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
