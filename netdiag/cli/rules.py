"""`netdiag rules` lists the rules; `netdiag rule CODE` prints one rule's documentation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from netdiag.cli.common import (
    EXIT_CLEAN,
    EXIT_INPUT_ERROR,
    error_line,
    one_line_errors,
    output_stream,
)

if TYPE_CHECKING:  # the engine (and pandas) load when a command runs
    from netdiag.engine.rule import Rule


def rule_listing(rules: dict[str, type[Rule]]) -> str:
    """One line per rule: code, severity, status, needs, title."""
    lines = [f"{'code':<8} {'severity':<8} {'status':<12} {'needs':<16} title"]
    for code, rule in rules.items():
        parts = ["+".join(sorted(rule.needs))] if rule.needs else []
        if rule.needs_any:
            parts.append("|".join(sorted(rule.needs_any)))
        needs = " ".join(parts)
        lines.append(
            f"{code:<8} {rule.severity:<8} {rule.status:<12} {needs or '-':<16} {rule.title}"
        )
    return "\n".join(lines) + "\n"


def rule_document(rule: type[Rule]) -> str:
    """A rule's metadata followed by its docstring (the headings as written)."""
    from netdiag.engine.rule import INPUTS

    needs = ", ".join(sorted(rule.needs)) or "-"
    if rule.needs_any:
        needs += f"; at least one of {', '.join(sorted(rule.needs_any))}"
    head = [
        f"{rule.code} {rule.name}: {rule.title}",
        f"category: {rule.category}   severity: {rule.severity}   status: {rule.status}",
        f"needs: {needs}   (skipped otherwise: {', '.join(INPUTS[n] for n in sorted(rule.needs)) or '-'})",
        "",
    ]
    return "\n".join(head) + rule.doc_text() + "\n"


@one_line_errors
def rules_command(
    output: str | None = typer.Option(None, "-o", "--output", help="Write to FILE."),
) -> None:
    """List the rules: code, severity, status, the inputs they need, title."""
    from netdiag.engine.registry import discover

    with output_stream(output) as out:
        out.write(rule_listing(discover()))
    raise typer.Exit(EXIT_CLEAN)


@one_line_errors
def rule_command(
    code: str = typer.Argument(..., help="Rule code, e.g. LB001."),
    output: str | None = typer.Option(None, "-o", "--output", help="Write to FILE."),
) -> None:
    """Print a rule's documentation: what it detects, why it matters, evidence, remediation..."""
    from netdiag.engine.registry import discover

    rules = discover()
    rule = rules.get(code.strip().upper())
    if rule is None:
        error_line(f"no rule {code!r} (known: {', '.join(rules) or 'none'})")
        raise typer.Exit(EXIT_INPUT_ERROR)
    with output_stream(output) as out:
        out.write(rule_document(rule))
    raise typer.Exit(EXIT_CLEAN)
