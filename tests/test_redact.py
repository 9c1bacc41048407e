"""Redaction: a consistent, prefix-preserving pseudonymisation, and no original address left in
any output (Markdown, HTML, JSON, text, evidence pcapng)."""

from __future__ import annotations

import io
import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from report_kit import HAIRPIN, HAIRPIN_PCAP, hairpin_analysis

from netdiag.evidence_pcapng import write_evidence
from netdiag.pipeline import load_capture
from netdiag.redact import Redactor
from netdiag.render.document import write_redacted

KEY = b"test key"
RESERVED = [
    ipaddress.ip_network(n)
    for n in ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16")
    + ("172.16.0.0/12", "192.0.2.0/24", "192.168.0.0/16", "198.51.100.0/24", "203.0.113.0/24")
    + ("224.0.0.0/4", "240.0.0.0/4")
]


def common_bits(a: str, b: str) -> int:
    x = int(ipaddress.ip_address(a)) ^ int(ipaddress.ip_address(b))
    width = 32 if "." in a else 128
    return width - x.bit_length()


v4 = st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))


@settings(max_examples=150, deadline=None)
@given(v4, st.integers(0, 255))
def test_same_slash24_stays_same_slash24(a: str, last: int) -> None:
    r = Redactor(KEY)
    b = str(ipaddress.IPv4Address((int(ipaddress.IPv4Address(a)) & ~0xFF) | last))
    if "255.255.255.255" in (a, b):
        return  # the limited broadcast is kept as it is, its /24 neighbours are not
    assert common_bits(r.ipv4(a), r.ipv4(b)) >= 24
    assert (r.ipv4(a) == r.ipv4(b)) == (a == b)


@settings(max_examples=150, deadline=None)
@given(v4, v4)
def test_prefixes_up_to_24_bits_are_preserved(a: str, b: str) -> None:
    r = Redactor(KEY)
    same_range = [a in str(n) or ipaddress.ip_address(a) in n for n in RESERVED] == [
        ipaddress.ip_address(b) in n for n in RESERVED
    ]
    shared = min(common_bits(a, b), 24)
    if same_range and shared >= 16:
        assert min(common_bits(r.ipv4(a), r.ipv4(b)), 24) == shared


@settings(max_examples=100, deadline=None)
@given(v4)
def test_ranges_and_special_addresses(a: str) -> None:
    r = Redactor(KEY)
    mapped = ipaddress.ip_address(r.ipv4(a))
    original = ipaddress.ip_address(a)
    for net in RESERVED:
        assert (original in net) == (mapped in net)
    if original.is_loopback or original.is_multicast or int(original) >> 24 == 0:
        assert mapped == original
    assert int(mapped) & 0xFF == int(original) & 0xFF or int(original) & 0xFF not in (0, 255)
    if int(original) & 0xFF in (0, 255):
        assert int(mapped) & 0xFF == int(original) & 0xFF


def test_one_to_one_and_keyed() -> None:
    r = Redactor(KEY)
    addresses = [f"10.{i // 256}.{i % 256}.{(i * 7) % 254 + 1}" for i in range(3000)]
    addresses += [f"8.{i % 256}.{i // 256}.9" for i in range(2000)]
    mapped = [r.ipv4(a) for a in addresses]
    assert len(set(mapped)) == len(set(addresses))
    assert sum(m == a for m, a in zip(mapped, addresses, strict=True)) < 10
    assert Redactor(KEY).ipv4("10.10.1.11") == r.ipv4("10.10.1.11")
    assert Redactor(b"another").ipv4("10.10.1.11") != r.ipv4("10.10.1.11")
    assert r.ipv4("255.255.255.255") == "255.255.255.255"
    assert r.ip("not an address") == "not an address"


def test_ipv6() -> None:
    r = Redactor(KEY)
    for kept in ("::", "::1", "ff02::1", "ff02::1:ff12:3456"):
        assert r.ipv6(kept) == kept
    a, b = r.ipv6("2001:4860:1:2::10"), r.ipv6("2001:4860:1:2::11")
    assert common_bits(a, b) >= 120 and a != b and a != "2001:4860:1:2::10"
    assert ipaddress.ip_address(a) in ipaddress.ip_network("2000::/3")
    ll = r.ipv6("fe80::5054:ff:fe12:3456")
    assert ll.startswith("fe80::") and ll != "fe80::5054:ff:fe12:3456"
    assert r.ipv6("::ffff:10.10.1.11") == "::ffff:" + r.ipv4("10.10.1.11")


