"""FlowBuilder: per-packet flow columns, ICMP error links, retransmissions, chunk-split invariance."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from test_flows_kit import concat_column, make_chunk, split_chunk

from netdiag.addressbook import AddressBook
from netdiag.capture.schema import empty_chunk
from netdiag.flows import FLOW_COLUMN_NAMES, FlowBuilder, build_flows

C, S, R = "10.0.0.5", "10.0.9.9", "10.0.0.1"
PACKET_FLOW_COLUMNS = ("flow_id", "flow_dir", "flow_pkt_index", "icmp_err_flow_id")


def tcp(src: str, dst: str, sport: int, dport: int, flags: str, seq: int, length: int = 0, **kw):  # type: ignore[no-untyped-def]
    return dict(src=src, dst=dst, sport=sport, dport=dport, flags=flags, seq=seq, len=length, **kw)


def test_packet_columns_flow_ids_and_directions() -> None:
    book = AddressBook()
    packets = [
        tcp(C, S, 40000, 80, "S", 1),  # flow 0, orig
        dict(src=C, dst=S, proto="udp", sport=5000, dport=53),  # flow 1
        tcp(S, C, 80, 40000, "SA", 7, ack=2),  # flow 0, resp
        dict(src="", dst="", proto=-1, arp_op=1),  # ARP: no flow
        tcp(C, S, 40000, 80, "A", 2, ack=8),  # flow 0, orig
        dict(src=S, dst=C, proto="udp", sport=53, dport=5000),  # flow 1, resp
    ]
    chunk = make_chunk(book, packets)
    chunk["ethertype"][3] = 0x0806
    builder = FlowBuilder(book)
    builder.add(chunk)
    assert chunk["flow_id"].tolist() == [0, 1, 0, -1, 0, 1]
    assert chunk["flow_dir"].tolist() == [0, 0, 1, -1, 0, 1]
    assert chunk["flow_pkt_index"].tolist() == [0, 0, 1, -1, 2, 1]
    assert chunk["icmp_err_flow_id"].tolist() == [-1] * 6
    for name, dtype in [("flow_id", "int64"), ("flow_dir", "int8"), ("flow_pkt_index", "int32")]:
        assert chunk[name].dtype == np.dtype(dtype)
    flows = builder.finish()
    assert list(flows.columns) == list(FLOW_COLUMN_NAMES)
    assert flows.proto.tolist() == ["tcp", "udp"]
    assert flows.first_frame.tolist() == [1, 2] and flows.last_frame.tolist() == [5, 6]
    assert isinstance(flows.orig_h.dtype, pd.CategoricalDtype)
    assert (flows.orig_h == flows.resp_h).tolist() == [False, False]


def test_flow_ids_are_global_across_chunks() -> None:
    book = AddressBook()
    builder = FlowBuilder(book)
    first = make_chunk(book, [tcp(C, S, 1000, 80, "S", 1)])
    second = make_chunk(book, [tcp(C, S, 1001, 80, "S", 1), tcp(S, C, 80, 1000, "SA", 5)], 2)
    builder.add(first)
    builder.add(second)
    assert second["flow_id"].tolist() == [1, 0]
    assert second["flow_dir"].tolist() == [0, 1]
    assert second["flow_pkt_index"].tolist() == [0, 1]
    assert builder.finish().conn_state.tolist() == ["S1", "S0"]


def test_time_exceeded_links_quoted_udp_and_tcp_flows() -> None:
    book = AddressBook()
    packets = [
        dict(src=C, dst=S, proto="udp", sport=33434, dport=33435, ip_ttl=1),
        tcp(C, S, 40000, 443, "S", 10, ip_ttl=1),
        dict(
            src=R,
            dst=C,
            proto="icmp",
            type=11,
            code=0,
            inner_src=C,
            inner_dst=S,
            inner_proto=17,
            inner_sport=33434,
            inner_dport=33435,
        ),
        dict(
            src=R,
            dst=C,
            proto="icmp",
            type=11,
            code=0,
            inner_src=C,
            inner_dst=S,
            inner_proto=6,
            inner_sport=40000,
            inner_dport=443,
        ),
        # quotes a flow never seen: no link
        dict(
            src=R,
            dst=C,
            proto="icmp",
            type=11,
            code=0,
            inner_src=C,
            inner_dst=S,
            inner_proto=17,
            inner_sport=1,
            inner_dport=2,
        ),
        dict(
            src=S,
            dst=C,
            proto="icmp",
            type=3,
            code=3,
            inner_src=C,
            inner_dst=S,
            inner_proto=17,
            inner_sport=33434,
            inner_dport=33435,
        ),
    ]
    chunk = make_chunk(book, packets)
    flows = build_flows([chunk], book)
    assert chunk["icmp_err_flow_id"].tolist() == [-1, -1, 0, 1, -1, 0]
    # the errors are flows of their own (R -> C, type 11 code 0; S -> C, 3/3)
    assert chunk["flow_id"].tolist() == [0, 1, 2, 2, 2, 3]
    assert flows.icmp_errors.tolist() == [2, 1, 0, 0]
    assert flows.first_icmp_error.tolist()[:2] == ["time-exceeded(11/0)", "time-exceeded(11/0)"]
    assert flows.first_icmp_error_frame.tolist() == [3, 4, -1, -1]
    assert (flows.orig_p[2], flows.resp_p[2]) == (11, 0)


def test_icmp_error_before_the_quoted_flow_is_not_linked() -> None:
    book = AddressBook()
    packets = [
        dict(
            src=R,
            dst=C,
            proto="icmp",
            type=11,
            code=0,
            inner_src=C,
            inner_dst=S,
            inner_proto=17,
            inner_sport=7,
            inner_dport=8,
        ),
        dict(src=C, dst=S, proto="udp", sport=7, dport=8),
    ]
    chunk = make_chunk(book, packets)
    flows = build_flows([chunk], book)
    assert chunk["icmp_err_flow_id"].tolist() == [-1, -1]
    assert flows.icmp_errors.tolist() == [0, 0]


def test_icmp6_packet_too_big_links_tcp6_flow() -> None:
    book = AddressBook()
    a, b, gw = "2001:db8::1", "2001:db8:1::2", "2001:db8::fe"
    packets = [
        tcp(a, b, 50000, 443, "PA", 1, 1400),
        dict(
            src=gw,
            dst=a,
            proto="icmp6",
            type=2,
            code=0,
            icmp_mtu=1280,
            inner_src=a,
            inner_dst=b,
            inner_proto=6,
            inner_sport=50000,
            inner_dport=443,
        ),
    ]
    chunk = make_chunk(book, packets)
    flows = build_flows([chunk], book)
    assert chunk["icmp_err_flow_id"].tolist() == [-1, 0]
    assert flows.first_icmp_error[0] == "icmp6 packet-too-big(2/0)"
    assert flows.ip_version.tolist() == [6, 6]


def test_retransmission_across_chunk_boundary_and_seq_wraparound() -> None:
    isn = 2**32 - 150
    book = AddressBook()
    packets = [
        tcp(C, S, 40000, 80, "S", isn),
        tcp(S, C, 80, 40000, "SA", 5, ack=isn + 1),
        tcp(C, S, 40000, 80, "A", isn + 1),
        tcp(C, S, 40000, 80, "PA", isn + 1, 100),  # ends at 2**32 - 49
        tcp(C, S, 40000, 80, "PA", isn + 101, 100),  # crosses 2**32
        tcp(C, S, 40000, 80, "PA", (isn + 201) % 2**32, 100),  # after the wrap
        tcp(C, S, 40000, 80, "PA", isn + 101, 100),  # retransmission (before the wrap)
        tcp(C, S, 40000, 80, "PA", (isn + 201) % 2**32, 100),  # retransmission (after)
        tcp(C, S, 40000, 80, "A", (isn + 300) % 2**32, 1),  # keep-alive: not counted
        tcp(C, S, 40000, 80, "PA", (isn + 301) % 2**32, 50),  # new data
    ]
    chunk = make_chunk(book, packets)
    whole = build_flows([chunk], book)
    assert whole.retrans_orig.tolist() == [2]
    assert whole.orig_bytes.tolist() == [350]
    for cut in range(1, len(packets)):
        book2 = AddressBook()
        parts = split_chunk(make_chunk(book2, packets), [cut])
        flows = build_flows(parts, book2)
        assert flows.retrans_orig.tolist() == [2], cut
    assert whole.syn_isn_orig.tolist() == [isn]


def test_vlan_iface_columns() -> None:
    book = AddressBook()
    packets = [
        tcp(C, S, 40000, 80, "S", 1, vlan=100, iface=2),
        tcp(S, C, 80, 40000, "SA", 9, vlan=100, iface=0),
        tcp(C, S, 40000, 80, "A", 2, vlan=100, iface=2),
    ]
    flows = build_flows([make_chunk(book, packets)], book)
    row = flows.iloc[0]
    assert (row.vlan, row.orig_iface, row.resp_iface, row.iface_mask) == (100, 2, 0, 0b101)


def test_tcp_without_ports_gets_no_flow() -> None:
    book = AddressBook()
    chunk = make_chunk(book, [tcp(C, S, 40000, 80, "S", 1), dict(src=C, dst=S, proto="udp")])
    chunk["sport"][1] = -1  # a non-first fragment carries no ports
    chunk["dport"][1] = -1
    flows = build_flows([chunk], book)
    assert chunk["flow_id"].tolist() == [0, -1]
    assert len(flows) == 1


def test_empty_input() -> None:
    book = AddressBook()
    chunk = empty_chunk(0)
    flows = build_flows([chunk], book)
    assert len(flows) == 0 and list(flows.columns) == list(FLOW_COLUMN_NAMES)
    assert len(chunk["flow_id"]) == 0


# --- chunk-split invariance on random traffic -------------------------------------------------


def random_traffic(seed: int, n_conns: int = 12) -> list[dict]:
    """Interleaved TCP connections (handshakes, data, retransmissions, FIN/RST, ISNs near the
    wrap), UDP exchanges and ICMP time-exceeded messages quoting them."""
    rng = np.random.default_rng(seed)
    hosts = [f"10.0.{i}.{j}" for i in range(2) for j in range(1, 4)] + ["2001:db8::1"]
    streams: list[list[dict]] = []
    for k in range(n_conns):
        c, s = rng.choice(6, size=2, replace=False)
        src, dst = hosts[c], hosts[s]
        sport, dport = int(rng.integers(30000, 60000)), int(rng.choice([22, 80, 443, 8080]))
        if rng.random() < 0.25:
            streams.append(
                [
                    dict(src=src, dst=dst, proto="udp", sport=sport, dport=dport, len=20),
                    dict(
                        src=R,
                        dst=src,
                        proto="icmp",
                        type=11,
                        code=0,
                        inner_src=src,
                        inner_dst=dst,
                        inner_proto=17,
                        inner_sport=sport,
                        inner_dport=dport,
                    ),
                    dict(src=dst, dst=src, proto="udp", sport=dport, dport=sport, len=40),
                ]
            )
            continue
        cseq = int(rng.integers(2**32 - 3000, 2**32)) if k % 2 else int(rng.integers(0, 2**31))
        sseq = int(rng.integers(0, 2**32))
        pk = [tcp(src, dst, sport, dport, "S", cseq)]
        if rng.random() < 0.3:
            pk.append(tcp(src, dst, sport, dport, "S", cseq))
        if rng.random() < 0.15:
            pk.append(tcp(dst, src, dport, sport, "RA", 0))
            streams.append(pk)
            continue
        pk.append(tcp(dst, src, dport, sport, "SA", sseq))
        cseq, sseq = (cseq + 1) % 2**32, (sseq + 1) % 2**32
        pk.append(tcp(src, dst, sport, dport, "A", cseq))
        sent: list[tuple[str, int, int]] = []
        for _ in range(int(rng.integers(0, 12))):
            if sent and rng.random() < 0.2:
                who, seq, ln = sent[int(rng.integers(0, len(sent)))]
            else:
                who = "c" if rng.random() < 0.5 else "s"
                ln = int(rng.integers(1, 1500))
                seq = cseq if who == "c" else sseq
                if who == "c":
                    cseq = (cseq + ln) % 2**32
                else:
                    sseq = (sseq + ln) % 2**32
                sent.append((who, seq, ln))
            if who == "c":
                pk.append(tcp(src, dst, sport, dport, "PA", seq, ln, win=int(rng.integers(0, 3))))
            else:
                pk.append(tcp(dst, src, dport, sport, "PA", seq, ln))
        end = rng.random()
        if end < 0.5:
            pk += [tcp(src, dst, sport, dport, "FA", cseq), tcp(dst, src, dport, sport, "FA", sseq)]
        elif end < 0.7:
            pk.append(tcp(dst, src, dport, sport, "RA", sseq))
        streams.append(pk)
    # interleave, keeping each stream's order
    order = np.concatenate([np.full(len(s), i) for i, s in enumerate(streams)])
    rng.shuffle(order)
    cursors = [0] * len(streams)
    out = []
    for i in order.tolist():
        out.append(streams[i][cursors[i]])
        cursors[i] += 1
    return out


def reference_retransmissions(packets: list[dict]) -> dict[tuple, int]:
    """Per (sender, sport, receiver, dport): segments ending at or below the highest end seen."""
    highest: dict[tuple, int] = {}
    base: dict[tuple, int] = {}
    counts: dict[tuple, int] = {}
    for p in packets:
        if p.get("proto", "tcp") != "tcp":
            continue
        key = (p["src"], p["sport"], p["dst"], p["dport"])
        rel = (p["seq"] - base.setdefault(key, p["seq"])) % 2**32
        end = rel + p["len"] + ("S" in p["flags"]) + ("F" in p["flags"])
        keepalive = key in highest and p["len"] <= 1 and rel == highest[key] - 1
        if key in highest and p["len"] > 0 and end <= highest[key] and not keepalive:
            counts[key] = counts.get(key, 0) + 1
        highest[key] = max(highest.get(key, end), end)
    return counts


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), cuts=st.lists(st.integers(1, 10_000), max_size=8))
def test_same_result_for_any_chunk_split(seed: int, cuts: list[int]) -> None:
    packets = random_traffic(seed)
    book = AddressBook()
    whole_chunk = make_chunk(book, packets)
    whole = build_flows([whole_chunk], book)
    n = len(packets)
    parts = split_chunk(make_chunk(book, packets), [c % n for c in cuts if c % n])
    split = build_flows(parts, book)
    pd.testing.assert_frame_equal(whole, split)
    for name in PACKET_FLOW_COLUMNS:
        assert np.array_equal(whole_chunk[name], concat_column(parts, name)), name

    # retransmissions agree with a plain per-packet reference
    expected = reference_retransmissions(packets)
    got: dict[tuple, int] = {}
    for row in whole.itertuples():
        if row.proto != "tcp":
            continue
        o = (str(row.orig_h), row.orig_p, str(row.resp_h), row.resp_p)
        r = (o[2], o[3], o[0], o[1])
        got[o], got[r] = row.retrans_orig, row.retrans_resp
    assert {k: v for k, v in got.items() if v} == expected


def test_one_packet_chunks_equal_one_chunk() -> None:
    packets = random_traffic(0, n_conns=20)
    book = AddressBook()
    whole = build_flows([make_chunk(book, packets)], book)
    parts = split_chunk(make_chunk(book, packets), list(range(1, len(packets))))
    pd.testing.assert_frame_equal(whole, build_flows(parts, book))
    assert set(whole.conn_state) >= {"SF", "REJ", "RSTR", "S1"}
    assert (whole.conn_state[whole.history == "Sr"] == "REJ").all()
    assert (whole.conn_state[whole.history.str.endswith("Ff")] == "SF").all()


def test_non_first_fragments_join_their_datagrams_flow() -> None:
    book = AddressBook()
    packets = [
        dict(src=C, dst=S, proto="udp", sport=500, dport=500, len=1472, ip_id=77, ip_flags=1),
        dict(src=C, dst=S, proto="udp", ip_id=77, ip_flags=0, ip_frag_offset=1480, len=600),
        # a fragment whose first fragment was never seen: no flow
        dict(src=C, dst=S, proto="udp", ip_id=78, ip_flags=0, ip_frag_offset=1480, len=600),
        dict(src=S, dst=C, proto="udp", sport=500, dport=500, len=200),
    ]
    chunk = make_chunk(book, packets)
    for i in (1, 2):
        chunk["sport"][i] = chunk["dport"][i] = chunk["udp_len"][i] = -1
    for cuts in ([], [1], [2], [1, 2, 3]):
        parts = split_chunk({k: v.copy() for k, v in chunk.items()}, cuts)
        flows = build_flows(parts, book)
        assert concat_column(parts, "flow_id").tolist() == [0, 0, -1, 0]
        assert concat_column(parts, "flow_dir").tolist() == [0, 0, -1, 1]
        assert (flows.orig_pkts[0], flows.resp_pkts[0]) == (2, 1)
        assert flows.orig_ip_bytes[0] == (20 + 8 + 1472) + (20 + 8 + 600)
        assert flows.orig_bytes[0] == 1472


def test_synack_ack_and_sll_ifindex() -> None:
    book = AddressBook()
    packets = [
        tcp(C, S, 40000, 80, "S", 1000, sll_ifindex=2),
        tcp(S, C, 80, 40000, "SA", 9000, ack=1001, sll_ifindex=5),
    ]
    row = build_flows([make_chunk(book, packets)], book).iloc[0]
    assert (row.syn_isn_orig, row.syn_isn_resp, row.synack_ack) == (1000, 9000, 1001)
    assert (row.orig_ifindex, row.resp_ifindex) == (2, 5)


def test_fragment_takes_ports_of_latest_first_fragment_before_it() -> None:
    book = AddressBook()
    first = dict(src=C, dst=S, proto="udp", len=100, ip_id=9, ip_flags=1, ip_frag_offset=0)
    rest = dict(src=C, dst=S, proto="udp", ip_id=9, ip_flags=0, ip_frag_offset=104)
    packets = [dict(first, sport=123, dport=137), rest, dict(first, sport=999, dport=137), rest]
    chunk = make_chunk(book, packets)
    for i in (1, 3):
        chunk["sport"][i] = chunk["dport"][i] = -1
    for cuts in ([], [1], [2], [3], [1, 2, 3]):
        parts = split_chunk({k: v.copy() for k, v in chunk.items()}, cuts)
        flows = build_flows(parts, book)
        assert concat_column(parts, "flow_id").tolist() == [0, 0, 1, 1], cuts
        assert flows.orig_p.tolist() == [123, 999]


def test_same_packet_on_several_interfaces_is_not_a_retransmission() -> None:
    # "-i any": each segment seen on the veth (ifindex 7) and on eth0 (ifindex 2)
    book = AddressBook()
    packets = []
    for seq in (1, 101, 201):
        for ifindex in (7, 2):
            packets.append(tcp(C, S, 40000, 80, "PA", seq, 100, sll_ifindex=ifindex))
    packets.append(tcp(C, S, 40000, 80, "PA", 101, 100, sll_ifindex=7))  # a real one
    for cuts in ([], [1], [3, 4]):
        parts = split_chunk(make_chunk(book, packets), cuts)
        row = build_flows(parts, book).iloc[0]
        assert row.retrans_orig == 1
        assert row.orig_pkts == 7
        assert row.orig_bytes == 300
        assert row.orig_ifindex == 7


def test_wide_chunk_key_path_gives_the_same_flows(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # chunks with more than 2**21 address pairs take another path to number their keys
    import netdiag.flows.builder as builder_module

    packets = random_traffic(3)
    book = AddressBook()
    expected = build_flows([make_chunk(book, packets)], book)
    monkeypatch.setattr(builder_module, "_PAIR_CODE_LIMIT", 1)
    got = build_flows([make_chunk(book, packets)], book)
    pd.testing.assert_frame_equal(expected, got)


def test_finish_leaves_the_builder_usable() -> None:
    packets = random_traffic(11)
    book = AddressBook()
    whole = build_flows([make_chunk(book, packets)], book)
    half = len(packets) // 2
    builder = FlowBuilder(book)
    builder.add(make_chunk(book, packets[:half]))
    early = builder.finish()
    builder.add(make_chunk(book, packets[half:], first_frame=half + 1))
    pd.testing.assert_frame_equal(builder.finish(), whole)
    assert len(early) <= len(whole)


def test_flow_table_dtypes_follow_the_schema() -> None:
    from netdiag.flows import FLOW_COLUMNS

    book = AddressBook()
    flows = build_flows([make_chunk(book, random_traffic(2))], book)
    for column in FLOW_COLUMNS:
        dtype = flows[column.name].dtype
        if column.kind == "int":
            assert dtype == np.dtype(column.dtype), column.name
        elif column.kind == "ip":
            assert isinstance(dtype, pd.CategoricalDtype), column.name
        else:
            assert pd.api.types.is_string_dtype(dtype), column.name
