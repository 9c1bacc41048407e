"""`netdiag flows CAPTURE`: the flow table, like Zeek's conn.log."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from netdiag.cli.common import (
    EXIT_CLEAN,
    EXIT_INPUT_ERROR,
    Progress,
    error_line,
    file_size,
    one_line_errors,
    output_stream,
    warning_lines,
)
from netdiag.timefmt import iso_ns

if TYPE_CHECKING:  # pandas is imported when a command runs, not when the CLI starts
    import pandas as pd

FLOW_FORMATS = ("table", "csv", "json", "parquet")

#: the columns of the `table` format, in Zeek conn.log order (those the flow table has)
TABLE_COLUMNS = (
    "flow_id",
    "first_ts_ns",
    "proto",
    "orig_h",
    "orig_p",
    "resp_h",
    "resp_p",
    "duration_ns",
    "orig_pkts",
    "orig_bytes",
    "resp_pkts",
    "resp_bytes",
    "conn_state",
    "history",
    "community_id",
)


def render_table(flows: pd.DataFrame) -> str:
    """Fixed-width text, UTC times, seconds with 6 decimals; absent values as '-'."""
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


@one_line_errors
def flows_command(
    capture: str = typer.Argument(..., help="Capture file."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or parquet."),
    output: str | None = typer.Option(None, "-o", "--output", help="Write to FILE."),
) -> None:
    """Bidirectional flows with Zeek's conn_state and history, Community ID, RTT, retransmissions."""
    if fmt not in FLOW_FORMATS:
        error_line(f"--format must be one of {', '.join(FLOW_FORMATS)}, not {fmt!r}")
        raise typer.Exit(EXIT_INPUT_ERROR)
    if fmt == "parquet" and output in (None, "-"):
        error_line("--format parquet needs -o FILE")
        raise typer.Exit(EXIT_INPUT_ERROR)
    from netdiag.export import TableWriter, for_export
    from netdiag.pipeline import load_capture

    progress = Progress(f"reading {capture}", file_size(capture))
    try:
        loaded = load_capture(capture, retention="none", progress=progress)
    finally:
        progress.close()
    flows = loaded.flows
    warning_lines(capture, loaded.info.warnings)
    with output_stream(output, binary=fmt == "parquet") as out:
        if fmt == "table":
            out.write(render_table(flows))
        else:
            writer = TableWriter(out, fmt)
            writer.write(for_export(flows))
            writer.close()
    raise typer.Exit(EXIT_CLEAN)
