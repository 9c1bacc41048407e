"""Every sample's facts folder (samples/*/*/facts, made by the samples issue) loads cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdiag.facts.loader import load_facts

SAMPLES = Path(__file__).parent.parent / "samples"
FACT_DIRS = sorted(SAMPLES.glob("*/*/facts"))


def _param(path: Path) -> object:
    return pytest.param(path, id=path.relative_to(SAMPLES).as_posix())


@pytest.mark.parametrize("facts_dir", [_param(p) for p in FACT_DIRS] or [pytest.param(None)])
def test_sample_facts_load_without_problems(facts_dir: Path | None) -> None:
    if facts_dir is None or not any(facts_dir.iterdir()):
        pytest.skip("sample not built (or being rebuilt right now)")
    facts, problems = load_facts([facts_dir])
    assert [str(p) for p in problems] == []
    assert not facts.is_empty()
    assert "unknown" not in facts.hosts  # every fact found its host
