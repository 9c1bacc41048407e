"""Importer of `nft list ruleset`: the address-translation statements of every chain.

Any rule with a dnat, snat, masquerade or redirect statement becomes a NatRule, whether its chain
is a base nat chain or a regular chain jumped to (docker's DOCKER chain). Rules iptables-nft could
not translate (`xt target "MASQUERADE"`) count as well.
"""

from __future__ import annotations

import re

from netdiag.facts.importers.base import (
    Fragment,
    Importer,
    Reader,
    command_regex,
    first_lines,
)
from netdiag.facts.model import NatRule, host_prefix_as_address, parse_network

TABLE = re.compile(r"^table\s+(\w+)\s+(\S+)\s*\{$")
CHAIN = re.compile(r"^chain\s+(\S+)\s*\{$")
STATEMENT = re.compile(
    r"\b(dnat|snat)(?:\s+(?:ip6?|inet))?\s+to\s+(.+?)\s*(?:comment\s.*)?$"
    r"|\b(masquerade)\b(?:\s+to\s+(\S+))?"
    r"|\b(redirect)\b(?:\s+to\s+(\S+))?|xt target \"(MASQUERADE|DNAT|SNAT|REDIRECT)\""
)
SET = re.compile(r"\{\s*([^}]*)\}")


def _value(text: str) -> str:
    """'{ 80, 443 }' -> '80,443'; '"eth0"' -> 'eth0'."""
    text = text.strip()
    set_match = SET.fullmatch(text)
    if set_match:
        return ",".join(p.strip().strip('"') for p in set_match.group(1).split(",") if p.strip())
    return text.strip('"')


MATCH = re.compile(
    r"\b(ip6?\s+saddr|ip6?\s+daddr|iifname|oifname|iif|oif|(?:tcp|udp|sctp|th)\s+dport)"
    r"\s+(!=\s+)?(\{[^}]*\}|\"[^\"]*\"|\S+)"
)


def parse_rule(text: str) -> tuple[NatRule | None, str]:
    """One rule line -> NatRule; ``to`` keeps the target as written (maps and numgen included)."""
    found = STATEMENT.search(text)
    if not found:
        return None, ""
    if found.group(1):
        action, to = found.group(1).upper(), found.group(2)
    elif found.group(3):
        action, to = "MASQUERADE", found.group(4) or ""
    elif found.group(5):
        action, to = "REDIRECT", found.group(6) or ""
    else:
        action, to = found.group(7), ""
    rule = NatRule(action=action, to=to or "")
    head = text[: found.start()]
    for m in MATCH.finditer(head):
        key = " ".join(m.group(1).split())
        neg = "!" if m.group(2) else ""
        value = _value(m.group(3))
        if key.endswith("saddr") or key.endswith("daddr"):
            for part in value.split(","):
                if parse_network(part.split("-")[0]) is None:
                    return None, f"bad address {part!r}"
            value = host_prefix_as_address(value)
            if key.endswith("saddr"):
                rule.src = neg + value
            else:
                rule.dst = neg + value
        elif key in ("iifname", "iif"):
            rule.in_iface = neg + value
        elif key in ("oifname", "oif"):
            rule.out_iface = neg + value
        else:
            proto = key.split()[0]
            rule.protocol = "" if proto == "th" else proto
            rule.dports = [neg + p for p in value.split(",")]
    l4proto = re.search(r"\bmeta\s+l4proto\s+(\w+)", head)
    if l4proto and not rule.protocol:
        rule.protocol = l4proto.group(1)
    rest = MATCH.sub("", head)
    rest = re.sub(r"\bcounter(\s+packets\s+\d+\s+bytes\s+\d+)?", "", rest)
    rest = re.sub(r"\bmeta\s+l4proto\s+\w+", "", rest)
    rule.matches = [rest.strip()] if rest.strip() else []
    return rule, ""


def parse(text: str, file: str = "<text>", first_line: int = 1) -> Fragment:
    reader = Reader(text, file, first_line)
    frag = reader.fragment
    table = ""
    chain = ""
    depth = 0
    for index, raw in reader.numbered():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        opened = line.count("{") - line.count("}")
        table_m = TABLE.match(line)
        chain_m = CHAIN.match(line)
        if table_m and depth == 0:
            table = f"{table_m.group(1)} {table_m.group(2)}"
            depth = 1
            continue
        if chain_m and depth == 1:
            chain = chain_m.group(1)
            depth = 2
            continue
        if line == "}":
            depth -= 1
            if depth < 0:
                reader.problem(index, "unbalanced '}'")
                depth = 0
            if depth < 2:
                chain = ""
            continue
        if depth == 0:
            reader.problem(index, "statement outside any table")
            continue
        if depth >= 2 and chain:
            if line.startswith(("type ", "policy ")):
                continue
            rule, err = parse_rule(line)
            if rule is None:
                if err:
                    reader.problem(index, err)
                continue
            rule.chain, rule.table = chain, table
            rule.source = reader.src(index)
            frag.host.nat_rules.append(rule)
        depth += max(opened, 0) if line.endswith("{") else 0
    if depth > 0:
        reader.problem(len(reader.lines) - 1, "ruleset ends inside a table or chain")
    return frag


def looks_like_nft(text: str) -> bool:
    lines = [ln for ln in first_lines(text, 3) if not ln.startswith("#")]
    return bool(lines) and bool(TABLE.match(lines[0]))


IMPORTER = Importer(
    name="nft_ruleset",
    parse=parse,
    command=command_regex(r"^(\S*/)?nft\s+(-\w+\s+)*list\b", r"nftables\.conf"),
    sniff=looks_like_nft,
    description="nft list ruleset / nft list table (nat statements)",
)
