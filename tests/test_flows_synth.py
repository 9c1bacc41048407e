"""Flow table of synthetic captures (netdiag.synth) against the generator's per-connection truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from netdiag.addressbook import AddressBook
from netdiag.flows import build_flows

synth = pytest.importorskip("netdiag.synth")
capture = pytest.importorskip("netdiag.capture")


@pytest.fixture(scope="module")
def traffic():  # type: ignore[no-untyped-def]
    return synth.generate_traffic(30_000, seed=5)


def _flows_of(path: Path, chunk_bytes: int | None = None) -> pd.DataFrame:
    book = AddressBook()
    kwargs = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    flows = build_flows(capture.iter_chunks(str(path), book, **kwargs), book)
    for col in ("orig_h", "resp_h"):
        flows[col] = flows[col].astype(str)
    return flows


@pytest.mark.parametrize("layout", ["ether", "sll2", "pcapng-mixed"])
def test_tcp_connections_match_ground_truth(traffic, layout: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / f"synth.{layout}"
    synth.write_traffic(path, traffic, layout)
    flows = _flows_of(path, chunk_bytes=1 << 20)
    truth = traffic.conns_frame()
    tcp = flows[flows.proto == "tcp"]
    merged = truth.merge(
        tcp,
        on=["orig_h", "orig_p", "resp_h", "resp_p"],
        how="outer",
        indicator=True,
        suffixes=("_truth", ""),
    )
    # every connection is one flow with the originator the truth names, and nothing else
    assert (merged["_merge"] == "both").all()
    assert len(tcp) == len(truth)
    assert (merged.conn_state_truth == merged.conn_state).all()
    assert (merged.orig_pkts_truth == merged.orig_pkts).all()
    assert (merged.resp_pkts_truth == merged.resp_pkts).all()
    # the truth counts retried SYNs as retransmissions; the flow table counts them in syn_count
    retrans = merged.retrans_orig + merged.retrans_resp + np.maximum(merged.syn_count - 1, 0)
    assert (merged.retrans == retrans).all()
    # payload bytes leave retransmitted segments out (as Zeek counts sequence space)
    clean = merged.retrans == 0
    assert (merged.orig_payload[clean] == merged.orig_bytes[clean]).all()
    assert (merged.resp_payload[clean] == merged.resp_bytes[clean]).all()
    assert (merged.resp_bytes <= merged.resp_payload).all()
    assert (merged.history[merged.conn_state == "SF"].str.startswith("ShA")).all()
    # handshake RTT present exactly where a SYN-ACK was answered
    has_rtt = merged.rtt_ns > 0
    assert has_rtt[merged.conn_state.isin(["SF", "RSTO", "RSTR"])].all()
    assert not has_rtt[merged.conn_state.isin(["S0", "REJ"])].any()


def test_icmp_time_exceeded_quotes_traceroute_flows(traffic, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "synth.pcap"
    synth.write_traffic(path, traffic, "ether")
    book = AddressBook()
    chunks = list(capture.iter_chunks(str(path), book))
    flows = build_flows(chunks, book)
    summary = traffic.summary()
    quoting = summary["kind_icmp4_te_udp"] + summary["kind_icmp4_te_tcp"]
    assert quoting > 0
    err = np.concatenate([c["icmp_err_flow_id"] for c in chunks])
    assert np.count_nonzero(err >= 0) == quoting == flows.icmp_errors.sum()
    assert set(flows.proto[flows.icmp_errors > 0]) <= {"tcp", "udp"}
    assert flows.first_icmp_error[flows.icmp_errors > 0].str.startswith("time-exceeded").all()
