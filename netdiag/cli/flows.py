"""`netdiag flows CAPTURE`: the flow table, like Zeek's conn.log."""

from __future__ import annotations

import numpy as np
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
from netdiag.csvtext import ascii_ints

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


def render_table(columns: dict[str, np.ndarray], ip_texts: list[str]) -> str:
    """Fixed-width text, UTC times, seconds with 6 decimals; absent values as '-'.

    ``columns`` are ``FlowBuilder.finish_columns``. The layout is the one pandas'
    ``to_string(index=False, justify="left")`` gave (column by column: cells right-aligned
    among themselves, then the block left-aligned under its header, one space between
    columns), built with numpy byte arrays instead.
    """
    names = [c for c in TABLE_COLUMNS if c in columns]
    headers = [{"first_ts_ns": "ts", "duration_ns": "duration"}.get(c, c) for c in names]
    n = len(columns[names[0]]) if names else 0
    if n == 0:
        return "  ".join(headers) + "\n"
    blocks: list[tuple[bytes, np.ndarray, int, int]] = []
    for name, header in zip(names, headers, strict=True):
        cells, cells_width = _right_aligned(_cells(name, columns[name], ip_texts))
        width = max(cells_width, len(header))
        blocks.append((header.ljust(width).encode("ascii"), cells, cells_width, width))
    line_len = sum(block[3] for block in blocks) + len(blocks)  # separators and newline
    out = np.full((n + 1, line_len), ord(" "), dtype=np.uint8)
    at = 0
    for header_bytes, cells, cells_width, width in blocks:
        out[0, at : at + width] = np.frombuffer(header_bytes, dtype=np.uint8)
        if cells_width:
            out[1:, at : at + cells_width] = cells.view(np.uint8).reshape(n, cells_width)
        at += width + 1
    out[:, -1] = ord("\n")  # where the last column's separator would be
    return out.tobytes().decode("ascii")


def _keep_freed_heap() -> None:
    """Let glibc keep freed memory for reuse instead of unmapping it at once.

    Every chunk allocates and frees the same few hundred kB arrays: with the default dynamic
    thresholds many of them are mmapped and unmapped (or trimmed) each time, and each new page
    costs a fault (about 40 % of the command's page faults, 0.1 s of system time on 1M
    packets). Both thresholds must be raised (either alone makes it worse). The command reads
    one capture and exits, so holding freed memory a little longer costs nothing. Not glibc:
    nothing to do.
    """
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest dynamic threshold, fixed from start
    mallopt(m_trim_threshold, 256 << 20)
    mallopt(m_top_pad, 64 << 20)


def _cells(name: str, values: np.ndarray, ip_texts: list[str]) -> np.ndarray:
    """A column's cells as ASCII bytes (numpy S), before alignment."""
    if name == "first_ts_ns":
        stamps = np.datetime_as_string(values.astype("datetime64[ns]"), unit="ns")
        return np.char.add(stamps.astype("S"), b"Z")
    if name == "duration_ns":
        return np.array([f"{s:.6f}" for s in (values / 1e9).tolist()], dtype="S")
    if name in ("orig_h", "resp_h"):
        texts = np.array([*ip_texts, "-"], dtype="S")  # code -1 picks the "-"
        return texts[np.where(values < 0, -1, values)]
    if values.dtype.kind == "S":
        return values
    if values.dtype.kind == "O":
        return values.astype("S")
    absent = values < 0 if name in ("orig_p", "resp_p") else None
    digits = ascii_ints(values if absent is None else np.where(absent, 0, values))
    if absent is not None:  # an absent port is "-" (as wide as the 0 it replaced)
        digits[absent] = 0
        digits[absent, -1] = ord("-")
    digits[digits == 0] = ord(" ")  # right-aligned already: the padding is spaces
    return digits.view(f"S{digits.shape[1]}").ravel()


