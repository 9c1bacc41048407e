"""The numpy CSV text of ``netdiag flows --format csv`` is, byte for byte, what Arrow wrote.

``write_flow_csv`` builds the CSV column-wise with numpy (``netdiag.csvtext``); the Arrow
writer it replaced stays callable (``_write_flow_csv_arrow``) as the reference. Compared on
every sample capture, on the shared corpus and on hand-made tables (no flow, IPv6, absent
ports, extreme integers, texts that need quoting, non-ASCII text), plus the csvtext helpers
on their own against ``str``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from cli_probe import modules_after
from hypothesis import given, settings
from hypothesis import strategies as st

from netdiag.csvtext import ascii_ints, csv_rows, inner_nul, quoted, text_cells
from netdiag.errors import NetdiagError
from netdiag.export import _write_flow_csv_arrow, flow_csv_bytes, write_flow_csv
from netdiag.flows.read import read_flow_columns
from netdiag.flows.schema import FLOW_COLUMNS

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
CAPTURE_GLOBS = ("*.pcap", "*.pcapng", "*.pcap.*", "*.pcapng.*", "*.cap")


def _captures() -> list[Path]:
    """Every capture file under samples/ and tests/fixtures/."""
    found: set[Path] = set()
    for root in (REPO / "samples", REPO / "tests" / "fixtures"):
        for pattern in CAPTURE_GLOBS:
            found |= {p for p in root.rglob(pattern) if p.is_file()}
    return sorted(found)


def arrow_csv(columns: dict[str, np.ndarray], ip_texts: list[str]) -> bytes:
    out = io.BytesIO()
    _write_flow_csv_arrow(columns, ip_texts, out)
    return out.getvalue()


def numpy_csv(columns: dict[str, np.ndarray], ip_texts: list[str]) -> bytes:
    out = io.BytesIO()
    write_flow_csv(columns, ip_texts, out)
    return out.getvalue()


def assert_same_csv(columns: dict[str, np.ndarray], ip_texts: list[str]) -> bytearray:
    """The numpy text is the Arrow text, and written without falling back to Arrow."""
    built = flow_csv_bytes(columns, ip_texts)
    assert built is not None
    assert built == arrow_csv(columns, ip_texts)
    assert numpy_csv(columns, ip_texts) == built
    return built


# --- the flow tables of real captures -------------------------------------------------------


@pytest.mark.parametrize("path", _captures(), ids=lambda p: str(p.relative_to(REPO)))
def test_sample_flow_csv_is_arrows(path: Path) -> None:
    table = read_flow_columns(str(path))
    assert len(table) > 0  # every sample capture has flows
    text = assert_same_csv(table.columns, table.book.ip_texts)
    assert text.count(b"\n") == len(table) + 1


def test_corpus_flow_csv_is_arrows() -> None:
    index = CORPUS / "index.tsv"
    if not index.is_file():
        pytest.skip(f"shared corpus not found at {index}")
    with index.open(newline="") as handle:
        entries = list(csv.DictReader(handle, delimiter="\t"))
    compared, refused, differ = 0, 0, []
    for entry in entries:
        path = CORPUS / "files" / entry["name"]
        if not path.is_file() or path.stat().st_size > 2_000_000:  # the fast ones
            continue
        try:
            table = read_flow_columns(str(path))
        except NetdiagError:  # an unsupported link type, a damaged file: not this test's topic
            refused += 1
            continue
        built = flow_csv_bytes(table.columns, table.book.ip_texts)
        if built != arrow_csv(table.columns, table.book.ip_texts):
            differ.append(entry["name"])
        compared += 1 if len(table) else 0
    assert not differ
    assert compared >= 40, (compared, refused)


# --- hand-made flow tables ----------------------------------------------------------------


def flow_table(n: int, **given_columns: object) -> dict[str, np.ndarray]:
    """A flow table of ``n`` rows with every flow column, in order; the columns not given are
    plain (increasing integers, address code 0, text "tcp"), the given ones as given."""
    columns: dict[str, np.ndarray] = {}
    for column in FLOW_COLUMNS:
        if column.name in given_columns:
            columns[column.name] = np.asarray(given_columns.pop(column.name))
        elif column.kind == "ip":
            columns[column.name] = np.zeros(n, dtype=np.int32)
        elif column.kind == "str":
            columns[column.name] = np.array(["tcp"] * n, dtype=object)
        else:
            columns[column.name] = np.arange(n).astype(column.dtype)
    for name, values in given_columns.items():  # columns the flow table does not have
        columns[name] = np.asarray(values)
    return columns


def test_no_flow_is_the_header_alone() -> None:
    text = assert_same_csv(flow_table(0), [])
    assert text == (",".join(c.name for c in FLOW_COLUMNS) + "\n").encode()


def test_ipv6_and_absent_addresses() -> None:
    ips = ["2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "::1", "10.0.0.1", "fe80::1%eth0"]
    columns = flow_table(
        5,
        orig_h=np.array([0, 1, -1, 2, 3], dtype=np.int32),
        resp_h=np.array([-1, -1, -1, 0, 1], dtype=np.int32),
    )
    text = assert_same_csv(columns, ips)
    assert b"\n0,tcp,0,0,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,0,,0," in text


def test_absent_and_extreme_integers() -> None:
    columns = flow_table(
        6,
        orig_p=np.array([-1, 0, 65535, -1, 1, 80], dtype=np.int32),
        resp_p=np.full(6, -1, dtype=np.int32),  # a column of absent values only
        ip_version=np.array([4, 6, -1, 4, 6, 0], dtype=np.int8),
        first_ts_ns=np.array(
            [-(2**63), 2**63 - 1, -2, -1, 0, -1_700_000_000_123_456_789], dtype=np.int64
        ),
        syn_isn_orig=np.array([-1, 4294967295, -10, -100, -1000, -10000], dtype=np.int64),
        extra_counter=np.array([0, 2**64 - 1, 2**63, 1, 10, 9999], dtype=np.uint64),
    )
    text = assert_same_csv(columns, ["10.0.0.1"])
    assert b"-9223372036854775808" in text and b"18446744073709551615" in text


def test_texts_that_need_quotes() -> None:
    columns = flow_table(
        5,
        proto=np.array(["tcp", 'say "hi"', "", "a,b", "line\nbreak"], dtype=object),
        history=np.array([b"ShAD", b"", b'"', b"x\ry", b'""'], dtype="S8"),
        orig_h=np.array([0, -1, 1, 0, -1], dtype=np.int32),
    )
    text = assert_same_csv(columns, ["10.0.0.1", "::1"])
    assert b'"say ""hi"""' in text and b',"",' in text


