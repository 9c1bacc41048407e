"""Timing of the streaming flow builder on synthetic packet chunks made with numpy (no capture).

python bench/bench_flows.py --packets 1000000 --chunk-rows 32768

The traffic: TCP connections of 12 packets (handshake, data both ways with a few
retransmissions, FIN exchange), UDP request/response pairs and ICMP echo pairs, interleaved in
time, about 85k flows per million packets, like the anchor capture of
/work/shared/anchors/performance.md. Prints wall time of FlowBuilder.add over all chunks and of
finish(), and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netdiag.addressbook import AddressBook  # noqa: E402
from netdiag.capture.schema import empty_chunk  # noqa: E402
from netdiag.flows import FlowBuilder  # noqa: E402

TCP_PATTERN = [  # (direction, flags, payload)
    (0, 0x02, 0),
    (1, 0x12, 0),
    (0, 0x10, 0),
    (0, 0x18, 300),
    (1, 0x10, 0),
    (1, 0x18, 1400),
    (1, 0x18, 1400),
    (0, 0x10, 0),
    (1, 0x18, 800),
    (0, 0x11, 0),
    (1, 0x11, 0),
    (0, 0x10, 0),
]


def synthetic_packets(n_packets: int, seed: int = 1) -> dict[str, np.ndarray]:
    """One big chunk of about n_packets rows (addresses already as book codes 0..)."""
    rng = np.random.default_rng(seed)
    n_tcp = int(n_packets * 0.6) // len(TCP_PATTERN)
    n_udp = int(n_packets * 0.3) // 2
    n_icmp = (n_packets - n_tcp * len(TCP_PATTERN) - n_udp * 2) // 2
    n_hosts = 5000
    parts = []
    # TCP connections
    k = len(TCP_PATTERN)
    conn = np.repeat(np.arange(n_tcp), k)
    step = np.tile(np.arange(k), n_tcp)
    pat_dir = np.array([p[0] for p in TCP_PATTERN])[step]
    pat_flags = np.array([p[1] for p in TCP_PATTERN])[step]
    pat_len = np.array([p[2] for p in TCP_PATTERN])[step]
    client = rng.integers(0, n_hosts, n_tcp)[conn]
    server = (rng.integers(0, 200, n_tcp) + n_hosts)[conn]
    cport = rng.integers(1024, 65535, n_tcp)[conn]
    sport_srv = rng.choice([80, 443, 22, 8080], n_tcp)[conn]
    isn_c = rng.integers(0, 2**32, n_tcp)
    isn_s = rng.integers(0, 2**32, n_tcp)
    # sequence numbers: cumulative payload per direction inside each connection
    lens = pat_len.reshape(n_tcp, k)
    dirs = pat_dir.reshape(n_tcp, k)
    sent_c = np.cumsum(np.where(dirs == 0, lens, 0), axis=1) - np.where(dirs == 0, lens, 0)
    sent_s = np.cumsum(np.where(dirs == 1, lens, 0), axis=1) - np.where(dirs == 1, lens, 0)
    seq = np.where(dirs == 0, isn_c[:, None] + sent_c, isn_s[:, None] + sent_s).ravel() % 2**32
    retrans = rng.random(len(conn)) < 0.01
    t0 = rng.integers(0, 60_000_000_000, n_tcp)[conn]
    tcp = dict(
        ip_src=np.where(pat_dir == 0, client, server),
        ip_dst=np.where(pat_dir == 0, server, client),
        ip_proto=np.full(len(conn), 6),
        sport=np.where(pat_dir == 0, cport, sport_srv),
        dport=np.where(pat_dir == 0, sport_srv, cport),
        tcp_flags=pat_flags,
        tcp_seq=np.where(retrans & (pat_len > 0), seq, seq),
        tcp_len=pat_len,
        ts_ns=t0 + step * 2_000_000,
    )
    parts.append(tcp)
    # UDP and ICMP request/response pairs
    for proto, n in ((17, n_udp), (1, n_icmp)):
        # 6 request/response pairs per flow
        pair = np.repeat(np.arange(n), 2)
        d = np.tile([0, 1], n)
        n_flows = max(n // 6, 1)
        flow = rng.integers(0, n_flows, n)[pair]
        a = rng.integers(0, n_hosts, n_flows)[flow]
        b = (rng.integers(0, 200, n_flows) + n_hosts)[flow]
        pa = rng.integers(1024, 65535, n_flows)[flow]
        pb = np.full(2 * n, 53)
        parts.append(
            dict(
                ip_src=np.where(d == 0, a, b),
                ip_dst=np.where(d == 0, b, a),
                ip_proto=np.full(2 * n, proto),
                sport=np.where(d == 0, pa, pb) if proto == 17 else np.full(2 * n, -1),
                dport=np.where(d == 0, pb, pa) if proto == 17 else np.full(2 * n, -1),
                icmp_type=np.where(d == 0, 8, 0) if proto == 1 else np.full(2 * n, -1),
                icmp_code=np.zeros(2 * n) if proto == 1 else np.full(2 * n, -1),
                udp_len=np.full(2 * n, 60) if proto == 17 else np.full(2 * n, -1),
                ts_ns=rng.integers(0, 60_000_000_000, n)[pair] + d * 1_000_000,
            )
        )
    total = sum(len(p["ip_src"]) for p in parts)
    chunk = empty_chunk(total)
    at = 0
    for p in parts:
        m = len(p["ip_src"])
        for name, values in p.items():
            chunk[name][at : at + m] = values
        at += m
    chunk["ip_version"][:] = 4
    chunk["ip_hdr_len"][:] = 20
    chunk["ip_len"][:] = 40 + np.maximum(chunk["tcp_len"], 0)
    chunk["tcp_win"][chunk["ip_proto"] == 6] = 65535
    order = np.argsort(chunk["ts_ns"], kind="stable")
    for name in chunk:
        chunk[name] = chunk[name][order]
    chunk["frame"][:] = np.arange(1, total + 1)
    return chunk


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--chunk-rows", type=int, default=32768, help="rows per chunk (0: one chunk)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    big = synthetic_packets(args.packets)
    n = len(big["frame"])
    rows = args.chunk_rows or n
    book = AddressBook()
    book.intern_ip4(np.arange(int(big["ip_src"].max()) + 1, dtype=np.uint32) + 0x0A000000)
    for _ in range(args.repeat):
        chunks = [{k: v[i : i + rows].copy() for k, v in big.items()} for i in range(0, n, rows)]
        builder = FlowBuilder(book)
        t0, c0 = time.perf_counter(), time.process_time()
        for chunk in chunks:
            builder.add(chunk)
        t1, c1 = time.perf_counter(), time.process_time()
        flows = builder.finish()
        t2, c2 = time.perf_counter(), time.process_time()
        print(
            f"{n} packets, {len(chunks)} chunks of {rows} rows -> {len(flows)} flows: "
            f"add {t1 - t0:.3f} s wall / {c1 - c0:.3f} s CPU, "
            f"finish {t2 - t1:.3f} s wall / {c2 - c1:.3f} s CPU, total {t2 - t0:.3f} s wall"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB (includes the synthetic input)")
    print(flows.conn_state.value_counts().to_dict())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
