"""The Rule base class: a rule's metadata, its documentation, and the one method that finds."""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

from netdiag.engine.finding import (
    EVIDENCE_CAP,
    Confidence,
    Evidence,
    FactUsed,
    Finding,
    Severity,
    fingerprint,
)

if TYPE_CHECKING:
    from netdiag.engine.context import AnalysisContext

Status = Literal["stable", "experimental"]

#: what a rule can need from an analysis; the runner skips a rule whose needs are not met
INPUTS: dict[str, str] = {
    "packets": "no capture",
    "arp": "no capture with ARP",
    "facts": "no facts",
    "points": "one capture point only (give several captures of the incident)",
}

#: the headings every rule docstring has, in this order, each followed by a line of dashes
DOC_HEADINGS = (
    "What it detects",
    "Why it matters",
    "Evidence",
    "Remediation",
    "False positives",
    "References",
)

CODE_RE = re.compile(r"^[A-Z]{2,4}[0-9]{3}$")
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class Rule:
    """Base class of every rule; a subclass lives alone in ``rules/<CODE>-<name>/rule.py``.

    A rule is pure: ``check`` reads the context (tables and facts, never files) and yields at most
    one finding per subject. Its docstring is its user documentation, with ``DOC_HEADINGS``.
    """

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""  # kebab-case name of the observed problem
    title: ClassVar[str] = ""
    category: ClassVar[str] = ""  # load-balancer, arp, routing, nat, vpn
    severity: ClassVar[Severity] = "warning"
    status: ClassVar[Status] = "stable"
    #: inputs that must all be present
    needs: ClassVar[frozenset[str]] = frozenset({"packets"})
    #: inputs of which at least one must be present (empty: no such condition)
    needs_any: ClassVar[frozenset[str]] = frozenset()
    references: ClassVar[tuple[str, ...]] = ()

    def check(self, ctx: AnalysisContext) -> Iterable[Finding]:
        raise NotImplementedError

    # --- documentation ---------------------------------------------------------------------
    @classmethod
    def doc_text(cls) -> str:
        """The rule's documentation: its class docstring, else its rule.py module docstring."""
        doc = cls.__doc__
        if not doc:
            module = sys.modules.get(cls.__module__)
            doc = getattr(module, "__doc__", None) or ""
        return inspect.cleandoc(doc)

    @classmethod
    def doc_sections(cls) -> dict[str, str]:
        """The docstring split at its headings: heading -> body text (stripped)."""
        lines = cls.doc_text().splitlines()
        sections: dict[str, list[str]] = {}
        current: str | None = None
        i = 0
        while i < len(lines):
            line = lines[i].strip()
            underline = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if line in DOC_HEADINGS and underline and set(underline) == {"-"}:
                current = line
                sections[current] = []
                i += 2
                continue
            if current is not None:
                sections[current].append(lines[i])
            i += 1
        return {k: "\n".join(v).strip() for k, v in sections.items()}

    @classmethod
    def summary(cls) -> str:
        """The first line of the docstring."""
        text = cls.doc_text()
        return text.splitlines()[0].strip() if text else cls.title

    # --- building findings -----------------------------------------------------------------
    def finding(
        self,
        ctx: AnalysisContext,
        *,
        subject: str,
        message: str,
        confidence: Confidence,
        evidence: Sequence[Evidence] = (),
        evidence_total: int | None = None,
        wireshark_filter: str = "",
        facts_used: Sequence[FactUsed] = (),
        explanation: str = "",
        remediation: str = "",
        severity: Severity | None = None,
        captures: Sequence[str] | None = None,
    ) -> Finding:
        """A finding with this rule's metadata, evidence capped, times and fingerprint filled."""
        ordered = sorted(evidence, key=lambda e: (e.ts, e.capture, e.frame))
        total = len(ordered) if evidence_total is None else evidence_total
        shown = list(ordered[:EVIDENCE_CAP])
        used_captures = (
            list(captures) if captures is not None else sorted({e.capture for e in ordered})
        )
        if not used_captures:
            used_captures = [c.path for c in ctx.captures]
        return Finding(
            code=self.code,
            name=self.name,
            title=self.title,
            severity=severity or self.severity,
            confidence=confidence,
            message=message,
            subject=subject,
            first_ts=ordered[0].ts if ordered else None,
            last_ts=ordered[-1].ts if ordered else None,
            evidence=shown,
            evidence_total=total,
            wireshark_filter=wireshark_filter,
            facts_used=list(dict.fromkeys(facts_used)),
            explanation=explanation,
            remediation=remediation,
            references=list(self.references),
            fingerprint=fingerprint(self.code, subject, used_captures),
        )
