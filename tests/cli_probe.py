"""Run the netdiag CLI in a fresh Python process and tell which modules it had imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_PROBE = """
import sys
sys.argv = ["netdiag", *sys.argv[1:]]
from netdiag.cli.main import main
try:
    main()
except SystemExit:
    pass
print(",".join(sorted(sys.modules)), file=sys.stderr)
"""


def modules_after(*args: str, cwd: Path | None = None) -> list[str]:
    """The names in ``sys.modules`` once ``netdiag ARGS...`` has run (it must not fail)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True, cwd=cwd
    )
    return done.stderr.strip().splitlines()[-1].split(",")
