"""What a rule reports: a Finding about one subject, with the frames and facts that prove it."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["info", "warning", "error"]
Confidence = Literal["high", "medium", "low"]

#: severities in increasing order; `--fail-on` compares by this rank
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}
CONFIDENCES = ("high", "medium", "low")

#: evidence rows kept per finding; the total is reported beside them
EVIDENCE_CAP = 10


@dataclass(frozen=True)
class Evidence:
    """One frame that shows the problem: where it is, what it is, and what part it plays."""

    capture: str  # the capture's path as the user gave it
    frame: int  # 1-based, as Wireshark numbers frames
    ts: str  # ISO 8601 UTC with microseconds
    summary: str  # tcpdump-style one-line summary
    role: str  # short tag: "syn-to-vip", "hairpin-syn", "rst", ...
    note: str = ""


@dataclass(frozen=True)
class FactUsed:
    """A configuration line a finding relies on."""

    source: str  # "file:line"
    text: str


@dataclass
class Finding:
    """One known failure pattern about one subject (a flow, host or address), with its proof."""

    code: str
    name: str
    title: str
    severity: Severity
    confidence: Confidence
    message: str
    subject: str
    first_ts: str | None = None
    last_ts: str | None = None
    evidence: list[Evidence] = field(default_factory=list)
    evidence_total: int = 0
    wireshark_filter: str = ""
    facts_used: list[FactUsed] = field(default_factory=list)
    explanation: str = ""
    remediation: str = ""
    references: list[str] = field(default_factory=list)
    fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fingerprint(code: str, subject: str, captures: list[str]) -> str:
    """Stable id of a finding across runs: rule code, subject and the captures' file names.

    File names, not paths, so that the same finding keeps its id when the files are moved.
    """
    import os

    names = ",".join(sorted(os.path.basename(c) for c in captures))
    digest = hashlib.sha256(f"{code}\0{subject}\0{names}".encode()).hexdigest()
    return digest[:16]


def sort_key(finding: Finding) -> tuple[int, str, str]:
    """Most severe first, then by code and subject (deterministic output)."""
    return (-SEVERITY_RANK[finding.severity], finding.code, finding.subject)
