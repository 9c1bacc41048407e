"""Ground truth of the part-b lab samples: finds the decisive frames with tshark and writes expected.yaml.

Run by the lab scripts after each capture: ``expect.py PATTERN VARIANT FOLDER``. It checks the signature
of the pattern (present in faulty variants, absent in healthy ones), exits 1 with the reason when the
check fails, and otherwise writes FOLDER/expected.yaml with the frame numbers it found. Nothing in
expected.yaml is written by hand: rerun the lab script to regenerate it.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Addresses of the lab topologies (the lab scripts use the same values).
IDC_COVERED = "10.16.1.10"
IDC_UNCOVERED = "10.64.3.22"
REMOTE = "10.200.1.15"
GW_PRIVATE = "10.100.1.18"
VPC_ROUTER = "10.100.1.1"
GW_PUBLIC = "198.51.100.18"
PEER_PUBLIC = "198.51.100.20"
ECS1 = "172.17.0.64"
ECS2 = "172.18.1.22"
ECS3 = "172.31.4.18"
ECS3_GATEWAY = "172.31.0.253"

LINKTYPE_NAMES = {1: "ETHERNET", 101: "RAW", 113: "LINUX_SLL", 276: "LINUX_SLL2"}
OUTGOING = 4  # SLL/SLL2 packet type: sent by this host


class SignatureError(Exception):
    """The capture does not show what the variant must show (or shows what it must not)."""


@dataclass
class Capture:
    """One capture file of a variant and what identifies its interfaces."""

    folder: Path
    file: str
    host: str
    interface: str
    ifindex: dict[str, int] = field(default_factory=dict)  # name -> ifindex (SLL2 captures)
    decisive: list[dict[str, object]] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.folder / self.file

    def rows(self, display_filter: str, *fields: str) -> list[dict[str, str]]:
        """tshark -Y FILTER: one dict per matching frame with frame.number and the given fields."""
        names = [
            "frame.number",
            "frame.time_epoch",
            "frame.interface_name",
            "sll.ifindex",
            "sll.pkttype",
            *fields,
        ]
        cmd = ["tshark", "-n", "-r", str(self.path), "-Y", display_filter, "-T", "fields"]
        for name in names:
            cmd += ["-e", name]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return [dict(zip(names, line.split("\t"), strict=True)) for line in out.splitlines()]

    def on(self, ifname: str) -> str:
        """Display filter: frames captured on interface IFNAME (pcapng IDB name or SLL2 ifindex)."""
        if self.ifindex:
            return f"sll.ifindex=={self.ifindex[ifname]}"
        return f'frame.interface_name=="{ifname}"'

    def where(self, row: dict[str, str]) -> str:
        """Human-readable interface and direction of one row."""
        if row["sll.ifindex"]:
            names = {v: k for k, v in self.ifindex.items()}
            name = names.get(int(row["sll.ifindex"]), "if" + row["sll.ifindex"])
            direction = "out" if row["sll.pkttype"] == str(OUTGOING) else "in"
            return f"{direction} {name}"
        return row["frame.interface_name"] or self.interface

    def mark(self, row: dict[str, str], role: str, note: str) -> None:
        self.decisive.append({"frame": int(row["frame.number"]), "role": role, "note": note})

    def first(
        self,
        display_filter: str,
        role: str,
        describe: Callable[[dict[str, str]], str],
        *fields: str,
        after: dict[str, str] | None = None,
    ) -> dict[str, str]:
        """Mark the first frame matching FILTER (captured after frame AFTER) as ROLE.

        "First" and "after" go by capture time: a multi-interface pcapng from dumpcap is not in
        time order across interfaces. SignatureError if there is no such frame.
        """
        found = sorted(self.rows(display_filter, *fields), key=when)
        if after is not None:
            found = [r for r in found if when(r) > when(after)]
        if not found:
            raise SignatureError(f"{self.file}: no frame for role {role} ({display_filter})")
        self.mark(found[0], role, describe(found[0]))
        return found[0]

    def count(self, display_filter: str) -> int:
        return len(self.rows(display_filter))


def when(row: dict[str, str]) -> tuple[float, int]:
    """Sort key of a row: capture time, then frame number."""
    return float(row["frame.time_epoch"]), int(row["frame.number"])


def ifindex_from_facts(facts: Path) -> dict[str, int]:
    """name -> ifindex from the `ip -o link` lines of a facts transcript."""
    table: dict[str, int] = {}
    for line in facts.read_text().splitlines():
        m = re.match(r"^(\d+): ([^:@\s]+)(?:@\S+)?: <", line)
        if m:
            table[m.group(2)] = int(m.group(1))
    return table


def linktypes(path: Path) -> list[int]:
    """Link type of a pcap file, or of each Interface Description Block of a pcapng file."""
    data = path.read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return [struct.unpack("<I", data[20:24])[0]]
    if magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        return [struct.unpack(">I", data[20:24])[0]]
    if magic != b"\x0a\x0d\x0d\x0a":
        raise SignatureError(f"{path}: neither pcap nor pcapng")
    endian = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    found, offset = [], 0
    while offset + 12 <= len(data):
        block_type, length = struct.unpack(endian + "II", data[offset : offset + 8])
        if block_type == 1:
            found.append(struct.unpack(endian + "H", data[offset + 8 : offset + 10])[0])
        if length < 12:
            break
        offset += length
    return found


def describe_ip(row: dict[str, str], cap: Capture, what: str) -> str:
    """WHAT + the outer IP header's fields (an ICMP error also carries the quoted inner header)."""
    src, dst, ttl, ipid = (row.get(f, "").split(",")[0] for f in IP_FIELDS)
    return f"{what} {src} > {dst} ttl {ttl} ipid {ipid} ({cap.where(row)})"


