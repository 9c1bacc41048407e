"""`netdiag analyze --format md|html --evidence FILE --redact` from the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_kit import HAIRPIN, HAIRPIN_PCAP, validate_report_json
from typer.testing import CliRunner

from netdiag.cli.main import app
from netdiag.redact import KEY_ENV, Redactor

ARGS = [str(HAIRPIN_PCAP), "--facts", str(HAIRPIN / "facts")]


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = CliRunner().invoke(app, ["analyze", *ARGS, *args], env=env)
    return done.exit_code, done.output


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_formats_to_files(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"report.{fmt}"
    code, output = run("--format", fmt, "-o", str(out))
    assert code == 1, output  # an error finding at the default --fail-on warning
    text = out.read_text()
    assert "LB001" in text and "10.10.1.11" in text
    if fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and '<svg class="ladder"' in text


def test_json_output_follows_the_schema(tmp_path: Path) -> None:
    code, output = run("--format", "json")
    assert code == 1
    validate_report_json(json.loads(output))


def test_evidence_and_redaction_together(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    evidence = tmp_path / "evidence.pcapng"
    env = {KEY_ENV: "ticket 4711"}
    code, output = run(
        "--format", "md", "-o", str(report), "--evidence", str(evidence), "--redact", env=env
    )
    assert code == 1, output
    assert "11 packets" in output and str(evidence) in output
    text = report.read_text()
    r = Redactor(b"ticket 4711")
    assert "10.10.1.11" not in text and "10.10.0.100" not in text
    assert f"came back to {r.ipv4('10.10.1.11')}:80 itself" in text
    assert evidence.stat().st_size > 500
    # same key, same pseudonyms: a second run gives the same report but for the time stamp
    again = tmp_path / "again.md"
    run("--format", "md", "-o", str(again), "--redact", env=env)

    def strip(t: str) -> str:
        return re.sub(r"^Generated .*$", "", t, flags=re.M)

    assert strip(again.read_text()) == strip(text)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_redaction_of_text_and_json(fmt: str) -> None:
    code, output = run("--format", fmt, "--redact", env={KEY_ENV: "k"})
    assert code == 1
    assert "10.10.1.11" not in output
    assert Redactor(b"k").ipv4("10.10.1.11") in output
    if fmt == "json":
        validate_report_json(json.loads(output))


def test_unknown_format_is_a_usage_error() -> None:
    code, output = run("--format", "pdf")
    assert code == 2 and "md" in output and "html" in output
