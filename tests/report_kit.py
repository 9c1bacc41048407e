"""Shared helpers of the report tests: the hairpin sample's analysis, a capture and facts carrying
hostile strings, JSON Schema validation, and headless Chromium."""

from __future__ import annotations

import functools
import json
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from netdiag.engine.analysis import Analysis, analyze

REPO = Path(__file__).resolve().parent.parent
HAIRPIN = REPO / "samples" / "lb-hairpin" / "faulty-l4"
HAIRPIN_PCAP = HAIRPIN / "backend1-any.pcap"
SCHEMA = REPO / "docs" / "findings-schema.json"

#: what an attacker (or an unlucky capture) puts where a report shows capture and facts text
HOSTILE = "<script>alert(1)</script></pre>|a|b|`tick`"
HOSTILE_HOST = "evil<script>alert(1)</script></pre>|x|`y`.example"
HOSTILE_DNS = "a<script>|b`c</pre>.example"


@functools.cache
def hairpin_analysis() -> Analysis:
    """The analysis of the seed-000-like sample (captures + facts), run once per session."""
    return analyze([str(HAIRPIN_PCAP)], [str(HAIRPIN / "facts")])


def validate_report_json(data: Any) -> None:
    """Raise when ``data`` does not follow the published findings schema."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema).validate(data)


# --- a capture and facts with hostile strings ------------------------------------------------------
def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(src: bytes, dst: bytes, proto: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 7, 0, 64, proto, 0, src, dst)
    header = header[:10] + struct.pack("!H", _csum(header)) + header[12:]
    return header + payload


def _sll2(payload: bytes, ifindex: int = 2, pkttype: int = 4) -> bytes:
    mac = bytes.fromhex("02000a0a010b")
    return struct.pack("!HHIHBB8s", 0x0800, 0, ifindex, 1, pkttype, 6, mac + b"\0\0") + payload


def _http_request(host: str) -> bytes:
    src, dst = bytes([10, 10, 1, 11]), bytes([10, 10, 2, 12])
    body = f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {HOSTILE}\r\n\r\n".encode()
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1000, 2000, 0x50, 0x18, 502, 0, 0) + body
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _csum(pseudo + tcp)) + tcp[18:]
    return _ipv4(src, dst, 6, tcp)


def _dns_query(name: str) -> bytes:
    src, dst = bytes([10, 10, 1, 11]), bytes([10, 10, 2, 12])
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    dns = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
    udp = struct.pack("!HHHH", 53000, 53, 8 + len(dns), 0) + dns
    return _ipv4(src, dst, 17, udp)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(btype: int, body: bytes) -> bytes:
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def write_hostile_case(folder: Path, tsresol: int = 9) -> tuple[Path, Path]:
    """The hairpin sample as a pcapng whose interface is named with hostile text, plus an HTTP
    request and a DNS query carrying hostile host names; its facts with a hostile comment on the
    listener line that LB001 cites. ``tsresol`` is the interface's if_tsresol byte (9: ns;
    0x80 | n: 2^-n s). Returns (capture, facts folder)."""
    from netdiag.capture.reader import open_capture

    folder.mkdir(parents=True, exist_ok=True)
    records: list[tuple[int, bytes, int]] = []
    with open_capture(str(HAIRPIN_PCAP)) as cap:
        for batch in cap.batches():
            for i in range(len(batch)):
                start = int(batch.offsets[i])
                data = batch.data[start : start + int(batch.caplen[i])].tobytes()
                records.append((int(batch.ts_ns[i]), data, int(batch.wirelen[i])))
    last = records[-1][0]
    for k, packet in enumerate((_http_request(HOSTILE_HOST), _dns_query(HOSTILE_DNS)), 1):
        frame = _sll2(packet)
        records.append((last + k * 1000, frame, len(frame)))
    out = bytearray()
    shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _option(1, HOSTILE.encode()) + b"\0" * 4
    out += _block(0x0A0D0D0A, shb)
    idb_opts = _option(2, ("eth0" + HOSTILE).encode()) + _option(9, bytes([tsresol])) + b"\0" * 4
    out += _block(1, struct.pack("<HHI", 276, 0, 262144) + idb_opts)
    for ts_ns, data, wirelen in records:
        if tsresol & 0x80:
            ts = ts_ns * (1 << (tsresol & 0x7F)) // 1_000_000_000
        else:
            ts = ts_ns * 10**tsresol // 1_000_000_000
        body = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), wirelen)
        body += data + b"\0" * (-len(data) % 4) + _option(1, HOSTILE.encode()) + b"\0" * 4
        out += _block(6, body)
    capture = folder / "hostile.pcapng"
    capture.write_bytes(bytes(out))
    facts = folder / "facts"
    shutil.copytree(HAIRPIN / "facts", facts)
    listener = facts / "lb-listener.yaml"
    text = listener.read_text()
    line = "- {address: 10.10.1.11, port: 80, weight: 100}"
    assert line in text
    listener.write_text(text.replace(line, f"{line}  # {HOSTILE}", 1))
    return capture, facts


# --- headless Chromium ------------------------------------------------------------------------------
def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def run_chromium(page: Path, *extra: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Chromium headless on a local file with networking off; stderr carries console messages."""
    binary = chromium()
    assert binary is not None
    with tempfile.TemporaryDirectory(prefix="netdiag-chromium-") as profile:
        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            # no network at all: every host name fails, any proxy is a dead port
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            page.resolve().as_uri(),
        ]
        env = {**os.environ, "HOME": profile}
        return subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )


def console_messages(stderr: str) -> list[str]:
    """Console messages Chromium logged (``:CONSOLE(line)] "text", source: ...``)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def artifacts_dir() -> Path:
    """Where screenshots go for people to look at (NETDIAG_ARTIFACTS, else a temp folder)."""
    folder = Path(
        os.environ.get("NETDIAG_ARTIFACTS") or Path(tempfile.gettempdir()) / "netdiag-artifacts"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder
