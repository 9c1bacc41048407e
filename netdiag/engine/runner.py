"""Runs the selected rules over one context: errors and missing inputs become data, not crashes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from netdiag.engine.context import AnalysisContext
from netdiag.engine.finding import EVIDENCE_CAP, SEVERITY_RANK, Finding, fingerprint, sort_key
from netdiag.engine.rule import INPUTS, Rule
from netdiag.render.wireshark_filter import any_of


@dataclass
class RuleOutcome:
    code: str
    reason: str


@dataclass
class RunResult:
    """What a run did: findings (sorted), rules that ran, were skipped (why), or raised (why)."""

    findings: list[Finding] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: list[RuleOutcome] = field(default_factory=list)
    errored: list[RuleOutcome] = field(default_factory=list)

    def worst_severity(self) -> str | None:
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=SEVERITY_RANK.__getitem__)

    def fails(self, fail_on: str) -> bool:
        """Does any finding reach ``fail_on`` (info, warning, error; never: nothing fails)?"""
        if fail_on == "never":
            return False
        threshold = SEVERITY_RANK[fail_on]
        return any(SEVERITY_RANK[f.severity] >= threshold for f in self.findings)


def missing_input(rule: type[Rule], ctx: AnalysisContext) -> str | None:
    """Why ``rule`` cannot run on ``ctx`` ("no capture with ARP", "no facts"), or None."""
    for need in sorted(rule.needs):
        if not ctx.has(need):
            if need == "packets" and ctx.captures:
                return "no packets in the captures"
            return INPUTS[need]
    if rule.needs_any and not any(ctx.has(n) for n in rule.needs_any):
        return " and ".join(INPUTS[n] for n in sorted(rule.needs_any))
    return None


def run_rules(ctx: AnalysisContext, rules: Sequence[type[Rule]]) -> RunResult:
    """Run each rule; a rule that raises is reported as errored and the others still run."""
    result = RunResult()
    for rule_cls in rules:
        reason = missing_input(rule_cls, ctx)
        if reason is not None:
            result.skipped.append(RuleOutcome(rule_cls.code, reason))
            continue
        try:
            found = list(rule_cls().check(ctx))
        except Exception as exc:  # one broken rule must not hide the others' findings
            first_line = (str(exc).splitlines() or [""])[0]
            result.errored.append(RuleOutcome(rule_cls.code, f"{type(exc).__name__}: {first_line}"))
            continue
        result.ran.append(rule_cls.code)
        result.findings.extend(found)
    result.findings = merge_same_subject(result.findings)
    result.findings.sort(key=sort_key)
    return result


def merge_same_subject(findings: list[Finding]) -> list[Finding]:
    """One finding per (code, subject): captures of one incident seen from several points merge.

    The most confident (then most severe, then first) finding is kept as the base; the others'
    evidence is shared fairly among the capped rows, totals add up, facts are united, and the
    message says where else it was seen. The fingerprint covers every capture involved.
    """
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.code, f.subject), []).append(f)
    merged = []
    for (code, subject), group in groups.items():
        if len(group) == 1:
            merged.append(group[0])
            continue
        rank = {"high": 0, "medium": 1, "low": 2}
        group.sort(key=lambda f: (rank[f.confidence], -SEVERITY_RANK[f.severity]))
        base = group[0]
        per = max(EVIDENCE_CAP // len(group), 1)
        evidence = [e for f in group for e in f.evidence[:per]]
        rest = [e for f in group for e in f.evidence[per:]]
        evidence = sorted(
            (evidence + rest)[:EVIDENCE_CAP], key=lambda e: (e.ts, e.capture, e.frame)
        )
        captures = sorted({e.capture for f in group for e in f.evidence})
        others = sorted(
            {e.capture for f in group[1:] for e in f.evidence} - {e.capture for e in base.evidence}
        )
        message = base.message
        if others:
            message += f" Also seen in {', '.join(os.path.basename(c) for c in others)}."
        merged.append(
            replace(
                base,
                message=message,
                evidence=evidence,
                evidence_total=sum(f.evidence_total for f in group),
                first_ts=min((f.first_ts for f in group if f.first_ts), default=None),
                last_ts=max((f.last_ts for f in group if f.last_ts), default=None),
                facts_used=list(dict.fromkeys(u for f in group for u in f.facts_used)),
                # each capture's evidence must stay selectable: the filters of all parts, or-ed
                wireshark_filter=any_of(dict.fromkeys(f.wireshark_filter for f in group)),
                fingerprint=fingerprint(code, subject, captures),
            )
        )
    return merged
