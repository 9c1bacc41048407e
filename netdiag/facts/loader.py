"""Loading facts from files and directories into one FactSet (the only facts code that reads files).

A path is a file (one command's output, a configuration file, a terminal transcript or the
topology YAML) or a directory of them: each subfolder, or each file directly inside, is one host.
A section's host is the one its prompt names, else the file's (``vpngw.ipsec.conf`` -> vpngw) or
folder's name, else ``default_host``. Nothing raises on bad content: unrecognised sections and
malformed lines come back as problems with file:line.
"""

from __future__ import annotations

import re
from pathlib import Path

from netdiag.errors import FactsError
from netdiag.facts.importers import IMPORTERS, by_command, by_content
from netdiag.facts.importers.base import Fragment, Importer
from netdiag.facts.model import (
    CaptureBinding,
    FactSet,
    Host,
    NatRule,
    Problem,
    Route,
    Service,
    Source,
)
from netdiag.facts.transcript import (
    Section,
    capture_from_command,
    join,
    split_blocks,
    split_transcript,
)

#: files larger than this are not facts (a capture given by mistake, a log)
MAX_FACTS_FILE = 20 * 1024 * 1024
#: file name stems that name a command or a product, not a host ('keepalived.conf', 'ip_addr.txt')
NOT_HOST_NAME = re.compile(
    r"^(ip|ss|sysctl|route|routes|arp|iptables|ip6tables|nft|nftables|ipvsadm|ipvs|keepalived|"
    r"ipsec|swanctl|strongswan|libreswan|daemon|docker|proc|netstat|neigh|facts|topology|"
    r"transcript|readme|listeners?|lb-listener|network|config)([_.\-].*)?$",
    re.IGNORECASE,
)
SKIPPED_SUFFIXES = {".pcap", ".pcapng", ".cap", ".gz", ".zst", ".xz", ".bz2", ".md", ".sh", ".py"}
UNASSIGNED_HOST = "unknown"
#: what a failed command prints instead of its output
COMMAND_FAILED = re.compile(
    r"^.*(command not found|No such file or directory|Permission denied|Operation not permitted|"
    r"RTNETLINK answers: .*|Cannot open network namespace.*|Object \"\S+\" is unknown.*|"
    r"Can't initialize ipvs.*|is not running.*)$",
    re.MULTILINE,
)
#: commands whose output is a test result, not configuration: skipped without a problem
NOT_FACTS_COMMANDS = re.compile(
    r"^(sudo\s+)?(\S*/)?(ping6?|traceroute6?|tracepath|mtr|curl|wget|nc|ncat|telnet|dig|nslookup|"
    r"host|tcpdump|tshark|dumpcap|uname|hostname|date|uptime|whoami|id|echo|ls|cd|pwd|clear|history|"
    r"systemctl|service|modprobe|lsmod|exit|logout|sleep|true|ab|wrk|hping3)(\s|$)"
)


def host_from_filename(path: Path) -> str:
    """'vpngw.ipsec.conf' -> 'vpngw'; 'keepalived.conf' -> '' (a product, not a host)."""
    stem = path.name.split(".", 1)[0]
    if not stem or NOT_HOST_NAME.match(stem):
        return ""
    return stem


def load_facts(
    paths: list[str] | list[Path], default_host: str | None = None
) -> tuple[FactSet, list[Problem]]:
    """Read every path into one FactSet; raise FactsError only when a path cannot be read."""
    facts = FactSet()
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            _load_dir(path, facts, problems, default_host)
        elif path.is_file():
            _load_file(path, host_from_filename(path) or default_host or "", facts, problems)
        else:
            raise FactsError(str(path), "no such file or directory")
    place_unassigned(facts)
    return facts, problems


def place_unassigned(facts: FactSet) -> None:
    """Give product configuration read without a host name (keepalived.conf) to its host.

    A service goes to the one host holding its VIP on a non-loopback interface (the director;
    DR real servers hold it on lo); an IPsec conn to the one host owning its local gateway.
    What stays ambiguous stays on the host named ``unknown``.
    """
    lost = facts.hosts.get(UNASSIGNED_HOST)
    if lost is None:
        return

    def owner(address: str) -> Host | None:
        hosts = [
            h
            for h, iface in facts.owners(address)
            if h is not lost and iface.kind != "loopback" and iface.name != "lo"
        ]
        return hosts[0] if len(hosts) == 1 else None

    for service in list(lost.services):
        target = owner(service.vip)
        if target is not None:
            lost.services.remove(service)
            _merge_service(target, service)
    for conn in list(lost.ipsec):
        target = owner(conn.local_gateway)
        if target is not None:
            lost.ipsec.remove(conn)
            target.ipsec.append(conn)
    if lost.is_empty():
        del facts.hosts[UNASSIGNED_HOST]