def test_mac_keeps_its_kind_and_oui_sharing() -> None:
    r = Redactor(KEY)
    for kept in (
        "ff:ff:ff:ff:ff:ff",
        "00:00:00:00:00:00",
        "01:00:5e:00:00:12",
        "33:33:00:00:00:01",
    ):
        assert r.mac(kept) == kept
    a, b = r.mac("52:54:00:12:34:56"), r.mac("52:54:00:ab:cd:ef")
    assert a[:8] == b[:8] and a != b and a[:8] != "52:54:00"
    assert int(a[:2], 16) & 3 == 0x52 & 3
    assert r.mac("02:00:0A:0A:01:0B") == r.mac("02:00:0a:0a:01:0b").upper()
    assert r.mac("02-00-0a-0a-01-0b") == r.mac("02:00:0a:0a:01:0b").replace(":", "-")


def test_text_rewrites_every_form() -> None:
    r = Redactor(KEY)
    line = (
        "14:54:15.382826 eth0  Out IP 10.10.1.11.48634 > 10.10.0.100.80: Flags [S], seq 1, "
        "IP6 fe80::1.546 > ff02::1:2.547, net 10.10.1.0/24 via 192.168.1.1 dev eth0, "
        "lladdr 52:54:00:12:34:56, inet6 2001:db8::5/64, at 2026-11-23T14:54:15.382826000Z"
    )
    out = r.text(line)
    assert out.startswith("14:54:15.382826 eth0  Out IP ")
    assert f"IP {r.ipv4('10.10.1.11')}.48634 > {r.ipv4('10.10.0.100')}.80:" in out
    assert f"IP6 {r.ipv6('fe80::1')}.546 > ff02::1:2.547" in out
    assert f"net {r.ipv4('10.10.1.0')}/24 via {r.ipv4('192.168.1.1')}" in out
    assert r.ipv4("10.10.1.0").endswith(".0")
    assert f"lladdr {r.mac('52:54:00:12:34:56')}" in out
    assert f"inet6 {r.ipv6('2001:db8::5')}/64" in out
    assert out.endswith("at 2026-11-23T14:54:15.382826000Z")
    # a network stays a network (of the mapped hosts); an interface address keeps its host part
    backend = r.ipv4("10.10.1.11")
    net16 = ".".join(backend.split(".")[:2]) + ".0.0/16"
    assert r.text("route 10.10.0.0/16 and 10.10.1.11/24") == f"route {net16} and {backend}/24"
    assert r.text("2001:db8:1::/48").endswith("::/48")
    assert r.text(out) != out  # not idempotent: a redacted text is not redacted again by design


# --- end to end -----------------------------------------------------------------------------------
def original_addresses() -> tuple[set[str], set[str]]:
    """IP and MAC addresses of the hairpin capture and facts that a redactor must change."""
    r = Redactor(KEY)
    packets = load_capture(str(HAIRPIN_PCAP), retention="all").packets
    ips: set[str] = set()
    macs: set[str] = set()
    for column in ("ip_src", "ip_dst", "arp_spa", "arp_tpa", "icmp_inner_src", "icmp_inner_dst"):
        if column in packets:
            ips |= {str(v) for v in packets[column].dropna().astype(str).unique()}
    for column in ("eth_src", "eth_dst", "arp_sha", "arp_tha"):
        if column in packets:
            macs |= {str(v).lower() for v in packets[column].dropna().astype(str).unique()}
    for path in (HAIRPIN / "facts").iterdir():
        text = path.read_text()
        ips |= set(re.findall(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d])", text))
        macs |= {m.lower() for m in re.findall(r"\b(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}\b", text)}
    ips = {a for a in ips if _is_ip(a) and r.ip(a) != a}
    macs = {m for m in macs if r.mac(m) != m}
    assert "10.10.1.11" in ips and "10.10.0.100" in ips and len(macs) >= 1
    return ips, macs


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def leaks(text: str, ips: set[str], macs: set[str]) -> list[str]:
    found = []
    for a in ips:
        if re.search(rf"(?<![\d.]){re.escape(a)}(?![\d])", text):
            found.append(a)
    lowered = text.lower()
    found += [m for m in macs if m in lowered or m.replace(":", "-") in lowered]
    return found


