"""Committed lab samples of patterns 1, 2 and 5 (lb-hairpin, lvs-dr-arp, nat-gateway) are complete.

Checks the files as committed, without root or namespaces: captures, expected.yaml (valid, frames
inside the capture, roles named), facts transcripts, README; and, when tshark is installed, that the
signature is found in every faulty variant and in no healthy one, at exactly the frames that
expected.yaml lists (so the ground truth was not edited by hand).
"""

from __future__ import annotations

import ipaddress
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
sys.path.insert(0, str(SAMPLES / "lab"))

from a_meta import META  # noqa: E402

VARIANTS = [(pattern, variant) for pattern, variants in META.items() for variant in variants]
HAVE_TSHARK = shutil.which("tshark") is not None and shutil.which("capinfos") is not None
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", "micro"),
    b"\xa1\xb2\xc3\xd4": (">", "micro"),
    b"\x4d\x3c\xb2\xa1": ("<", "nano"),
    b"\xa1\xb2\x3c\x4d": (">", "nano"),
}


def capture_summary(path: Path) -> dict[str, Any]:
    """Frame count, format, precision and interface count of a pcap or pcapng, read directly."""
    data = path.read_bytes()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        endian = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        frames = interfaces = 0
        pos = 0
        while pos + 12 <= len(data):
            btype, blen = struct.unpack(endian + "II", data[pos : pos + 8])
            assert blen >= 12 and blen % 4 == 0, f"{path}: bad pcapng block at {pos}"
            if btype == 1:
                interfaces += 1
            elif btype in (2, 3, 6):
                frames += 1
            pos += blen
        assert pos == len(data), f"{path}: truncated pcapng"
        return {"format": "pcapng", "frames": frames, "interfaces": interfaces, "precision": "?"}
    endian, precision = PCAP_MAGICS[data[:4]]
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    frames, pos = 0, 24
    while pos + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[pos + 8 : pos + 12])[0]
        pos += 16 + incl
        frames += 1
    assert pos == len(data), f"{path}: truncated pcap"
    return {
        "format": "pcap",
        "frames": frames,
        "interfaces": 1,
        "precision": precision,
        "linktype": linktype,
    }