def _load_dir(
    directory: Path, facts: FactSet, problems: list[Problem], default_host: str | None
) -> None:
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            for file in sorted(p for p in entry.rglob("*") if p.is_file()):
                if not file.name.startswith(".") and file.suffix not in SKIPPED_SUFFIXES:
                    _load_file(file, entry.name, facts, problems)
        elif entry.is_file() and entry.suffix not in SKIPPED_SUFFIXES:
            _load_file(entry, host_from_filename(entry) or default_host or "", facts, problems)


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FACTS_FILE:
            raise FactsError(str(path), f"{size} bytes: too large for a facts file")
        data = path.read_bytes()
    except OSError as exc:
        raise FactsError(str(path), exc.strerror or str(exc)) from None
    if b"\x00" in data[:4096]:
        raise FactsError(str(path), "binary file, not facts text (a capture? give it as CAPTURE)")
    text = data.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _load_file(path: Path, host_name: str, facts: FactSet, problems: list[Problem]) -> None:
    text = _read_text(path)
    facts.files.append(str(path))
    load_text(text, str(path), host_name, facts, problems)


def load_text(
    text: str, file: str, host_name: str, facts: FactSet, problems: list[Problem]
) -> None:
    """Import one file's text (pure apart from updating ``facts`` and ``problems``)."""
    for prompt_line, prompt_host, capture, iface in _captures_started(text, file):
        facts.captures.append(
            CaptureBinding(
                capture,
                prompt_host or host_name or UNASSIGNED_HOST,
                iface,
                source=Source(file, prompt_line, text.splitlines()[prompt_line - 1].rstrip()),
            )
        )
    for section, importer in recognise(text, file, problems):
        try:
            fragment = importer.parse(section.text, section.file, section.first_line)
        except Exception as exc:  # noqa: BLE001 - an importer bug must not lose the other facts
            problems.append(
                Problem(file, section.first_line, f"{importer.name}: internal error: {exc!r}")
            )
            continue
        if importer.name == "ip_route" and section.command:
            _route_table_from_command(section.command, fragment)
        target = section.host or fragment.host_name or host_name or UNASSIGNED_HOST
        merge(facts, target, fragment)
        problems.extend(fragment.problems)


_TABLE_IN_COMMAND = re.compile(r"\btable\s+(\S+)")


def _route_table_from_command(command: str, fragment: Fragment) -> None:
    """`ip route show table 220` prints its routes without `table 220`: the command names it."""
    match = _TABLE_IN_COMMAND.search(command)
    if match is None or match.group(1) in ("all", "main", "0"):
        return
    for route in fragment.host.routes:
        if route.table == "main":
            route.table = match.group(1)


def _captures_started(text: str, file: str) -> list[tuple[int, str, str, str]]:
    """(prompt line, host, capture file, interface) of every `tcpdump -w` in a transcript."""
    out = []
    for section in split_transcript(text, file):
        got = capture_from_command(section.command) if section.command else None
        if got is not None:
            out.append((section.prompt_line, section.host, got[0], got[1]))
    return out


def recognise(text: str, file: str, problems: list[Problem]) -> list[tuple[Section, Importer]]:
    """The sections of one file, each with the importer that reads it; others are reported."""
    out: list[tuple[Section, Importer]] = []
    by_name = _by_file_name(file)
    for section in split_transcript(text, file):
        if not section.text.strip():
            continue
        if section.command:
            command = section.command.strip()
            if command.startswith("#"):
                problems.append(
                    Problem(file, section.prompt_line, "output after a commented-out command")
                )
                continue
            failure = COMMAND_FAILED.search(section.text[:2000])
            if failure and len(section.text.strip().splitlines()) <= 3:
                problems.append(
                    Problem(
                        file,
                        section.prompt_line,
                        f"`{_short(command)}` failed: {_short(failure.group(0).strip())}",
                    )
                )
                continue
            importer = by_command(command) or by_content(section.text)
            if importer is None and NOT_FACTS_COMMANDS.match(command):
                continue  # a test the engineer ran (ping, curl...): known, and not facts
            if importer is None:
                problems.append(
                    Problem(
                        file,
                        section.prompt_line,
                        f"unrecognised section: output of `{_short(command)}` skipped",
                    )
                )
                continue
            out.append((section, _refine(importer, section.text)))
            continue
        if _only_comments(section.text):
            continue
        if by_name is not None:
            out.append((section, _refine(by_name, section.text)))
            continue
        whole = by_content(section.text)
        if whole is not None and whole.name in WHOLE_DOCUMENT:
            out.append((section, whole))
            continue
        out.extend(_by_blocks(section, problems))
    return out


#: formats whose blank lines are inside the document, never between outputs
WHOLE_DOCUMENT = {
    "topology_yaml",
    "docker_network",
    "docker_daemon",
    "keepalived",
    "swanctl",
    "strongswan_ipsec_conf",
    "libreswan",
    "iptables_save",
    "nft_ruleset",
}


def _by_blocks(section: Section, problems: list[Problem]) -> list[tuple[Section, Importer]]:
    out: list[tuple[Section, Importer]] = []
    for block in split_blocks(section):
        if _only_comments(block.text):
            continue
        importer = by_content(block.text)
        if importer is None and out:
            prev_section, prev_importer = out[-1]
            out[-1] = (join(prev_section, block), prev_importer)
            continue
        if importer is None:
            first = block.text.splitlines()[0].strip()
            problems.append(
                Problem(block.file, block.first_line, f"unrecognised section: {_short(first)!r}")
            )
            continue
        if out and out[-1][1] is importer and importer.name not in ("ip_addr", "ip_link"):
            out[-1] = (join(out[-1][0], block), importer)
            continue
        out.append((block, importer))
    return out


