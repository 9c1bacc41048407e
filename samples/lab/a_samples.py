"""Ground truth and tshark signature checks of the lab samples for patterns 1, 2 and 5.

Used by samples/lab/{lb-hairpin,lvs-dr-arp,nat-gateway}.sh after each variant is captured:
    a_samples.py describe PATTERN VARIANT DIR   -> writes DIR/expected.yaml and DIR/README.md
    a_samples.py check PATTERN ROOT [VARIANT..] -> exit 1 unless every faulty variant shows its
                                                   signature and no healthy variant does
The decisive frames are found in the captures with tshark, never written by hand. This is lab
tooling, not netdiag: it reads a few hundred packets per capture, so plain Python loops are fine.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

FIELDS = [
    "frame.number",
    "frame.time_epoch",
    "frame.interface_name",
    "sll.ifindex",
    "sll.pkttype",
    "eth.src",
    "eth.dst",
    "arp.opcode",
    "arp.src.hw_mac",
    "arp.src.proto_ipv4",
    "arp.dst.proto_ipv4",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags.syn",
    "tcp.flags.ack",
    "tcp.flags.reset",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "icmp.type",
    "icmp.code",
]
INT_FIELDS = {
    "frame.number",
    "sll.ifindex",
    "sll.pkttype",
    "arp.opcode",
    "ip.proto",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "icmp.type",
    "icmp.code",
}
BOOL_FIELDS = {"tcp.flags.syn", "tcp.flags.ack", "tcp.flags.reset"}
SLL_OUTGOING = 4  # sll.pkttype of a packet the capturing host sent

Packet = dict[str, Any]
Decisive = list[dict[str, Any]]


def read_packets(path: Path) -> list[Packet]:
    """Every frame of a capture as a dict of the FIELDS (None when absent), via tshark."""
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t"]
    cmd += ["-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    packets = []
    for line in out.splitlines():
        values = line.split("\t")
        pkt: Packet = {}
        for name, raw in zip(FIELDS, values + [""] * (len(FIELDS) - len(values)), strict=True):
            if raw == "":
                pkt[name] = None
            elif name in INT_FIELDS:
                pkt[name] = int(raw, 0)
            elif name == "frame.time_epoch":
                # integer nanoseconds: a float cannot order frames a few ns apart
                whole, _, frac = raw.partition(".")
                pkt[name] = int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])
            elif name in BOOL_FIELDS:
                pkt[name] = raw in ("1", "True")
            else:
                pkt[name] = raw
        packets.append(pkt)
    return packets


def linktype_of(path: Path) -> str:
    """The capture's link-layer header type name(s), as libpcap calls them."""
    out = subprocess.run(
        ["capinfos", "-E", "-I", str(path)], check=True, capture_output=True, text=True
    ).stdout
    names = {
        "Linux cooked-mode capture v2": "LINUX_SLL2",
        "Linux cooked-mode capture v1": "LINUX_SLL",
        "Ethernet": "EN10MB",
    }
    found = []
    for line in out.splitlines():
        if "ncapsulation" in line:
            enc = line.split("=")[-1].split(":", 1)[-1].strip()
            for key, val in names.items():
                if enc.startswith(key) and val not in found:
                    found.append(val)
    return ",".join(found) if found else "UNKNOWN"


def is_syn(p: Packet) -> bool:
    return bool(p["tcp.flags.syn"]) and not p["tcp.flags.ack"]


def is_synack(p: Packet) -> bool:
    return bool(p["tcp.flags.syn"]) and bool(p["tcp.flags.ack"])


def where(p: Packet) -> str:
    """The interface a frame was seen on, for notes: pcapng name or SLL2 ifindex/direction."""
    if p["frame.interface_name"]:
        return f" on {p['frame.interface_name']}"
    if p["sll.ifindex"] is not None:
        direction = "out" if p["sll.pkttype"] == SLL_OUTGOING else "in"
        return f" ifindex {p['sll.ifindex']} {direction}"
    return ""


def tcp_note(p: Packet) -> str:
    flags = (
        "SYN-ACK"
        if is_synack(p)
        else "SYN"
        if p["tcp.flags.syn"]
        else "RST"
        if p["tcp.flags.reset"]
        else "ACK"
    )
    text = f"{flags} {p['ip.src']}:{p['tcp.srcport']} > {p['ip.dst']}:{p['tcp.dstport']}"
    text += f" seq {p['tcp.seq_raw']}"
    if p["tcp.flags.ack"]:
        text += f" ack {p['tcp.ack_raw']}"
    return text + where(p)