def load_expected(pattern: str, variant: str) -> dict[str, Any]:
    doc = yaml.safe_load((SAMPLES / pattern / variant / "expected.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize(("pattern", "variant"), VARIANTS)
def test_sample_folder_is_complete(pattern: str, variant: str) -> None:
    folder = SAMPLES / pattern / variant
    meta = META[pattern][variant]
    doc = load_expected(pattern, variant)
    assert set(doc) >= {"pattern", "rules", "description", "emulated", "addresses", "captures"}
    assert doc["pattern"] == meta["pattern"]
    assert doc["rules"] == meta["rules"]
    assert len(doc["description"]) > 80 and len(doc["emulated"]) > 20
    assert [c["file"] for c in doc["captures"]] == [c["file"] for c in meta["captures"]]
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size < 1_000_000, f"{folder} is {size} bytes"
    readme = (folder / "README.md").read_text()
    for word in ("Real", "Emulated", "Crafted", "make.sh"):
        assert word in readme


@pytest.mark.parametrize(("pattern", "variant"), VARIANTS)
def test_decisive_frames_exist_and_have_roles(pattern: str, variant: str) -> None:
    folder = SAMPLES / pattern / variant
    doc = load_expected(pattern, variant)
    total = 0
    for cap in doc["captures"]:
        summary = capture_summary(folder / cap["file"])
        assert summary["frames"] >= 20, "background traffic keeps the decisive frames company"
        assert cap["host"] and cap["interface"] and cap["linktype"] in ("LINUX_SLL2", "EN10MB")
        frames = [d["frame"] for d in cap["decisive"]]
        assert len(frames) == len(set(frames))
        for d in cap["decisive"]:
            assert 1 <= d["frame"] <= summary["frames"]
            assert isinstance(d["role"], str) and d["role"].strip()
            assert d["note"].strip()
        total += len(frames)
    if doc["rules"]:
        assert doc["pattern"] != "healthy" and total > 0
    else:
        assert doc["pattern"] == "healthy" and total == 0


@pytest.mark.parametrize(("pattern", "variant"), VARIANTS)
def test_facts_are_terminal_transcripts_with_the_key_addresses(pattern: str, variant: str) -> None:
    folder = SAMPLES / pattern / variant
    meta = META[pattern][variant]
    doc = load_expected(pattern, variant)
    hosts = set(meta["hosts"]) | {c["host"] for c in doc["captures"]}
    text = ""
    for host in hosts:
        facts = (folder / "facts" / f"{host}.txt").read_text()
        assert facts.startswith(f"root@{host}:~# ip -o addr\n")
        for cmd in (
            "ip route",
            "ip rule",
            "ip link",
            "ip neigh",
            "sysctl",
            "ss -ltn",
            "nft list ruleset",
        ):
            assert f"root@{host}:~# {cmd}" in facts
        assert "net.ipv4.ip_forward = " in facts and "net.ipv4.conf.all.rp_filter" in facts
        text += facts
    for value in _flatten(doc["addresses"]):
        needle = _network_address(value) if "/" in value else value
        assert needle.lower() in text.lower(), f"{value} not in any facts of {folder}"


def _flatten(value: Any) -> list[str]:
    if isinstance(value, dict):
        return _flatten(list(value.values()))
    if isinstance(value, list):
        return [v for item in value for v in _flatten(item)]
    return [str(value)]


def _network_address(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr).network_address).rsplit(".", 1)[0] + "."


def test_capture_kinds_cover_the_issue() -> None:
    """Across these samples: -i any (SLL2), Ethernet, multi-interface pcapng, nanosecond pcap."""
    linktypes, multi, nano = set(), False, False
    for pattern, variant in VARIANTS:
        for cap in load_expected(pattern, variant)["captures"]:
            summary = capture_summary(SAMPLES / pattern / variant / cap["file"])
            linktypes.add(cap["linktype"])
            multi |= summary["format"] == "pcapng" and summary["interfaces"] >= 2
            nano |= summary["precision"] == "nano"
    assert linktypes == {"LINUX_SLL2", "EN10MB"}
    assert multi and nano


def test_product_configuration_is_present() -> None:
    for variant in META["lb-hairpin"]:
        listener = yaml.safe_load(
            (SAMPLES / "lb-hairpin" / variant / "facts" / "lb-listener.yaml").read_text()
        )
        assert listener["version"] == 1  # netdiag's topology YAML (docs/facts-yaml.md)
        (service,) = listener["hosts"]["lb"]["services"]
        assert service["layer"] == ("L7" if variant == "healthy-l7" else "L4")
        assert service["keeps_client_address"] is (variant.startswith("faulty"))
    for pattern in ("lvs-dr-arp", "nat-gateway"):
        for variant in META[pattern]:
            if META[pattern][variant]["hosts"][0] != "director":
                continue
            facts = SAMPLES / pattern / variant / "facts"
            assert "ipvsadm-save -n" in (facts / "ipvsadm.txt").read_text()
            assert "virtual_server " in (facts / "keepalived.conf").read_text()


@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark/capinfos not installed")
@pytest.mark.parametrize(("pattern", "variant"), VARIANTS)
def test_tshark_finds_exactly_the_listed_frames(pattern: str, variant: str) -> None:
    import a_samples

    folder = SAMPLES / pattern / variant
    meta = META[pattern][variant]
    doc = load_expected(pattern, variant)
    for cap, written in zip(meta["captures"], doc["captures"], strict=True):
        found = a_samples.run_detector(folder / cap["file"], cap["detector"])
        roles = {e["role"] for e in found}
        if meta["rules"]:
            assert found, f"{folder}/{cap['file']}: signature missing"
            assert set(cap.get("require", [])) <= roles
            assert not roles & set(cap.get("forbid", []))
            assert [(e["frame"], e["role"]) for e in found] == [
                (d["frame"], d["role"]) for d in written["decisive"]
            ]
        else:
            assert not found, f"{folder}/{cap['file']}: signature present in a healthy sample"
        assert written["linktype"] == a_samples.linktype_of(folder / cap["file"])
