"""Unit tests of the column-wise decoder on crafted records: exact values, gating, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_decode_builders import (
    MAC_A,
    MAC_B,
    arp,
    eth,
    ext_fragment,
    ext_options,
    icmp,
    ip4,
    ipv4,
    ipv6,
    make_batch,
    sll,
    sll2,
    tcp,
    tcp_syn_options,
    udp,
    write_pcap,
)

from netdiag.addressbook import AddressBook
from netdiag.capture import iter_chunks, read_packets, to_dataframe
from netdiag.capture.decode import decode_batch
from netdiag.capture.records import InterfaceInfo
from netdiag.capture.schema import COLUMN_NAMES, PACKET_COLUMNS
from netdiag.errors import CaptureError

A4, B4 = "10.0.0.1", "10.0.0.2"
A6, B6 = "2001:db8::1", "2001:db8::2"


def decode(frames: list[bytes], linktype: int = 1, **kwargs):  # type: ignore[no-untyped-def]
    batch, info = make_batch(frames, linktype, **kwargs)
    book = AddressBook()
    return decode_batch(batch, info, book), book


def ip_text(book: AddressBook, code: int) -> str | None:
    return None if code < 0 else book.ip_texts[code]


def error_text(book: AddressBook, code: int) -> str | None:
    return None if code < 0 else book.texts[code]


def test_chunk_has_every_schema_column_with_its_dtype() -> None:
    chunk, _ = decode([eth(ipv4(A4, B4, 17, udp(1, 2)), 0x0800)] * 3)
    assert list(chunk) == list(COLUMN_NAMES)
    for col in PACKET_COLUMNS:
        assert chunk[col.name].dtype == np.dtype(col.dtype), col.name
        assert len(chunk[col.name]) == 3


def test_qinq_tcp_syn_with_options() -> None:
    frame = eth(
        ipv4(
            A4,
            B4,
            6,
            tcp(40000, 443, seq=0xFFFFFFFE, flags=0x1C2, options=tcp_syn_options(1400, 9, 777, 5)),
            ttl=3,
            ident=9,
        ),
        0x0800,
        vlans=((0x88A8, 100), (0x8100, 200)),
    )
    c, book = decode([frame])
    assert (c["vlan"][0], c["vlan_inner"][0], c["ethertype"][0]) == (100, 200, 0x0800)
    assert book.mac_texts[c["eth_src"][0]] == "02:00:00:00:00:01"
    assert (ip_text(book, c["ip_src"][0]), ip_text(book, c["ip_dst"][0])) == (A4, B4)
    assert (c["ip_version"][0], c["ip_proto"][0], c["ip_ttl"][0], c["ip_id"][0]) == (4, 6, 3, 9)
    assert (c["ip_flags"][0], c["ip_frag_offset"][0], c["ip_hdr_len"][0]) == (2, 0, 20)
    assert (c["sport"][0], c["dport"][0], c["tcp_flags"][0]) == (40000, 443, 0x1C2)
    assert c["tcp_seq"][0] == 0xFFFFFFFE
    assert (c["tcp_mss"][0], c["tcp_wscale"][0], c["tcp_sack_perm"][0]) == (1400, 9, 1)
    assert (c["tcp_ts_val"][0], c["tcp_ts_ecr"][0], c["tcp_len"][0]) == (777, 5, 0)
    assert c["decode_error"][0] == -1 and c["payload_hash"][0] == -1  # no payload


def test_ipv4_options_and_fragments_only_first_fragment_has_ports() -> None:
    first = eth(
        ipv4(A4, B4, 17, udp(1234, 53, b"a" * 64), flags=1, ident=5, options=bytes([1, 1, 1, 0])),
        0x0800,
    )
    later = eth(ipv4(A4, B4, 17, b"b" * 64, flags=0, ident=5, frag_offset=72), 0x0800)
    c, _ = decode([first, later])
    assert list(c["ip_hdr_len"]) == [24, 20]
    assert list(c["ip_flags"]) == [1, 0]
    assert list(c["ip_frag_offset"]) == [0, 72]
    assert list(c["sport"]) == [1234, -1] and list(c["udp_len"]) == [72, -1]
    assert list(c["decode_error"]) == [-1, -1]


def test_ipv6_extension_chain_and_fragments() -> None:
    chain = ipv6(
        A6,
        B6,
        17,
        udp(7, 8, b"x" * 10),
        ext=((0, ext_options()), (43, bytes(7)), (60, ext_options(1))),
    )
    first = ipv6(A6, B6, 6, tcp(1, 2), ext=((44, ext_fragment(0, True, 0xFEEDF00D)),))
    later = ipv6(A6, B6, 6, b"z" * 16, ext=((44, ext_fragment(1232, False, 0xFEEDF00D)),))
    c, book = decode([eth(p, 0x86DD) for p in (chain, first, later)])
    assert list(c["ip_version"]) == [6, 6, 6]
    assert list(c["ip_proto"]) == [17, 6, 6]
    assert list(c["ip_hdr_len"]) == [40 + 8 + 8 + 16, 48, 48]
    assert list(c["sport"]) == [7, 1, -1]
    assert list(c["ip_id"]) == [-1, 0xFEEDF00D, 0xFEEDF00D]
    assert list(c["ip_frag_offset"]) == [-1, 0, 1232]
    assert ip_text(book, c["ip_src"][0]) == A6


def test_too_many_ipv6_extension_headers_is_a_decode_error() -> None:
    chain = ipv6(A6, B6, 17, udp(1, 2), ext=tuple((60, ext_options()) for _ in range(9)))
    c, book = decode([eth(chain, 0x86DD)])
    assert error_text(book, c["decode_error"][0]) == "too many IPv6 extension headers"
    assert c["sport"][0] == -1


def test_icmp_errors_quote_the_offending_header() -> None:
    quoted_tcp = ipv4(A4, B4, 6, tcp(40000, 443, seq=123456)[:8], ttl=1, ident=77)
    quoted_udp = ipv4(A4, B4, 17, udp(33434, 33435, b"p" * 8)[:8], ttl=1, ident=78)
    frames = [
        ipv4("192.0.2.1", A4, 1, icmp(3, 4, b"\x00\x00\x05\x78", quoted_tcp)),
        ipv4("192.0.2.1", A4, 1, icmp(11, 0, bytes(4), quoted_udp)),
        ipv4("192.0.2.1", A4, 1, icmp(5, 1, ip4("10.0.0.254"), quoted_tcp)),
        ipv4(A4, B4, 1, icmp(8, 0, b"\x12\x34\x00\x09", b"ping")),
    ]
    c, book = decode([eth(f, 0x0800) for f in frames])
    assert list(c["icmp_type"]) == [3, 11, 5, 8]
    assert list(c["icmp_mtu"]) == [1400, -1, -1, -1]
    assert ip_text(book, c["icmp_gateway"][2]) == "10.0.0.254"
    assert [ip_text(book, x) for x in c["icmp_inner_src"]] == [A4, A4, A4, None]
    assert list(c["icmp_inner_proto"]) == [6, 17, 6, -1]
    assert list(c["icmp_inner_ttl"]) == [1, 1, 1, -1]
    assert list(c["icmp_inner_id"]) == [77, 78, 77, -1]
    assert list(c["icmp_inner_sport"]) == [40000, 33434, 40000, -1]
    assert list(c["icmp_inner_seq"]) == [123456, -1, 123456, -1]
    assert (c["icmp_id"][3], c["icmp_seq"][3]) == (0x1234, 9)
    assert list(c["sport"]) == [-1] * 4  # the quoted ports are not the packet's own


def test_icmpv6_packet_too_big_and_echo() -> None:
    inner = ipv6(A6, B6, 6, tcp(5, 6, seq=99))[:48]
    frames = [
        ipv6("2001:db8::fe", A6, 58, icmp(2, 0, (1280).to_bytes(4, "big"), inner)),
        ipv6(A6, B6, 58, icmp(128, 0, b"\x00\x2a\x00\x01")),
    ]
    c, book = decode([eth(f, 0x86DD) for f in frames])
    assert list(c["icmp_mtu"]) == [1280, -1]
    assert ip_text(book, c["icmp_inner_dst"][0]) == B6
    assert (c["icmp_inner_sport"][0], c["icmp_inner_seq"][0]) == (5, 99)
    assert (c["icmp_id"][1], c["icmp_seq"][1]) == (42, 1)


def test_ipsec_ike_and_nat_traversal() -> None:
    ike = (
        bytes.fromhex("8000000000000001")
        + bytes.fromhex("0000000000000002")
        + bytes([33, 0x20, 34, 8])
        + bytes(8)
    )
    esp = (0x1001).to_bytes(4, "big") + (7).to_bytes(4, "big") + b"e" * 16
    frames = [
        ipv4(A4, B4, 50, esp),
        ipv4(A4, B4, 17, udp(500, 500, ike)),
        ipv4(A4, B4, 17, udp(4500, 4500, bytes(4) + ike)),
        ipv4(A4, B4, 17, udp(4500, 4500, b"\xff")),
        ipv4(A4, B4, 17, udp(4500, 4500, esp)),
    ]
    c, _ = decode([eth(f, 0x0800) for f in frames])
    assert list(c["esp_spi"]) == [0x1001, -1, -1, -1, 0x1001]
    assert list(c["esp_seq"]) == [7, -1, -1, -1, 7]
    assert list(c["ike_natt"]) == [-1, -1, 1, 2, 0]
    assert list(c["ike_exchange"]) == [-1, 34, 34, -1, -1]
    assert c["ike_ispi"][1] == np.int64(-(2**63) + 1)  # signed view of 0x8000000000000001
    assert c["ike_rspi"][2] == 2


def test_tunnels_are_recognised() -> None:
    inner = eth(ipv4("172.16.0.1", "172.16.0.2", 17, udp(1, 2)), 0x0800)
    frames = [
        ipv4(
            A4,
            B4,
            17,
            udp(50000, 4789, bytes([8, 0, 0, 0]) + (4242 << 8).to_bytes(4, "big") + inner),
        ),
        ipv4(A4, B4, 17, udp(50000, 6081, bytes(8) + inner)),
        ipv4(A4, B4, 47, bytes([0, 0, 8, 0]) + ipv4("1.1.1.1", "2.2.2.2", 17, udp(1, 2))),
        ipv4(A4, B4, 4, ipv4("1.1.1.1", "2.2.2.2", 17, udp(1, 2))),
        ipv4(A4, B4, 41, ipv4("1.1.1.1", "2.2.2.2", 17, udp(1, 2))),  # wrong inner version
    ]
    c, _ = decode([eth(f, 0x0800) for f in frames])
    assert list(c["tunnel"]) == [1, 4, 2, 3, 0]
    assert list(c["vxlan_vni"]) == [4242, -1, -1, -1, -1]


def test_arp_addresses() -> None:
    c, book = decode([eth(arp(2, MAC_B, B4, MAC_A, A4), 0x0806)])
    assert c["arp_op"][0] == 2
    assert book.mac_texts[c["arp_sha"][0]] == "02:00:00:00:00:02"
    assert (ip_text(book, c["arp_spa"][0]), ip_text(book, c["arp_tpa"][0])) == (B4, A4)


def test_linux_cooked_headers() -> None:
    v4 = ipv4(A4, B4, 17, udp(1, 2))
    c, book = decode([sll(v4, 0x0800, pkttype=4)], 113)
    assert (c["sll_pkttype"][0], c["sll_ifindex"][0], c["sport"][0]) == (4, -1, 1)
    assert book.mac_texts[c["eth_src"][0]] == "02:00:00:00:00:01"
    c, book = decode([sll2(v4, 0x0800, ifindex=12, pkttype=3, addr=b"\x01\x02")], 276)
    assert (c["sll_pkttype"][0], c["sll_ifindex"][0], c["ethertype"][0]) == (3, 12, 0x0800)
    assert c["eth_src"][0] == -1  # a 2-byte address is not a MAC
    assert c["iface_name"][0] == -1  # named later from the facts' ifindex map


def test_loopback_and_raw_link_types() -> None:
    v4 = ipv4(A4, B4, 17, udp(1, 2))
    v6 = ipv6(A6, B6, 17, udp(3, 4))
    for linktype, frames in (
        (0, [(2).to_bytes(4, "little") + v4, (30).to_bytes(4, "little") + v6]),
        (0, [(2).to_bytes(4, "big") + v4, (10).to_bytes(4, "big") + v6]),
        (108, [(2).to_bytes(4, "big") + v4, (24).to_bytes(4, "big") + v6]),
        (101, [v4, v6]),
        (12, [v4, v6]),
    ):
        c, _ = decode(frames, linktype)
        assert list(c["ip_version"]) == [4, 6], linktype
        assert list(c["sport"]) == [1, 3], linktype
        assert list(c["ethertype"]) == [-1, -1], linktype
    c, _ = decode([v4], 228)
    assert c["ip_version"][0] == 4
    c, _ = decode([v6], 229)
    assert c["ip_version"][0] == 6


def test_fcs_is_not_payload() -> None:
    frame = eth(ipv4(A4, B4, 6, tcp(1, 2, flags=0x18, payload=b"data")), 0x0800)
    plain, _ = decode([frame])
    with_fcs, _ = decode(
        [frame + b"\x01\x02\x03\x04"], interfaces=[InterfaceInfo(iface_id=0, linktype=1, fcs_len=4)]
    )
    for column in ("tcp_len", "payload_hash", "ip_len", "decode_error"):
        assert with_fcs[column][0] == plain[column][0], column


def test_interfaces_with_different_link_types_and_names() -> None:
    v4 = ipv4(A4, B4, 17, udp(1, 2))
    interfaces = [InterfaceInfo(0, 1, name="eth0"), InterfaceInfo(1, 276), InterfaceInfo(2, 281)]
    c, book = decode(
        [eth(v4, 0x0800), sll2(v4, 0x0800), b"\0" * 30], ifaces=[0, 1, 2], interfaces=interfaces
    )
    assert list(c["linktype"]) == [1, 276, 281]
    assert list(c["sport"]) == [1, 1, -1]
    assert book.texts[c["iface_name"][0]] == "eth0" and c["iface_name"][1] == -1
    assert error_text(book, c["decode_error"][2]) == "link type 281 (DSA_TAG_BRCM) is not supported"


def test_unsupported_link_type_of_every_interface_is_a_capture_error(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "brcm.pcap", 281, [b"\0" * 40])
    with pytest.raises(CaptureError) as err:
        read_packets(str(path))
    assert str(err.value) == f"{path}: link type 281 (DSA_TAG_BRCM) is not supported"


@pytest.mark.parametrize(
    "frame, cut, reason",
    [
        (eth(ipv4(A4, B4, 6, tcp(1, 2)), 0x0800), 20, "truncated IPv4 header"),
        (eth(ipv4(A4, B4, 6, tcp(1, 2)), 0x0800), 40, "truncated TCP header"),
        (
            eth(ipv4(A4, B4, 6, tcp(1, 2, options=tcp_syn_options())), 0x0800),
            60,
            "truncated TCP options",
        ),
        (eth(ipv6(A6, B6, 17, udp(1, 2)), 0x86DD), 30, "truncated IPv6 header"),
        (eth(ipv4(A4, B4, 17, udp(1, 2)), 0x0800), 38, "truncated UDP header"),
        (eth(arp(1, MAC_A, A4, MAC_B, B4), 0x0806), 30, "truncated ARP packet"),
        (eth(b"", 0x0800, vlans=((0x8100, 1),)), 15, "truncated VLAN tag"),
        (eth(b"", 0x0800), 10, "truncated Ethernet header"),
    ],
)
def test_cut_headers_become_decode_errors(frame: bytes, cut: int, reason: str) -> None:
    c, book = decode([frame], caplens=[cut])
    assert error_text(book, c["decode_error"][0]) == reason
    assert c["caplen"][0] == cut and c["wirelen"][0] == len(frame)


SAMPLE_FRAMES = [
    eth(
        ipv4(A4, B4, 6, tcp(1, 2, options=tcp_syn_options(), payload=b"hello")),
        0x0800,
        vlans=((0x8100, 3),),
    ),
    eth(
        ipv6(
            A6,
            B6,
            58,
            icmp(1, 4, bytes(4), ipv6(B6, A6, 17, udp(5, 6))[:48]),
            ext=((0, ext_options()),),
        ),
        0x86DD,
    ),
    eth(ipv4(A4, B4, 1, icmp(3, 4, b"\0\0\x05\xdc", ipv4(B4, A4, 6, tcp(9, 10))[:28])), 0x0800),
    eth(ipv4(A4, B4, 17, udp(4500, 4500, bytes(4) + bytes(28))), 0x0800),
    eth(arp(1, MAC_A, A4, MAC_B, B4), 0x0806),
]


@settings(max_examples=150, deadline=None)
@given(
    frame_index=st.integers(0, len(SAMPLE_FRAMES) - 1),
    cut=st.integers(0, 120),
    filler=st.binary(min_size=8, max_size=8),
)
def test_decoding_never_reads_past_the_captured_bytes(
    frame_index: int, cut: int, filler: bytes
) -> None:
    """Whatever follows a cut record in the buffer, the decoded row is the same."""
    frame = SAMPLE_FRAMES[frame_index]
    cut = min(cut, len(frame))
    reference, ref_book = decode([frame[:cut]], caplens=[cut])
    batch, info = make_batch([frame[:cut] + filler * 30], caplens=[cut])
    batch.wirelen[:] = cut
    noisy = decode_batch(batch, info, AddressBook())
    for column in COLUMN_NAMES:
        assert noisy[column][0] == reference[column][0], column


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(min_size=0, max_size=90), min_size=1, max_size=6),
    st.sampled_from([0, 1, 12, 101, 108, 113, 228, 229, 276]),
)
def test_random_bytes_never_raise(frames: list[bytes], linktype: int) -> None:
    chunk, _ = decode(frames, linktype)
    assert len(chunk["frame"]) == len(frames)


def test_payload_hash_pairs_one_packet_seen_at_two_points() -> None:
    payload = bytes(range(100))
    client = eth(ipv4(A4, B4, 6, tcp(1, 80, flags=0x18, payload=payload), ttl=64), 0x0800)
    # after a router and a NAT: other TTL, other source, other link layer, Ethernet padding
    natted = sll(
        ipv4("198.51.100.7", B4, 6, tcp(30001, 80, flags=0x18, payload=payload), ttl=63), 0x0800
    )
    other = eth(ipv4(A4, B4, 6, tcp(1, 80, flags=0x18, payload=payload[:63] + b"!")), 0x0800)
    tail_differs = eth(ipv4(A4, B4, 6, tcp(1, 80, payload=payload[:64] + b"?" * 36)), 0x0800)
    padded = eth(ipv4(A4, B4, 17, udp(1, 2, b"ab")), 0x0800) + bytes(12)
    short = eth(ipv4(A4, B4, 17, udp(1, 2, b"ab")), 0x0800)
    c1, _ = decode([client, other, tail_differs, padded, short])
    c2, _ = decode([natted], 113)
    h = list(c1["payload_hash"])
    assert h[0] == c2["payload_hash"][0] != -1
    assert h[0] != h[1]  # a different byte inside the first 64
    assert h[0] == h[2]  # only the first 64 bytes count
    assert h[3] == h[4] != -1  # padding after the IP datagram is not payload


def test_to_dataframe_shares_categories_and_keeps_absent_numbers(tmp_path: Path) -> None:
    frames = [
        eth(ipv4(A4, B4, 17, udp(1, 2)), 0x0800),
        eth(ipv4(B4, A4, 17, udp(2, 1)), 0x0800),
        eth(arp(1, MAC_A, A4, MAC_B, B4), 0x0806),
    ]
    path = write_pcap(tmp_path / "t.pcap", 1, frames)
    table = read_packets(str(path))
    df = table.df
    assert list(df.columns) == list(COLUMN_NAMES)
    assert str(df["ip_src"].dtype) == "category"
    assert list(df["ip_src"].cat.categories) == list(df["ip_dst"].cat.categories)
    assert (df["ip_src"].iloc[0], df["ip_dst"].iloc[1]) == (A4, A4)
    assert bool(df["ip_src"].iloc[0] == df["ip_dst"].iloc[1])
    assert list(df["sport"]) == [1, 2, -1]
    assert df["ip_src"].isna().tolist() == [False, False, True]
    assert (table.info.packets, table.info.decode_errors) == (3, 0)
    chunk, book = decode(frames)
    assert to_dataframe([chunk, chunk], book).shape == (6, len(COLUMN_NAMES))


def test_corpus_file_of_an_unsupported_link_type_is_refused_by_name() -> None:
    from conftest import CORPUS

    path = CORPUS / "td__brcm-tag.pcap"
    if not path.exists():
        pytest.skip("shared corpus not found")
    with pytest.raises(CaptureError) as err:
        list(iter_chunks(str(path), AddressBook()))
    assert err.value.reason == "link type 281 (DSA_TAG_BRCM) is not supported"


def test_packet_comments_become_text_codes() -> None:
    batch, info = make_batch([eth(ipv4(A4, B4, 17, udp(1, 2)), 0x0800)] * 3)
    batch.comments = {1: "first", 3: "third"}
    book = AddressBook()
    chunk = decode_batch(batch, info, book)
    assert [None if c < 0 else book.texts[c] for c in chunk["comment"]] == ["first", None, "third"]


def test_decoding_does_not_depend_on_batch_boundaries(tmp_path: Path) -> None:
    frames = [f for f in SAMPLE_FRAMES for _ in range(40)]
    path = write_pcap(tmp_path / "many.pcap", 1, frames)
    whole = read_packets(str(path)).df
    pieces = read_packets(str(path), chunk_bytes=700).df  # a few records per batch
    assert len(whole) == len(pieces) == len(frames)
    for column in COLUMN_NAMES:
        assert whole[column].astype(object).tolist() == pieces[column].astype(object).tolist()


def test_tshark_fallback_decodes_an_unsupported_link_type(tmp_path: Path, tshark: str) -> None:
    ppp = b"\xff\x03\x00\x21"  # PPP in HDLC-like framing, protocol IPv4
    frames = [
        ppp + ipv4(A4, B4, 6, tcp(40000, 443, seq=77, flags=0x012, win=1000)),
        ppp + ipv4(B4, A4, 1, icmp(3, 3, bytes(4), ipv4(A4, B4, 17, udp(5, 6))[:28])),
    ]
    path = write_pcap(tmp_path / "ppp.pcap", 9, frames)
    with pytest.raises(CaptureError, match=r"link type 9 \(PPP\) is not supported"):
        read_packets(str(path))
    df = read_packets(str(path), tshark_fallback=True).df
    assert df["ip_src"].astype(str).tolist() == [A4, B4]
    assert df["ip_proto"].tolist() == [6, 1]
    assert (df["sport"].tolist(), df["dport"].tolist()) == ([40000, -1], [443, -1])
    assert (df["tcp_flags"][0], df["tcp_seq"][0], df["tcp_win"][0]) == (0x012, 77, 1000)
    assert (df["icmp_type"][1], df["icmp_code"][1]) == (3, 3)
    assert df["decode_error"].isna().all()


def test_records_for_tshark_are_the_captured_bytes(tmp_path: Path) -> None:
    from netdiag.capture.layers.frames import Frames
    from netdiag.capture.linktypes.tshark import records_as_pcap

    frames = [bytes(range(i, i + 30 + i)) for i in range(5)]
    batch, _ = make_batch(frames, 9)
    fr = Frames(batch.data, batch.offsets, batch.caplen, batch.wirelen)
    rows = np.array([1, 3, 4])
    path = tmp_path / "sub.pcap"
    path.write_bytes(records_as_pcap(fr, rows, 9, batch.wirelen[rows]))
    from netdiag.capture.reader import open_capture

    with open_capture(str(path)) as cap:
        (sub,) = list(cap.batches())
        assert cap.info.interfaces[0].linktype == 9
    got = [bytes(sub.data[o : o + c]) for o, c in zip(sub.offsets, sub.caplen, strict=True)]
    assert got == [frames[i] for i in rows]