def ip_note(p: Packet) -> str:
    proto = {1: "ICMP", 6: "TCP", 17: "UDP"}.get(p["ip.proto"] or -1, f"IP proto {p['ip.proto']}")
    return f"{proto} {p['ip.src']} > {p['ip.dst']}{where(p)}"


def entry(p: Packet, role: str, note: str | None = None) -> dict[str, Any]:
    return {"frame": p["frame.number"], "role": role, "note": note or tcp_note(p)}


# ---- pattern 1: L4 load-balancer hairpin -------------------------------------------------------
def hairpin(packets: list[Packet], vip: str) -> Decisive:
    """Every hairpinned SYN: SYN B:p > VIP (or its retransmission), the same SYN (ISN, port) back
    with src == dst == B, then the SYN-ACK over lo and the RST; after a martian drop neither."""
    tcp = [p for p in packets if p["tcp.srcport"] is not None and p["ip.src"]]
    found: Decisive = []
    tried: set[tuple[str, int, int]] = set()
    for i, p in enumerate(tcp):
        if not (is_syn(p) and p["ip.src"] == p["ip.dst"]):
            continue
        key = (p["ip.src"], p["tcp.srcport"], p["tcp.seq_raw"])
        to_vip = [
            q
            for q in tcp[:i]
            if is_syn(q)
            and q["ip.dst"] == vip
            and (q["ip.src"], q["tcp.srcport"], q["tcp.seq_raw"]) == key
        ]
        if not to_vip:
            continue
        found.append(entry(to_vip[-1], "syn-retransmission" if key in tried else "syn-to-vip"))
        tried.add(key)
        found.append(entry(p, "hairpin-syn"))
        later = tcp[i + 1 :]
        synack = next(
            (
                q
                for q in later
                if is_synack(q)
                and q["ip.src"] == q["ip.dst"] == p["ip.src"]
                and q["tcp.dstport"] == p["tcp.srcport"]
                and q["tcp.ack_raw"] == p["tcp.seq_raw"] + 1
                and q["tcp.srcport"] == p["tcp.dstport"]
            ),
            None,
        )
        if synack is None:
            continue
        found.append(entry(synack, "syn-ack-over-lo"))
        rst = next(
            (
                q
                for q in later
                if q["tcp.flags.reset"]
                and q["ip.src"] == p["ip.src"]
                and q["tcp.srcport"] == p["tcp.srcport"]
                and q["tcp.dstport"] == p["tcp.dstport"]
                and q["frame.number"] > synack["frame.number"]
            ),
            None,
        )
        if rst is not None:
            found.append(entry(rst, "rst"))
    return found


# ---- pattern 2: LVS-DR ARP leakage --------------------------------------------------------------
def dr_arp(packets: list[Packet], vip: str, director_mac: str) -> Decisive:
    """ARP frames claiming the VIP (sender IP = VIP) from a MAC that is not the director's, the
    director's own claim for contrast, and frames to the VIP that skip the director."""
    found: Decisive = []
    first_director = None
    for p in packets:
        if p["arp.opcode"] is None or p["arp.src.proto_ipv4"] != vip:
            continue
        mac = p["arp.src.hw_mac"]
        kind = "reply" if p["arp.opcode"] == 2 else "request"
        if mac == director_mac:
            if first_director is None:
                first_director = p
            continue
        gratuitous = p["arp.opcode"] == 1 and p["arp.dst.proto_ipv4"] == vip
        role = "gratuitous-arp-for-vip" if gratuitous else f"arp-{kind}-with-vip-from-rs"
        note = f"ARP {kind} sender {vip} is-at {mac} (not the director){where(p)}"
        found.append(entry(p, role, note))
    if not found:
        return found
    if first_director is not None:
        note = f"ARP {vip} is-at {director_mac} (the director){where(first_director)}"
        found.append(entry(first_director, "arp-for-vip-from-director", note))
    claim_frame = min(e["frame"] for e in found if e["role"] != "arp-for-vip-from-director")
    bypass = next(
        (
            p
            for p in packets
            if p["frame.number"] > claim_frame
            and p["ip.dst"] == vip
            and p["eth.dst"]
            and p["eth.dst"] != director_mac
            and p["eth.src"] != director_mac
        ),
        None,
    )
    if bypass is not None:
        found.append(
            entry(
                bypass,
                "frame-to-vip-bypassing-director",
                f"{tcp_note(bypass)} eth {bypass['eth.src']} > {bypass['eth.dst']}",
            )
        )
    return sorted(found, key=lambda e: e["frame"])


