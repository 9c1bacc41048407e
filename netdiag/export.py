"""Packet and flow tables as files: CSV, JSON Lines and Parquet, written chunk by chunk."""

from __future__ import annotations

import io
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from netdiag.capture.schema import COLUMNS_BY_NAME

if TYPE_CHECKING:  # pandas is imported by the functions that need it, not at CLI start-up
    import pandas as pd

EXPORT_FORMATS = ("csv", "json", "parquet")


def _absent_is_minus_one() -> frozenset[str]:
    """Integer columns (packet and flow tables) whose -1 means 'absent'."""
    from netdiag.flows.schema import FLOW_COLUMNS, PACKET_FLOW_COLUMNS

    names = {
        c.name for c in COLUMNS_BY_NAME.values() if c.kind in ("int", "bool") and c.absent == -1
    }
    names |= {c.name for c in (*FLOW_COLUMNS, *PACKET_FLOW_COLUMNS) if c.kind == "int"}
    return frozenset(names)


def for_export(df: pd.DataFrame) -> pd.DataFrame:
    """Absent numbers (-1 sentinels, ip_version 0) become empty cells, as tshark leaves them."""
    minus_one = _absent_is_minus_one()
    out = {}
    for name in df.columns:
        col = df[name]
        if name in minus_one and col.dtype.kind in "iu":
            out[name] = col.astype("Int64").mask(col == -1) if (col == -1).any() else col
        elif name == "ip_version" and name in COLUMNS_BY_NAME:
            out[name] = col.astype("Int64").mask(col == 0)
        else:
            out[name] = col
    import pandas as pd

    return pd.DataFrame(out, index=df.index)


def _arrow_table(df: pd.DataFrame) -> Any:
    """The frame as an Arrow table with plain string columns (categoricals decoded)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    columns = [
        col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col for col in table.columns
    ]
    return pa.Table.from_arrays(columns, names=table.column_names)


def _needs_quotes(table: Any) -> bool:
    """True when some text cell holds a comma, quote or line break (then quote text cells)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for col in table.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            hit = pc.any(pc.match_substring_regex(col, r'[,"\r\n]')).as_py()
            if hit:
                return True
    return False


def write_csv(df: pd.DataFrame, stream: IO[Any], header: bool = True) -> None:
    """CSV through Arrow (about 10x pandas' writer): absent cells empty, text quoted only if needed."""
    _write_arrow_csv(_arrow_table(df), stream, header)


def flow_columns_arrow(columns: dict[str, np.ndarray], ip_texts: list[str]) -> Any:
    """A flow table's numpy columns (``FlowBuilder.finish_columns``) as the Arrow table that
    ``for_export(finish())`` gives: -1 integers are null, address codes their texts.

    The arrays are made from numpy buffers (``pa.array`` would import pandas, which
    ``netdiag flows`` otherwise never needs)."""
    import pyarrow as pa

    arrays = []
    addresses: np.ndarray | None = None
    for name, values in columns.items():
        if name in ("orig_h", "resp_h"):
            if addresses is None:
                addresses = np.array([*ip_texts, ""], dtype="S")  # code -1 picks the ""
            arrays.append(_arrow_text(addresses[np.where(values < 0, -1, values)], values < 0))
        elif values.dtype.kind == "S":
            arrays.append(_arrow_text(values))
        elif values.dtype.kind == "O":
            arrays.append(_arrow_text(_utf8(values)))
        else:  # integers: every integer flow column uses -1 for absent
            values = np.ascontiguousarray(values)
            absent = values == -1
            arrays.append(
                pa.Array.from_buffers(
                    pa.from_numpy_dtype(values.dtype),
                    len(values),
                    [_validity(absent), pa.py_buffer(values)],
                )
            )
    return pa.Table.from_arrays(arrays, names=list(columns))


def _validity(absent: np.ndarray | None) -> Any:
    """Arrow's validity bitmap for the rows not ``absent`` (None when all are valid)."""
    import pyarrow as pa

    if absent is None or not absent.any():
        return None
    return pa.py_buffer(np.packbits(~absent, bitorder="little"))


