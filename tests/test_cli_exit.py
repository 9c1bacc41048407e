"""The `netdiag` program exits without the interpreter's teardown but with the same exit codes,
complete output and exit handlers as an ordinary exit (``netdiag.cli.main.run``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "ipsec-selector-gap" / "faulty" / "vpcrt-any.pcap"


def _netdiag(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netdiag", *args], capture_output=True, text=True, cwd=REPO
    )


def test_output_is_complete_and_exit_clean(tmp_path: Path) -> None:
    done = _netdiag("flows", str(SAMPLE), "--format", "csv")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("flow_id,") and len(lines) > 2
    out = tmp_path / "flows.csv"
    assert _netdiag("flows", str(SAMPLE), "--format", "csv", "-o", str(out)).returncode == 0
    assert out.read_text() == done.stdout


def test_exit_codes_are_kept() -> None:
    assert _netdiag("--version").returncode == 0
    findings = _netdiag("analyze", str(SAMPLE), "--fail-on", "info")
    assert findings.returncode == 1 and "RT002" in findings.stdout
    missing = _netdiag("flows", "no-such-file.pcap")
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "no-such-file.pcap" in missing.stderr
    assert _netdiag("no-such-command").returncode == 2


def test_exit_handlers_still_run(tmp_path: Path) -> None:
    mark = tmp_path / "atexit-ran"
    probe = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(mark)!r}, 'w').write('yes'))\n"
        "sys.argv = ['netdiag', '--version']\n"
        "from netdiag.cli.main import run\n"
        "run()\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("netdiag ")
    assert mark.read_text() == "yes"
