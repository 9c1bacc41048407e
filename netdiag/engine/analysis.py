"""The library entry point of `netdiag analyze`: captures and facts in, a rule run out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from netdiag.addressbook import AddressBook
from netdiag.engine.context import AnalysisContext
from netdiag.engine.registry import discover
from netdiag.engine.runner import RunResult, run_rules
from netdiag.engine.selection import select_rules
from netdiag.errors import NetdiagError


@dataclass
class Analysis:
    """One analysis: its context (tables and facts), the rule run, and the facts' problems."""

    context: AnalysisContext
    result: RunResult
    facts_problems: list[str] = field(default_factory=list)


def load_context(
    captures: Sequence[str],
    facts: Sequence[str] = (),
    point_names: Mapping[str, str] | None = None,
) -> tuple[AnalysisContext, list[str]]:
    """Read every capture (control retention, one address book) and the facts files.

    Several captures are capture points of one incident: each packet's observation row is kept
    for correlating them (``AnalysisContext.correlation``); ``point_names`` names them.
    """
    from netdiag.pipeline import load_capture

    if not captures and not facts:
        raise NetdiagError(
            None, "nothing to analyze: give a capture, or --facts to audit configuration"
        )
    book = AddressBook()
    observe = len(captures) > 1
    loaded = [
        load_capture(path, book=book, retention="control", observe=observe) for path in captures
    ]
    fact_set = None
    problems: list[str] = []
    sources: list[str] = []
    if facts:
        from netdiag.facts import load_facts

        for path in facts:
            if not Path(path).exists():
                raise NetdiagError(path, "no such file or directory")
        fact_set, found_problems = load_facts(list(facts))
        problems = [str(p) for p in found_problems]
        sources = list(getattr(fact_set, "files", []) or facts)
    return AnalysisContext(loaded, fact_set, sources, dict(point_names or {})), problems


def analyze(
    captures: Sequence[str],
    facts: Sequence[str] = (),
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    rules_dir: Path | None = None,
    point_names: Mapping[str, str] | None = None,
) -> Analysis:
    """Load, choose the rules (ruff-style select/ignore), run them."""
    chosen = select_rules(discover(rules_dir), select, ignore)
    ctx, problems = load_context(captures, facts, point_names)
    return Analysis(ctx, run_rules(ctx, chosen), problems)
