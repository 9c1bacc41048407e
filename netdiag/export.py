"""Packet and flow tables as files: CSV, JSON Lines and Parquet, written chunk by chunk."""

from __future__ import annotations

from typing import IO, Any

import pandas as pd

from netdiag.capture.schema import COLUMNS_BY_NAME

EXPORT_FORMATS = ("csv", "json", "parquet")


def for_export(df: pd.DataFrame) -> pd.DataFrame:
    """Absent numbers (-1 sentinels, ip_version 0) become empty cells, as tshark leaves them."""
    out = {}
    for name in df.columns:
        col = df[name]
        spec = COLUMNS_BY_NAME.get(name)
        if spec is not None and spec.kind in ("int", "bool") and spec.absent == -1:
            out[name] = col.astype("Int64").mask(col == -1)
        elif name == "ip_version":
            out[name] = col.astype("Int64").mask(col == 0)
        else:
            out[name] = col
    return pd.DataFrame(out, index=df.index)


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
            df.to_csv(self.stream, index=False, header=self.rows == 0, lineterminator="\n")
        elif self.fmt == "json":
            if len(df):
                text = df.to_json(orient="records", lines=True, date_format="iso")
                self.stream.write(text if text.endswith("\n") else text + "\n")
        else:
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
