"""conn_state and history on hand-made TCP/UDP/ICMP exchanges, by Zeek's definitions.

Expected values come from Zeek's conn.log documentation (conn_state table and history letters),
one scenario per state; each scenario is also checked split into one-packet chunks.
"""

from __future__ import annotations

import pytest
from test_flows_kit import make_chunk, split_chunk

from netdiag.addressbook import AddressBook
from netdiag.flows import build_flows

C, S = "192.0.2.10", "198.51.100.20"


def out(flags: str, seq: int, ack: int = 0, length: int = 0, **kw) -> dict:  # type: ignore[no-untyped-def]
    """client -> server segment"""
    return dict(
        src=C, dst=S, sport=40001, dport=443, flags=flags, seq=seq, ack=ack, len=length, **kw
    )


def back(flags: str, seq: int, ack: int = 0, length: int = 0, **kw) -> dict:  # type: ignore[no-untyped-def]
    """server -> client segment"""
    return dict(
        src=S, dst=C, sport=443, dport=40001, flags=flags, seq=seq, ack=ack, len=length, **kw
    )


HANDSHAKE = [out("S", 100), back("SA", 900, 101), out("A", 101, 901)]

SCENARIOS = {
    # conn_state: (packets, history)
    "S0": ([out("S", 100), out("S", 100), out("S", 100)], "S"),
    "S1": ([*HANDSHAKE, out("PA", 101, 901, 50), back("A", 901, 151)], "ShADa"),
    "SF": (
        [
            *HANDSHAKE,
            out("PA", 101, 901, 50),
            back("PA", 901, 151, 20),
            out("FA", 151, 921),
            back("FA", 921, 152),
            out("A", 152, 922),
        ],
        "ShADdFf",
    ),
    "REJ": ([out("S", 100), back("RA", 0, 101)], "Sr"),
    "S2": ([*HANDSHAKE, out("FA", 101, 901)], "ShAF"),
    "S3": ([*HANDSHAKE, back("FA", 901, 101)], "ShAf"),
    "RSTO": ([*HANDSHAKE, out("PA", 101, 901, 10), out("RA", 111, 901)], "ShADR"),
    "RSTR": ([*HANDSHAKE, back("RA", 901, 101)], "ShAr"),
    "RSTOS0": ([out("S", 100), out("R", 101)], "SR"),
    # first seen with a SYN-ACK: its receiver is the originator (flip '^'), then a RST from it
    "RSTRH": ([back("SA", 900, 101), back("R", 901)], "^hr"),
    "SH": ([out("S", 100), out("F", 101)], "SF"),
    "SHR": ([back("SA", 900, 101), back("FA", 901, 101)], "^hf"),
    # mid-stream: no SYN at all
    "OTH": ([out("PA", 5000, 7000, 100), back("A", 7000, 5100)], "Da"),
}


def _flows(packets: list[dict], one_packet_chunks: bool = False):  # type: ignore[no-untyped-def]
    book = AddressBook()
    chunk = make_chunk(book, packets)
    chunks = split_chunk(chunk, list(range(1, len(packets)))) if one_packet_chunks else [chunk]
    return build_flows(chunks, book)


@pytest.mark.parametrize("one_packet_chunks", [False, True], ids=["one-chunk", "per-packet"])
@pytest.mark.parametrize("state", sorted(SCENARIOS))
def test_conn_state_and_history(state: str, one_packet_chunks: bool) -> None:
    packets, history = SCENARIOS[state]
    flows = _flows(packets, one_packet_chunks)
    assert len(flows) == 1
    row = flows.iloc[0]
    assert row.conn_state == state
    assert row.history == history
    # orig/resp as Zeek decides them: the client in every scenario
    assert str(row.orig_h) == C and row.orig_p == 40001
    assert str(row.resp_h) == S and row.resp_p == 443


def test_sf_counts_and_handshake_rtt() -> None:
    packets = [dict(p, ts=1_000_000_000 + i * 10_000_000) for i, p in enumerate(SCENARIOS["SF"][0])]
    packets[1]["ts"] = 1_000_000_000 + 25_000_000  # SYN-ACK 25 ms after the SYN
    packets[2]["ts"] = 1_000_000_000 + 26_000_000  # ACK 1 ms after the SYN-ACK
    row = _flows(packets).iloc[0]
    assert (row.orig_pkts, row.resp_pkts) == (5, 3)
    assert (row.orig_bytes, row.resp_bytes) == (50, 20)
    assert row.orig_ip_bytes == 5 * 40 + 50 and row.resp_ip_bytes == 3 * 40 + 20
    assert row.rtt_syn_synack_ns == 25_000_000
    assert row.rtt_synack_ack_ns == 1_000_000
    assert row.rtt_ns == 26_000_000
    assert (row.syn_isn_orig, row.syn_isn_resp) == (100, 900)
    assert (row.fin_by, row.rst_by) == ("both", "")
    assert row.syn_count == 1


def test_syn_retransmissions_counted() -> None:
    row = _flows(SCENARIOS["S0"][0]).iloc[0]
    assert row.syn_count == 3
    assert row.resp_pkts == 0 and row.rtt_ns == -1


