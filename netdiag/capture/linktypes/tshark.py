"""Fallback for link types without a native decoder: tshark dissects those records (opt-in).

Only used when the caller asks for it (``tshark_fallback=True``), since tshark is two orders of
magnitude slower than the column-wise decoders (see the performance anchors). The records of one
batch and link type are written, as they are, to a temporary pcap; one ``tshark -T fields`` run
returns the outer packet's addresses, ports and flags, which fill the same columns as the native
decoders. Fields of headers an ICMP error quotes are not taken (tshark reports those in the same
fields), so ports stay absent on ICMP rows. When tshark is missing or fails, the rows keep the
"not supported" decode_error.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from netdiag.capture.layers.frames import DecodeState, Frames

PCAP_MAGIC_US = 0xA1B2C3D4
#: tshark field -> (column, kind); kinds: int, ip4, ip6, mac
FIELDS: dict[str, tuple[str, str]] = {
    "eth.src": ("eth_src", "mac"),
    "eth.dst": ("eth_dst", "mac"),
    "ip.version": ("ip_version", "int"),
    "ip.src": ("ip_src", "ip4"),
    "ip.dst": ("ip_dst", "ip4"),
    "ip.proto": ("ip_proto", "int"),
    "ip.ttl": ("ip_ttl", "int"),
    "ip.id": ("ip_id", "int"),
    "ip.len": ("ip_len", "int"),
    "ip.hdr_len": ("ip_hdr_len", "int"),
    "ipv6.src": ("ip_src", "ip6"),
    "ipv6.dst": ("ip_dst", "ip6"),
    "ipv6.hlim": ("ip_ttl", "int"),
    "tcp.srcport": ("sport", "int"),
    "tcp.dstport": ("dport", "int"),
    "tcp.flags": ("tcp_flags", "int"),
    "tcp.seq": ("tcp_seq", "int"),
    "tcp.ack": ("tcp_ack", "int"),
    "tcp.len": ("tcp_len", "int"),
    "tcp.window_size_value": ("tcp_win", "int"),
    "udp.srcport": ("sport", "int"),
    "udp.dstport": ("dport", "int"),
    "udp.length": ("udp_len", "int"),
    "icmp.type": ("icmp_type", "int"),
    "icmp.code": ("icmp_code", "int"),
    "icmpv6.type": ("icmp_type", "int"),
    "icmpv6.code": ("icmp_code", "int"),
    "arp.opcode": ("arp_op", "int"),
    "arp.src.proto_ipv4": ("arp_spa", "ip4"),
    "arp.dst.proto_ipv4": ("arp_tpa", "ip4"),
}
_PREFS = (
    "tcp.desegment_tcp_streams:FALSE",
    "tcp.relative_sequence_numbers:FALSE",
    "tcp.analyze_sequence_numbers:FALSE",
    "ip.defragment:FALSE",
    "ipv6.defragment:FALSE",
)
_TRANSPORT_FIELDS = ("tcp.", "udp.")


def records_as_pcap(fr: Frames, idx: np.ndarray, linktype: int, wirelen: np.ndarray) -> bytes:
    """A classic pcap holding the records ``idx`` (timestamps zeroed), built column-wise."""
    caplen = fr.end[idx]
    header = np.zeros((len(idx), 4), dtype="<u4")
    header[:, 2] = caplen
    header[:, 3] = np.maximum(wirelen, caplen)
    sizes = 16 + caplen
    out = np.zeros(int(sizes.sum()), dtype=np.uint8)
    record_at = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    out[(record_at[:, None] + np.arange(16)).ravel()] = header.view(np.uint8).ravel()
    # every data byte: its record's data start in ``out`` plus its rank inside the record
    total = int(caplen.sum())
    rank = np.arange(total) - np.repeat(np.cumsum(caplen) - caplen, caplen)
    out[np.repeat(record_at + 16, caplen) + rank] = fr.data[np.repeat(fr.start[idx], caplen) + rank]
    file_header = np.array([PCAP_MAGIC_US, 0x00040002, 0, 0, 262144, linktype], dtype="<u4")
    return file_header.tobytes() + out.tobytes()


def decode(fr: Frames, st: DecodeState, idx: np.ndarray, linktype: int) -> bool:
    """Fill rows ``idx`` from tshark; False when tshark is not available or fails."""
    tshark = shutil.which("tshark")
    if tshark is None or len(idx) == 0:
        return False
    names = list(FIELDS) + ["frame.protocols"]
    with tempfile.TemporaryDirectory(prefix="netdiag-tshark-") as tmp:
        path = Path(tmp) / "records.pcap"
        path.write_bytes(records_as_pcap(fr, idx, linktype, st.chunk["wirelen"][idx]))
        cmd = [tshark, "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=f"]
        for pref in _PREFS:
            cmd += ["-o", pref]
        for name in names:
            cmd += ["-e", name]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=600, check=False)
        except (OSError, subprocess.SubprocessError):
            return False
    lines = proc.stdout.decode("utf-8", "replace").splitlines()
    if len(lines) != len(idx):
        return False
    table = np.array([line.split("\t") + [""] * (len(names) - 1) for line in lines], dtype=object)
    table = table[:, : len(names)]
    protocols = table[:, -1].astype(str)
    quoted = np.char.find(protocols, "icmp") >= 0  # transport fields may be a quoted header's
    for column_index, (field, (column, kind)) in enumerate(FIELDS.items()):
        texts = table[:, column_index].astype(str)
        present = texts != ""
        if field.startswith(_TRANSPORT_FIELDS):
            present &= ~quoted
        if not present.any():
            continue
        _store(st, column, kind, idx[present], texts[present])
    return True


def _store(st: DecodeState, column: str, kind: str, rows: np.ndarray, texts: np.ndarray) -> None:
    """Parse each distinct text once and store the values of rows ``rows``."""
    uniq, inverse = np.unique(texts, return_inverse=True)
    if kind == "int":
        st.put(column, rows, np.array([int(u, 0) for u in uniq], dtype=np.int64)[inverse])
    elif kind == "ip4":
        packed = [ipaddress.IPv4Address(u).packed for u in uniq]
        values = np.array([int.from_bytes(p, "big") for p in packed], dtype=np.int64)
        st.put_ip4(column, rows, values[inverse])
    elif kind == "ip6":
        raw = np.array([list(ipaddress.IPv6Address(u).packed) for u in uniq], dtype=np.uint8)
        st.put_ip6(column, rows, raw[inverse])
    else:
        values = np.array([int(u.replace(":", ""), 16) for u in uniq], dtype=np.uint64)
        st.put_mac(column, rows, values[inverse])