IP_FIELDS = ("ip.src", "ip.dst", "ip.ttl", "ip.id")
NOT_ERROR = "!(icmp.type==11) && !(icmp.type==3)"


def loop_groups(cap: Capture, src: str, dst: str, extra: str = "ip") -> list[list[dict[str, str]]]:
    """Packets SRC -> DST seen 3 times or more with one IP id at this vantage point: a loop."""
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in cap.rows(f"ip.src=={src} && ip.dst=={dst} && {NOT_ERROR} && {extra}", *IP_FIELDS):
        groups[row["ip.id"]].append(row)
    return [g for g in groups.values() if len(g) >= 3]


# ---- IPsec selector gap --------------------------------------------------------------------------


def ipsec_faulty(cap: Capture) -> None:
    """Uncovered source loops until TTL expiry; covered source is encapsulated in ESP."""
    echo = f"icmp.type==8 && {NOT_ERROR}"
    loops = loop_groups(cap, IDC_UNCOVERED, REMOTE, "icmp.type==8")
    if not loops:
        raise SignatureError(f"{cap.file}: no looping echo request {IDC_UNCOVERED} > {REMOTE}")
    loop = loops[0]
    ttls = [int(r["ip.ttl"]) for r in loop]
    if ttls != sorted(ttls, reverse=True) or ttls[0] - ttls[-1] < 10:
        raise SignatureError(f"{cap.file}: looping packet's TTL does not fall: {ttls}")
    cap.mark(loop[0], "loop-first-pass", describe_ip(loop[0], cap, "echo request"))
    cap.mark(loop[1], "loop-next-pass", describe_ip(loop[1], cap, "same packet again"))
    cap.mark(loop[-1], "loop-last-pass", describe_ip(loop[-1], cap, "same packet, last pass"))
    cap.first(
        f"icmp.type==11 && icmp.code==0 && ip.src=={GW_PRIVATE} && ip.dst=={IDC_UNCOVERED}",
        "time-exceeded-from-gateway",
        lambda r: describe_ip(r, cap, "ICMP time exceeded from the gateway's private address"),
        *IP_FIELDS,
        after=loop[-1],
    )
    cap.first(
        f"icmp.type==11 && udp && ip.src=={GW_PRIVATE} && ip.dst=={IDC_UNCOVERED}",
        "traceroute-hop-is-gateway",
        lambda r: describe_ip(r, cap, "traceroute probe expired at the gateway"),
        *IP_FIELDS,
    )
    vpc_side = cap.on("eth0") if cap.host == "vpngw" else "ip"
    covered = cap.first(
        f"{echo} && ip.src=={IDC_COVERED} && ip.dst=={REMOTE} && {vpc_side}",
        "covered-request",
        lambda r: describe_ip(r, cap, "echo request"),
        *IP_FIELDS,
    )
    if cap.interface != "any" or cap.count("esp"):  # the VPC router never sees the ESP side
        cap.first(
            f"esp && ip.src=={GW_PUBLIC} && ip.dst=={PEER_PUBLIC}",
            "esp-for-covered",
            lambda r: describe_ip(r, cap, "ESP"),
            *IP_FIELDS,
            after=covered,
        )
    if loop_groups(cap, IDC_COVERED, REMOTE):
        raise SignatureError(f"{cap.file}: the covered source loops too")