# ---- pattern 5: NAT gateway -------------------------------------------------------------------
def nat_bypass_client(packets: list[Packet], vip: str, client: str) -> Decisive:
    """At the client: SYN C:p > VIP, then a SYN-ACK from another address acknowledging ISN+1 of
    that SYN (the real server answering directly), then the client's RST to it."""
    found: Decisive = []
    syns: dict[tuple[int, int], Packet] = {}
    tried: set[tuple[int, int]] = set()
    for p in packets:
        if p["tcp.srcport"] is None:
            continue
        if is_syn(p) and p["ip.src"] == client and p["ip.dst"] == vip:
            syns[(p["tcp.srcport"], p["tcp.seq_raw"] + 1)] = p
        elif is_synack(p) and p["ip.dst"] == client and p["ip.src"] != vip:
            key = (p["tcp.dstport"], p["tcp.ack_raw"])
            syn = syns.pop(key, None)
            if syn is None:
                continue
            found.append(entry(syn, "syn-retransmission" if key in tried else "syn-to-vip"))
            tried.add(key)
            found.append(entry(p, "syn-ack-from-rip"))
            rst = next(
                (
                    q
                    for q in packets
                    if q["frame.number"] > p["frame.number"]
                    and q["tcp.flags.reset"]
                    and q["ip.src"] == client
                    and q["ip.dst"] == p["ip.src"]
                    and q["tcp.srcport"] == p["tcp.dstport"]
                ),
                None,
            )
            if rst is not None:
                found.append(entry(rst, "rst-from-client"))
    return found


def nat_bypass_director(packets: list[Packet], vip: str, client: str, rip: str) -> Decisive:
    """At the director: SYN C:p > VIP and the same SYN (same ISN) forwarded to RIP, with no
    SYN-ACK ever coming back from RIP for it."""
    found: Decisive = []
    tried: set[tuple[int, int]] = set()
    for p in packets:
        if not (p["tcp.srcport"] and is_syn(p) and p["ip.src"] == client and p["ip.dst"] == rip):
            continue
        answered = any(
            is_synack(q)
            and q["ip.src"] == rip
            and q["tcp.dstport"] == p["tcp.srcport"]
            and q["tcp.ack_raw"] == p["tcp.seq_raw"] + 1
            for q in packets
        )
        if answered:
            continue
        key = (p["tcp.srcport"], p["tcp.seq_raw"])
        # pair by time, not frame order: dumpcap writes several interfaces' frames slightly
        # out of order (a forwarded copy can precede the frame it was forwarded from)
        arrived = [
            q
            for q in packets
            if q["frame.time_epoch"] <= p["frame.time_epoch"]
            and is_syn(q)
            and q["ip.dst"] == vip
            and (q["tcp.srcport"], q["tcp.seq_raw"]) == key
        ]
        if not arrived:
            continue
        syn = max(arrived, key=lambda q: q["frame.time_epoch"])
        found.append(entry(syn, "syn-retransmission" if key in tried else "syn-to-vip"))
        tried.add(key)
        found.append(entry(p, "syn-forwarded-to-rip"))
    return sorted(found, key=lambda e: e["frame"])


def nat_no_forward(packets: list[Packet], vip: str, client: str) -> Decisive:
    """At the director (-i any): SYN C:p > VIP arrives and no copy with that ISN leaves towards a
    real server (the DNATed SYN is never forwarded); it is retransmitted."""
    found: Decisive = []
    seen: set[tuple[int, int]] = set()
    for p in packets:
        if not (p["tcp.srcport"] and is_syn(p) and p["ip.src"] == client and p["ip.dst"] == vip):
            continue
        key = (p["tcp.srcport"], p["tcp.seq_raw"])
        forwarded = any(
            is_syn(q)
            and q["ip.src"] == client
            and q["ip.dst"] != vip
            and (q["tcp.srcport"], q["tcp.seq_raw"]) == key
            for q in packets
        )
        if forwarded:
            continue
        found.append(entry(p, "syn-retransmission" if key in seen else "syn-not-forwarded"))
        seen.add(key)
    return found


