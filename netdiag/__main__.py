"""`python -m netdiag`: the same as the `netdiag` console script."""

from netdiag.cli.main import run

run()
