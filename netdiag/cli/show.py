"""`netdiag show CAPTURE --frame N[,M...]`: Wireshark's full dissection of chosen frames."""

from __future__ import annotations

import typer

from netdiag.cli.common import EXIT_CLEAN, one_line_errors, output_stream


@one_line_errors
def show_command(
    capture: str = typer.Argument(..., help="Capture file (pcap, pcapng; compressed too)."),
    frame: list[str] = typer.Option(
        ..., "--frame", help="Frame numbers as Wireshark counts them: 53,56 (repeatable)."
    ),
    engine: str = typer.Option(
        "auto", "--engine", help="pyshark, tshark (tshark -V) or auto (pyshark when installed)."
    ),
    output: str | None = typer.Option(None, "-o", "--output", help="Write to FILE."),
) -> None:
    """Every field Wireshark dissects in the chosen frames (e.g. a finding's evidence frames)."""
    from netdiag.dissect import dissect, parse_frames
    from netdiag.errors import NetdiagError

    if engine not in ("auto", "pyshark", "tshark"):
        raise NetdiagError(None, f"--engine must be auto, pyshark or tshark, not {engine!r}")
    text = dissect(capture, parse_frames(frame), engine)
    with output_stream(output) as out:
        out.write(text)
    raise typer.Exit(EXIT_CLEAN)