def _right_aligned(cells: np.ndarray) -> tuple[np.ndarray, int]:
    """Cells right-aligned to the widest, as numpy S of exactly that width, and the width."""
    width = int(np.char.str_len(cells).max()) if len(cells) else 0
    if width == 0:
        return cells, 0
    if cells.dtype.itemsize != width:  # wider storage than the longest cell: narrow it
        cells = cells.astype(f"S{width}")
    return np.char.rjust(cells, width).astype(f"S{width}"), width


@one_line_errors
def flows_command(
    captures: list[str] = typer.Argument(
        ..., help="Capture file; several are capture points of one incident."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or parquet."),
    output: str | None = typer.Option(None, "-o", "--output", help="Write to FILE."),
    points: list[str] = typer.Option(
        None, "--point", help="Name a capture point: NAME=FILE (repeatable)."
    ),
) -> None:
    """Bidirectional flows with Zeek's conn_state and history, Community ID, RTT, retransmissions.

    With several captures, one table of all their flows, each with its capture point, the
    connection it belongs to across the points, the taps that saw it and the tuples its
    connection had elsewhere (before or after a rewrite).
    """
    if fmt not in FLOW_FORMATS:
        error_line(f"--format must be one of {', '.join(FLOW_FORMATS)}, not {fmt!r}")
        raise typer.Exit(EXIT_INPUT_ERROR)
    if fmt == "parquet" and output in (None, "-"):
        error_line("--format parquet needs -o FILE")
        raise typer.Exit(EXIT_INPUT_ERROR)
    if len(captures) > 1 or points:
        _points_flows(captures, list(points or []), fmt, output)
        raise typer.Exit(EXIT_CLEAN)
    capture = captures[0]
    from netdiag.flows.read import read_flow_columns

    _keep_freed_heap()
    progress = Progress(f"reading {capture}", file_size(capture))
    try:
        table = read_flow_columns(capture, progress=progress)
    finally:
        progress.close()
    warning_lines(capture, table.info.warnings)
    with output_stream(output, binary=fmt == "parquet") as out:
        if fmt == "table":
            out.write(render_table(table.columns, table.book.ip_texts))
        elif fmt == "csv":  # numpy text straight from the columns: no pandas, no Arrow
            from netdiag.export import write_flow_csv

            write_flow_csv(table.columns, table.book.ip_texts, out)
        else:
            from netdiag.export import TableWriter, for_export
            from netdiag.flows.builder import flow_dataframe

            writer = TableWriter(out, fmt)
            writer.write(for_export(flow_dataframe(table.columns, table.book)))
            writer.close()
    raise typer.Exit(EXIT_CLEAN)


#: the columns of the `table` format with several capture points
POINT_TABLE_COLUMNS: tuple[str, ...] = ("point", "conn", "seen_at", *TABLE_COLUMNS[1:7])
POINT_TABLE_COLUMNS += ("conn_state", "translated")


def _points_flows(captures: list[str], points: list[str], fmt: str, output: str | None) -> None:
    """The flow tables of several capture points, correlated (see netdiag.correlate)."""
    from netdiag.cli.analyze import parse_points
    from netdiag.correlate.flowtable import flows_with_points
    from netdiag.engine.analysis import load_context
    from netdiag.export import TableWriter, for_export

    names = parse_points(points, captures)  # appends a FILE not among the captures
    ctx, _problems = load_context(captures, point_names=names)
    for cap in ctx.captures:
        warning_lines(cap.path, cap.info.warnings)
    corr = ctx.correlation
    if corr is None:  # one capture seen on one link: nothing to correlate
        table = ctx.captures[0].flows
    else:
        table = flows_with_points(corr, [c.flows for c in ctx.captures])
    with output_stream(output, binary=fmt == "parquet") as out:
        if fmt == "table":
            shown = table[[c for c in POINT_TABLE_COLUMNS if c in table.columns]].copy()
            from netdiag.timefmt import iso_ns

            shown["first_ts_ns"] = [iso_ns(int(t)) for t in shown["first_ts_ns"].to_numpy()]
            shown = shown.rename(columns={"first_ts_ns": "ts"})
            out.write(shown.to_string(index=False, justify="left") + "\n")
        else:
            writer = TableWriter(out, fmt)
            writer.write(for_export(table))
            writer.close()