def ipsec_healthy(cap: Capture) -> None:
    """Both sources reach the remote host; nothing loops; no ping ever expires."""
    for src in (IDC_COVERED, IDC_UNCOVERED):
        if loop_groups(cap, src, REMOTE):
            raise SignatureError(f"{cap.file}: packets {src} > {REMOTE} loop")
    expired = cap.count(f"icmp.type==11 && ip.dst=={IDC_UNCOVERED} && icmp.type==8")
    if expired:
        raise SignatureError(f"{cap.file}: {expired} echo requests expired")
    echo = f"icmp.type==8 && {NOT_ERROR}"
    vpc_side = cap.on("eth0") if cap.host == "vpngw" else "ip"
    req = cap.first(
        f"{echo} && ip.src=={IDC_UNCOVERED} && ip.dst=={REMOTE} && {vpc_side}",
        "uncovered-source-request",
        lambda r: describe_ip(r, cap, "echo request"),
        *IP_FIELDS,
    )
    if cap.interface != "any":  # the pcapng of the gateway shows the TUN and the public side
        cap.first(
            f"ip.src=={IDC_UNCOVERED} && ip.dst=={REMOTE} && {cap.on('ipsec0')}",
            "into-tunnel",
            lambda r: describe_ip(r, cap, "into the TUN (SPD match)"),
            *IP_FIELDS,
            after=req,
        )
        cap.first(
            f"esp && ip.src=={GW_PUBLIC}",
            "esp-out",
            lambda r: describe_ip(r, cap, "ESP"),
            *IP_FIELDS,
            after=req,
        )
    cap.first(
        f"icmp.type==0 && ip.src=={REMOTE} && ip.dst=={IDC_UNCOVERED}",
        "echo-reply-back",
        lambda r: describe_ip(r, cap, "echo reply"),
        *IP_FIELDS,
        after=req,
    )


# ---- docker0 route hijack ------------------------------------------------------------------------


def docker_faulty_host(cap: Capture, peer: str = ECS1, host: str = ECS3) -> None:
    """At the docker host: requests from PEER in on eth0; ARP for PEER out on docker0; no reply."""
    eth0, docker0 = cap.on("eth0"), cap.on("docker0")
    cap.first(
        f"icmp.type==8 && {NOT_ERROR} && ip.src=={peer} && ip.dst=={host} && {eth0}",
        "request-in-eth0",
        lambda r: describe_ip(r, cap, "echo request"),
        *IP_FIELDS,
    )
    arp = cap.first(
        f"arp.opcode==1 && arp.dst.proto_ipv4=={peer} && {docker0}",
        "arp-for-peer-on-docker0",
        lambda r: f"ARP who-has {peer} tell {r['arp.src.proto_ipv4']} ({cap.where(r)})",
        "arp.src.proto_ipv4",
    )
    if cap.ifindex and arp["sll.pkttype"] != str(OUTGOING):
        raise SignatureError(f"{cap.file}: ARP for {peer} on docker0 is not outgoing")
    cap.first(
        f"tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src=={peer} && ip.dst=={host} && {eth0}",
        "syn-in-eth0",
        lambda r: describe_ip(r, cap, "TCP SYN"),
        *IP_FIELDS,
    )
    back = cap.count(f"ip.src=={host} && ip.dst=={peer} && {NOT_ERROR} && {eth0}")
    if back:
        raise SignatureError(f"{cap.file}: {back} replies to {peer} left on eth0")


def docker_faulty_peer(cap: Capture, peer: str = ECS1, host: str = ECS3) -> None:
    """At the peer: requests and SYN retransmissions out, nothing back."""
    cap.first(
        f"icmp.type==8 && {NOT_ERROR} && ip.src=={peer} && ip.dst=={host}",
        "request-out",
        lambda r: describe_ip(r, cap, "echo request"),
        *IP_FIELDS,
    )
    syn = cap.first(
        f"tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src=={peer} && ip.dst=={host}",
        "syn-out",
        lambda r: describe_ip(r, cap, "TCP SYN"),
        *IP_FIELDS,
    )
    cap.first(
        f"tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src=={peer} && ip.dst=={host}",
        "syn-retransmission",
        lambda r: describe_ip(r, cap, "TCP SYN again"),
        *IP_FIELDS,
        after=syn,
    )
    back = cap.count(f"ip.src=={host} && ip.dst=={peer}")
    if back:
        raise SignatureError(f"{cap.file}: {back} packets came back from {host}")