def _utf8(values: np.ndarray) -> np.ndarray:
    """An object array of str as UTF-8 bytes (numpy S)."""
    try:
        return values.astype("S")
    except UnicodeEncodeError:
        return np.array([v.encode("utf-8") for v in values.tolist()], dtype="S")


def _arrow_text(cells: np.ndarray, absent: np.ndarray | None = None) -> Any:
    """An Arrow string array from bytes cells (numpy S: trailing NULs are padding)."""
    import pyarrow as pa

    n = len(cells)
    width = cells.dtype.itemsize
    lengths = np.char.str_len(cells).astype(np.int64) if n else np.zeros(0, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if n and width:
        matrix = cells.view(np.uint8).reshape(n, width)
        data = matrix[np.arange(width) < lengths[:, None]]  # row by row: the texts end to end
    else:
        data = np.zeros(0, dtype=np.uint8)
    return pa.Array.from_buffers(
        pa.large_string(),
        n,
        [_validity(absent), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))],
    )


def write_flow_csv(columns: dict[str, np.ndarray], ip_texts: list[str], stream: IO[Any]) -> None:
    """The flow table as CSV, the same bytes as ``write_csv(for_export(finish()))``.

    Written with numpy (``flow_csv_bytes``); through Arrow only what that cannot write (a NUL
    byte inside a text, a column neither integer nor text), which the flow table never has.
    A big table is written in two halves at once, in two threads (numpy work)."""
    n = len(next(iter(columns.values()))) if columns else 0
    if n < 2 * _CSV_ROWS_PER_THREAD:
        pieces = [flow_csv_bytes(columns, ip_texts)]
    else:
        from netdiag.background import Background

        quote = _flow_needs_quotes(columns, ip_texts)  # one choice for both halves
        half = n // 2
        second = {name: values[half:] for name, values in columns.items()}
        later = Background(lambda: flow_csv_bytes(second, ip_texts, header=False, quote=quote))
        first = {name: values[:half] for name, values in columns.items()}
        pieces = [flow_csv_bytes(first, ip_texts, quote=quote), later.result()]
    if any(piece is None for piece in pieces):
        _write_flow_csv_arrow(columns, ip_texts, stream)
        return
    for piece in pieces:
        assert piece is not None
        _write_bytes(stream, piece)


#: rows of the flow table under which its CSV is written by one thread
_CSV_ROWS_PER_THREAD = 20_000


def flow_csv_bytes(
    columns: dict[str, np.ndarray],
    ip_texts: list[str],
    header: bool = True,
    quote: bool | None = None,
) -> bytearray | None:
    """The flow table's CSV text as ``_write_flow_csv_arrow`` writes it, built column-wise with
    numpy (see ``netdiag.csvtext``); None when only Arrow can write it (see ``write_flow_csv``).

    Arrow's choices, kept: the header unquoted; -1 integers and absent addresses empty; when
    some text cell holds a comma, quote or line break, every present text cell is quoted
    (empty texts as ``""``), else none is. ``header``: the line of column names first;
    ``quote``: quote the text cells or not, whatever these rows hold (the choice made for the
    whole table when it is written in pieces)."""
    from netdiag.csvtext import ascii_ints, csv_rows, inner_nul, quoted, text_cells

    names = list(columns)
    if not names or any("\n" in name or "\0" in name for name in names):
        return None
    head = ",".join(names).replace('"', "").encode("utf-8") + b"\n" if header else b""
    cells: list[np.ndarray] = []
    texts: dict[int, np.ndarray | None] = {}  # position in cells -> absent rows of a text
    addresses: np.ndarray | None = None
    for name, values in columns.items():
        absent: np.ndarray | None = None
        if name in ("orig_h", "resp_h"):
            if addresses is None:
                addresses = np.array([*ip_texts, ""], dtype="S")  # code -1 picks the ""
                if inner_nul(addresses):
                    return None
            absent = values < 0
            text = addresses[np.where(absent, -1, values)]
        elif values.dtype.kind in "SO":
            text = values if values.dtype.kind == "S" else _utf8(values)
            if inner_nul(text):
                return None
        elif values.dtype.kind in "iu":  # every integer flow column uses -1 for absent
            cells.append(ascii_ints(values, blank=values == -1))
            continue
        else:
            return None
        texts[len(cells)] = absent
        cells.append(text_cells(text))
    if quote is None:
        quote = any(
            special in cells[at].tobytes() for at in texts for special in (b",", b'"', b"\r", b"\n")
        )
    if quote:
        for at, absent in texts.items():
            cells[at] = quoted(cells[at], absent)
    return csv_rows(cells, head=head)


