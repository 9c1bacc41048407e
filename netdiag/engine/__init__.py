"""The rule engine: Rule base class, read-only context, registry of rule folders, runner.

Public API: ``Rule``, ``Finding``/``Evidence``/``FactUsed``, ``AnalysisContext``, ``discover``,
``select_rules``, ``run_rules``, and ``analyze`` (captures + facts -> ``Analysis``).
"""

from netdiag.engine.analysis import Analysis, analyze, load_context
from netdiag.engine.context import AnalysisContext
from netdiag.engine.finding import Evidence, FactUsed, Finding
from netdiag.engine.registry import RuleLoadError, discover
from netdiag.engine.rule import DOC_HEADINGS, Rule
from netdiag.engine.runner import RunResult, run_rules, select_rules

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