def test_an_address_text_that_needs_quotes() -> None:
    columns = flow_table(2, orig_h=np.array([0, -1], dtype=np.int32))
    assert b'"a,b"' in assert_same_csv(columns, ["a,b"])


def test_non_ascii_text() -> None:
    columns = flow_table(3, first_icmp_error=np.array(["café", "日本(3/1)", ""], dtype=object))
    assert "日本(3/1)".encode() in assert_same_csv(columns, ["10.0.0.1"])


# --- big tables: written in two halves by two threads -------------------------------------


def _big_table(n: int, comma_at: int | None = None) -> dict[str, np.ndarray]:
    """``n`` rows with varied widths (so the halves lay out different cell widths); a history
    with a comma on row ``comma_at`` only."""
    rng = np.random.default_rng(7)
    history = np.array([b"ShADadFf", b"S", b"", b"ShAdDaFf^"], dtype="S12")[rng.integers(0, 4, n)]
    if comma_at is not None:
        history[comma_at] = b"S,h"
    return flow_table(
        n,
        orig_h=rng.integers(-1, 3, n).astype(np.int32),
        orig_p=rng.integers(-1, 65536, n).astype(np.int32),
        first_ts_ns=rng.integers(-1, 2**62, n),
        history=history,
        conn_state=np.array([b"SF", b"OTH", b"RSTOS0"], dtype="S6")[rng.integers(0, 3, n)],
    )


@pytest.mark.parametrize(
    "comma_at", [None, 5, 49_000], ids=["plain", "comma-first-half", "comma-second-half"]
)
def test_a_big_table_in_two_halves_is_arrows(comma_at: int | None) -> None:
    from netdiag import export

    assert 2 * export._CSV_ROWS_PER_THREAD <= 50_000  # the two-halves path is taken
    columns = _big_table(50_000, comma_at)
    ips = ["10.0.0.1", "2001:db8::1", "192.168.1.1"]
    written = numpy_csv(columns, ips)
    assert written == arrow_csv(columns, ips)
    assert written.count(b"\n") == 50_001
    assert (b'"S,h"' in written) == (comma_at is not None)


def test_what_numpy_cannot_write_goes_through_arrow() -> None:
    nul = flow_table(2, proto=np.array(["a\0b", "tcp"], dtype=object))
    floats = flow_table(2, score=np.array([0.5, -1.0]))
    for columns in (nul, floats):
        assert flow_csv_bytes(columns, ["10.0.0.1"]) is None
        assert numpy_csv(columns, ["10.0.0.1"]) == arrow_csv(columns, ["10.0.0.1"])


