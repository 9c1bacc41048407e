"""The synthetic traffic mix, its ground truth, and how a capture point observes it.

:func:`generate_traffic` builds, for a seed and a target packet count, the *logical* traffic of a
server LAN behind a gateway, as one packet plan sorted by time (see ``packets.PLAN_COLUMNS``):

* TCP connections from remote clients to the servers (about 5 % of the packet count): handshake
  with Linux SYN options, a request, a response of 0 - ~60 full-size segments acknowledged every
  second segment, some retransmitted segments, and a FIN close (Zeek ``SF``), an originator RST
  (``RSTO``) or a responder RST (``RSTR``); plus attempts without answer (``S0``, SYN retried after
  1 s and 3 s) and refused ones (``REJ``); about 3 % of connections over IPv6;
* DNS queries and replies to a resolver on the LAN (some over IPv6, some unanswered);
* ICMP echo from a monitoring host to the servers (IPv4 and IPv6);
* ARP requests and replies between LAN hosts and the gateway;
* traceroute runs (UDP probes with TTL 1 - 3 and the routers' ICMP time exceeded quoting them) and
  tcptraceroute SYNs (``S0``) quoted by ICMP time exceeded.

The per-connection ground truth (addresses, ports, expected Zeek ``conn_state``, packets,
retransmissions) is in :attr:`Traffic.conns`.

A :class:`CapturePoint` says where the traffic is observed: the link type(s), a clock offset, a
NAT rewrite of host addresses and a random loss; :func:`observe` applies it and returns the plan of
what that point captures. Two points over one :class:`Traffic` give two captures of the same
packets (used by multi-capture tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from netdiag.synth import packets as pk
from netdiag.synth.packets import HostTable, PayloadBlock

if TYPE_CHECKING:
    import pandas as pd

#: Zeek conn_state for each TCP connection outcome the mix produces, by outcome code
CONN_STATES = ("SF", "RSTO", "RSTR", "S0", "REJ")
SF, RSTO, RSTR, S0, REJ = range(5)
_STATE_P = np.array([0.88, 0.05, 0.03, 0.02, 0.02])

#: packet comments a pcapng capture carries (plan column ``comment`` indexes this list)
COMMENTS = ("synthetic: retransmitted segment", "synthetic: connection refused")
COMMENT_RETRANS, COMMENT_REFUSED = 0, 1

#: the capture's first timestamp (2024-03-01 12:00:00 UTC) and packets per second of the mix
BASE_TS_NS = 1_709_294_400 * 1_000_000_000
PACKETS_PER_SECOND = 16_000

SERVER_PORTS = np.array([8443, 9443, 7443, 4433], dtype=np.int64)  # no tshark dissector on them
CLIENT_PORT_LO, CLIENT_PORT_N = 49152, 7848  # 49152 - 56999: no TCP port dissector there either
DNS_PORT_LO, DNS_PORT_N = 50000, 4328  # 50000 - 54327: no UDP port dissector

MS = 1_000_000
US = 1_000


@dataclass
class Traffic:
    """Logical traffic: hosts, the time-sorted packet plan and the ground truth."""

    hosts: HostTable
    plan: dict[str, np.ndarray]
    conns: dict[str, np.ndarray]  # one row per TCP connection, see _tcp_connections
    block: PayloadBlock
    seed: int
    gateway: int  # host index of the gateway (router) whose MAC fronts remote hosts

    @property
    def packets(self) -> int:
        return len(self.plan["kind"])

    def summary(self) -> dict[str, int]:
        """Counts a flow table built from a capture of this traffic should reproduce."""
        out = {"packets": self.packets, "tcp_connections": len(self.conns["state"])}
        for code, name in enumerate(CONN_STATES):
            out[f"conn_state_{name}"] = int(np.count_nonzero(self.conns["state"] == code))
        out["tcp_retransmissions"] = int(self.conns["retrans"].sum())
        kinds = np.bincount(self.plan["kind"], minlength=pk.N_KINDS)
        for code, name in enumerate(pk.KIND_NAMES):
            out[f"kind_{name}"] = int(kinds[code])
        return out

    def conns_frame(self) -> pd.DataFrame:
        """Ground truth per TCP connection as a pandas DataFrame with address texts."""
        import pandas as pd

        c = self.conns
        v6 = c["v6"]
        return pd.DataFrame(
            {
                "conn": np.arange(len(v6)),
                "ip_version": np.where(v6, 6, 4),
                "orig_h": _addr_texts(self.hosts, c["client"], v6),
                "orig_p": c["sport"],
                "resp_h": _addr_texts(self.hosts, c["server"], v6),
                "resp_p": c["dport"],
                "conn_state": np.array(CONN_STATES)[c["state"]],
                "orig_pkts": c["orig_pkts"],
                "resp_pkts": c["resp_pkts"],
                "orig_payload": c["orig_payload"],
                "resp_payload": c["resp_payload"],
                "retrans": c["retrans"],
                "start_ns": c["start_ns"],
            }
        )


def _addr_texts(hosts: HostTable, idx: np.ndarray, v6: np.ndarray) -> list[str]:
    import ipaddress

    out = hosts.v4_text(idx)
    for i in np.flatnonzero(v6).tolist():
        out[i] = str(ipaddress.IPv6Address(bytes(hosts.v6[idx[i]])))
    return out


# --- hosts ----------------------------------------------------------------------------------------


@dataclass
class _Roles:
    gateway: int
    resolver: int
    prober: int
    servers: np.ndarray
    hops: np.ndarray  # routers answering traceroute TTL 1, 2, 3
    target: int
    clients: np.ndarray
    client_hops: np.ndarray  # routers between a client and the LAN (TTL lost)


def _v4(a: int, b: int, c: int, d: int) -> int:
    return (a << 24) | (b << 16) | (c << 8) | d


def _make_hosts(rng: np.random.Generator, n_clients: int) -> tuple[HostTable, _Roles]:
    v4: list[int] = [_v4(10, 0, 0, 1), _v4(10, 0, 0, 53), _v4(10, 0, 0, 5)]
    names = ["gateway", "resolver", "prober"]
    n_servers = 8
    v4 += [_v4(10, 0, 1, 10 + i) for i in range(n_servers)]
    names += [f"server{i}" for i in range(n_servers)]
    v4 += [_v4(192, 0, 2, 1), _v4(192, 0, 2, 2), _v4(198, 51, 100, 7)]
    names += ["hop2", "hop3", "target"]
    first_client = len(v4)
    base = _v4(172, 16, 0, 0)
    v4 += [base + 1 + i + (i // 254) * 2 for i in range(n_clients)]  # skip .0 and .255
    names += [f"client{i}" for i in range(n_clients)]
    n = len(v4)
    v6 = np.zeros((n, 16), dtype=np.uint8)
    v6[:first_client, 0:2] = (0xFD, 0x00)  # fd00::<v4 low 16 bits> for LAN and infrastructure hosts
    v6[first_client:, 0:4] = (0x20, 0x01, 0x0D, 0xB8)  # 2001:db8::<index> for clients
    v4a = np.array(v4, dtype=np.uint32)
    v6[:first_client, 12:16] = v4a[:first_client, None].view(np.uint8)[:, ::-1].reshape(-1, 4)
    idx = np.arange(n, dtype=np.int64)
    v6[first_client:, 12] = (idx[first_client:] >> 24) & 0xFF
    v6[first_client:, 13] = (idx[first_client:] >> 16) & 0xFF
    v6[first_client:, 14] = (idx[first_client:] >> 8) & 0xFF
    v6[first_client:, 15] = idx[first_client:] & 0xFF
    mac = np.zeros((n, 6), dtype=np.uint8)
    mac[:, 0] = 0x02  # locally administered
    mac[:, 1:6] = rng.integers(0, 256, size=(n, 5), dtype=np.uint8)
    mac[:, 5] = idx & 0xFF  # keep them distinct
    mac[:, 4] = (idx >> 8) & 0xFF
    hosts = HostTable(v4=v4a, v6=v6, mac=mac, name=names)
    roles = _Roles(
        gateway=0,
        resolver=1,
        prober=2,
        servers=np.arange(3, 3 + n_servers),
        hops=np.array([0, 3 + n_servers, 4 + n_servers]),
        target=5 + n_servers,
        clients=np.arange(first_client, n),
        client_hops=rng.integers(3, 13, size=n),
    )
    return hosts, roles


# --- TCP connections ------------------------------------------------------------------------------

# roles of a packet inside a connection's script
(
    R_SYN,
    R_SYNACK,
    R_ACK3,
    R_CDATA,
    R_SDATA,
    R_CACK,
    R_CFIN,
    R_SFIN,
    R_CLAST,
    R_CRST,
    R_SRST,
    R_SYNRTX,
    R_REJ,
) = range(13)


def _seg_excl_cumsum(x: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Exclusive running sum of ``x`` restarting at each connection (``first`` = index of the
    connection's first packet, per packet)."""
    excl = np.cumsum(x) - x
    return excl - excl[first]