def _by_file_name(file: str) -> Importer | None:
    """An importer named by the file itself: '*.ipsec.conf', 'daemon.json', '*.yaml'."""
    name = Path(file).name
    for importer in IMPORTERS.values():
        if importer.name in ("sysctl",) and not name.endswith(".conf"):
            continue
        if importer.name in WHOLE_DOCUMENT and importer.matches_command(name):
            return importer
    return None


def _refine(importer: Importer, text: str) -> Importer:
    """ipsec.conf named by the command may still be libreswan's dialect."""
    if importer.name == "strongswan_ipsec_conf" and IMPORTERS["libreswan"].sniff(text):
        return IMPORTERS["libreswan"]
    return importer


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines())


def _short(text: str, limit: int = 60) -> str:
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def merge(facts: FactSet, host_name: str, fragment: Fragment) -> None:
    """Add a fragment's facts to the host ``host_name`` (and its other hosts to theirs)."""
    _merge_host(facts.host(host_name), fragment.host)
    for other in fragment.other_hosts:
        _merge_host(facts.host(other.name), other)
    facts.captures.extend(fragment.captures)
    emptied = facts.hosts.get(host_name) is not None and facts.hosts[host_name].is_empty()
    if emptied and (fragment.other_hosts or fragment.captures):
        del facts.hosts[host_name]  # a topology file is about the hosts it names


def _merge_host(target: Host, new: Host) -> None:
    for name, iface in new.interfaces.items():
        old = target.interfaces.get(name)
        if old is None:
            target.interfaces[name] = iface
            continue
        # `ip link` and `ip addr` of one host describe the same interface: fill the gaps
        for attr in ("ifindex", "mac", "mtu", "kind", "master", "link", "state"):
            if getattr(old, attr) in (None, "") and getattr(iface, attr) not in (None, ""):
                setattr(old, attr, getattr(iface, attr))
        if not old.flags:
            old.flags = iface.flags
        known = {(a.address, a.prefixlen) for a in old.addresses}
        old.addresses.extend(a for a in iface.addresses if (a.address, a.prefixlen) not in known)
    for route in new.routes:
        if not any(_same_route(old, route) for old in target.routes):
            target.routes.append(route)
    _extend_unique(target.rules, new.rules)
    for neighbour in new.neighbours:
        if not any(
            (n.address, n.device, n.mac) == (neighbour.address, neighbour.device, neighbour.mac)
            for n in target.neighbours
        ):
            target.neighbours.append(neighbour)
    _extend_unique(target.fdb, new.fdb)
    target.sysctls.update(new.sysctls)
    for rule in new.nat_rules:
        if not any(_nat_key(r) == _nat_key(rule) for r in target.nat_rules):
            target.nat_rules.append(rule)
    _extend_unique(target.sockets, new.sockets)
    for service in new.services:
        _merge_service(target, service)
    _extend_unique(target.ipsec, new.ipsec)
    _extend_unique(target.container_networks, new.container_networks)


def _merge_service(target: Host, new: Service) -> None:
    """ipvsadm -Ln, ipvsadm-save and keepalived.conf may describe one service: merge them."""
    for old in target.services:
        if (old.vip, old.port, old.protocol) != (new.vip, new.port, new.protocol):
            continue
        for attr in ("layer", "keeps_client_address", "scheduler", "persistence", "kind", "name"):
            if getattr(old, attr) in (None, "") and getattr(new, attr) not in (None, ""):
                setattr(old, attr, getattr(new, attr))
        known = {(rs.address, rs.port) for rs in old.real_servers}
        old.real_servers.extend(rs for rs in new.real_servers if (rs.address, rs.port) not in known)
        return
    target.services.append(new)


def _nat_key(rule: NatRule) -> tuple[object, ...]:
    """One rule as iptables-save and `nft list ruleset` of iptables-nft both print it."""
    return (rule.action, rule.chain, rule.src, rule.dst, rule.in_iface, rule.out_iface) + (
        rule.protocol,
        tuple(rule.dports),
        rule.to,
    )


def _same_route(old: Route, new: Route) -> bool:
    """The same route pasted twice, maybe once by `route -n` (no protocol, reject for all types)."""
    if old == new:
        return True
    if (old.table, old.destination, old.family) != (new.table, new.destination, new.family):
        return False
    rejecting = ("blackhole", "unreachable", "prohibit", "reject")
    if new.type in rejecting or (not new.gateway and not new.device):
        return old.type in rejecting
    return old.gateway == new.gateway and new.device in ("", old.device) and old.type == new.type


def _extend_unique(target: list, new: list) -> None:  # type: ignore[type-arg]
    """Append facts not already there (the same route pasted by `ip route` and `table all`)."""
    for item in new:
        if item not in target:
            target.append(item)
