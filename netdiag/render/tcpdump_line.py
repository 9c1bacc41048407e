"""tcpdump-style one-line summaries of chosen rows of the packet table, built column by column.

The lines follow ``tcpdump -nn -S`` (absolute sequence numbers, no name resolution), with the
interface and direction in front for Linux cooked (``-i any``) captures, as tcpdump prints them.
They are for evidence: a handful of frames per finding, never the whole table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from netdiag.capture.schema import (
    TCP_ACK,
    TCP_CWR,
    TCP_ECE,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    TCP_URG,
)

#: tcpdump's flag letters, in its order ('.' is ACK)
_TCP_FLAG_LETTERS = (
    (TCP_FIN, "F"),
    (TCP_SYN, "S"),
    (TCP_RST, "R"),
    (TCP_PSH, "P"),
    (TCP_ACK, "."),
    (TCP_URG, "U"),
    (TCP_ECE, "E"),
    (TCP_CWR, "W"),
)

#: SLL packet type -> what tcpdump prints for the direction
_DIRECTION = {0: "In ", 1: "B  ", 2: "M  ", 3: "P  ", 4: "Out"}

_ICMP4_UNREACH = {
    0: "net {d} unreachable",
    1: "host {d} unreachable",
    2: "{d} protocol {p} unreachable",
    3: "{d} {proto} port {dp} unreachable",
    4: "{d} unreachable - need to frag (mtu {mtu})",
    9: "net {d} unreachable - admin prohibited",
    10: "host {d} unreachable - admin prohibited",
    13: "{d} unreachable - admin prohibited filter",
}
_ICMP4_TYPES = {
    0: "echo reply",
    8: "echo request",
    5: "redirect",
    11: "time exceeded",
    3: "unreachable",
}
_ICMP6_TYPES = {
    1: "destination unreachable",
    2: "packet too big",
    3: "time exceeded in-transit",
    128: "echo request",
    129: "echo reply",
    133: "router solicitation",
    134: "router advertisement",
    135: "neighbor solicitation",
    136: "neighbor advertisement",
}
_PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6"}


def _text(df: pd.DataFrame, name: str) -> pd.Series:
    """A column as strings ('' when absent): address/text Categoricals or numbers."""
    if name not in df.columns:
        return pd.Series([""] * len(df), index=df.index, dtype=object)
    col = df[name]
    if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object:
        return col.astype(object).where(col.notna(), "").astype(str)
    return col.astype(str)


def _int(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), -1, dtype=np.int64)
    return df[name].to_numpy(dtype=np.int64, na_value=-1)


def clock_column(ts_ns: np.ndarray) -> list[str]:
    """HH:MM:SS.micro (UTC) for each timestamp."""
    us = ts_ns // 1000
    day_us = us % 86_400_000_000
    h = day_us // 3_600_000_000
    m = (day_us // 60_000_000) % 60
    s = (day_us // 1_000_000) % 60
    frac = day_us % 1_000_000
    return [f"{a:02d}:{b:02d}:{c:02d}.{d:06d}" for a, b, c, d in zip(h, m, s, frac, strict=True)]


def tcp_flag_text(flags: np.ndarray) -> list[str]:
    parts = np.full(len(flags), "", dtype=object)
    for bit, letter in _TCP_FLAG_LETTERS:
        parts = np.where((flags & bit) != 0, parts + letter, parts)
    parts = np.where(parts == "", "none", parts)
    return list(parts)


def summarize(df: pd.DataFrame, verbose: bool = False) -> list[str]:
    """One tcpdump-style line per row of ``df`` (a slice of the packet table), in row order.

    ``verbose`` adds tcpdump -v's "(ttl N, id M)" to IPv4 lines: what a forwarding loop shows.
    """
    n = len(df)
    if n == 0:
        return []
    ts = _int(df, "ts_ns")
    out = np.array(clock_column(ts), dtype=object)

    # interface and direction of Linux cooked captures ("eth0  In  ")
    pkttype = _int(df, "sll_pkttype")
    iface = _text(df, "iface_name").to_numpy(dtype=object)
    cooked = pkttype >= 0
    if cooked.any():
        direction = np.array([_DIRECTION.get(int(p), "   ") for p in pkttype], dtype=object)
        named = np.where(iface != "", " " + iface + " ", "").astype(object)
        out = np.where(cooked, out + named + " " + direction, out)

    version = _int(df, "ip_version")
    proto = _int(df, "ip_proto")
    src = _text(df, "ip_src").to_numpy(dtype=object)
    dst = _text(df, "ip_dst").to_numpy(dtype=object)
    sport = _int(df, "sport").astype(str).astype(object)
    dport = _int(df, "dport").astype(str).astype(object)
    ip_len = _int(df, "ip_len")
    hdr = _int(df, "ip_hdr_len")
    ttl = _int(df, "ip_ttl").astype(str).astype(object)
    ipid = _int(df, "ip_id").astype(str).astype(object)

    family = np.where(version == 6, "IP6", "IP").astype(object)
    if verbose:
        family = np.where(version == 4, family + " (ttl " + ttl + ", id " + ipid + ")", family)
    has_ports = _int(df, "sport") >= 0
    a = np.where(has_ports, src + "." + sport, src)
    b = np.where(has_ports, dst + "." + dport, dst)
    head = family + " " + a + " > " + b + ": "

    body = np.full(n, "", dtype=object)
    # TCP
    tcp = proto == 6
    if tcp.any():
        flags = _int(df, "tcp_flags")
        seq = _int(df, "tcp_seq")
        ack = _int(df, "tcp_ack")
        tlen = np.maximum(_int(df, "tcp_len"), 0)
        win = _int(df, "tcp_win").astype(str).astype(object)
        ftext = np.array(tcp_flag_text(flags), dtype=object)
        seq_text = np.where(
            tlen > 0,
            seq.astype(str).astype(object) + ":" + (seq + tlen).astype(str).astype(object),
            seq.astype(str).astype(object),
        )
        has_seq = ((flags & (TCP_SYN | TCP_FIN | TCP_RST)) != 0) | (tlen > 0) | (flags == 0)
        seq_part = np.where(has_seq, ", seq " + seq_text, "")
        ack_part = np.where((flags & TCP_ACK) != 0, ", ack " + ack.astype(str).astype(object), "")
        tcp_body = (
            "Flags ["
            + ftext
            + "]"
            + seq_part
            + ack_part
            + ", win "
            + win
            + ", length "
            + tlen.astype(str).astype(object)
        )
        body = np.where(tcp, tcp_body, body)
    # UDP
    udp = proto == 17
    if udp.any():
        ulen = np.maximum(_int(df, "udp_len") - 8, 0)
        body = np.where(udp, "UDP, length " + ulen.astype(str).astype(object), body)
    # ICMP (v4)
    icmp4 = (proto == 1) & (version == 4)
    if icmp4.any():
        body = np.where(icmp4, _icmp4_body(df, ip_len - np.maximum(hdr, 0)), body)
    icmp6 = proto == 58
    if icmp6.any():
        itype = _int(df, "icmp_type")
        names = np.array([_ICMP6_TYPES.get(int(t), f"type {t}") for t in itype], dtype=object)
        body = np.where(icmp6, "ICMP6, " + names + ", length " + (ip_len - 40).astype(str), body)
    # ESP
    spi = _int(df, "esp_spi")
    esp = (spi >= 0) & (proto == 50)
    if esp.any():
        esp_text = np.array(
            [
                f"ESP(spi=0x{int(s):08x},seq=0x{int(q):x})"
                for s, q in zip(spi, _int(df, "esp_seq"), strict=True)
            ],
            dtype=object,
        )
        body = np.where(esp, esp_text + ", length " + ip_len.astype(str).astype(object), body)
    other_ip = (version > 0) & (body == "")
    if other_ip.any():
        body = np.where(
            other_ip,
            "ip-proto-"
            + proto.astype(str).astype(object)
            + " "
            + ip_len.astype(str).astype(object),
            body,
        )
    line = np.where(version > 0, out + " " + head + body, out)

    # ARP
    arp_op = _int(df, "arp_op")
    arp = arp_op >= 0
    if arp.any():
        spa = _text(df, "arp_spa").to_numpy(dtype=object)
        tpa = _text(df, "arp_tpa").to_numpy(dtype=object)
        sha = _text(df, "arp_sha").to_numpy(dtype=object)
        arp_body = np.where(
            arp_op == 1,
            "Request who-has " + tpa + " tell " + spa,
            np.where(arp_op == 2, "Reply " + spa + " is-at " + sha, "op " + arp_op.astype(str)),
        )
        line = np.where(arp, out + " ARP, " + arp_body + ", length 28", line)

    rest = (version <= 0) & ~arp
    if rest.any():
        etype = _int(df, "ethertype")
        etext = np.array([f"ethertype 0x{int(e) & 0xFFFF:04x}" for e in etype], dtype=object)
        line = np.where(
            rest, out + " " + etext + ", length " + _int(df, "wirelen").astype(str), line
        )
    err = _text(df, "decode_error").to_numpy(dtype=object)
    line = np.where(err != "", line + " [" + err + "]", line)
    return [str(x) for x in line]


def _icmp4_body(df: pd.DataFrame, payload_len: np.ndarray) -> np.ndarray:
    itype = _int(df, "icmp_type")
    code = _int(df, "icmp_code")
    inner_dst = _text(df, "icmp_inner_dst").to_numpy(dtype=object)
    inner_proto = _int(df, "icmp_inner_proto")
    inner_dport = _int(df, "icmp_inner_dport")
    mtu = _int(df, "icmp_mtu")
    texts = []
    for i in range(len(itype)):  # only the evidence rows: a handful
        t, c = int(itype[i]), int(code[i])
        if t in (0, 8):
            ident = int(_int(df, "icmp_id")[i])
            seq = int(_int(df, "icmp_seq")[i])
            texts.append(f"ICMP {_ICMP4_TYPES[t]}, id {ident}, seq {seq}")
        elif t == 11:
            texts.append(
                "ICMP time exceeded in-transit" if c == 0 else "ICMP ip reassembly time exceeded"
            )
        elif t == 3:
            pattern = _ICMP4_UNREACH.get(c, "{d} unreachable (code " + str(c) + ")")
            texts.append(
                "ICMP "
                + pattern.format(
                    d=inner_dst[i],
                    p=inner_proto[i],
                    proto=_PROTO_NAMES.get(int(inner_proto[i]), str(inner_proto[i])),
                    dp=inner_dport[i],
                    mtu=mtu[i],
                )
            )
        elif t == 5:
            texts.append(f"ICMP redirect {inner_dst[i]}")
        else:
            texts.append(f"ICMP type-#{t}")
    return np.array(texts, dtype=object) + ", length " + payload_len.astype(str).astype(object)