def syn_unanswered(packets: list[Packet], vip: str, client: str) -> Decisive:
    """At the client: SYN C:p > VIP that never gets a SYN-ACK from anybody, and its
    retransmissions (same port and ISN)."""
    found: Decisive = []
    seen: set[tuple[int, int]] = set()
    for p in packets:
        if not (p["tcp.srcport"] and is_syn(p) and p["ip.src"] == client and p["ip.dst"] == vip):
            continue
        key = (p["tcp.srcport"], p["tcp.seq_raw"])
        answered = any(
            is_synack(q)
            and q["ip.dst"] == client
            and q["tcp.dstport"] == key[0]
            and q["tcp.ack_raw"] == key[1] + 1
            for q in packets
        )
        if answered:
            continue
        found.append(entry(p, "syn-retransmission" if key in seen else "syn-unanswered"))
        seen.add(key)
    return found


RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def private(addr: str | None) -> bool:
    """RFC 1918 only: Python's is_private also counts the TEST-NET ranges the lab uses as public."""
    return addr is not None and any(ipaddress.ip_address(addr) in n for n in RFC1918)


def nat_missing_snat(packets: list[Packet], inside_net: str) -> Decisive:
    """On the NAT gateway (-i any): a packet leaving (outgoing) with a source in the untranslated
    inside subnet towards a public address, and never a reply to it."""
    net = ipaddress.ip_network(inside_net)
    found: Decisive = []
    for p in packets:
        src, dst = p["ip.src"], p["ip.dst"]
        if not (src and dst and ipaddress.ip_address(src) in net and not private(dst)):
            continue
        if p["sll.pkttype"] != SLL_OUTGOING:
            continue
        replied = any(q["ip.dst"] == src and q["ip.src"] == dst for q in packets)
        role = "untranslated-private-source-out" if not replied else "untranslated-but-answered"
        found.append(entry(p, role, tcp_note(p) if p["tcp.srcport"] else ip_note(p)))
    return found


def icmp_unreachable(packets: list[Packet], about: str) -> Decisive:
    """ICMP destination unreachable frames (type 3), e.g. from the edge that has no route back."""
    return [
        entry(
            p,
            "icmp-unreachable",
            f"ICMP 3/{p['icmp.code']} {p['ip.src']} > {p['ip.dst']} about {about}{where(p)}",
        )
        for p in packets
        if p["icmp.type"] == 3
    ]


def syn_to_private(packets: list[Packet], inside_net: str) -> Decisive:
    """At the outside server: SYNs arriving from the untranslated inside subnet."""
    net = ipaddress.ip_network(inside_net)
    return [
        entry(p, "syn-from-private-source")
        for p in packets
        if p["tcp.srcport"]
        and is_syn(p)
        and p["ip.src"]
        and ipaddress.ip_address(p["ip.src"]) in net
    ]


# ---- multi-point variants (issue 8) ----------------------------------------------------------------
def hairpin_at_lb(packets: list[Packet], vip: str) -> Decisive:
    """At the load balancer: the hairpin detector's pairs, where the second SYN is the rewrite
    (B:p > VIP in, B:p > B:80 out with the same ISN) and nothing of the reply is ever seen."""
    found = hairpin(packets, vip)
    for e in found:
        if e["role"] == "hairpin-syn":
            e["role"] = "syn-rewritten-to-client"
    return found


def reply_without_request(packets: list[Packet], server: str, vip: str, client: str) -> Decisive:
    """At a router that did not translate: SYN-ACKs from the server's own (untranslated) address
    to the client whose SYN this point never saw (the SYN went to VIP through another point),
    and the client's RSTs for them passing back."""
    found: Decisive = []
    syns = {
        (p["tcp.srcport"], p["tcp.seq_raw"])
        for p in packets
        if p["tcp.srcport"] and is_syn(p) and p["ip.src"] == client
    }
    replied_ports: set[int] = set()
    for p in packets:
        if p["tcp.srcport"] is None:
            continue
        if is_synack(p) and p["ip.src"] == server and p["ip.dst"] == client:
            if (p["tcp.dstport"], p["tcp.ack_raw"] - 1) in syns:
                continue
            found.append(entry(p, "syn-ack-without-syn"))
            replied_ports.add(p["tcp.dstport"])
        elif (
            p["tcp.flags.reset"]
            and p["ip.src"] == client
            and p["ip.dst"] == server
            and p["tcp.srcport"] in replied_ports
        ):
            found.append(entry(p, "rst-forwarded"))
    return found


