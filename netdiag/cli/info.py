"""`netdiag info CAPTURE...`: what capinfos tells, for each capture."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from netdiag.cli.common import (
    EXIT_CLEAN,
    EXIT_INPUT_ERROR,
    error_line,
    one_line_errors,
    output_stream,
)
from netdiag.errors import NetdiagError
from netdiag.timefmt import duration_s, iso_ns

if TYPE_CHECKING:  # numpy and pandas are imported when the command runs
    from netdiag.capinfo import CaptureSummary


def render_text(summary: CaptureSummary) -> str:
    fmt = summary.format
    details = [
        d
        for d in (
            summary.byte_order and f"{summary.byte_order}-endian",
            summary.version and f"version {summary.version}",
        )
        if d
    ]
    if details:
        fmt += f" ({', '.join(details)})"
    if summary.compression:
        fmt += f", {summary.compression}-compressed"
    lines = [
        f"File:               {summary.path}",
        f"File size:          {summary.file_size:,} bytes",
        f"Format:             {fmt}",
        f"Time resolution:    {summary.ts_resolution}",
        f"Interfaces:         {len(summary.interfaces)}",
    ]
    for iface in summary.interfaces:
        name = iface["name"] or "-"
        lines.append(
            f"  {iface['id']}: {name}  {iface['linktype_name']}  snaplen {iface['snaplen']}"
            f"  {iface['packets']:,} packets"
        )
    lines += [
        f"Packets:            {summary.packets:,}",
        f"First packet:       {iso_ns(summary.first_ts_ns)}",
        f"Last packet:        {iso_ns(summary.last_ts_ns)}",
        f"Duration:           {duration_s(summary.duration_ns)}",
        f"Truncated frames:   {summary.truncated_frames:,} (captured length < wire length)",
        f"Decode errors:      {summary.decode_errors:,}",
    ]
    for kind, count in summary.decode_error_kinds.items():
        lines.append(f"  {count:,} x {kind}")
    if summary.packet_comments:
        lines.append(f"Packet comments:    {summary.packet_comments:,}")
    for comment in summary.section_comments:
        lines.append(f"Section comment:    {comment}")
    for warning in summary.warnings:
        lines.append(f"Warning:            {warning}")
    return "\n".join(lines)


@one_line_errors
def info_command(
    captures: list[str] = typer.Argument(..., help="Capture files (pcap, pcapng; compressed too)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    output: str | None = typer.Option(None, "-o", "--output", help="Write to FILE."),
) -> None:
    """Describe captures: format, interfaces, packets, time span, truncation, decode errors."""
    if fmt not in ("text", "json"):
        error_line(f"--format must be text or json, not {fmt!r}")
        raise typer.Exit(EXIT_INPUT_ERROR)
    from netdiag.capinfo import summarize_capture

    summaries: list[CaptureSummary] = []
    failed = False
    for path in captures:
        try:
            summaries.append(summarize_capture(path))
        except NetdiagError as exc:  # the other captures are still described
            error_line(str(exc))
            failed = True
    with output_stream(output) as out:
        if fmt == "json":
            json.dump([s.to_dict() for s in summaries], out, indent=2, sort_keys=True)
            out.write("\n")
        else:
            out.write("\n\n".join(render_text(s) for s in summaries) + ("\n" if summaries else ""))
    raise typer.Exit(EXIT_INPUT_ERROR if failed else EXIT_CLEAN)
