"""`netdiag packets CAPTURE`: the packet table, like `tshark -T fields`, streamed as CSV/JSON/Parquet."""

from __future__ import annotations

import typer

from netdiag.capture.schema import COLUMN_NAMES
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
from netdiag.export import EXPORT_FORMATS

#: columns the flow builder adds to each packet
FLOW_COLUMNS = ("flow_id", "flow_dir", "flow_pkt_index", "icmp_err_flow_id")


@one_line_errors
def packets_command(
    capture: str = typer.Argument(..., help="Capture file."),
    fields: str | None = typer.Option(
        None, "--fields", "-e", help="Comma-separated columns (default: all). See the README."
    ),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv, json (JSON Lines) or parquet."),
    output: str | None = typer.Option(None, "-o", "--output", help="Write to FILE."),
) -> None:
    """Export the packet table, one row per frame, numbered as Wireshark does."""
    if fmt not in EXPORT_FORMATS:
        error_line(f"--format must be one of {', '.join(EXPORT_FORMATS)}, not {fmt!r}")
        raise typer.Exit(EXIT_INPUT_ERROR)
    known = COLUMN_NAMES + FLOW_COLUMNS
    selected = [f.strip() for f in fields.split(",") if f.strip()] if fields else list(COLUMN_NAMES)
    unknown = [f for f in selected if f not in known]
    if unknown:
        error_line(f"unknown field(s): {', '.join(unknown)} (known: {', '.join(known)})")
        raise typer.Exit(EXIT_INPUT_ERROR)
    with_flows = any(f in FLOW_COLUMNS for f in selected)
    if fmt == "parquet" and output in (None, "-"):
        error_line("--format parquet needs -o FILE")
        raise typer.Exit(EXIT_INPUT_ERROR)

    from netdiag.addressbook import AddressBook
    from netdiag.capture import to_dataframe
    from netdiag.export import TableWriter, for_export
    from netdiag.flows import FlowBuilder
    from netdiag.flows.read import iter_flow_chunks

    book = AddressBook()
    builder = FlowBuilder(book) if with_flows else _NoFlows()
    progress = Progress(f"reading {capture}", file_size(capture))
    try:
        with output_stream(output, binary=fmt == "parquet") as out:
            writer = TableWriter(out, fmt)
            warnings: list[str] = []
            for chunk, info in iter_flow_chunks(capture, book, builder, progress):
                warnings = info.warnings
                df = to_dataframe(chunk, book)
                for name in FLOW_COLUMNS:
                    if name in selected and name not in df.columns and name in chunk:
                        df[name] = chunk[name]
                writer.write(for_export(df[selected]))
            writer.close()
        warning_lines(capture, warnings)
    finally:
        progress.close()
    raise typer.Exit(EXIT_CLEAN)


class _NoFlows:
    """Stands in for the flow builder when no flow column is asked for."""

    def add(self, chunk: object) -> None:
        return None
