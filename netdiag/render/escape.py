"""Escaping of untrusted strings (from captures and facts files) for Markdown and HTML reports.

Every string a report did not write itself goes through one of these functions. Markdown has no
single escaping rule, so each context has its own helper: running text, table cells, code spans
and fenced code blocks. They aim at CommonMark and GitHub-flavoured Markdown, which GitLab and
most ticket systems follow; what they emit is also harmless in a renderer that does not know a
construct (it shows a backslash or the fence, never markup or HTML).
"""

from __future__ import annotations

import html
import re

#: characters that start Markdown markup anywhere in a line, or raw HTML / entities
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~!])")
#: markup that only counts at the start of a line: headings, quotes, lists, rules, tables
_MD_LINE_START = re.compile(r"^(\s*)([#+=-])")
#: an ordered-list marker ("1. ", "2) "): the backslash must go before the punctuation
_MD_ORDERED = re.compile(r"^(\s*\d{1,9})([.)])(?=\s|$)")
_BACKTICK_RUN = re.compile(r"`+")
#: C0 controls (except tab and newline) and DEL: a terminal or a browser may act on them
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _visible(text: str) -> str:
    """Control characters as visible ``\\xNN`` escapes (a capture's bytes may hold any)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def html_text(text: object) -> str:
    """Text for an HTML element or a quoted attribute (``<``, ``>``, ``&``, both quotes)."""
    return html.escape(_visible(str(text)), quote=True)


def md_text(text: object) -> str:
    """Running Markdown text: markup characters backslash-escaped, ``&`` as an entity.

    Newlines are kept (paragraphs of a message); each line's start is escaped too, so that a
    line of a facts file cannot become a heading or a list.
    """
    lines = []
    for line in _visible(str(text)).split("\n"):
        line = line.replace("&", "&amp;")
        line = _MD_SPECIAL.sub(r"\\\1", line)
        line = _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), line)
        line = _MD_ORDERED.sub(lambda m: m.group(1) + "\\" + m.group(2), line)
        lines.append(line)
    return "\n".join(lines)


def md_cell(text: object) -> str:
    """A Markdown table cell: one line, escaped like running text (pipes included)."""
    one_line = " ".join(str(text).split())
    return md_text(one_line) if one_line else " "


def md_code_span(text: object, in_table: bool = False) -> str:
    """Inline code: delimited by one more backtick than the longest run inside.

    In a table GitHub splits cells at a pipe even inside code, unless it is written ``\\|``
    (which the table parser turns back into a pipe before the code span is read).
    """
    body = " ".join(_visible(str(text)).split())
    longest = max((len(m) for m in _BACKTICK_RUN.findall(body)), default=0)
    fence = "`" * (longest + 1)
    if body.startswith("`") or body.endswith("`") or not body:
        body = f" {body} "
    if in_table:
        body = body.replace("|", "\\|")
    return f"{fence}{body}{fence}"


def md_code_block(lines: list[str], info: str = "") -> str:
    """A fenced code block whose fence is longer than any backtick run in ``lines``."""
    body = [_visible(line) for line in lines]
    longest = max((len(m) for line in body for m in _BACKTICK_RUN.findall(line)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([fence + info, *body, fence])
