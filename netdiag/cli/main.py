"""The `netdiag` command: registers each subcommand module on one typer app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from netdiag import __version__
from netdiag.cli import analyze, facts, flows, info, packets, rules, scan, show

app = typer.Typer(
    name="netdiag",
    help="Find known network failure patterns in packet captures and topology facts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: subcommand name -> its module's command function (explicit, like every registry here)
COMMANDS: dict[str, Callable[..., Any]] = {
    "info": info.info_command,
    "packets": packets.packets_command,
    "flows": flows.flows_command,
    "facts": facts.facts_command,
    "analyze": analyze.analyze_command,
    "rules": rules.rules_command,
    "rule": rules.rule_command,
    "scan": scan.scan_command,
    "scan-report": scan.scan_report_command,
    "show": show.show_command,
}

for _name, _command in COMMANDS.items():
    app.command(_name)(_command)


def _version(value: bool) -> None:
    if value:
        print(f"netdiag {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Find known network failure patterns in packet captures and topology facts."""


def main() -> None:
    app()