def _write_flow_csv_arrow(
    columns: dict[str, np.ndarray], ip_texts: list[str], stream: IO[Any]
) -> None:
    """The flow table as CSV through Arrow: the reference ``flow_csv_bytes`` is held to."""
    table = flow_columns_arrow(columns, ip_texts)
    _write_arrow_csv(table, stream, header=True, quote=_flow_needs_quotes(columns, ip_texts))


def _flow_needs_quotes(columns: dict[str, np.ndarray], ip_texts: list[str]) -> bool:
    """``_needs_quotes`` on the numpy columns (no pyarrow.compute to import): text joined
    with NUL bytes, which no text holds, is searched for the characters CSV must quote."""
    texts = [values.tobytes() for values in columns.values() if values.dtype.kind == "S"]
    texts += [
        "\0".join(values.tolist()).encode()
        for values in columns.values()
        if values.dtype.kind == "O"
    ]
    codes = np.concatenate([columns["orig_h"], columns["resp_h"]])
    used = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(ip_texts)))
    texts.append("\0".join(ip_texts[c] for c in used.tolist()).encode())
    return any(special in text for text in texts for special in (b",", b'"', b"\r", b"\n"))


def _write_arrow_csv(table: Any, stream: IO[Any], header: bool, quote: bool | None = None) -> None:
    import pyarrow.csv as pacsv

    needed = _needs_quotes(table) if quote is None else quote
    quoting = "needed" if needed else "none"
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=header, quoting_style=quoting))
    data = buffer.getvalue()
    if header:  # Arrow always quotes the header names; none of ours needs it
        first, _, rest = data.partition(b"\n")
        data = first.replace(b'"', b"") + b"\n" + rest
    _write_bytes(stream, data)


def _write_bytes(stream: IO[Any], data: bytes | bytearray) -> None:
    binary = getattr(stream, "buffer", None)
    if binary is not None:  # a text stream over bytes: keep the order of what was written
        stream.flush()
        binary.write(data)
    elif isinstance(stream, io.TextIOBase):
        stream.write(data.decode("utf-8"))
    else:
        stream.write(data)


class TableWriter:
    """Appends DataFrames to one output in one format; the header/schema comes from the first."""

    def __init__(self, stream: IO[Any], fmt: str) -> None:
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {fmt!r}")
        self.stream = stream
        self.fmt = fmt
        self.rows = 0
        self._parquet: Any = None

    def write(self, df: pd.DataFrame) -> None:
        if self.fmt == "csv":
            write_csv(df, self.stream, header=self.rows == 0)
        elif self.fmt == "json":
            if len(df):
                text = df.to_json(orient="records", lines=True, date_format="iso")
                self.stream.write(text if text.endswith("\n") else text + "\n")
        else:
            import pandas as pd
            import pyarrow as pa
            import pyarrow.parquet as pq

            plain = df.copy()
            for name in plain.columns:  # one schema for every chunk: dictionaries differ
                if isinstance(plain[name].dtype, pd.CategoricalDtype):
                    plain[name] = plain[name].astype("string")
            table = pa.Table.from_pandas(plain, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.stream, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        self.rows += len(df)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
