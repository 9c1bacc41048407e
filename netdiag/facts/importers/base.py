"""The importer interface: a pure function from one command's text to a fragment of facts.

An importer never reads files. It gets the text of one section, the file it came from and the
line number of the section's first line, and returns a ``Fragment``: the facts of the host the text
belongs to, facts of other hosts (only the YAML topology names several), capture placements, and
the problems met (malformed lines are reported and skipped, never raised).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from netdiag.facts.model import CaptureBinding, Host, Problem, Source

#: longest line text kept in a Source (one-line JSON outputs would otherwise be kept whole)
MAX_SOURCE_TEXT = 240


def compact_json(item: object) -> str:
    """One JSON item as the text of its Source."""
    return json.dumps(item, separators=(",", ":"), sort_keys=False)


@dataclass
class Fragment:
    """What one importer understood of one section."""

    host: Host = field(default_factory=lambda: Host(""))
    other_hosts: list[Host] = field(default_factory=list)
    captures: list[CaptureBinding] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    host_name: str = ""  # a host name the text itself states (e.g. the topology's `host:`)


ParseFn = Callable[[str, str, int], Fragment]


@dataclass(frozen=True)
class Importer:
    """One source format: how to parse it, the commands that print it, how to recognise it."""

    name: str
    parse: ParseFn
    #: does this transcript command (the text after the prompt) print this format?
    command: Callable[[str], bool]
    #: does this text (with no prompt naming its command) look like this format?
    sniff: Callable[[str], bool]
    description: str

    def matches_command(self, command: str) -> bool:
        return self.command(command.strip())


class Reader:
    """Numbered lines of one section, and the helpers to cite them."""

    def __init__(self, text: str, file: str, first_line: int) -> None:
        self.file = file
        self.first_line = first_line
        self.lines = text.splitlines()
        self.fragment = Fragment()

    def numbered(self) -> Iterator[tuple[int, str]]:
        """(index into self.lines, line) pairs."""
        return iter(enumerate(self.lines))

    def lineno(self, index: int) -> int:
        return self.first_line + index

    def src(self, index: int, text: str | None = None) -> Source:
        """The provenance of line ``index``; ``text`` replaces the line's text (JSON items)."""
        if text is None:
            text = self.lines[index] if 0 <= index < len(self.lines) else ""
        text = text.rstrip()
        if len(text) > MAX_SOURCE_TEXT:
            text = text[: MAX_SOURCE_TEXT - 3] + "..."
        return Source(self.file, self.lineno(index), text)

    def problem(self, index: int, message: str) -> None:
        self.fragment.problems.append(Problem(self.file, self.lineno(index), message))


_TRAILING_COMMENT = re.compile(r"\s+#.*$")


def strip_comment(line: str) -> str:
    """Drop a '# note' line, or a trailing '  # note' engineers add to pasted output (seed 003)."""
    if line.lstrip().startswith("#"):
        return ""
    return _TRAILING_COMMENT.sub("", line).rstrip()


def first_lines(text: str, n: int = 5) -> list[str]:
    """The first ``n`` non-blank, non-comment lines, stripped, for content sniffing."""
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line.strip())
            if len(out) >= n:
                break
    return out


#: `ip` objects in iproute2's own order: an abbreviation means the first object it prefixes
_IP_OBJECTS = ("address", "addrlabel", "maddress", "route", "rule", "neighbour", "link")
_IP_OPTIONS_WITH_ARG = {"-n", "-netns", "-f", "-family", "-rc", "-b", "-batch", "-l", "-loops"}


def ip_object(command: str) -> str:
    """The object of an `ip` command line: 'ip -o -4 a s' -> 'address', else ''."""
    words = command.split()
    if not words or words[0].rsplit("/", 1)[-1] != "ip":
        return ""
    i = 1
    while i < len(words) and words[i].startswith("-"):
        i += 2 if words[i] in _IP_OPTIONS_WITH_ARG else 1
    if i >= len(words):
        return ""
    word = words[i].lower()
    if word in ("neighbor", "neigh"):
        return "neighbour"
    for obj in _IP_OBJECTS:
        if obj.startswith(word):
            return obj
    return ""


def is_ip(*objects: str) -> Callable[[str], bool]:
    """A command test: an `ip` command line whose object is one of ``objects``."""
    return lambda command: ip_object(command) in objects


def command_regex(*patterns: str) -> Callable[[str], bool]:
    """A command test: any of the regular expressions matches the command line."""
    compiled = [re.compile(p) for p in patterns]
    return lambda command: any(c.search(command) for c in compiled)


def json_key_lines(lines: list[str], key: str) -> list[int]:
    """Indexes of the lines holding each occurrence of ``"key":``, in order (for provenance)."""
    pattern = re.compile(r'"' + re.escape(key) + r'"\s*:')
    return [i for i, line in enumerate(lines) for _ in pattern.finditer(line)]
