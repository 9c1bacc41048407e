"""Committed multi-point lab samples (issue 8): one incident captured at several points at once.

Checks the files as committed, without root, namespaces or tshark: every capture is read by the
small decoder below (pcap / pcapng, Ethernet / Linux cooked v2, IPv4, TCP, ARP), so the ground
truth of expected.yaml (decisive frames, the `points` section: connections traced across the
points by client port and ISN, the reply missing at the translating point, the same ARP reply at
several points) is checked against the packets themselves, and against the capture commands and
drop counts in the facts transcripts.
"""

from __future__ import annotations

import re
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
VARIANTS = {
    "nat-gateway/faulty-asymmetric-return": ["NAT004", "NAT001"],
    "nat-gateway/healthy-port-forward": [],
    "lb-hairpin/faulty-l4-two-points": ["LB001"],
    "lvs-dr-arp/faulty-arp-ignore-rs": ["ARP001"],
}
LINKTYPES = {1: "EN10MB", 276: "LINUX_SLL2"}
TCP_NOTE = re.compile(
    r"^(SYN-ACK|SYN|RST|ACK) ([\d.]+):(\d+) > ([\d.]+):(\d+) seq (\d+)(?: ack (\d+))?"
    r"(?: on (\S+)| ifindex (\d+) (in|out))?"
)
ARP_NOTE = re.compile(r"^ARP (request|reply) sender ([\d.]+) is-at ([0-9a-f:]+)")
PF = {
    "public": "203.0.113.10",
    "client": "203.0.113.50",
    "server": "10.0.2.20",
    "web2": "10.0.2.21",
    "gwa_lan_mac": "02:00:0a:00:02:01",
    "gwb_lan_mac": "02:00:0a:00:02:02",
}


# ---- a minimal capture decoder (only what these samples contain) ---------------------------------
def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _ip(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def _decode(data: bytes, linktype: int) -> dict[str, Any]:
    """Header fields of one frame: eth, SLL2 direction, IPv4, TCP or ARP (None when absent)."""
    pkt: dict[str, Any] = {"linktype": LINKTYPES.get(linktype, str(linktype))}
    if linktype == 1:
        pkt["eth_dst"], pkt["eth_src"] = _mac(data[0:6]), _mac(data[6:12])
        ethertype, payload = struct.unpack("!H", data[12:14])[0], data[14:]
    elif linktype == 276:
        ethertype, _, ifindex = struct.unpack("!HHI", data[0:8])
        pkt["ifindex"], pkt["outgoing"] = ifindex, data[10] == 4
        payload = data[20:]
    else:
        return pkt
    if ethertype == 0x0806 and len(payload) >= 28:
        op = struct.unpack("!H", payload[6:8])[0]
        pkt["arp"] = {
            "op": op,
            "sha": _mac(payload[8:14]),
            "spa": _ip(payload[14:18]),
            "tpa": _ip(payload[24:28]),
        }
    elif ethertype == 0x0800 and len(payload) >= 20:
        ihl = (payload[0] & 0x0F) * 4
        pkt["src"], pkt["dst"], pkt["proto"] = _ip(payload[12:16]), _ip(payload[16:20]), payload[9]
        tcp = payload[ihl:]
        if pkt["proto"] == 6 and len(tcp) >= 20:
            sport, dport, seq, ack = struct.unpack("!HHII", tcp[0:12])
            flags = tcp[13]
            pkt["tcp"] = {
                "sport": sport,
                "dport": dport,
                "seq": seq,
                "ack": ack,
                "syn": bool(flags & 0x02),
                "has_ack": bool(flags & 0x10),
                "rst": bool(flags & 0x04),
            }
    return pkt


def read_capture(path: Path) -> list[dict[str, Any]]:
    """Frames of a pcap or pcapng in file order (frame n is element n - 1), decoded."""
    data = path.read_bytes()
    frames = []
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        endian = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        interfaces: list[tuple[int, str]] = []
        pos = 0
        while pos + 12 <= len(data):
            btype, blen = struct.unpack(endian + "II", data[pos : pos + 8])
            body = data[pos + 8 : pos + blen - 4]
            if btype == 1:
                linktype = struct.unpack(endian + "H", body[0:2])[0]
                name, opt = "", 8
                while opt + 4 <= len(body):
                    code, length = struct.unpack(endian + "HH", body[opt : opt + 4])
                    if code == 0:
                        break
                    if code == 2:
                        name = body[opt + 4 : opt + 4 + length].decode()
                    opt += 4 + (length + 3) // 4 * 4
                interfaces.append((linktype, name))
            elif btype == 6:
                iface, _, _, caplen = struct.unpack(endian + "IIII", body[0:16])
                linktype, name = interfaces[iface]
                pkt = _decode(body[20 : 20 + caplen], linktype)
                pkt["interface"] = name
                frames.append(pkt)
            pos += blen
        return frames
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[pos + 8 : pos + 12])[0]
        frames.append(_decode(data[pos + 16 : pos + 16 + incl], linktype))
        pos += 16 + incl
    return frames


