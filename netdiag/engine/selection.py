"""Choosing rules like ruff does (codes and prefixes; the more specific of select/ignore wins).

Kept apart from the runner so that choosing rules (e.g. for a scan's catalogue identity) needs no
pandas: it works on anything with a ``code`` and a ``status``, Rule classes or RuleInfo records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from netdiag.errors import NetdiagError

#: a Rule class or a RuleInfo: anything with ``code`` and ``status``
S = TypeVar("S", bound=Any)


def parse_codes(values: Iterable[str] | None) -> list[str]:
    """``--select LB,ARP001 --select RT`` -> ["LB", "ARP001", "RT"] (upper-cased, no blanks)."""
    out: list[str] = []
    for value in values or ():
        out.extend(p.strip().upper() for p in value.split(",") if p.strip())
    return out


def _matches(code: str, patterns: Sequence[str]) -> str | None:
    """The longest pattern that is a prefix of ``code`` ("ALL" matches every code)."""
    best: str | None = None
    for p in patterns:
        if (p == "ALL" or code.startswith(p)) and (best is None or len(p) > len(best)):
            best = p
    return best


def select_rules(
    rules: Mapping[str, S],
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
) -> list[S]:
    """Rules chosen like ruff does: by code or prefix; the more specific of select/ignore wins.

    Without ``select`` every stable rule is chosen; an experimental rule runs only when selected
    by its full code. An unknown code or prefix is a usage error.
    """
    for pattern in (*select, *ignore):
        if pattern != "ALL" and not any(code.startswith(pattern) for code in rules):
            raise NetdiagError(None, f"no rule matches {pattern!r} (see `netdiag rules`)")
    chosen = []
    for code, rule in rules.items():
        if select:
            by = _matches(code, select)
            if by is None or (rule.status == "experimental" and by != code):
                continue
            selected_len = len(by) if by != "ALL" else 0
        else:
            if rule.status == "experimental":
                continue
            selected_len = 0
        ignored = _matches(code, ignore)
        if ignored is not None and (len(ignored) if ignored != "ALL" else 0) >= selected_len:
            continue
        chosen.append(rule)
    return chosen