def test_rst_by_and_fin_by() -> None:
    assert _flows(SCENARIOS["RSTR"][0]).iloc[0].rst_by == "resp"
    assert _flows(SCENARIOS["RSTO"][0]).iloc[0].rst_by == "orig"
    assert _flows(SCENARIOS["S2"][0]).iloc[0].fin_by == "orig"


def test_fin_then_rst_after_both_fins_stays_sf() -> None:
    # Zeek ignores a RST once both sides have closed (UpdateClosedState)
    packets = [*SCENARIOS["SF"][0], out("R", 153)]
    row = _flows(packets).iloc[0]
    assert row.conn_state == "SF"
    assert row.rst_by == "orig"


def test_retransmission_letter_and_scaled_repeats() -> None:
    packets = [*HANDSHAKE, out("PA", 101, 901, 100)]
    packets += [out("PA", 101, 901, 100) for _ in range(10)]  # ten retransmissions
    row = _flows(packets).iloc[0]
    assert row.retrans_orig == 10
    assert row.orig_bytes == 100
    # T at the 1st and again at the 10th retransmission
    assert row.history == "ShADTT"


def test_zero_window_letter() -> None:
    packets = [*HANDSHAKE, out("PA", 101, 901, 10), back("A", 901, 111, win=0)]
    assert _flows(packets).iloc[0].history == "ShADaw"


def test_multi_flag_letters() -> None:
    packets = [out("SF", 100), back("RF", 5, 0)]
    assert _flows(packets).iloc[0].history == "Qi"


def test_udp_states() -> None:
    q = dict(src=C, dst=S, proto="udp", sport=53001, dport=53, len=30)
    a = dict(src=S, dst=C, proto="udp", sport=53, dport=53001, len=60)
    both = _flows([q, a]).iloc[0]
    assert (both.conn_state, both.history) == ("SF", "Dd")
    only = _flows([q]).iloc[0]
    assert (only.conn_state, only.history) == ("S0", "D")
    # a reply seen first: the port heuristic makes the DNS server the responder
    rev = _flows([a]).iloc[0]
    assert str(rev.orig_h) == C and rev.resp_p == 53
    assert (rev.conn_state, rev.history) == ("SHR", "^d")


def test_midstream_port_heuristic_flips_server_sender() -> None:
    # first packet from the server port 443 to an ephemeral port: the client is the originator
    packets = [back("PA", 7000, 5000, 100), out("A", 5000, 7100)]
    row = _flows(packets).iloc[0]
    assert str(row.orig_h) == C and row.resp_p == 443
    assert row.history == "^dA"
    assert row.conn_state == "OTH"


def test_icmp_echo_is_oth_and_reply_first_flips() -> None:
    req = dict(src=C, dst=S, proto="icmp", type=8, code=0, icmp_id=7, icmp_seq=1)
    rep = dict(src=S, dst=C, proto="icmp", type=0, code=0, icmp_id=7, icmp_seq=1)
    flows = _flows([req, rep])
    assert len(flows) == 1
    row = flows.iloc[0]
    assert row.conn_state == "OTH"
    assert (row.orig_pkts, row.resp_pkts) == (1, 1)
    assert (row.orig_p, row.resp_p) == (8, 0)
    flipped = _flows([rep]).iloc[0]
    assert str(flipped.orig_h) == C


def test_new_syn_with_another_sequence_number_repeats_the_letter() -> None:
    # a retransmitted SYN (same ISN) adds nothing; a SYN with a new ISN on the same 5-tuple
    # (port reuse after the first attempt was refused) is written again, as Zeek does
    packets = [
        out("S", 100),
        out("S", 100),
        back("RA", 0, 101),
        out("S", 5000),
        back("RA", 0, 5001),
    ]
    row = _flows(packets).iloc[0]
    assert row.history == "SrS"
    assert row.syn_count == 3
    assert _flows(packets, one_packet_chunks=True).iloc[0].history == "SrS"


def test_history_strings_blockwise_equals_whole() -> None:
    import numpy as np

    from netdiag.flows import zeek

    rng = np.random.default_rng(4)
    n = 50
    ev = np.full((n, zeek.N_SLOTS), zeek.NEVER, dtype=np.int32)
    slots = zeek.HISTORY_SLOTS
    for i in range(n):
        chosen = rng.choice(slots, size=int(rng.integers(0, 6)), replace=False)
        ev[i, chosen] = rng.integers(1, 1000, size=len(chosen))
    flipped = rng.random(n) < 0.3
    extra_flow = rng.integers(0, n, 20)
    extra_frame = rng.integers(1, 1000, 20)
    extra_char = np.full(20, ord("T"), np.uint8)
    whole = zeek.history_strings(ev, flipped, extra_flow, extra_frame, extra_char)
    blocks = zeek.history_strings(ev, flipped, extra_flow, extra_frame, extra_char, block=7)
    assert whole.tolist() == blocks.tolist()
    assert all(h.startswith(b"^") for h in whole[flipped].tolist())
    assert sum(len(h) for h in whole) == (ev[:, slots] < zeek.NEVER).sum() + 20 + flipped.sum()