def docker_healthy_host(cap: Capture) -> None:
    """At the docker host: replies to the peer leave on eth0; nothing for the peer on docker0."""
    eth0 = cap.on("eth0")
    req = cap.first(
        f"icmp.type==8 && {NOT_ERROR} && ip.src=={ECS1} && ip.dst=={ECS3} && {eth0}",
        "request-in-eth0",
        lambda r: describe_ip(r, cap, "echo request"),
        *IP_FIELDS,
    )
    cap.first(
        f"icmp.type==0 && ip.src=={ECS3} && ip.dst=={ECS1} && {eth0}",
        "reply-out-eth0",
        lambda r: describe_ip(r, cap, "echo reply"),
        *IP_FIELDS,
        after=req,
    )
    cap.first(
        f"tcp.flags.syn==1 && tcp.flags.ack==1 && ip.src=={ECS3} && ip.dst=={ECS1} && {eth0}",
        "syn-ack-out-eth0",
        lambda r: describe_ip(r, cap, "TCP SYN-ACK"),
        *IP_FIELDS,
    )
    if "docker0" in cap.ifindex or cap.interface != "any":
        wrong = cap.count(f"(arp.dst.proto_ipv4=={ECS1} || ip.dst=={ECS1}) && {cap.on('docker0')}")
        if wrong:
            raise SignatureError(f"{cap.file}: {wrong} frames for {ECS1} on docker0")


def docker_healthy_peer(cap: Capture) -> None:
    req = cap.first(
        f"icmp.type==8 && {NOT_ERROR} && ip.src=={ECS1} && ip.dst=={ECS3}",
        "request-out",
        lambda r: describe_ip(r, cap, "echo request"),
        *IP_FIELDS,
    )
    cap.first(
        f"icmp.type==0 && ip.src=={ECS3} && ip.dst=={ECS1}",
        "reply-in",
        lambda r: describe_ip(r, cap, "echo reply"),
        *IP_FIELDS,
        after=req,
    )


# ---- the variants --------------------------------------------------------------------------------

IPSEC_ADDRESSES = {
    "client": IDC_UNCOVERED,  # the client that fails (faulty variant)
    "client_covered": IDC_COVERED,
    "client_uncovered": IDC_UNCOVERED,
    "remote": REMOTE,
    "gateway": GW_PRIVATE,
    "gateway_public": GW_PUBLIC,
    "peer_gateway_public": PEER_PUBLIC,
    "vpc_router": VPC_ROUTER,
    "local_subnet": "10.16.0.0/16",
    "remote_subnet": "10.200.0.0/20",
}
DOCKER_ADDRESSES = {
    "client": ECS1,  # the peer whose address falls in the bridge subnet
    "host": ECS3,
    "peer": ECS1,
    "other_peer": ECS2,
    "gateway": ECS3_GATEWAY,
    "bridge": "docker0",
}
IPSEC_EMULATED = (
    "Hosts and routers are network namespaces with veth links; routing, TTL expiry, ICMP time exceeded "
    "and traceroute are the real kernel's. The cloud VPC router is a namespace whose route for "
    "10.200.0.0/20 points at the VPN gateway and which does not answer traceroute (nftables drops its "
    "own ICMP time exceeded, as a cloud vRouter does). The kernel has no ESP/xfrm: the gateway's IPsec "
    "is emulated in user space (samples/lab/partb/esp_gateway.py, like strongSwan's kernel-libipsec): "
    "the SPD lookup of the traffic selectors is an `ip rule from <local_ts> to <remote_ts> lookup 220` "
    "steering matching packets into the TUN device ipsec0, and the program wraps them in RFC 4303 "
    "tunnel-mode ESP (NULL encryption per RFC 2410, HMAC-SHA-256-128) over raw IP protocol 50. "
    "ipsec.conf and swanctl.conf are written to match; no IKE runs."
)
DOCKER_EMULATED = (
    "Hosts, the router and the container are network namespaces; docker0 is a real Linux bridge with "
    "the address and connected route docker would give it, the container a veth attached to it, and "
    "docker's iptables rules are installed as dockerd would; dockerd itself does not run, daemon.json "
    "and `docker network inspect bridge` are written to match. Routing, ARP and the reply direction "
    "are the real kernel's."
)