def reply_via_other_gateway(packets: list[Packet], client: str, translator_mac: str) -> Decisive:
    """At the server (Ethernet): a SYN from the client delivered by the translating router's MAC
    and the SYN-ACK to it sent to another router's MAC (the server's route back), plus the
    client's RST arriving through that other router."""
    found: Decisive = []
    for p in packets:
        if not (p["tcp.srcport"] and is_syn(p) and p["ip.src"] == client):
            continue
        if p["eth.src"] != translator_mac:
            continue
        replies = [
            q
            for q in packets
            if is_synack(q)
            and q["ip.dst"] == client
            and q["tcp.dstport"] == p["tcp.srcport"]
            and q["tcp.ack_raw"] == p["tcp.seq_raw"] + 1
            and q["frame.time_epoch"] >= p["frame.time_epoch"]
            and q["eth.dst"] != translator_mac
        ]
        if not replies:
            continue
        reply = min(replies, key=lambda q: q["frame.time_epoch"])
        found.append(entry(p, "syn-via-translator", f"{tcp_note(p)} from {p['eth.src']}"))
        found.append(
            entry(reply, "syn-ack-to-other-gateway", f"{tcp_note(reply)} to {reply['eth.dst']}")
        )
        rst = next(
            (
                q
                for q in packets
                if q["frame.number"] > reply["frame.number"]
                and q["tcp.flags.reset"]
                and q["ip.src"] == client
                and q["tcp.srcport"] == p["tcp.srcport"]
                and q["eth.src"] != translator_mac
            ),
            None,
        )
        if rst is not None and rst["frame.number"] not in {e["frame"] for e in found}:
            found.append(entry(rst, "rst-from-client", f"{tcp_note(rst)} from {rst['eth.src']}"))
    return sorted(found, key=lambda e: e["frame"])


DETECTORS: dict[str, Callable[..., Decisive]] = {
    "hairpin": hairpin,
    "dr_arp": dr_arp,
    "nat_bypass_client": nat_bypass_client,
    "nat_bypass_director": nat_bypass_director,
    "nat_no_forward": nat_no_forward,
    "syn_unanswered": syn_unanswered,
    "nat_missing_snat": nat_missing_snat,
    "icmp_unreachable": icmp_unreachable,
    "syn_to_private": syn_to_private,
    "hairpin_at_lb": hairpin_at_lb,
    "reply_without_request": reply_without_request,
    "reply_via_other_gateway": reply_via_other_gateway,
}


def run_detector(path: Path, detector: dict[str, Any] | list[dict[str, Any]]) -> Decisive:
    """Decisive frames of one capture by one detector, or by several merged in frame order."""
    packets = read_packets(path)
    found: Decisive = []
    for one in detector if isinstance(detector, list) else [detector]:
        args = dict(one)
        found += DETECTORS[args.pop("name")](packets, **args)
    return sorted(found, key=lambda e: e["frame"])


# ---- capture points: the same connection or frame across several captures (issue 8) ----------
def _endpoint(addr: str | None, port: int | None) -> str:
    return f"{addr}:{port}"


