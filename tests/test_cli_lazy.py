"""The CLI builds only the subcommand being run, and lists every one in its help.

Running a subcommand imports neither the other subcommands' modules nor pydantic (which typer
would import to coerce strings into strings); the values reach the command unchanged, and
anything that is not a plain string or flag still goes through typer's own coercion.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_probe import modules_after
from typer.testing import CliRunner

from netdiag.cli import main as cli_main
from netdiag.cli.main import COMMANDS, app

SAMPLE = (
    Path(__file__).resolve().parent.parent
    / "samples"
    / "ipsec-selector-gap"
    / "healthy"
    / "vpcrt-any.pcap"
)


def _modules_after(*args: str) -> tuple[list[str], bool]:
    loaded = modules_after(*args)
    return [m for m in loaded if m.startswith("netdiag.cli.")], "pydantic" in loaded


def test_running_flows_builds_flows_only() -> None:
    modules, pydantic = _modules_after("flows", str(SAMPLE), "-o", "/dev/null")
    assert modules == ["netdiag.cli.common", "netdiag.cli.flows", "netdiag.cli.main"]
    assert not pydantic


def test_help_lists_every_command_with_its_line() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    lines = result.output.splitlines()
    listed = [line.split()[1] for line in lines if line.startswith("│ ") and "  " in line[2:]]
    assert [name for name in listed if name in COMMANDS] == list(COMMANDS)
    for name in COMMANDS:
        first_line = (cli_main.command_function(name).__doc__ or "").strip().splitlines()[0]
        assert first_line[:40] in result.output


def test_a_typo_is_answered_with_the_closest_command() -> None:
    result = CliRunner().invoke(app, ["flow", "x"])
    assert result.exit_code == 2
    assert "No such command 'flow'. Did you mean 'flows'?" in result.output


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_values_reach_the_command(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"flows.{fmt}"
    result = CliRunner().invoke(app, ["flows", str(SAMPLE), "--format", fmt, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 100


def test_other_values_keep_typers_coercion() -> None:
    # `scan --jobs` is an int: typer's coercion still rejects a word
    result = CliRunner().invoke(
        app, ["scan", str(SAMPLE), "--jobs", "many"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2
    assert "Invalid value for '--jobs' / '-j': Input should be a valid integer" in result.output
