"""Pinned facts of every facts fixture: each file's canonical JSON dump, compared exactly.

The expected dumps live in tests/fixtures/facts/expected/ and are regenerated only with
NETDIAG_UPDATE_EXPECTED=1 or `pytest --update-expected` (then review the diff before committing).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from netdiag.facts.export import to_data
from netdiag.facts.loader import load_facts

FIXTURES = Path(__file__).parent / "fixtures" / "facts"
EXPECTED = FIXTURES / "expected"
UPDATE = os.environ.get("NETDIAG_UPDATE_EXPECTED") == "1"
INPUT_DIRS = ("real", "transcripts", "seeds", "configs")


def _inputs() -> list[str]:
    out = []
    for folder in INPUT_DIRS:
        for path in sorted((FIXTURES / folder).rglob("*")):
            if path.is_file() and path.name != "README.md":
                out.append(path.relative_to(FIXTURES).as_posix())
    return out


def _dump(rel: str) -> dict:
    facts, problems = load_facts([rel], default_host="default")
    return {
        "facts": to_data(facts, sources="structured"),
        "problems": [str(p) for p in problems],
    }


@pytest.mark.parametrize("rel", _inputs())
def test_fixture_facts_match_pinned(
    rel: str, monkeypatch: pytest.MonkeyPatch, update_expected: bool
) -> None:
    monkeypatch.chdir(FIXTURES)
    got = _dump(rel)
    expected_path = EXPECTED / (rel + ".json")
    if UPDATE or update_expected:
        expected_path.parent.mkdir(parents=True, exist_ok=True)
        expected_path.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", "utf-8")
    assert expected_path.exists(), f"no pinned facts for {rel}: run with NETDIAG_UPDATE_EXPECTED=1"
    expected = json.loads(expected_path.read_text("utf-8"))
    assert got == expected


def test_every_pinned_dump_has_its_input() -> None:
    inputs = set(_inputs())
    stale = [
        p.relative_to(EXPECTED).as_posix()[: -len(".json")]
        for p in EXPECTED.rglob("*.json")
        if p.relative_to(EXPECTED).as_posix()[: -len(".json")] not in inputs
    ]
    assert stale == []


def test_real_outputs_read_without_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    # the outputs made by make_outputs.sh are real: none of their lines may be a problem
    monkeypatch.chdir(FIXTURES)
    for folder in ("real", "transcripts", "seeds"):
        facts, problems = load_facts([folder])
        assert problems == [], folder
        assert not facts.is_empty()
