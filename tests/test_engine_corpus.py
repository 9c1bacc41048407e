"""Every rule over the public corpus: the failure-pattern rules fire only where the capture shows it.

The corpus (../shared/corpus) holds public captures of all kinds (fuzzed, malformed, tunnels,
ARP storms...). A hit here is either a real occurrence of the pattern, listed in KNOWN_HITS with
the reason, or a false positive to fix in the rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netdiag.engine.context import AnalysisContext
from netdiag.engine.registry import discover
from netdiag.engine.runner import run_rules
from netdiag.engine.selection import select_rules
from netdiag.errors import NetdiagError
from netdiag.pipeline import load_capture

#: (file, code, subject) -> why the capture really shows the pattern
KNOWN_HITS: dict[tuple[str, str, str], str] = {}


@pytest.mark.slow
def test_rules_fire_only_on_real_patterns_in_the_corpus(corpus_dir: Path) -> None:
    rules = select_rules(discover(), ["ALL"], [])
    hits: dict[tuple[str, str, str], str] = {}
    errored: list[str] = []
    for path in sorted(corpus_dir.iterdir()):
        try:
            capture = load_capture(str(path), retention="control")
        except NetdiagError:
            continue  # not a capture netdiag reads: the capture tests cover that
        result = run_rules(AnalysisContext([capture]), rules)
        errored += [f"{path.name}: {e.code}: {e.reason}" for e in result.errored]
        for f in result.findings:
            hits[(path.name, f.code, f.subject)] = f.message
    assert errored == []
    unexplained = {k: v for k, v in hits.items() if k not in KNOWN_HITS}
    assert unexplained == {}
    assert set(KNOWN_HITS) <= set(hits), "a known hit disappeared: update KNOWN_HITS"
