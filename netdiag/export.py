"""Packet and flow tables as files: CSV, JSON Lines and Parquet, written chunk by chunk."""

from __future__ import annotations

import io
from typing import IO, TYPE_CHECKING, Any

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
    import pyarrow.csv as pacsv

    table = _arrow_table(df)
    quoting = "needed" if _needs_quotes(table) else "none"
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=header, quoting_style=quoting))
    data = buffer.getvalue()
    if header:  # Arrow always quotes the header names; none of ours needs it
        first, _, rest = data.partition(b"\n")
        data = first.replace(b'"', b"") + b"\n" + rest
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
