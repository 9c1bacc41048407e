"""The rule engine: Rule base class, read-only context, registry of rule folders, runner.

Public API: ``Rule``, ``Finding``/``Evidence``/``FactUsed``, ``AnalysisContext``, ``discover``,
``select_rules``, ``run_rules``, and ``analyze`` (captures + facts -> ``Analysis``).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: public name -> defining module, imported on first use (PEP 562): choosing rules or reading the
#: registry must not load pandas
_EXPORTS = {
    "Analysis": "netdiag.engine.analysis",
    "analyze": "netdiag.engine.analysis",
    "load_context": "netdiag.engine.analysis",
    "AnalysisContext": "netdiag.engine.context",
    "Evidence": "netdiag.engine.finding",
    "FactUsed": "netdiag.engine.finding",
    "Finding": "netdiag.engine.finding",
    "RuleLoadError": "netdiag.engine.registry",
    "discover": "netdiag.engine.registry",
    "DOC_HEADINGS": "netdiag.engine.rule",
    "Rule": "netdiag.engine.rule",
    "RunResult": "netdiag.engine.runner",
    "run_rules": "netdiag.engine.runner",
    "select_rules": "netdiag.engine.selection",
}

if TYPE_CHECKING:
    from netdiag.engine.analysis import Analysis, analyze, load_context
    from netdiag.engine.context import AnalysisContext
    from netdiag.engine.finding import Evidence, FactUsed, Finding
    from netdiag.engine.registry import RuleLoadError, discover
    from netdiag.engine.rule import DOC_HEADINGS, Rule
    from netdiag.engine.runner import RunResult, run_rules
    from netdiag.engine.selection import select_rules


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "DOC_HEADINGS",
    "Analysis",
    "AnalysisContext",
    "Evidence",
    "FactUsed",
    "Finding",
    "Rule",
    "RuleLoadError",
    "RunResult",
    "analyze",
    "discover",
    "load_context",
    "run_rules",
    "select_rules",
]
