"""Packet retention (netdiag.pipeline): "control" keeps every packet a rule needs.

The rules see the packet table of `retention="control"` (what `netdiag analyze` loads), which drops
bulk data packets. These tests run every rule over the same inputs loaded with every packet kept
and with control retention, and require the same findings; and they check the retention rule
itself and the compact storage of columns that are constant over the kept packets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from netdiag.addressbook import AddressBook
from netdiag.capture.schema import PACKET_COLUMNS, TCP_FIN, TCP_RST, TCP_SYN
from netdiag.engine.context import AnalysisContext
from netdiag.engine.registry import discover, rules_root
from netdiag.engine.runner import run_rules, select_rules
from netdiag.pipeline import FIRST_PACKETS_PER_FLOW, Retention, load_capture

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


def _inputs() -> list[Any]:
    """Every sample (all its captures and facts) and every rule case's inputs, once each."""
    seen: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
    params = []

    def add(name: str, captures: list[Path], facts: list[Path]) -> None:
        key = (tuple(sorted(map(str, captures))), tuple(sorted(map(str, facts))))
        if captures and all(p.exists() for p in captures + facts) and key not in seen:
            seen.add(key)
            params.append(pytest.param(list(key[0]), list(key[1]), id=name))

    for sample in sorted(p.parent for p in SAMPLES.glob("*/*/expected.yaml")):
        captures = sorted(p for p in sample.iterdir() if ".pcap" in p.name)
        facts = [sample / "facts"] if (sample / "facts").is_dir() else []
        add(f"sample-{sample.parent.name}/{sample.name}", captures, facts)
    for folder in sorted(p for p in rules_root().iterdir() if (p / "cases.yaml").is_file()):
        spec = yaml.safe_load((folder / "cases.yaml").read_text()) or {}

        def resolve(path: str, folder: Path = folder) -> Path:
            local = folder / path
            return local if local.exists() else REPO / path

        for case in spec.get("cases", []):
            captures = [resolve(p) for p in case.get("captures", [])]
            facts = [resolve(p) for p in case.get("facts", [])]
            add(f"{folder.name.split('-')[0]}-{case['name']}", captures, facts)
    return params


def _findings(captures: list[str], facts: list[str], retention: Retention) -> list[dict[str, Any]]:
    book = AddressBook()
    loaded = [load_capture(path, book=book, retention=retention) for path in captures]
    fact_set = None
    if facts:
        from netdiag.facts import load_facts

        fact_set, _problems = load_facts(facts)
    ctx = AnalysisContext(loaded, fact_set, facts)
    result = run_rules(ctx, select_rules(discover(), ["ALL"], []))
    assert result.errored == []
    return [f.to_dict() for f in result.findings]


@pytest.mark.parametrize(("captures", "facts"), _inputs())
def test_control_retention_gives_the_findings_of_all_packets(
    captures: list[str], facts: list[str]
) -> None:
    assert _findings(captures, facts, "control") == _findings(captures, facts, "all")


def _hairpin() -> Path:
    path = SAMPLES / "lb-hairpin" / "faulty-l4" / "backend1-any.pcap"
    if not path.exists():
        pytest.skip("sample not built")
    return path


def test_control_keeps_the_packet_classes_rules_need() -> None:
    """Control packets by class, first packets of non-TCP flows, first TCP data each way."""
    path = str(SAMPLES / "busy" / "faulty" / "ecs3-any.pcap")
    if not Path(path).exists():
        pytest.skip("sample not built")
    every = load_capture(path, retention="all").packets
    kept = load_capture(path, retention="control").packets
    frames = set(kept["frame"].tolist())
    proto = every["ip_proto"].to_numpy()
    flags = every["tcp_flags"].to_numpy()
    index = every["flow_pkt_index"].to_numpy()
    tcp = proto == 6
    control = tcp & (flags >= 0) & ((flags & (TCP_SYN | TCP_FIN | TCP_RST)) != 0)
    must = ~(tcp | (proto == 17)) | control | (every["esp_spi"].to_numpy() >= 0)
    must |= every["decode_error"].notna().to_numpy()
    must |= (proto == 17) & (index < FIRST_PACKETS_PER_FLOW)
    must |= index == 0
    # the first TCP segment carrying data, in each direction of each flow
    data = tcp & (every["tcp_len"].to_numpy() > 0)
    key = every["flow_id"].to_numpy() * 2 + every["flow_dir"].to_numpy()
    _, first = np.unique(key[data], return_index=True)
    first_data = np.flatnonzero(data)[first]
    must[first_data] = True
    assert set(every["frame"].to_numpy()[must].tolist()) <= frames
    assert len(kept) < len(every)  # bulk data is dropped: the sample has long flows
    dropped = every[~every["frame"].isin(frames)]
    assert (dropped["ip_proto"].isin([6, 17])).all()
    assert len(first_data) > 0


def test_retained_table_is_the_same_whichever_way_columns_are_stored() -> None:
    """Constant columns are stored compactly; values and dtypes are those of the full table."""
    path = str(_hairpin())
    every = load_capture(path, retention="all").packets
    kept = load_capture(path, retention="control").packets
    rows = every["frame"].isin(set(kept["frame"].tolist())).to_numpy()
    expected = every.loc[rows].reset_index(drop=True)
    assert list(kept.columns) == list(expected.columns)
    for column in kept.columns:
        assert kept[column].dtype == expected[column].dtype, column
        assert kept[column].equals(expected[column]), column
    by_name = {c.name: c for c in PACKET_COLUMNS}
    compact = [
        c
        for c in kept.columns
        if c in by_name
        and by_name[c].kind == "int"
        and kept[c].to_numpy().strides == (0,)
        and len(kept) > 1
    ]
    assert "esp_spi" in compact  # no ESP in this capture: one broadcast value, no memory
