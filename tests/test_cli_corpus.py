"""Robustness on 266 public captures: each one analyses, or is refused in one line with exit 2."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from conftest import CORPUS
from typer.testing import CliRunner

from netdiag.cli.main import app

runner = CliRunner()

#: seconds one file may take before it counts as a hang
PER_FILE_LIMIT_S = 60


def _corpus_files() -> list[Path]:
    return sorted(CORPUS.iterdir()) if CORPUS.is_dir() else []


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang()


@pytest.mark.slow
@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
def test_corpus_file_analyses_or_is_refused_in_one_line(path: Path) -> None:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(PER_FILE_LIMIT_S)
    try:
        result = runner.invoke(app, ["flows", "--format", "csv", str(path)])
    except _Hang:
        pytest.fail(f"{path.name}: no answer within {PER_FILE_LIMIT_S} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert "Traceback" not in result.output
    assert "internal error" not in result.stderr, result.stderr
    if result.exit_code == 0:
        assert result.stdout.startswith("flow_id") or result.stdout == "" or "," in result.stdout
    else:
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert str(path) in lines[0]