def trace_connections(
    points: dict[str, list[Packet]],
    clients: list[str],
    services: list[str],
    translator: dict[str, str],
) -> list[dict[str, Any]]:
    """Every TCP connection a client opened to a translated service, followed across the points:
    its SYNs by client address, port and ISN (the same at every point, before and after a
    destination rewrite), its SYN-ACKs by destination port and ack = ISN + 1. `translator` maps a
    service to the point that translates it; the outcome says whether a SYN-ACK was seen there."""
    keys: list[tuple[str, int, int, str]] = []
    for packets in points.values():
        for p in packets:
            if not (p["tcp.srcport"] and is_syn(p) and p["ip.src"] in clients):
                continue
            service = _endpoint(p["ip.dst"], p["tcp.dstport"])
            key = (p["ip.src"], p["tcp.srcport"], p["tcp.seq_raw"], service)
            if service in services and key[:3] not in {k[:3] for k in keys}:
                keys.append(key)
    first_seen = {}
    for key in keys:
        first_seen[key] = min(
            p["frame.time_epoch"]
            for packets in points.values()
            for p in packets
            if p["tcp.srcport"] == key[1] and p["tcp.seq_raw"] == key[2] and p["ip.src"] == key[0]
        )
    out = []
    for client, port, isn, service in sorted(keys, key=lambda k: first_seen[k]):
        syn: dict[str, list[int]] = {}
        syn_ack: dict[str, list[int]] = {}
        translated: list[str] = []
        answered_from: list[str] = []
        for name, packets in points.items():
            for p in packets:
                if p["tcp.srcport"] is None:
                    continue
                if is_syn(p) and (p["ip.src"], p["tcp.srcport"], p["tcp.seq_raw"]) == (
                    client,
                    port,
                    isn,
                ):
                    syn.setdefault(name, []).append(p["frame.number"])
                    dst = _endpoint(p["ip.dst"], p["tcp.dstport"])
                    if dst != service and dst not in translated:
                        translated.append(dst)
                elif (
                    is_synack(p)
                    and p["ip.dst"] == client
                    and p["tcp.dstport"] == port
                    and p["tcp.ack_raw"] == isn + 1
                ):
                    syn_ack.setdefault(name, []).append(p["frame.number"])
                    src = _endpoint(p["ip.src"], p["tcp.srcport"])
                    if src not in answered_from:
                        answered_from.append(src)
        at = translator[service]
        outcome = (
            "answered-through-translator"
            if at in syn_ack
            else "reply-bypassed-translator"
            if syn_ack
            else "unanswered"
        )
        out.append(
            {
                "client": _endpoint(client, port),
                "isn": isn,
                "to": service,
                "translated_to": translated,
                "outcome": outcome,
                "syn": syn,
                "syn_ack": syn_ack,
                "syn_ack_from": answered_from,
            }
        )
    return out


def match_arp_leaks(
    points: dict[str, list[Packet]], vip: str, director_mac: str, window_ns: int = 10_000_000
) -> list[dict[str, Any]]:
    """ARP frames with the VIP as sender address from a MAC other than the director's, grouped
    across the points: the same frame (opcode, MACs, target) within `window_ns` of its first
    sighting is one entry with its frame numbers per point."""
    groups: list[dict[str, Any]] = []
    sightings = sorted(
        (p["frame.time_epoch"], name, p)
        for name, packets in points.items()
        for p in packets
        if p["arp.opcode"] is not None
        and p["arp.src.proto_ipv4"] == vip
        and p["arp.src.hw_mac"] != director_mac
    )
    for when, name, p in sightings:
        key = (p["arp.opcode"], p["eth.src"], p["eth.dst"], p["arp.dst.proto_ipv4"])
        group = next(
            (g for g in groups if g["key"] == key and when - g["first"] <= window_ns), None
        )
        if group is None:
            kind = "reply" if p["arp.opcode"] == 2 else "request"
            what = (
                f"ARP {kind} {vip} is-at {p['arp.src.hw_mac']} to {p['eth.dst']}"
                if kind == "reply"
                else f"ARP request who-has {p['arp.dst.proto_ipv4']} tell {vip} "
                f"from {p['arp.src.hw_mac']}"
            )
            group = {"key": key, "first": when, "what": what, "frames": {}}
            groups.append(group)
        group["frames"].setdefault(name, []).append(p["frame.number"])
    order = list(points)
    return [
        {
            "what": g["what"],
            "frames": {n: sorted(g["frames"][n]) for n in order if n in g["frames"]},
        }
        for g in groups
    ]