def test_a_text_stream_gets_the_same_bytes() -> None:
    columns = flow_table(3, proto=np.array(["tcp", "café", "udp"], dtype=object))
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    stream.write("# before\n")
    write_flow_csv(columns, ["10.0.0.1"], stream)
    stream.flush()
    assert raw.getvalue() == b"# before\n" + arrow_csv(columns, ["10.0.0.1"])


_TEXT = st.text(alphabet=st.sampled_from(list('ab,"\r\n é日')), max_size=6)
_ASCII_TEXT = st.text(alphabet=st.sampled_from(list('a1:.,"\r\n ')), max_size=6)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-(2**63), 2**63 - 1),
            st.sampled_from([-1, -1, 0, 7, 65535, -2]),
            st.integers(-1, 2),
            _TEXT,
            st.binary(max_size=5).map(lambda b: b.replace(b"\0", b"0")),
        ),
        max_size=12,
    ),
    st.lists(_ASCII_TEXT, min_size=3, max_size=4),  # address texts are ASCII
)
def test_random_tables(rows: list[tuple[int, int, int, str, bytes]], ips: list[str]) -> None:
    columns = flow_table(
        len(rows),
        first_ts_ns=np.array([r[0] for r in rows], dtype=np.int64),
        orig_p=np.array([r[1] for r in rows], dtype=np.int32),
        orig_h=np.array([r[2] for r in rows], dtype=np.int32),
        resp_h=np.array([(r[2] + 1) % 3 - 1 for r in rows], dtype=np.int32),
        conn_state=np.array([r[3] for r in rows], dtype=object),
        history=np.array([r[4] for r in rows], dtype="S5"),
    )
    assert_same_csv(columns, ips)


# --- the helpers ----------------------------------------------------------------------------


def _texts(matrix: np.ndarray) -> list[bytes]:
    return [bytes(row).strip(b"\0") for row in matrix]


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]),
    st.lists(st.integers(-(2**63), 2**64 - 1), min_size=1, max_size=40),
    st.data(),
)
def test_ascii_ints_are_str(dtype: str, values: list[int], data: st.DataObject) -> None:
    info = np.iinfo(dtype)
    array = np.array([min(max(v, int(info.min)), int(info.max)) for v in values], dtype=dtype)
    blank = np.array(data.draw(st.lists(st.booleans(), min_size=len(array), max_size=len(array))))
    for rows_blank in (None, blank):
        matrix = ascii_ints(array, rows_blank)
        shown = [
            b"" if rows_blank is not None and rows_blank[i] else str(v).encode()
            for i, v in enumerate(array.tolist())
        ]
        assert _texts(matrix) == shown
        assert matrix.shape[1] == max(len(s) for s in shown)
        for row, text in zip(matrix, shown, strict=True):  # right-aligned, NUL on the left
            assert bytes(row) == b"\0" * (matrix.shape[1] - len(text)) + text


def test_ascii_ints_of_nothing() -> None:
    assert ascii_ints(np.zeros(0, dtype=np.int64)).shape == (0, 1)
    assert ascii_ints(np.array([5, -1]), np.array([True, True])).shape == (2, 0)


def test_quoted_cells() -> None:
    texts = np.array([b'a"b', b"", b"x,y", b"", b'""'], dtype="S4")
    absent = np.array([False, False, False, True, False])
    got = _texts(quoted(text_cells(texts), absent))
    assert got == [b'"a""b"', b'""', b'"x,y"', b"", b'""""""']


def test_inner_nul() -> None:
    assert inner_nul(np.array([b"ab", b"a\0b"], dtype="S3"))
    assert not inner_nul(np.array([b"ab", b"", b"abc"], dtype="S3"))
    assert not inner_nul(np.zeros(0, dtype="S3"))


def test_csv_rows() -> None:
    digits = ascii_ints(np.array([1, -22, 5]), np.array([False, False, True]))
    texts = text_cells(np.array([b"ab", b"", b"c"], dtype="S2"))
    assert csv_rows([digits, texts]) == b"1,ab\n-22,\n,c\n"
    assert csv_rows([]) == b""


# --- no Arrow on the csv path ---------------------------------------------------------------


def test_flows_csv_imports_neither_arrow_nor_pandas(tmp_path: Path) -> None:
    sample = _captures()[0]
    out = tmp_path / "flows.csv"
    loaded = modules_after("flows", str(sample), "--format", "csv", "-o", str(out), cwd=REPO)
    assert [m for m in loaded if m.split(".")[0] in ("pyarrow", "pandas")] == []
    assert out.read_bytes().startswith(b"flow_id,")