def _tcp_connections(
    rng: np.random.Generator,
    n_conns: int,
    roles: _Roles,
    t_start: int,
    duration: int,
    epoch: int,
    small: bool,
    block: PayloadBlock,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The connections' packets, their ground truth, and the tcptraceroute SYNs (to quote)."""
    C = n_conns
    state = rng.choice(len(CONN_STATES), size=C, p=_STATE_P)
    v6 = rng.random(C) < 0.03
    ci = np.arange(C)
    n_cl = len(roles.clients)
    client = roles.clients[ci % n_cl]
    server = roles.servers[rng.integers(0, len(roles.servers), size=C)]
    sport = CLIENT_PORT_LO + ((ci // n_cl) * 389 + epoch * 7919 + (ci % n_cl) * 13) % CLIENT_PORT_N
    dport = SERVER_PORTS[rng.integers(0, len(SERVER_PORTS), size=C)]
    # a few unanswered attempts are tcptraceroute SYNs from the prober with a low TTL
    tracer = (state == S0) & (rng.random(C) < 0.25)
    client = np.where(tracer, roles.prober, client)
    server = np.where(tracer, roles.target, server)
    v6 &= ~tracer
    start = t_start + np.sort(rng.integers(0, max(duration - 5_000 * MS, 1), size=C))
    rtt = np.clip(rng.lognormal(np.log(20 * MS), 0.8, size=C), 200 * US, 250 * MS).astype(np.int64)
    sdelay = rng.integers(20 * US, 80 * US, size=C)
    isn_c = rng.integers(0, 2**32, size=C, dtype=np.int64)
    isn_s = rng.integers(0, 2**32, size=C, dtype=np.int64)
    tsbase_c = rng.integers(0, 2**32, size=C, dtype=np.int64)
    tsbase_s = rng.integers(0, 2**32, size=C, dtype=np.int64)
    n_c = rng.integers(1, 5, size=C)  # request segments
    n_s = np.minimum(rng.geometric(1 / 6.6, size=C) - 1, 60)  # response segments
    established = state <= RSTR
    n_c = np.where(established, n_c, 0)
    n_s = np.where(established, n_s, 0)
    block_len = n_s + (n_s + 1) // 2  # data segments and one client ACK per two
    close_len = np.select([state == SF, state <= RSTR], [3, 1], 0)
    syn_retries = np.where((state == S0) & ~tracer, rng.integers(0, 3, size=C), 0)
    npk = np.where(
        established, 3 + n_c + block_len + close_len, np.where(state == REJ, 2, 1 + syn_retries)
    )
    P = int(npk.sum())
    conn = np.repeat(ci, npk)
    first = np.repeat(np.cumsum(npk) - npk, npk)
    pos = np.arange(P) - first
    st = state[conn]
    c = n_c[conn]
    s = n_s[conn]
    est = st <= RSTR

    # --- role of each packet
    q = pos - 3 - c  # index inside the data block
    g, r = q // 3, q % 3
    is_cack = (r == 2) | ((s % 2 == 1) & (g == s // 2) & (r == 1))
    k = q - block_len[conn]  # index inside the close
    role = np.select(
        [
            pos == 0,
            ~est & (st == REJ),
            ~est,
            pos == 1,
            pos == 2,
            pos < 3 + c,
            (q < block_len[conn]) & is_cack,
            q < block_len[conn],
            (st == SF) & (k == 0),
            (st == SF) & (k == 1),
            st == SF,
            st == RSTO,
        ],
        [
            R_SYN,
            R_REJ,
            R_SYNRTX,
            R_SYNACK,
            R_ACK3,
            R_CDATA,
            R_CACK,
            R_SDATA,
            R_CFIN,
            R_SFIN,
            R_CLAST,
            R_CRST,
        ],
        R_SRST,
    )
    from_server = np.isin(role, [R_SYNACK, R_SDATA, R_SFIN, R_SRST, R_REJ])
    seg = np.where(role == R_SDATA, 2 * g + r, 0)  # server segment number

    # --- payload lengths
    max_seg = 1448
    if small:
        plen = np.where(role == R_CDATA, rng.integers(1, 48, size=P), 0)
        plen = np.where(role == R_SDATA, rng.integers(1, 64, size=P), plen)
    else:
        last_seg = (role == R_SDATA) & (seg == s - 1)
        plen = np.where(role == R_CDATA, rng.integers(60, 600, size=P), 0)
        plen = np.where(role == R_SDATA, max_seg, plen)
        plen = np.where(last_seg, rng.integers(1, max_seg + 1, size=P), plen)
    plen = plen.astype(np.int64)
    syn_fin = np.isin(role, [R_SYN, R_SYNACK, R_CFIN, R_SFIN]).astype(np.int64)
    consumed = plen + syn_fin

    # --- timestamps
    cg = 15 * US
    sg = 12 * US
    t0 = start[conn]
    rt = rtt[conn]
    sd = sdelay[conn]
    think = rng.integers(100 * US, 3 * MS, size=C)
    t_data = start + sdelay + rtt + (n_c + 1) * cg + think
    t_seg = t_data[conn] + seg * sg + (seg // 10) * rt  # a new window each round trip
    last_seg_t = t_data + np.maximum(n_s - 1, 0) * sg + (np.maximum(n_s - 1, 0) // 10) * rtt
    # some response segments are sent again after the response, one round trip (+ 200 us) apart,
    # so that they look like retransmissions (not reordering) to tshark; the close follows them
    is_rtx = (role == R_SDATA) & (rng.random(P) < 0.03)
    rtx = np.flatnonzero(is_rtx)
    n_rtx = np.bincount(conn[rtx], minlength=C)
    rtx_rank = np.arange(len(rtx)) - np.searchsorted(conn[rtx], conn[rtx])
    rtx_gap = rtt + 200 * US
    t_close = (
        last_seg_t
        + np.where(n_s > 0, rtt, 0)
        + n_rtx * rtx_gap
        + rng.integers(50 * US, 2 * MS, size=C)
    )[conn]
    acked = np.where(r == 2, 2 * g + 1, 2 * g)  # the server segment a client ACK follows
    ts = np.select(
        [
            role == R_SYN,
            role == R_SYNACK,
            role == R_ACK3,
            role == R_CDATA,
            role == R_SDATA,
            role == R_CACK,
            role == R_SYNRTX,
            role == R_REJ,
            (role == R_CFIN) | (role == R_CRST) | (role == R_SRST),
            role == R_SFIN,
            role == R_CLAST,
        ],
        [
            t0,
            t0 + sd,
            t0 + sd + rt,
            t0 + sd + rt + (pos - 2) * cg,
            t_seg,
            t_data[conn] + acked * sg + (acked // 10) * rt + rt,
            t0 + np.where(pos == 1, 1000, 3000) * MS,
            t0 + sd,
            t_close,
            t_close + sd,
            t_close + sd + rt,
        ],
    )

    # --- sequence and acknowledgement numbers
    d0 = np.where(from_server, 0, consumed)
    d1 = np.where(from_server, consumed, 0)
    e0 = _seg_excl_cumsum(d0, first)
    e1 = _seg_excl_cumsum(d1, first)
    ic, is_ = isn_c[conn], isn_s[conn]
    seq = np.where(from_server, is_ + e1, ic + e0)
    ack = np.where(from_server, ic + e0, is_ + e1)
    seq = np.where(role == R_SYNRTX, ic, seq)
    seq = np.where(role == R_REJ, 0, seq)
    ack = np.where(role == R_REJ, ic + 1, ack)
    ack = np.where(np.isin(role, [R_SYN, R_SYNRTX]), 0, ack)

    flags = np.select(
        [
            np.isin(role, [R_SYN, R_SYNRTX]),
            role == R_SYNACK,
            np.isin(role, [R_CFIN, R_SFIN]),
            np.isin(role, [R_CRST, R_SRST, R_REJ]),
            (role == R_CDATA) & (pos == 2 + c),
            (role == R_SDATA) & (seg == s - 1),
        ],
        [0x002, 0x012, 0x011, 0x014, 0x018, 0x018],
        0x010,
    )
    kind = np.select(
        [np.isin(role, [R_SYN, R_SYNRTX, R_SYNACK]), np.isin(role, [R_CRST, R_SRST, R_REJ])],
        [pk.TCP4_SYN, pk.TCP4_PLAIN],
        pk.TCP4_TS,
    ) + np.where(v6[conn], 3, 0)

    p = pk.empty_plan(P)
    p["ts_ns"][:] = ts
    p["kind"][:] = kind
    p["conn"][:] = conn
    cl, sv = client[conn], server[conn]
    p["src"][:] = np.where(from_server, sv, cl)
    p["dst"][:] = np.where(from_server, cl, sv)
    remote_client = ~tracer[conn]
    gw = roles.gateway
    p["eth_src"][:] = np.where(from_server, sv, np.where(remote_client, gw, cl))
    p["eth_dst"][:] = np.where(from_server, np.where(remote_client, gw, cl), gw)
    ttl = np.where(from_server, 64, 64 - roles.client_hops[cl])
    p["ttl"][:] = np.where(tracer[conn], rng.integers(1, 3, size=P), ttl)
    p["df"][:] = True
    p["ip_id"][:] = rng.integers(0, 65536, size=P)
    p["sport"][:] = np.where(from_server, dport[conn], sport[conn])
    p["dport"][:] = np.where(from_server, sport[conn], dport[conn])
    p["seq"][:] = seq & 0xFFFFFFFF
    p["ack"][:] = ack & 0xFFFFFFFF
    p["flags"][:] = flags
    win = np.select(
        [role == R_SYN, role == R_SYNRTX, role == R_SYNACK],
        [64240, 64240, 65160],
        np.where(from_server, 509, 502),
    )
    p["win"][:] = np.where(np.isin(role, [R_CRST, R_SRST, R_REJ]), 0, win)
    ts_ms = ts // MS
    tb_own = np.where(from_server, tsbase_s[conn], tsbase_c[conn])
    tb_peer = np.where(from_server, tsbase_c[conn], tsbase_s[conn])
    p["tsval"][:] = (tb_own + ts_ms) & 0xFFFFFFFF
    tsecr = (tb_peer + (ts - rt // 2) // MS) & 0xFFFFFFFF
    p["tsecr"][:] = np.where(np.isin(role, [R_SYN, R_SYNRTX]), 0, tsecr)
    p["mss"][:] = np.where(v6[conn], 1440, 1460)
    p["wscale"][:] = 7
    p["plen"][:] = plen
    p["poff"][:] = block.offsets(rng, P)

    r = pk.take_plan(p, rtx)
    r["ts_ns"] = last_seg_t[conn[rtx]] + (rtx_rank + 1) * rtx_gap[conn[rtx]]
    r["ip_id"] = rng.integers(0, 65536, size=len(rtx)).astype(np.uint16)
    r["comment"] = np.full(len(rtx), COMMENT_RETRANS, dtype=np.int16)
    p["comment"][:] = np.where(role == R_REJ, COMMENT_REFUSED, -1)
    plan = pk.concat_plans([p, r])

    # --- ground truth
    fs = from_server.astype(np.int64)
    rtx_per_conn = np.bincount(conn[rtx], minlength=C) + syn_retries
    rtx_server = np.bincount(conn[rtx], minlength=C)
    conns = {
        "client": client,
        "server": server,
        "sport": sport.astype(np.int64),
        "dport": dport,
        "v6": v6,
        "state": state,
        "tracer": tracer,
        "start_ns": start,
        "rtt_ns": rtt,
        "isn_c": isn_c,
        "isn_s": isn_s,
        "orig_pkts": np.bincount(conn, weights=1 - fs, minlength=C).astype(np.int64),
        "resp_pkts": np.bincount(conn, weights=fs, minlength=C).astype(np.int64) + rtx_server,
        "orig_payload": np.bincount(conn, weights=plen * (1 - fs), minlength=C).astype(np.int64),
        "resp_payload": (
            np.bincount(conn, weights=plen * fs, minlength=C)
            + np.bincount(conn[rtx], weights=plen[rtx], minlength=C)
        ).astype(np.int64),
        "retrans": rtx_per_conn,  # SYN retries of S0 attempts + retransmitted segments
        "retrans_data": rtx_server,
    }
    # the quoted headers of the tcptraceroute SYNs, for their ICMP time exceeded
    syn_tr = np.flatnonzero(tracer[conn])
    quotes = pk.take_plan(plan, syn_tr)
    return plan, conns, quotes


# --- other traffic --------------------------------------------------------------------------------


def _dns(
    rng: np.random.Generator, n: int, roles: _Roles, t_start: int, duration: int
) -> dict[str, np.ndarray]:
    v6 = rng.random(n) < 0.05
    client = roles.servers[rng.integers(0, len(roles.servers), size=n)]
    answered = rng.random(n) >= 0.03
    tq = t_start + rng.integers(0, duration, size=n)
    q = pk.empty_plan(n)
    q["ts_ns"][:] = tq
    q["kind"][:] = np.where(v6, pk.DNS6_QUERY, pk.DNS4_QUERY)
    q["src"][:], q["dst"][:] = client, roles.resolver
    q["eth_src"][:], q["eth_dst"][:] = client, roles.resolver
    q["ttl"][:] = 64
    q["ip_id"][:] = rng.integers(0, 65536, size=n)
    q["sport"][:] = DNS_PORT_LO + rng.integers(0, DNS_PORT_N, size=n)
    q["dport"][:] = 53
    q["dns_id"][:] = rng.integers(0, 65536, size=n)
    q["dns_name"][:] = rng.integers(0, 1_000_000, size=n)
    q["dns_addr"][:] = roles.clients[rng.integers(0, len(roles.clients), size=n)]
    a = np.flatnonzero(answered)
    r = pk.take_plan(q, a)
    r["ts_ns"] = r["ts_ns"] + rng.integers(200 * US, 20 * MS, size=len(a))
    r["kind"] = np.where(v6[a], pk.DNS6_REPLY, pk.DNS4_REPLY).astype(np.uint8)
    r["src"], r["dst"] = r["dst"], r["src"]
    r["eth_src"], r["eth_dst"] = r["eth_dst"], r["eth_src"]
    r["sport"], r["dport"] = r["dport"], r["sport"]
    r["ip_id"] = rng.integers(0, 65536, size=len(a)).astype(np.uint16)
    return pk.concat_plans([q, r])


def _echo(
    rng: np.random.Generator, n: int, roles: _Roles, t_start: int, duration: int
) -> dict[str, np.ndarray]:
    """``n`` echo request/reply pairs from the prober, one per second per server."""
    ns = len(roles.servers)
    i = np.arange(n)
    target = roles.servers[i % ns]
    v6 = (i % ns) == ns - 1  # the last server is pinged over IPv6
    per_s = max(duration // max(n // ns, 1), 1)
    q = pk.empty_plan(n)
    q["ts_ns"][:] = t_start + (i // ns) * per_s + (i % ns) * 7 * MS
    q["kind"][:] = np.where(v6, pk.ICMP6_ECHO, pk.ICMP4_ECHO)
    q["src"][:], q["dst"][:] = roles.prober, target
    q["eth_src"][:], q["eth_dst"][:] = roles.prober, target
    q["ttl"][:] = 64
    q["df"][:] = True
    q["ip_id"][:] = rng.integers(0, 65536, size=n)
    q["icmp_type"][:] = np.where(v6, 128, 8)
    q["icmp_id"][:] = 0x4E00 + (i % ns)
    q["icmp_seq"][:] = (i // ns + 1) & 0xFFFF
    r = pk.take_plan(q, slice(None))
    r["ts_ns"] = r["ts_ns"] + rng.integers(40 * US, 300 * US, size=n)
    r["src"], r["dst"] = r["dst"], r["src"]
    r["eth_src"], r["eth_dst"] = r["eth_dst"], r["eth_src"]
    r["icmp_type"] = np.where(v6, 129, 0).astype(np.uint8)
    r["df"] = np.zeros(n, dtype=bool)
    r["ip_id"] = rng.integers(0, 65536, size=n).astype(np.uint16)
    return pk.concat_plans([q, r])


def _arp(
    rng: np.random.Generator, n: int, roles: _Roles, t_start: int, duration: int
) -> dict[str, np.ndarray]:
    lan = np.concatenate(([roles.gateway, roles.resolver, roles.prober], roles.servers))
    asker = lan[rng.integers(0, len(lan), size=n)]
    target = np.where(
        asker == roles.gateway, roles.servers[rng.integers(0, 8, size=n)], roles.gateway
    )
    q = pk.empty_plan(n)
    q["ts_ns"][:] = t_start + rng.integers(0, duration, size=n)
    q["kind"][:] = pk.ARP
    q["arp_op"][:] = 1
    q["src"][:], q["dst"][:] = asker, target
    q["eth_src"][:], q["eth_dst"][:] = asker, -1
    r = pk.take_plan(q, slice(None))
    r["ts_ns"] = r["ts_ns"] + rng.integers(20 * US, 200 * US, size=n)
    r["arp_op"] = np.full(n, 2, dtype=np.uint8)
    r["src"], r["dst"] = target, asker
    r["eth_src"], r["eth_dst"] = target, asker
    return pk.concat_plans([q, r])


def _traceroutes(
    rng: np.random.Generator, n_runs: int, roles: _Roles, t_start: int, duration: int, epoch: int
) -> dict[str, np.ndarray]:
    """UDP traceroute runs: 3 hops x 3 probes, each answered by the hop's time exceeded."""
    n = n_runs * 9
    i = np.arange(n)
    run, hop = i // 9, (i % 9) // 3
    probe = pk.empty_plan(n)
    t_run = t_start + np.sort(rng.integers(0, duration, size=n_runs))
    probe["ts_ns"][:] = t_run[run] + (i % 9) * 2 * MS
    probe["kind"][:] = pk.UDP4_PROBE
    probe["src"][:], probe["dst"][:] = roles.prober, roles.target
    probe["eth_src"][:], probe["eth_dst"][:] = roles.prober, roles.gateway
    probe["ttl"][:] = hop + 1
    probe["ip_id"][:] = rng.integers(0, 65536, size=n)
    probe["sport"][:] = 40000 + (run + epoch * 97) % 1000
    probe["dport"][:] = 33434 + i % 9
    return pk.concat_plans([probe, _time_exceeded(rng, probe, roles, hop, pk.ICMP4_TE_UDP)])


def _time_exceeded(
    rng: np.random.Generator,
    quoted: dict[str, np.ndarray],
    roles: _Roles,
    hop: np.ndarray,
    kind: int,
) -> dict[str, np.ndarray]:
    n = len(quoted["kind"])
    te = pk.empty_plan(n)
    te["ts_ns"][:] = quoted["ts_ns"] + (hop + 1) * rng.integers(300 * US, 2 * MS, size=n)
    te["kind"][:] = kind
    te["src"][:], te["dst"][:] = roles.hops[hop], quoted["src"]
    te["eth_src"][:], te["eth_dst"][:] = roles.gateway, quoted["src"]
    te["ttl"][:] = 255 - hop
    te["ip_id"][:] = rng.integers(0, 65536, size=n)
    te["q_src"][:], te["q_dst"][:] = quoted["src"], quoted["dst"]
    te["q_sport"][:], te["q_dport"][:] = quoted["sport"], quoted["dport"]
    te["q_seq"][:], te["q_ip_id"][:] = quoted["seq"], quoted["ip_id"]
    te["conn"][:] = quoted["conn"] if kind == pk.ICMP4_TE_TCP else -1
    return te


# --- the whole mix --------------------------------------------------------------------------------


def generate_traffic(
    packets: int = 1_000_000, seed: int = 1, *, small: bool = False, epoch: int = 0
) -> Traffic:
    """The traffic mix sized to about ``packets`` packets, the same for the same arguments.

    ``small`` keeps payloads under 64 bytes (large captures that stay small on disk); ``epoch``
    shifts time and client ports so that consecutive epochs concatenate into one longer capture.
    """
    rng = np.random.default_rng([seed, epoch])
    block = PayloadBlock(seed)
    n_conns = max(int(packets * 0.054), 10)
    hosts, roles = _make_hosts(rng, max(50, n_conns // 12))
    duration = max(packets * 1_000_000_000 // PACKETS_PER_SECOND, 10_000 * MS)
    t_start = BASE_TS_NS + epoch * (duration + 10_000 * MS)
    tcp, conns, tracer_syns = _tcp_connections(
        rng, n_conns, roles, t_start, duration, epoch, small, block
    )
    hop = tracer_syns["ttl"].astype(np.int64) - 1  # the hop where the TTL ran out
    parts = [
        tcp,
        _time_exceeded(rng, tracer_syns, roles, hop, pk.ICMP4_TE_TCP),
        _dns(rng, max(int(packets * 0.04), 2), roles, t_start, duration),
        _echo(rng, max(int(packets * 0.008), 16), roles, t_start, duration),
        _arp(rng, max(int(packets * 0.004), 2), roles, t_start, duration),
        _traceroutes(rng, max(int(packets * 0.0002), 1), roles, t_start, duration, epoch),
    ]
    plan = pk.concat_plans(parts)
    order = np.argsort(plan["ts_ns"], kind="stable")
    plan = pk.take_plan(plan, order)
    return Traffic(
        hosts=hosts, plan=plan, conns=conns, block=block, seed=seed, gateway=roles.gateway
    )


# --- capture points -------------------------------------------------------------------------------

#: pcapng interfaces per pcapng layout: (linktype, if_name, if_description, if_tsresol). TCP over
#: IPv4 goes to interface 0; IPv4 UDP and ICMP errors to 1; ARP, echo and IPv6 to 2. libpcap
#: (tcpdump) reads "pcapng" but refuses "pcapng-mixed": its interfaces differ in link type.
PCAPNG_INTERFACES: dict[str, tuple[tuple[int, str, str, int], ...]] = {
    "pcapng": (
        (pk.LINK_ETHERNET, "eth0", "server LAN, TCP", 6),
        (pk.LINK_ETHERNET, "eth1", "UDP and ICMP errors", 9),
        (pk.LINK_ETHERNET, "eth2", "ARP, ICMP echo and IPv6", 9),
    ),
    "pcapng-mixed": (
        (pk.LINK_ETHERNET, "eth0", "server LAN, TCP", 6),
        (pk.LINK_SLL2, "any", "Linux cooked v2, UDP and ICMP errors", 9),
        (pk.LINK_ETHERNET, "eth1", "ARP, ICMP echo and IPv6", 9),
    ),
}
SLL2_IFINDEX = 3


@dataclass(frozen=True)
class CapturePoint:
    """Where and how traffic is captured.

    ``layout`` is "ether" (Ethernet pcap), "sll2" (Linux cooked v2 pcap, as ``tcpdump -i any``
    on the gateway), "pcapng" (three Ethernet interfaces with different names and timestamp
    resolutions, packet comments) or "pcapng-mixed" (the same with an SLL2 interface).
    ``nat`` rewrites host indices (e.g. a VIP to a real server) in addresses seen at this point,
    ``clock_offset_ns`` is added to every timestamp, ``loss`` drops that fraction of packets
    (seeded by ``loss_seed``)."""

    layout: str = "ether"
    clock_offset_ns: int = 0
    nat: dict[int, int] = field(default_factory=dict)
    loss: float = 0.0
    loss_seed: int = 0


def observe(traffic: Traffic, point: CapturePoint) -> dict[str, np.ndarray]:
    """The plan of the packets ``point`` captures, with its link-layer fields filled in."""
    plan = dict(traffic.plan)
    n = len(plan["kind"])
    if point.loss > 0:
        keep = np.random.default_rng([traffic.seed, point.loss_seed, 0x1055]).random(n)
        plan = pk.take_plan(plan, keep >= point.loss)
        n = len(plan["kind"])
    if point.nat:
        remap = np.arange(len(traffic.hosts), dtype=np.int32)
        for a, b in point.nat.items():
            remap[a] = b
        for col in ("src", "dst", "eth_src", "q_src", "q_dst"):
            plan[col] = np.where(plan[col] >= 0, remap[np.maximum(plan[col], 0)], plan[col])
        plan["eth_dst"] = np.where(
            plan["eth_dst"] >= 0, remap[np.maximum(plan["eth_dst"], 0)], -1
        ).astype(np.int32)
    if point.clock_offset_ns:
        # a point's clock changes when packets are stamped, not what they carry (ping data)
        plan["payload_ts_ns"] = plan["ts_ns"]
        plan["ts_ns"] = plan["ts_ns"] + point.clock_offset_ns
    kind = plan["kind"]
    gw = traffic.gateway
    pkttype = np.select(
        [plan["eth_src"] == gw, plan["eth_dst"] < 0, plan["eth_dst"] == gw], [4, 1, 0], 3
    )
    plan["pkttype"] = pkttype.astype(np.int8)
    plan["ifindex"] = np.full(n, SLL2_IFINDEX, dtype=np.int32)
    if point.layout == "ether":
        plan["link"] = np.full(n, pk.LINK_ETHERNET, dtype=np.int16)
        plan["comment"] = np.full(n, -1, dtype=np.int16)
    elif point.layout == "sll2":
        plan["link"] = np.full(n, pk.LINK_SLL2, dtype=np.int16)
        plan["comment"] = np.full(n, -1, dtype=np.int16)
    elif point.layout in PCAPNG_INTERFACES:
        tcp4 = kind <= pk.TCP4_PLAIN
        second = np.isin(
            kind, [pk.DNS4_QUERY, pk.DNS4_REPLY, pk.UDP4_PROBE, pk.ICMP4_TE_UDP, pk.ICMP4_TE_TCP]
        )
        iface = np.select([tcp4, second], [0, 1], 2).astype(np.int16)
        plan["iface"] = iface
        links = np.array([i[0] for i in PCAPNG_INTERFACES[point.layout]], dtype=np.int16)
        plan["link"] = links[iface]
    else:
        raise ValueError(f"unknown capture layout {point.layout!r}")
    return plan