@dataclass
class Variant:
    pattern: str
    rules: list[str]
    description: str
    emulated: str
    addresses: Mapping[str, object]
    captures: list[tuple[str, str, str, Callable[[Capture], None]]]  # file, host, iface, check


def variants() -> dict[tuple[str, str], Variant]:
    ipsec_common = (
        "IDC clients 10.16.1.10 (inside the IPsec local subnet) and 10.64.3.22 (outside it) ping, "
        "traceroute (-m 10 -q 1 -w 1) and fetch over HTTP the remote host 10.200.1.15 behind the "
        "peer gateway; the VPC route for 10.200.0.0/20 points at the VPN gateway 10.100.1.18, whose "
        "default route points back at the VPC router; background: HTTP from both clients to a VPC "
        "host and ESP-carried HTTP for the covered client. "
    )
    docker_common = (
        "Three hosts in different subnets behind a router: ECS1 172.17.0.64, ECS2 172.18.1.22 and "
        "ECS3 172.31.4.18; ECS3 runs docker with a container on docker0 (which also fetches from "
        "ECS2 through docker's MASQUERADE). ECS1 and ECS2 ping ECS3 and connect to its TCP port 80. "
    )
    gw, gw_h, rt, rt_h = ipsec_faulty, ipsec_healthy, ipsec_faulty, ipsec_healthy
    return {
        ("ipsec-selector-gap", "faulty"): Variant(
            "ipsec-selector-gap",
            ["VPN001"],
            ipsec_common + "The IPsec local subnet (leftsubnet / local_ts) is 10.16.0.0/16 only: "
            "10.64.3.22's packets are not encapsulated, go back to the VPC router and loop between it "
            "and the gateway, TTL falling by 2 per round, until the gateway sends ICMP time exceeded "
            "from 10.100.1.18; its traceroute shows 10.100.1.18 on every other hop, stars between. "
            "10.16.1.10's packets leave as ESP.",
            IPSEC_EMULATED,
            IPSEC_ADDRESSES,
            [
                ("vpngw.pcapng", "vpngw", "eth0,eth1,ipsec0", gw),
                ("vpcrt-any.pcap", "vpcrt", "any", rt),
            ],
        ),
        ("ipsec-selector-gap", "healthy"): Variant(
            "healthy",
            [],
            ipsec_common + "The local subnet is widened to 10.16.0.0/16,10.64.0.0/16 on both "
            "gateways: both clients' packets are encapsulated and answered; traceroute reaches the "
            "remote host (hop 2 is the gateway 10.100.1.18, a normal hop, not a loop).",
            IPSEC_EMULATED,
            {**IPSEC_ADDRESSES, "local_subnet": "10.16.0.0/16,10.64.0.0/16"},
            [
                ("vpngw.pcapng", "vpngw", "eth0,eth1,ipsec0", gw_h),
                ("vpcrt-any.pcap", "vpcrt", "any", rt_h),
            ],
        ),
        ("docker0-route-hijack", "faulty"): Variant(
            "docker0-route-hijack",
            ["RT001"],
            docker_common + "ECS3 has the connected route 172.17.0.0/16 dev docker0, which covers "
            "ECS1: ECS1's echo requests and SYNs arrive on eth0, but ECS3 looks for 172.17.0.64 on "
            "docker0 (ARP who-has out of docker0, never answered) and nothing returns on eth0; ECS1 "
            "sees no reply and retransmits its SYN. ECS2 is answered normally.",
            DOCKER_EMULATED,
            {**DOCKER_ADDRESSES, "bridge_subnet": "172.17.0.0/16"},
            [
                ("ecs3-any.pcap", "ecs3", "any", docker_faulty_host),
                ("ecs3.pcapng", "ecs3", "eth0,docker0", docker_faulty_host),
                ("ecs1-eth0.pcap", "ecs1", "eth0", docker_faulty_peer),
            ],
        ),
        ("docker0-route-hijack", "healthy"): Variant(
            "healthy",
            [],
            docker_common + "docker's bip is moved to 172.30.0.1/16 (daemon.json): docker0's route "
            "no longer covers ECS1, replies leave on eth0 via the router.",
            DOCKER_EMULATED,
            {**DOCKER_ADDRESSES, "bridge_subnet": "172.30.0.0/16"},
            [
                ("ecs3-any.pcap", "ecs3", "any", docker_healthy_host),
                ("ecs1-eth0.pcap", "ecs1", "eth0", docker_healthy_peer),
            ],
        ),
        ("docker0-route-hijack", "healthy-specific-route"): Variant(
            "healthy",
            [],
            docker_common + "docker0 keeps 172.17.0.1/16, but ECS3 has the more specific route "
            "172.17.0.64/32 via 172.31.0.253 dev eth0: replies to ECS1 leave on eth0.",
            DOCKER_EMULATED,
            {**DOCKER_ADDRESSES, "bridge_subnet": "172.17.0.0/16"},
            [
                ("ecs3-any.pcap", "ecs3", "any", docker_healthy_host),
                ("ecs1-eth0.pcap", "ecs1", "eth0", docker_healthy_peer),
            ],
        ),
        ("busy", "faulty"): Variant(
            "docker0-route-hijack",
            ["RT001"],
            docker_common + "Busy: over 50,000 packets of healthy background (hundreds of TCP "
            "request/response connections from ECS2 and the container, DNS-like UDP queries, "
            "pings) captured with snaplen 128; in the middle, ECS1 pings ECS3 three times and tries "
            "one TCP connection: the docker0 route hijack, as in docker0-route-hijack/faulty.",
            DOCKER_EMULATED + " Captured with -s 128 (bulk payload truncated) to stay small.",
            {**DOCKER_ADDRESSES, "bridge_subnet": "172.17.0.0/16"},
            [
                ("ecs3-any.pcap", "ecs3", "any", docker_faulty_host),
                ("ecs1-eth0.pcap", "ecs1", "eth0", docker_faulty_peer),
            ],
        ),
        ("combined", "faulty"): Variant(
            "ipsec-selector-gap+docker0-route-hijack",
            ["VPN001", "RT001"],
            ipsec_common + "Two faults in one capture: the gateway's local subnet misses "
            "10.64.3.22 (the IPsec loop of ipsec-selector-gap/faulty), and the gateway itself, a "
            "self-managed strongSwan VM, also runs docker (docker0 172.17.0.1/16) while ECS1 "
            "172.17.0.64, a VPC host behind the VPC router, pings and connects to it: the replies "
            "go to docker0 (ARP who-has out of docker0). Capture on the gateway with -i any.",
            IPSEC_EMULATED + " " + DOCKER_EMULATED,
            {
                **IPSEC_ADDRESSES,
                "docker_host": GW_PRIVATE,
                "docker_peer": ECS1,
                "bridge": "docker0",
                "bridge_subnet": "172.17.0.0/16",
            },
            [("vpngw-any.pcap", "vpngw", "any", combined_check)],
        ),
    }


