"""The pandas-free flow table of ``netdiag flows`` is the pipeline's flow table, written alike.

``read_flow_columns`` + ``render_table`` / ``write_flow_csv`` replace ``load_capture`` + pandas'
``to_string`` / Arrow-from-pandas: these tests hold them to the same table and the same bytes
(the pandas forms are rebuilt here as the reference), and the numpy helpers that replaced pandas
calls inside the builder to what the pandas / numpy calls give.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdiag.cli.flows import TABLE_COLUMNS, render_table
from netdiag.export import for_export, write_csv, write_flow_csv
from netdiag.flows.builder import _factorize, _local_flow_codes, _stable_order, flow_dataframe
from netdiag.flows.read import read_flow_columns
from netdiag.flows.zeek import _lexical_order
from netdiag.pipeline import load_capture
from netdiag.timefmt import iso_ns

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _captures() -> list[Path]:
    return sorted(p for p in SAMPLES.rglob("*.pcap*") if p.is_file())[:10]


def pandas_table(flows: pd.DataFrame) -> str:
    """The text table as DataFrame.to_string laid it out (the reference layout)."""
    cols = [c for c in TABLE_COLUMNS if c in flows.columns]
    view = flows[cols].copy()
    if "first_ts_ns" in view:
        view["first_ts_ns"] = [iso_ns(v) for v in view["first_ts_ns"].tolist()]
        view = view.rename(columns={"first_ts_ns": "ts"})
    if "duration_ns" in view:
        view["duration_ns"] = (view["duration_ns"] / 1e9).map("{:.6f}".format)
        view = view.rename(columns={"duration_ns": "duration"})
    for name in ("orig_p", "resp_p"):
        if name in view:
            view[name] = view[name].astype("Int64").mask(view[name] < 0).astype("string")
    view = view.astype("string").fillna("-")
    if view.empty:
        return "  ".join(view.columns) + "\n"
    return view.to_string(index=False, justify="left") + "\n"


@pytest.mark.parametrize("path", _captures(), ids=lambda p: str(p.relative_to(SAMPLES)))
def test_flow_columns_are_the_pipelines_flow_table(path: Path) -> None:
    loaded = load_capture(str(path), retention="none")
    table = read_flow_columns(str(path))
    assert table.info.packets == loaded.info.packets
    assert table.info.warnings == loaded.info.warnings
    pd.testing.assert_frame_equal(flow_dataframe(table.columns, table.book), loaded.flows)
    assert render_table(table.columns, table.book.ip_texts) == pandas_table(loaded.flows)
    reference, fast = io.BytesIO(), io.BytesIO()
    write_csv(for_export(loaded.flows), reference)
    write_flow_csv(table.columns, table.book.ip_texts, fast)
    assert fast.getvalue() == reference.getvalue()


def test_table_layout_of_odd_cells() -> None:
    # long cells are not cut (to_string has no max_colwidth); empty text stays empty
    flows = {
        "flow_id": np.array([0, 12], dtype=np.int64),
        "first_ts_ns": np.array([-1, 1_700_000_000_123_456_789], dtype=np.int64),
        "proto": np.array(["tcp", "icmp6"], dtype=object),
        "orig_h": np.array([0, -1], dtype=np.int32),
        "orig_p": np.array([-1, 65535], dtype=np.int32),
        "duration_ns": np.array([0, 123_456_789_012], dtype=np.int64),
        "history": np.array([b"", b"ShAD" * 20], dtype="S80"),
        "community_id": np.array([b"1:x", b"1:yy"], dtype="S30"),
    }
    frame = pd.DataFrame(
        {
            **{k: v for k, v in flows.items() if k not in ("history", "community_id", "orig_h")},
            "orig_h": pd.Categorical.from_codes(flows["orig_h"], categories=["10.0.0.1"]),
            "history": pd.array([b.decode() for b in flows["history"]], dtype="string"),
            "community_id": pd.array(["1:x", "1:yy"], dtype="string"),
        }
    )
    assert render_table(flows, ["10.0.0.1"]) == pandas_table(frame)


def test_empty_flow_table() -> None:
    flows = {"flow_id": np.zeros(0, np.int64), "first_ts_ns": np.zeros(0, np.int64)}
    assert render_table(flows, []) == "flow_id  ts\n"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=-(1 << 62), max_value=1 << 62), min_size=1, max_size=300))
def test_factorize_numbers_values_in_order_of_appearance(values: list[int]) -> None:
    array = np.array(values, dtype=np.int64)
    expected, _ = pd.factorize(array)
    np.testing.assert_array_equal(_factorize(array), expected)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 3), st.integers(0, 4)), min_size=1, max_size=200
    )
)
def test_local_flow_codes_are_the_pair_factorization(keys: list[tuple[int, int, int]]) -> None:
    hi = np.array([(a << 32) | b for a, b, _ in keys], dtype=np.int64)
    lo = np.array([c for _, _, c in keys], dtype=np.int64)
    expected, _ = pd.factorize(pd.MultiIndex.from_arrays([hi, lo]))
    np.testing.assert_array_equal(_local_flow_codes(hi, lo), expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 20), max_size=300))
def test_stable_order_is_a_stable_argsort(codes: list[int]) -> None:
    array = np.array(codes, dtype=np.int64)
    np.testing.assert_array_equal(_stable_order(array), np.argsort(array, kind="stable"))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 9), st.integers(-1, 30), st.integers(0, 11)), max_size=300)
)
def test_lexical_order_is_lexsort(rows: list[tuple[int, int, int]]) -> None:
    flow = np.array([r[0] for r in rows], dtype=np.int64)
    frame = np.array([r[1] for r in rows], dtype=np.int64)
    rank = np.array([r[2] for r in rows], dtype=np.int64)
    np.testing.assert_array_equal(
        _lexical_order(flow, frame, rank), np.lexsort((rank, frame, flow))
    )