def describe_points(meta: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The `points` section of expected.yaml: vantage points, configured translations, and what
    the captures show across points (connections traced, replies missing at the translator,
    the same ARP frame at several points). Raises if a faulty sample lacks its missing reply."""
    spec = meta["points"]
    by_file = {c["file"]: c for c in meta["captures"]}
    vantage = [
        {
            "name": name,
            "file": file,
            "host": by_file[file]["host"],
            "interface": by_file[file]["interface"],
            "sees": sees,
        }
        for name, file, sees in spec["vantage"]
    ]
    packets = {v["name"]: read_packets(folder / v["file"]) for v in vantage}
    doc: dict[str, Any] = {"vantage": vantage, "translations": spec["translations"]}
    connections: list[dict[str, Any]] = []
    if "trace" in spec:
        translator = {t["from"]: t["at"] for t in spec["translations"]}
        connections = trace_connections(
            packets, spec["trace"]["clients"], spec["trace"]["services"], translator
        )
    missing = []
    for want in spec["missing"]:
        lost = [
            c
            for c in connections
            if c["to"] == want["of"] and c["outcome"] == "reply-bypassed-translator"
        ]
        if not lost:
            raise SystemExit(f"{folder}: no reply to {want['of']} bypassed {want['never_at']}")
        seen = [v["name"] for v in vantage if any(v["name"] in c["syn_ack"] for c in lost)]
        missing.append(
            {
                "what": want["what"],
                "of": want["of"],
                "translated_at": want["translated_at"],
                "seen_at": seen,
                "never_at": want["never_at"],
                "reply_via": want["reply_via"],
                "connections": [c["client"] for c in lost],
            }
        )
    doc["missing"] = missing
    if "trace" in spec:
        doc["connections"] = connections
    if "arp" in spec:
        doc["matched"] = match_arp_leaks(packets, **spec["arp"])
    return doc


def check_points(meta: dict[str, Any], folder: Path) -> list[str]:
    """Problems of the cross-point ground truth: faulty samples must show their missing reply
    (and the leak seen at several points), healthy ones no reply bypassing the translator."""
    problems = []
    try:
        doc = describe_points(meta, folder)
    except SystemExit as exc:
        return [str(exc)]
    for c in doc.get("connections", []):
        if not meta["rules"] and c["outcome"] != "answered-through-translator":
            problems.append(f"{c['client']} to {c['to']}: {c['outcome']} in a healthy sample")
        if len(c["syn"]) < 2:
            problems.append(f"{c['client']} ISN {c['isn']} seen at one point only")
    if "arp" in meta["points"]:
        multi = [m for m in doc["matched"] if "reply" in m["what"] and len(m["frames"]) >= 3]
        if meta["rules"] and not multi:
            problems.append("no leaked ARP reply seen at three points")
    return problems


# ---- per-sample metadata -------------------------------------------------------------------------
sys.path.insert(0, str(Path(__file__).resolve().parent))
from a_meta import META  # noqa: E402  (metadata lives beside this file)


class FlowLeavesDumper(yaml.SafeDumper):
    """YAML with lists of plain values on one line ([client, gwb]; frame numbers), the rest in
    block style: keeps the points section short and readable."""

    def represent_list(self, data: Any) -> yaml.Node:  # type: ignore[override]
        flow = all(not isinstance(item, (dict, list)) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


FlowLeavesDumper.add_representer(list, FlowLeavesDumper.represent_list)


def describe(pattern: str, variant: str, folder: Path) -> None:
    """Write expected.yaml (frames found by the detectors) and README.md of one variant."""
    meta = META[pattern][variant]
    captures = []
    for cap in meta["captures"]:
        path = folder / cap["file"]
        decisive = run_detector(path, cap["detector"]) if meta["rules"] else []
        captures.append(
            {
                "file": cap["file"],
                "host": cap["host"],
                "interface": cap["interface"],
                "linktype": linktype_of(path),
                "decisive": decisive,
            }
        )
    doc = {
        "pattern": meta["pattern"],
        "rules": meta["rules"],
        "description": " ".join(meta["description"].split()),
        "emulated": " ".join(meta["emulated"].split()),
        "addresses": meta["addresses"],
        "captures": captures,
    }
    if "points" in meta:
        doc["points"] = describe_points(meta, folder)
    header = (
        "# Ground truth of this sample, written by samples/lab/a_samples.py from the captures\n"
        f"# (rebuild: samples/lab/make.sh {pattern}). Do not edit by hand.\n"
    )
    points = doc.pop("points", None)
    text = header + yaml.safe_dump(doc, sort_keys=False, width=100, allow_unicode=True)
    if points is not None:
        text += yaml.dump({"points": points}, Dumper=FlowLeavesDumper, sort_keys=False, width=100)
    (folder / "expected.yaml").write_text(text)
    (folder / "README.md").write_text(readme(pattern, variant, meta, captures, folder, points))


def readme(
    pattern: str,
    variant: str,
    meta: dict[str, Any],
    captures: list[dict[str, Any]],
    folder: Path,
    points: dict[str, Any] | None = None,
) -> str:
    lines = [f"# {pattern} / {variant}", "", " ".join(meta["description"].split()), ""]
    lines += [
        "## How it was made",
        "",
        " ".join(meta["how"].split()),
        "",
        f"Rebuild: `samples/lab/make.sh {pattern}` (script: `samples/lab/{pattern}.sh`).",
        "",
    ]
    lines += ["## Real kernel behaviour, emulated, crafted", ""]
    lines += [
        f"- **Real**: {' '.join(meta['real'].split())}",
        f"- **Emulated**: {' '.join(meta['emulated'].split())}",
        f"- **Crafted**: {' '.join(meta['crafted'].split())}",
        "",
    ]
    lines += ["## Files", ""]
    for cap in captures:
        lines.append(
            f"- `{cap['file']}`: captured on {cap['host']} with interface "
            f"`{cap['interface']}` ({cap['linktype']}); "
            f"{len(cap['decisive'])} decisive frames listed in expected.yaml."
        )
    for f in sorted((folder / "facts").iterdir()):
        what = (
            "terminal transcript"
            if f.suffix == ".txt" and f.stem in meta["hosts"]
            else "product configuration (written for the emulated part, not captured)"
        )
        lines.append(f"- `facts/{f.name}`: {what}")
    truth = "pattern, rules, addresses, decisive frames"
    if points is not None:
        truth += ", capture points"
    lines += [f"- `expected.yaml`: the ground truth ({truth}).", ""]
    if points is not None:
        lines += points_readme(points)
    return "\n".join(lines)


def points_readme(points: dict[str, Any]) -> list[str]:
    """README lines on the capture points (the `points` section of expected.yaml, in words)."""
    lines = ["## Capture points", "", "All captures ran at the same time on the same kernel clock."]
    lines += [""]
    for v in points["vantage"]:
        lines.append(
            f"- **{v['name']}**: `{v['file']}` ({v['host']}, `{v['interface']}`): {v['sees']}"
        )
    lines.append("")
    for t in points["translations"]:
        lines.append(
            f"- Translation at {t['at']}: {t['kind']} {t['proto']} {t['from']} -> {t['to']}"
        )
    for m in points["missing"]:
        lines.append(
            f"- Missing: the {m['what']} of {len(m['connections'])} connection(s) to {m['of']} "
            f"(translated at {m['translated_at']}) is seen at {', '.join(m['seen_at'])}, never at "
            f"{m['never_at']}; it went back via {m['reply_via']}."
        )
    if "connections" in points:
        outcomes: dict[str, int] = {}
        for c in points["connections"]:
            outcomes[c["outcome"]] = outcomes.get(c["outcome"], 0) + 1
        text = ", ".join(f"{n} {o}" for o, n in outcomes.items())
        lines.append(
            f"- Connections traced across the points by client port and ISN: "
            f"{len(points['connections'])} ({text}); frame numbers per point in expected.yaml."
        )
    for m in points.get("matched", []):
        where = "; ".join(f"{n} frames {fr}" for n, fr in m["frames"].items())
        lines.append(f"- Same frame at several points: {m['what']}: {where}")
    lines.append("")
    return lines


def check(pattern: str, root: Path, variants: list[str]) -> int:
    """Verify every listed (or every) variant: faulty ones show their signature, healthy don't."""
    failures = []
    for variant in variants or list(META[pattern]):
        meta = META[pattern][variant]
        for cap in meta["captures"]:
            path = root / variant / cap["file"]
            frames = run_detector(path, cap["detector"])
            roles = {e["role"] for e in frames}
            want = set(cap.get("require", []))
            if meta["rules"]:
                ok = bool(frames) and want <= roles and not (roles & set(cap.get("forbid", [])))
            else:
                ok = not frames
            status = "ok" if ok else "FAIL"
            print(
                f"{status}: {pattern}/{variant}/{cap['file']}: {len(frames)} decisive frames, "
                f"roles {sorted(roles)}"
            )
            if not ok:
                failures.append(f"{variant}/{cap['file']}")
        if "points" in meta:
            problems = check_points(meta, root / variant)
            print(f"{'FAIL' if problems else 'ok'}: {pattern}/{variant} points: {problems or ''}")
            if problems:
                failures.append(f"{variant} points")
    if failures:
        print(f"signature check failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[0] == "describe":
        describe(argv[1], argv[2], Path(argv[3]))
        return 0
    if len(argv) >= 3 and argv[0] == "check":
        return check(argv[1], Path(argv[2]), argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
