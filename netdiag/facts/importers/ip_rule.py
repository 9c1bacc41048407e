"""Importer of `ip rule` (and `ip -6 rule`, `ip -j rule`): the policy routing rules."""

from __future__ import annotations

import json
import re

from netdiag.facts.importers.base import (
    Fragment,
    Importer,
    Reader,
    compact_json,
    first_lines,
    is_ip,
    json_key_lines,
    strip_comment,
)
from netdiag.facts.model import PolicyRule, parse_network

RULE_LINE = re.compile(r"^(\d+):\s+(.*)$")
ACTIONS = {"unreachable", "blackhole", "prohibit", "nop"}
SELECTORS = {"from": "from_", "to": "to", "iif": "iif", "oif": "oif", "fwmark": "fwmark"}
SKIP_WITH_VALUE = {"tos", "dsfield", "pref", "priority", "realms", "uidrange", "ipproto", "sport"}
SKIP_WITH_VALUE |= {"dport", "suppress_prefixlength", "suppress_ifgroup", "l3mdev", "protocol"}
SKIP_WITH_VALUE |= {"proto", "goto", "nat", "map-to"}


def parse_words(priority: int, words: list[str]) -> tuple[PolicyRule | None, str]:
    rule = PolicyRule(priority=priority)
    i = 0
    while i < len(words):
        word = words[i]
        if word == "not":
            rule.invert = True
            i += 1
        elif word in SELECTORS:
            if i + 1 >= len(words):
                return None, f"{word} without a value"
            value = words[i + 1]
            if word in ("from", "to") and value != "all" and parse_network(value) is None:
                return None, f"bad {word} prefix {value!r}"
            setattr(rule, SELECTORS[word], value)
            i += 2
        elif word in ("lookup", "table"):
            if i + 1 >= len(words):
                return None, "lookup without a table"
            rule.table = words[i + 1]
            rule.action = "lookup"
            i += 2
        elif word in ACTIONS:
            rule.action = word
            i += 1
        elif word == "goto":
            rule.action = "goto"
            rule.table = words[i + 1] if i + 1 < len(words) else ""
            i += 2
        elif word in SKIP_WITH_VALUE:
            i += 2
        else:
            i += 1  # flags such as 'unresolved', 'l3mdev'
    for text in (rule.from_, rule.to):
        if ":" in text:
            rule.family = 6
    if rule.action == "lookup" and not rule.table:
        return None, "rule without lookup table or action"
    return rule, ""


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    frag = reader.fragment
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            reader.problem(0, f"not valid JSON: {exc}")
            return frag
        lines = json_key_lines(reader.lines, "priority")
        for n, item in enumerate(data if isinstance(data, list) else []):
            if not isinstance(item, dict) or not isinstance(item.get("priority"), int):
                reader.problem(0, f"JSON rule #{n + 1} without priority skipped")
                continue
            words = ["from", str(item.get("src", "all"))]
            if item.get("srclen") is not None and item.get("src") not in (None, "all"):
                words[1] += f"/{item['srclen']}"
            if item.get("dst"):
                words += [
                    "to",
                    str(item["dst"]) + (f"/{item['dstlen']}" if "dstlen" in item else ""),
                ]
            for key in ("iif", "oif", "fwmark"):
                if item.get(key):
                    words += [key, str(item[key])]
            if item.get("not"):
                words.insert(0, "not")
            if item.get("table"):
                words += ["lookup", str(item["table"])]
            elif item.get("action"):
                words += [str(item["action"])]
            rule, err = parse_words(item["priority"], words)
            if rule is None:
                reader.problem(0, f"JSON rule #{n + 1}: {err}")
                continue
            rule.source = reader.src(lines[n] if n < len(lines) else 0, compact_json(item))
            frag.host.rules.append(rule)
        return frag
    for index, raw in reader.numbered():
        line = strip_comment(raw)
        if not line.strip():
            continue
        match = RULE_LINE.match(line.strip())
        if not match:
            reader.problem(index, "not an `ip rule` line (PRIORITY: selector action)")
            continue
        rule, err = parse_words(int(match.group(1)), match.group(2).split())
        if rule is None:
            reader.problem(index, err)
            continue
        rule.source = reader.src(index)
        frag.host.rules.append(rule)
    return frag


def looks_like_rule(text: str) -> bool:
    lines = first_lines(text, 3)
    return bool(lines) and all(re.match(r"^\d+:\s+(not\s+)?from\s+\S+", ln) for ln in lines)


IMPORTER = Importer(
    name="ip_rule",
    parse=parse,
    command=is_ip("rule"),
    sniff=looks_like_rule,
    description="ip rule / ip -6 rule / ip -j rule",
)