# ---- helpers ------------------------------------------------------------------------------------
def load(variant: str) -> tuple[Path, dict[str, Any]]:
    folder = SAMPLES / variant
    doc = yaml.safe_load((folder / "expected.yaml").read_text())
    assert isinstance(doc, dict)
    return folder, doc


def captures_by_point(folder: Path, doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {v["name"]: read_capture(folder / v["file"]) for v in doc["points"]["vantage"]}


def frame(frames: list[dict[str, Any]], number: int) -> dict[str, Any]:
    assert 1 <= number <= len(frames)
    return frames[number - 1]


def is_syn(p: dict[str, Any]) -> bool:
    return "tcp" in p and p["tcp"]["syn"] and not p["tcp"]["has_ack"]


def is_synack(p: dict[str, Any]) -> bool:
    return "tcp" in p and p["tcp"]["syn"] and p["tcp"]["has_ack"]


def endpoint(addr: str, port: int) -> str:
    return f"{addr}:{port}"


# ---- every variant ------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_expected_yaml_is_valid_and_names_the_rules(variant: str) -> None:
    folder, doc = load(variant)
    assert doc["rules"] == VARIANTS[variant]
    assert (doc["pattern"] == "healthy") is (not VARIANTS[variant])
    points = doc["points"]
    assert set(points) >= {"vantage", "translations", "missing"}
    files = [c["file"] for c in doc["captures"]]
    assert [v["file"] for v in points["vantage"]] == files
    assert len(files) >= 2, "a multi-point sample has at least two vantage points"
    names = [v["name"] for v in points["vantage"]]
    assert len(set(names)) == len(names)
    for v, cap in zip(points["vantage"], doc["captures"], strict=True):
        assert (v["host"], v["interface"]) == (cap["host"], cap["interface"])
        assert (folder / "facts" / f"{v['host']}.txt").is_file()
    for t in points["translations"]:
        assert set(t) == {"at", "kind", "proto", "from", "to"} and t["kind"] in ("DNAT", "DR-MAC")
    for m in points["missing"]:
        assert m["never_at"] in names and m["never_at"] not in m["seen_at"]
        assert set(m["seen_at"]) <= set(names) and m["connections"]
    assert bool(points["missing"]) is (variant.split("/")[0] != "lvs-dr-arp" and bool(doc["rules"]))
    readme = (folder / "README.md").read_text()
    for word in ("## Capture points", "Real", "Emulated", "Crafted", "make.sh"):
        assert word in readme


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_packet_counts_and_drop_counters_match_the_facts(variant: str) -> None:
    """Each capture has traffic; tcpdump's own report (in the facts) gives its count and 0 drops."""
    folder, doc = load(variant)
    for cap in doc["captures"]:
        frames = read_capture(folder / cap["file"])
        assert len(frames) >= 20
        assert {p["linktype"] for p in frames} == set(cap["linktype"].split(","))
        facts = (folder / "facts" / f"{cap['host']}.txt").read_text()
        command = re.search(
            rf"^root@{cap['host']}:~# (\S+) .*-w {re.escape(cap['file'])}", facts, re.M
        )
        assert command, f"no capture command for {cap['file']} in facts/{cap['host']}.txt"
        if command.group(1) == "tcpdump":
            after = facts[command.end() :]
            captured = int(re.search(r"^(\d+) packets captured", after, re.M).group(1))  # type: ignore[union-attr]
            dropped = int(re.search(r"^(\d+) packets dropped by kernel", after, re.M).group(1))  # type: ignore[union-attr]
            assert (captured, dropped) == (len(frames), 0)
        else:
            ifaces = re.findall(r"-i (\S+)", command.group(0))
            assert ",".join(ifaces) == cap["interface"]
            assert {p["interface"] for p in frames} == set(ifaces)


@pytest.mark.parametrize("variant", [v for v, rules in VARIANTS.items() if rules])
def test_decisive_frames_have_the_content_their_note_says(variant: str) -> None:
    folder, doc = load(variant)
    checked = 0
    for cap in doc["captures"]:
        frames = read_capture(folder / cap["file"])
        assert cap["decisive"]
        for d in cap["decisive"]:
            p = frame(frames, d["frame"])
            tcp_note, arp_note = TCP_NOTE.match(d["note"]), ARP_NOTE.match(d["note"])
            if tcp_note:
                kind, src, sport, dst, dport, seq, ack, iface, ifindex, way = tcp_note.groups()
                t = p["tcp"]
                assert (p["src"], t["sport"], p["dst"], t["dport"], t["seq"]) == (
                    src,
                    int(sport),
                    dst,
                    int(dport),
                    int(seq),
                )
                assert kind != "SYN" or is_syn(p)
                assert kind != "SYN-ACK" or is_synack(p)
                assert kind != "RST" or t["rst"]
                assert ack is None or (t["has_ack"] and t["ack"] == int(ack))
                assert iface is None or p["interface"] == iface
                assert ifindex is None or (p["ifindex"], p["outgoing"]) == (
                    int(ifindex),
                    way == "out",
                )
            elif arp_note:
                op, spa, sha = arp_note.groups()
                assert p["arp"]["op"] == (2 if op == "reply" else 1)
                assert (p["arp"]["spa"], p["arp"]["sha"]) == (spa, sha)
            elif d["note"].startswith("ARP "):
                assert "arp" in p and p["arp"]["spa"] in d["note"]
            else:
                continue
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("variant", [v for v in VARIANTS if not v.startswith("lvs-dr-arp")])
def test_connections_keep_their_isn_across_points_and_the_rewrite(variant: str) -> None:
    """Every traced connection: all its SYN frames at every point carry the client port and ISN
    (the destination is the service before the rewrite and the real server after it); all its
    SYN-ACK frames acknowledge ISN + 1; the outcome says whether the translator saw a reply."""
    folder, doc = load(variant)
    points = doc["points"]
    frames = captures_by_point(folder, doc)
    translator = {t["from"]: t["at"] for t in points["translations"]}
    targets: dict[str, set[str]] = {}
    for t in points["translations"]:
        targets.setdefault(t["from"], set()).add(t["to"])
    assert points["connections"]
    for c in points["connections"]:
        client, port = c["client"].rsplit(":", 1)
        dsts = set()
        for name, numbers in c["syn"].items():
            for n in numbers:
                p = frame(frames[name], n)
                assert is_syn(p)
                assert (p["src"], p["tcp"]["sport"], p["tcp"]["seq"]) == (
                    client,
                    int(port),
                    c["isn"],
                )
                dsts.add(endpoint(p["dst"], p["tcp"]["dport"]))
        assert c["to"] in dsts, "the SYN is seen before the rewrite"
        assert set(c["translated_to"]) == dsts - {c["to"]} != set()
        assert set(c["translated_to"]) <= targets[c["to"]]
        assert len(c["syn"]) >= 2, "the same ISN is seen at two points at least"
        for name, numbers in c["syn_ack"].items():
            for n in numbers:
                p = frame(frames[name], n)
                assert is_synack(p)
                assert (p["dst"], p["tcp"]["dport"], p["tcp"]["ack"]) == (
                    client,
                    int(port),
                    c["isn"] + 1,
                )
        at = translator[c["to"]]
        answered = any(
            is_synack(p)
            and p["dst"] == client
            and p["tcp"]["dport"] == int(port)
            and p["tcp"]["ack"] == c["isn"] + 1
            for p in frames[at]
        )
        assert answered is (at in c["syn_ack"])
        assert c["outcome"] == (
            "answered-through-translator"
            if answered
            else "reply-bypassed-translator"
            if c["syn_ack"]
            else "unanswered"
        )
    for m in points["missing"]:
        lost = [c for c in points["connections"] if c["client"] in m["connections"]]
        assert lost and all(c["outcome"] == "reply-bypassed-translator" for c in lost)
        seen = {name for c in lost for name in c["syn_ack"]}
        assert seen == set(m["seen_at"])


# ---- per variant ----------------------------------------------------------------------------------
def test_asymmetric_return_reply_leaves_through_the_other_gateway() -> None:
    folder, doc = load("nat-gateway/faulty-asymmetric-return")
    points = doc["points"]
    frames = captures_by_point(folder, doc)
    (missing,) = points["missing"]
    assert missing["seen_at"] == ["client", "gwb", "server"] and missing["never_at"] == "gwa"
    by_to: dict[str, list[dict[str, Any]]] = {}
    for c in points["connections"]:
        by_to.setdefault(c["to"], []).append(c)
    assert len(by_to["203.0.113.10:8080"]) == 3 and len(by_to["203.0.113.10:8081"]) == 3
    assert all(c["outcome"] == "reply-bypassed-translator" for c in by_to["203.0.113.10:8080"])
    assert all(c["outcome"] == "answered-through-translator" for c in by_to["203.0.113.10:8081"])
    for c in by_to["203.0.113.10:8080"]:
        port = int(c["client"].rsplit(":", 1)[1])
        # gwa: before and after the rewrite, same ISN, and never a reply for that port
        gwa = [frame(frames["gwa"], n) for n in c["syn"]["gwa"]]
        assert {endpoint(p["dst"], p["tcp"]["dport"]) for p in gwa} == {
            "203.0.113.10:8080",
            "10.0.2.20:80",
        }
        assert {p["outgoing"] for p in gwa} == {False, True}
        assert not any(
            "tcp" in p and p["tcp"]["dport"] == port and p["dst"] == PF["client"]
            for p in frames["gwa"]
        )
        # server: the SYN delivered by gwa's MAC, the SYN-ACK sent to gwb's MAC
        assert {frame(frames["server"], n)["eth_src"] for n in c["syn"]["server"]} == {
            PF["gwa_lan_mac"]
        }
        assert {frame(frames["server"], n)["eth_dst"] for n in c["syn_ack"]["server"]} == {
            PF["gwb_lan_mac"]
        }
        # gwb forwards it untranslated (in on eth1, out on eth0), the client sees the private source
        assert {frame(frames["gwb"], n)["interface"] for n in c["syn_ack"]["gwb"]} == {
            "eth0",
            "eth1",
        }
        assert c["syn_ack_from"] == ["10.0.2.20:80"]
        assert "gwb" not in c["syn"]
        assert any(
            p.get("src") == PF["client"] and p["tcp"]["rst"] and p["tcp"]["sport"] == port
            for p in frames["client"]
            if "tcp" in p
        )
    for c in by_to["203.0.113.10:8081"]:
        assert set(c["syn_ack_from"]) == {"203.0.113.10:8081", "10.0.2.21:80"}
        assert "gwb" not in c["syn"] and "gwb" not in c["syn_ack"]


def test_healthy_port_forward_replies_come_back_through_the_translator() -> None:
    folder, doc = load("nat-gateway/healthy-port-forward")
    points = doc["points"]
    frames = captures_by_point(folder, doc)
    assert points["missing"] == []
    assert len(points["connections"]) == 6
    for c in points["connections"]:
        assert c["outcome"] == "answered-through-translator"
        public = c["to"]
        assert public in c["syn_ack_from"]  # the client sees the reply from the public address
        assert set(c["syn_ack"]) == {"client", "gwa"} | ({"server"} if "8080" in public else set())
    for p in frames["server"]:
        if is_synack(p):
            assert p["eth_dst"] == PF["gwa_lan_mac"]
    # gwb carries none of it (only the server's background ping to gwb itself)
    assert not any(
        p.get("src") in (PF["server"], PF["web2"]) and p.get("dst") == PF["client"]
        for p in frames["gwb"]
    )
    assert any(p.get("src") == PF["server"] for p in frames["gwb"])
    assert all(not cap["decisive"] for cap in doc["captures"])


def test_lb_capture_shows_the_rewrite_to_the_backend_itself() -> None:
    folder, doc = load("lb-hairpin/faulty-l4-two-points")
    points = doc["points"]
    frames = captures_by_point(folder, doc)
    (missing,) = points["missing"]
    assert missing["seen_at"] == ["backend1"] and missing["never_at"] == "lb"
    hairpinned = [c for c in points["connections"] if c["outcome"] == "reply-bypassed-translator"]
    assert len(hairpinned) >= 2
    for c in hairpinned:
        client, port = c["client"].rsplit(":", 1)
        assert client == "10.10.1.11" and c["translated_to"] == ["10.10.1.11:80"]
        lb = [frame(frames["lb"], n) for n in c["syn"]["lb"]]
        assert {(p["dst"], p["outgoing"]) for p in lb} == {
            ("10.10.0.100", False),
            ("10.10.1.11", True),
        }
        assert {p["ifindex"] for p in lb} == {lb[0]["ifindex"]}, "in and out on the backend link"
        for n in c["syn_ack"]["backend1"]:  # over lo: source and destination both backend1
            p = frame(frames["backend1"], n)
            assert p["src"] == p["dst"] == "10.10.1.11"
    lb_roles = {d["role"] for d in doc["captures"][1]["decisive"]}
    assert {"syn-to-vip", "syn-rewritten-to-client"} <= lb_roles


def test_one_leaked_arp_reply_is_seen_at_the_real_server_the_mirror_and_the_router() -> None:
    folder, doc = load("lvs-dr-arp/faulty-arp-ignore-rs")
    frames = captures_by_point(folder, doc)
    vip, rs1_mac, router_mac = "10.30.0.100", "02:00:0a:1e:00:0b", "02:00:0a:1e:00:01"
    replies = [m for m in doc["points"]["matched"] if m["what"].startswith("ARP reply")]
    (reply,) = replies
    assert set(reply["frames"]) == {"mirror", "router", "rs1"}
    assert len(reply["frames"]["mirror"]) == 2  # the rs1 port and the router port of the switch
    mirror_ports = set()
    for name, numbers in reply["frames"].items():
        for n in numbers:
            p = frame(frames[name], n)
            assert p["arp"]["op"] == 2 and p["arp"]["spa"] == vip and p["arp"]["sha"] == rs1_mac
            assert p["eth_src"] == rs1_mac and p["eth_dst"] == router_mac
            if name == "mirror":
                mirror_ports.add(p["interface"])
    assert mirror_ports == {"p-rs1", "p-router"}
    # the request it answers: the router's broadcast who-has VIP, seen at rs1 just before
    rs1 = frames["rs1"]
    n = reply["frames"]["rs1"][0]
    assert any(
        "arp" in p
        and p["arp"]["op"] == 1
        and p["arp"]["tpa"] == vip
        and p["eth_dst"] == "ff:ff:ff:ff:ff:ff"
        for p in rs1[: n - 1]
    )
    rs1_roles = {d["role"] for d in doc["captures"][2]["decisive"]}
    assert {"arp-reply-with-vip-from-rs", "arp-request-with-vip-from-rs"} <= rs1_roles


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_points_section_is_what_the_lab_tooling_finds(variant: str) -> None:
    """The committed `points` section equals what samples/lab/a_samples.py derives from the
    captures with tshark (so it was written by the tooling, not by hand)."""
    sys.path.insert(0, str(SAMPLES / "lab"))
    import a_samples
    from a_meta import META

    folder, doc = load(variant)
    pattern, name = variant.split("/")
    assert a_samples.describe_points(META[pattern][name], folder) == doc["points"]
    assert a_samples.check_points(META[pattern][name], folder) == []