@pytest.fixture(scope="module")
def redacted_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    analysis = hairpin_analysis()
    outputs = {}
    for fmt in ("md", "html", "json", "text"):
        out = io.StringIO()
        write_redacted(fmt, analysis, out, Redactor(KEY))
        outputs[fmt] = out.getvalue()
    folder = tmp_path_factory.mktemp("redacted")
    evidence = folder / "evidence.pcapng"
    written = write_evidence(analysis, str(evidence), Redactor(KEY))
    assert written.packets == 11
    outputs["pcapng"] = str(evidence)
    return outputs


@pytest.mark.parametrize("fmt", ["md", "html", "json", "text"])
def test_no_original_address_in_reports(redacted_outputs: dict[str, str], fmt: str) -> None:
    ips, macs = original_addresses()
    text = redacted_outputs[fmt]
    assert leaks(text, ips, macs) == []
    r = Redactor(KEY)
    # and the diagnosis still reads: the same pseudonym everywhere for the backend
    backend = r.ipv4("10.10.1.11")
    assert text.count(backend) >= 5
    assert r.ipv4("10.10.0.100").split(".")[:2] == backend.split(".")[:2]


def test_redacted_markdown_reads_the_same(redacted_outputs: dict[str, str]) -> None:
    r = Redactor(KEY)
    md = redacted_outputs["md"]
    b, vip = r.ipv4("10.10.1.11"), r.ipv4("10.10.0.100")
    assert f"`{b} -> {vip}:80`" in md
    assert f"came back to {b}:80 itself" in md
    assert f">> #54     14:54:15.382958 eth0  In  IP {b}.48634 > {b}.80: Flags [S]" in md


needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


@needs_tshark
def test_no_original_address_in_evidence_pcapng(redacted_outputs: dict[str, str]) -> None:
    ips, macs = original_addresses()
    path = redacted_outputs["pcapng"]
    fields = ["ip.src", "ip.dst", "sll.src.eth", "eth.src", "eth.dst", "arp.src.proto_ipv4"]
    done = subprocess.run(
        ["tshark", "-n", "-r", path, "-T", "fields", *sum((["-e", f] for f in fields), [])],
        capture_output=True,
        text=True,
        check=True,
    )
    seen = {v for line in done.stdout.splitlines() for v in re.split(r"[\t,]", line) if v}
    assert seen and not (seen & (ips | macs))
    r = Redactor(KEY)
    assert r.ipv4("10.10.1.11") in seen
    data = Path(path).read_bytes()
    for m in macs:
        assert bytes.fromhex(m.replace(":", "")) not in data
    for a in ips:
        assert ipaddress.ip_address(a).packed not in data, a
    # the full dissection shows no original address either (payloads were cut off)
    verbose = subprocess.run(
        ["tshark", "-n", "-V", "-r", path], capture_output=True, text=True, check=True
    ).stdout
    assert leaks(verbose, ips, macs) == []


@needs_tshark
def test_checksums_keep_their_state(redacted_outputs: dict[str, str]) -> None:
    """Incremental checksum update: a right checksum stays right, an offloaded one stays wrong."""

    def states(path: str) -> list[str]:
        done = subprocess.run(
            [
                "tshark",
                "-n",
                "-r",
                path,
                "-o",
                "ip.check_checksum:TRUE",
                "-o",
                "tcp.check_checksum:TRUE",
                "-T",
                "fields",
                "-e",
                "ip.checksum.status",
                "-e",
                "tcp.checksum.status",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.splitlines()

    plain = Path(redacted_outputs["pcapng"]).with_name("plain.pcapng")
    write_evidence(hairpin_analysis(), str(plain))
    assert states(redacted_outputs["pcapng"]) == states(str(plain))
    assert any(line.startswith("1\t1") for line in states(str(plain)))  # some verified good
