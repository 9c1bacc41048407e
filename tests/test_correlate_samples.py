"""Correlation on the real multi-point samples: what netdiag infers equals the samples' ground truth.

The two-point NAT sample of the issue (nat-gateway/faulty-rs-gateway: client and director) is
checked explicitly; the samples with a ``points`` section in expected.yaml (written from the
captures by samples/lab/a_samples.py with tshark, not by netdiag) are checked against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from netdiag.engine.analysis import analyze, load_context

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
RS_GATEWAY = SAMPLES / "nat-gateway" / "faulty-rs-gateway"


def _context(sample: Path, names: dict[str, str] | None = None) -> Any:
    captures = sorted(str(p) for p in sample.iterdir() if ".pcap" in p.name)
    if not captures:
        pytest.skip("sample not built")
    facts = [str(sample / "facts")] if (sample / "facts").is_dir() else []
    ctx, _ = load_context(captures, facts, names)
    return ctx


# --- the two-point NAT sample -------------------------------------------------------------


@pytest.fixture(scope="module")
def rs_gateway() -> Any:
    return _context(RS_GATEWAY)


def test_vip_to_real_server_mapping(rs_gateway: Any) -> None:
    corr = rs_gateway.correlation
    got = {(m.at, m.kind, m.before, m.after, m.connections) for m in corr.mappings.itertuples()}
    assert got == {
        ("at director (eth1 -> eth0)", "DNAT", "to 198.51.100.131:80", "to 192.168.1.185:80", 3),
        ("at director (eth1 -> eth0)", "DNAT", "to 198.51.100.131:80", "to 192.168.1.190:80", 3),
    }


def test_every_connection_seen_at_both_points_is_matched(rs_gateway: Any) -> None:
    """Each of the client's six connections to the VIP is one connection with the director's
    flows before and after the rewrite, and the same ISN on both sides."""
    corr = rs_gateway.correlation
    client_flows = rs_gateway.captures[0].flows
    to_vip = client_flows[
        (client_flows["resp_h"].astype(str) == "198.51.100.131") & (client_flows["resp_p"] == 80)
    ]
    assert len(to_vip) == 6
    links = corr.connections
    director = rs_gateway.captures[1].flows
    for flow in to_vip.itertuples():
        conn = links[(links["capture"] == 0) & (links["flow_id"] == flow.flow_id)]["conn"]
        assert len(conn) == 1, f"client flow {flow.orig_p} not linked"
        behind = links[(links["conn"] == int(conn.iloc[0])) & (links["capture"] == 1)]
        rows = director.iloc[behind["flow_id"].to_numpy()]
        assert set(rows["resp_h"].astype(str)) - {"198.51.100.131"} <= {
            "192.168.1.185",
            "192.168.1.190",
        }
        assert len(set(rows["resp_h"].astype(str))) == 2  # before and after the rewrite
        assert set(rows["syn_isn_orig"]) == {flow.syn_isn_orig}


def test_clock_offset_of_one_host_is_zero(rs_gateway: Any) -> None:
    director = rs_gateway.correlation.points[1]
    assert director.offset_basis.startswith("two-way")
    assert abs(director.clock_offset_ns) < 50_000


def test_the_hop_where_the_reply_went_missing_is_named() -> None:
    captures = sorted(str(p) for p in RS_GATEWAY.iterdir() if ".pcap" in p.name)
    analysis = analyze(captures, [str(RS_GATEWAY / "facts")], select=["NAT001"])
    (finding,) = analysis.result.findings
    assert (
        "it went missing on the hop from 192.168.1.190 to director:eth0, where the SYN had left"
        in finding.message
    )
    missing = analysis.context.correlation.missing
    client = missing[(missing["capture"] == 0) & (missing["kind"] == "bypassed")]
    # the nine SYN-ACKs from 192.168.1.190 (three attempts of three connections)
    assert sorted(client["frame"]) == [34, 37, 41, 58, 64, 69, 84, 87, 90]


# --- samples with a `points` ground truth ---------------------------------------------------------


def _with_points() -> list[Path]:
    out = []
    for truth in sorted(SAMPLES.glob("*/*/expected.yaml")):
        spec = yaml.safe_load(truth.read_text()) or {}
        if spec.get("points"):
            out.append(truth.parent)
    return out


@pytest.mark.parametrize("sample", _with_points(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_inferred_points_equal_the_ground_truth(sample: Path) -> None:
    spec = yaml.safe_load((sample / "expected.yaml").read_text())["points"]
    names = {str(sample / v["file"]): v["name"] for v in spec["vantage"]}
    ctx = _context(sample, names)
    corr = ctx.correlation
    assert [p.name for p in corr.points] == [names[c.path] for c in ctx.captures]
    # every configured rewrite is inferred, at the right point
    for t in spec.get("translations") or []:
        if t["kind"] != "DNAT":
            continue
        hits = corr.mappings[
            (corr.mappings["kind"] == "DNAT")
            & (corr.mappings["before"] == f"to {t['from']}")
            & (corr.mappings["after"] == f"to {t['to']}")
            & corr.mappings["at"].str.startswith(f"at {t['at']} ")
        ]
        assert len(hits) >= 1, f"{t} not inferred: {corr.mappings.to_dict('records')}"
    # each connection's SYN is one packet across the points that saw it
    point_of = {p.name: p.index for p in corr.points}
    for conn in spec.get("connections") or []:
        frames = conn.get("syn") or {}
        firsts = [(point_of[p], f[0]) for p, f in frames.items() if f]
        if len(firsts) < 2:
            continue
        instances = {
            int(
                corr.observations[
                    (corr.observations["capture"] == c) & (corr.observations["frame"] == f)
                ]["instance"].iloc[0]
            )
            for c, f in firsts
        }
        assert len(instances) == 1 and instances != {-1}, f"SYN of {conn['client']} not matched"
    # replies that never came back to the translator are reported missing there
    for gap in spec.get("missing") or []:
        if gap["what"] != "SYN-ACK" or gap["translated_at"] not in point_of:
            continue
        at = point_of[gap["translated_at"]]
        missing = corr.missing[corr.missing["direction"] == "resp"]
        taps = {int(t) for t in missing["missing_tap"]}
        assert any(corr.taps[t].point == at for t in taps), f"no reply missing at {gap}"


def test_icmp_errors_linked_to_what_they_quote_at_another_point() -> None:
    sample = SAMPLES / "ipsec-selector-gap" / "faulty"
    ctx = _context(sample)
    quotes = ctx.correlation.quotes
    assert len(quotes) > 0
    for q in quotes.head(20).itertuples():
        error = ctx.captures[q.capture].packets
        error = error[error["frame"] == q.frame].iloc[0]
        quoted = ctx.captures[q.quoted_capture].packets
        quoted = quoted[quoted["frame"] == q.quoted_frame].iloc[0]
        assert error["icmp_inner_id"] == quoted["ip_id"]
        assert error["icmp_inner_proto"] == quoted["ip_proto"]
        assert error["ts_ns"] >= quoted["ts_ns"] - 1_000_000
