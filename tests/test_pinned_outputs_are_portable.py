"""Pinned outputs hold relative paths only: they must read the same on every machine."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_no_pinned_output_names_this_checkout() -> None:
    pinned = sorted(REPO.glob("rules/*/expected/*.json"))
    assert pinned, "no pinned rule outputs found"
    offenders = [
        str(path.relative_to(REPO)) for path in pinned if str(REPO) in path.read_text("utf-8")
    ]
    assert offenders == []
