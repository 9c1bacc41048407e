"""Checks of the committed part-b lab samples (IPsec selector gap, docker0 route hijack, busy, combined).

Needs no root: it reads the files under samples/. The structural checks (captures, expected.yaml,
facts, README, sizes, link types, frame numbers in range) use only Python; the signature checks
run tshark with display filters written independently of samples/lab/partb/expect.py and are
skipped when tshark is missing.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import yaml

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

# sample variant folder -> what it must show
VARIANTS = {
    "ipsec-selector-gap/faulty": "ipsec-faulty",
    "ipsec-selector-gap/healthy": "ipsec-healthy",
    "docker0-route-hijack/faulty": "docker-faulty",
    "docker0-route-hijack/healthy": "docker-healthy",
    "docker0-route-hijack/healthy-specific-route": "docker-healthy",
    "busy/faulty": "docker-faulty",
    "combined/faulty": "combined",
}
EXPECTED_RULES = {
    "ipsec-faulty": ["VPN001"],
    "ipsec-healthy": [],
    "docker-faulty": ["RT001"],
    "docker-healthy": [],
    "combined": ["VPN001", "RT001"],
}
LINKTYPES = {1: "ETHERNET", 101: "RAW", 276: "LINUX_SLL2"}
FACTS_COMMANDS = [
    "ip -o addr",
    "ip route",
    "ip rule",
    "ip link",
    "ip -o link",
    "ip neigh",
    "sysctl",
    "ss -ltn",
]

# what the frame of each decisive role must be (display filters, independent of expect.py)
PEER = "172.17.0.64"
ROLE_FILTERS = {
    "covered-request": "icmp.type==8 && ip.src==10.16.1.10 && ip.dst==10.200.1.15",
    "esp-for-covered": "esp && ip.src==198.51.100.18 && ip.dst==198.51.100.20",
    "esp-out": "esp && ip.src==198.51.100.18",
    "loop-first-pass": "icmp.type==8 && ip.src==10.64.3.22 && ip.dst==10.200.1.15 && !icmp.type==11",
    "loop-next-pass": "icmp.type==8 && ip.src==10.64.3.22 && ip.dst==10.200.1.15 && !icmp.type==11",
    "loop-last-pass": "icmp.type==8 && ip.src==10.64.3.22 && ip.ttl==1 && !icmp.type==11",
    "time-exceeded-from-gateway": "icmp.type==11 && icmp.code==0 && ip.src==10.100.1.18",
    "traceroute-hop-is-gateway": "icmp.type==11 && udp && ip.src==10.100.1.18",
    "uncovered-source-request": "icmp.type==8 && ip.src==10.64.3.22 && ip.dst==10.200.1.15",
    "into-tunnel": "ip.src==10.64.3.22 && ip.dst==10.200.1.15",
    "echo-reply-back": "icmp.type==0 && ip.src==10.200.1.15 && ip.dst==10.64.3.22",
    "request-in-eth0": f"icmp.type==8 && ip.src=={PEER}",
    "request-out": f"icmp.type==8 && ip.src=={PEER}",
    "arp-for-peer-on-docker0": f"arp.opcode==1 && arp.dst.proto_ipv4=={PEER}",
    "syn-in-eth0": f"tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src=={PEER}",
    "syn-out": f"tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src=={PEER}",
    "syn-retransmission": f"tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src=={PEER}",
    "reply-out-eth0": f"icmp.type==0 && ip.dst=={PEER}",
    "reply-in": f"icmp.type==0 && ip.dst=={PEER}",
    "syn-ack-out-eth0": f"tcp.flags.syn==1 && tcp.flags.ack==1 && ip.dst=={PEER}",
}

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def load(variant: str) -> dict:
    return yaml.safe_load((SAMPLES / variant / "expected.yaml").read_text())


def file_summary(path: Path) -> tuple[list[int], int]:
    """(link type per interface, number of packets) of a pcap or pcapng file, read directly."""
    data = path.read_bytes()
    magic = data[:4]
    if magic in (
        b"\xd4\xc3\xb2\xa1",
        b"\x4d\x3c\xb2\xa1",
        b"\xa1\xb2\xc3\xd4",
        b"\xa1\xb2\x3c\x4d",
    ):
        endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        linktype = struct.unpack(endian + "I", data[20:24])[0]
        count, offset = 0, 24
        while offset + 16 <= len(data):
            caplen = struct.unpack(endian + "I", data[offset + 8 : offset + 12])[0]
            offset += 16 + caplen
            count += 1
        return [linktype], count
    assert magic == b"\x0a\x0d\x0d\x0a", f"{path}: neither pcap nor pcapng"
    endian = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    linktypes, count, offset = [], 0, 0
    while offset + 12 <= len(data):
        block_type, length = struct.unpack(endian + "II", data[offset : offset + 8])
        if block_type == 1:
            linktypes.append(struct.unpack(endian + "H", data[offset + 8 : offset + 10])[0])
        elif block_type in (2, 3, 6):
            count += 1
        assert length >= 12, f"{path}: bad block length at {offset}"
        offset += length
    return linktypes, count


def ifindex(facts: Path) -> dict[str, int]:
    """name -> ifindex from the `ip -o link` lines of a transcript."""
    found = {}
    for line in facts.read_text().splitlines():
        m = re.match(r"^(\d+): ([^:@\s]+)(?:@\S+)?: <", line)
        if m:
            found[m.group(2)] = int(m.group(1))
    return found


def tshark(path: Path, display_filter: str, *fields: str) -> list[list[str]]:
    cmd = ["tshark", "-n", "-r", str(path), "-Y", display_filter, "-T", "fields"]
    for f in fields or ("frame.number",):
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_folder_is_complete(variant: str) -> None:
    folder = SAMPLES / variant
    truth = load(variant)
    assert set(truth) >= {"pattern", "rules", "description", "emulated", "addresses", "captures"}
    assert truth["rules"] == EXPECTED_RULES[VARIANTS[variant]]
    assert (truth["pattern"] == "healthy") == (truth["rules"] == [])
    assert len(truth["description"]) > 100 and len(truth["emulated"]) > 100
    assert (folder / "README.md").stat().st_size > 500
    limit = 20_000_000 if variant.startswith("busy/") else 1_000_000
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total < limit
    for cap in truth["captures"]:
        path = folder / cap["file"]
        linktypes, packets = file_summary(path)
        assert cap["linktype"] == ",".join(LINKTYPES[t] for t in linktypes)
        assert len(cap["interface"].split(",")) == len(linktypes)
        frames = [d["frame"] for d in cap["decisive"]]
        assert frames and all(1 <= f <= packets for f in frames), (cap["file"], packets)
        assert all(d["role"] in ROLE_FILTERS for d in cap["decisive"])
        facts = folder / "facts" / f"{cap['host']}.txt"
        text = facts.read_text()
        for command in FACTS_COMMANDS:
            assert f"[root@{cap['host']} ~]# {command}" in text, (facts, command)
        if cap["interface"] == "any":
            assert {"eth0", "lo"} <= set(ifindex(facts))


def test_sample_formats_cover_the_brief() -> None:
    """Cooked v2, Ethernet, a multi-interface pcapng with mixed link types, a nanosecond pcap."""
    kinds = set()
    for variant in VARIANTS:
        for cap in load(variant)["captures"]:
            kinds.add(cap["linktype"])
            if (SAMPLES / variant / cap["file"]).read_bytes()[:4] == b"\x4d\x3c\xb2\xa1":
                kinds.add("nanosecond")
    assert {"LINUX_SLL2", "ETHERNET", "ETHERNET,ETHERNET,RAW", "nanosecond"} <= kinds


def test_busy_sample_is_busy() -> None:
    truth = load("busy/faulty")
    _, packets = file_summary(SAMPLES / "busy/faulty" / truth["captures"][0]["file"])
    assert packets >= 50_000


def test_product_configs_match_the_variant() -> None:
    faulty = (SAMPLES / "ipsec-selector-gap/faulty/facts/vpngw.ipsec.conf").read_text()
    healthy = (SAMPLES / "ipsec-selector-gap/healthy/facts/vpngw.ipsec.conf").read_text()
    assert "leftsubnet=10.16.0.0/16\n" in faulty
    assert "leftsubnet=10.16.0.0/16,10.64.0.0/16\n" in healthy
    swan = (SAMPLES / "ipsec-selector-gap/faulty/facts/vpngw.swanctl.conf").read_text()
    assert "local_ts = 10.16.0.0/16\n" in swan and "remote_ts = 10.200.0.0/20" in swan
    route = (SAMPLES / "docker0-route-hijack/faulty/facts/ecs3.txt").read_text()
    assert "172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1" in route
    assert (
        '"bip": "172.30.0.1/16"'
        in (SAMPLES / "docker0-route-hijack/healthy/facts/ecs3.daemon.json").read_text()
    )
    specific = (SAMPLES / "docker0-route-hijack/healthy-specific-route/facts/ecs3.txt").read_text()
    assert "172.17.0.64 via 172.31.0.253 dev eth0" in specific


@needs_tshark
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_decisive_frames_have_their_role(variant: str) -> None:
    for cap in load(variant)["captures"]:
        wanted = {d["frame"] for d in cap["decisive"]}
        either = " || ".join(
            f"(frame.number=={d['frame']} && {ROLE_FILTERS[d['role']]})" for d in cap["decisive"]
        )
        found = {int(row[0]) for row in tshark(SAMPLES / variant / cap["file"], either)}
        assert found == wanted, (cap["file"], sorted(wanted - found))


def loop_count(path: Path, interface_filter: str) -> int:
    """Most passes of one echo request 10.64.3.22 -> 10.200.1.15 (same IP id) at this point."""
    rows = tshark(
        path, f"icmp.type==8 && !icmp.type==11 && ip.src==10.64.3.22 && {interface_filter}", "ip.id"
    )
    ids = [r[0] for r in rows]
    return max((ids.count(i) for i in set(ids)), default=0)


def on_interface(variant: str, cap: dict, name: str) -> str:
    if cap["interface"] == "any":
        return f"sll.ifindex=={ifindex(SAMPLES / variant / 'facts' / (cap['host'] + '.txt'))[name]}"
    return f'frame.interface_name=="{name}"'


@needs_tshark
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_signature_present_in_faulty_absent_in_healthy(variant: str) -> None:
    kind = VARIANTS[variant]
    for cap in load(variant)["captures"]:
        path = SAMPLES / variant / cap["file"]
        if kind in ("ipsec-faulty", "ipsec-healthy", "combined"):
            expired_pings = len(
                tshark(path, "icmp.type==11 && icmp.type==8 && ip.src==10.100.1.18")
            )
            loops = loop_count(path, "ip")
            if kind == "ipsec-healthy":
                assert expired_pings == 0 and loops <= 2, cap["file"]
                assert tshark(path, "icmp.type==0 && ip.dst==10.64.3.22"), cap["file"]
            else:
                assert expired_pings >= 3 and loops >= 20, (cap["file"], expired_pings, loops)
                assert not tshark(path, "icmp.type==0 && ip.dst==10.64.3.22"), cap["file"]
        if kind in ("docker-faulty", "docker-healthy", "combined"):
            host = "10.100.1.18" if kind == "combined" else "172.31.4.18"
            back = tshark(
                path, f"ip.src=={host} && ip.dst=={PEER} && !icmp.type==11 && !icmp.type==3"
            )
            if cap["host"] in ("ecs3", "vpngw"):
                docker0 = on_interface(variant, cap, "docker0")
                for_peer_on_docker0 = tshark(
                    path, f"(arp.dst.proto_ipv4=={PEER} || ip.dst=={PEER}) && {docker0}"
                )
            else:
                for_peer_on_docker0 = []
            if kind == "docker-healthy":
                assert back and not for_peer_on_docker0, cap["file"]
            else:
                assert not back, cap["file"]
                if cap["host"] in ("ecs3", "vpngw"):
                    assert for_peer_on_docker0, cap["file"]