def combined_check(cap: Capture) -> None:
    ipsec_faulty(cap)
    docker_faulty_host(cap, peer=ECS1, host=GW_PRIVATE)


def build(pattern: str, variant_name: str, folder: Path) -> dict[str, object]:
    variant = variants()[(pattern, variant_name)]
    captures: list[dict[str, object]] = []
    for file, host, iface, check in variant.captures:
        ifindex = ifindex_from_facts(folder / "facts" / f"{host}.txt") if iface == "any" else {}
        cap = Capture(folder, file, host, iface, ifindex)
        check(cap)
        kinds = [LINKTYPE_NAMES.get(t, str(t)) for t in linktypes(cap.path)]
        captures.append(
            {
                "file": file,
                "host": host,
                "interface": iface,
                "linktype": ",".join(kinds),
                "decisive": sorted(cap.decisive, key=lambda d: int(str(d["frame"]))),
            }
        )
    return {
        "pattern": variant.pattern,
        "rules": variant.rules,
        "description": variant.description,
        "emulated": variant.emulated,
        "addresses": dict(variant.addresses),
        "captures": captures,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: expect.py PATTERN VARIANT FOLDER", file=sys.stderr)
        return 2
    pattern, variant_name, folder = argv[0], argv[1], Path(argv[2])
    try:
        truth = build(pattern, variant_name, folder)
    except SignatureError as e:
        print(f"expect.py: {pattern}/{variant_name}: signature check FAILED: {e}", file=sys.stderr)
        return 1
    with open(folder / "expected.yaml", "w") as f:
        yaml.safe_dump(truth, f, sort_keys=False, width=100, allow_unicode=True)
    print(f"expect.py: {pattern}/{variant_name}: signature check ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
