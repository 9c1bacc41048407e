"""Splitting pasted text into sections: one command's output each, with its host and command.

A terminal transcript has prompts (``[root@ecs3 ~]# ip route``, ``root@hostC:~# sysctl ...``,
``$ ipvsadm -Ln``) followed by the command's output. Text without prompts is split at blank lines
into blocks; a block whose content no importer recognises continues the block before it (an nft
chain after a blank line, an ipvsadm listing with a gap), so several outputs pasted one after the
other without prompts are still told apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: `[user@host dir]# cmd` (RHEL/CentOS), the host is group 1
RHEL_PROMPT = re.compile(r"^\[[^@\]\s]+@([^\s\]]+)(?:\s[^\]]*)?\]\s?[#$]\s?(.*)$")
#: `user@host:dir# cmd` / `user@host:~$ cmd` (Debian/Ubuntu)
DEBIAN_PROMPT = re.compile(r"^[\w.\-]+@([\w.\-]+):[^\s#$]*\s?[#$]\s?(.*)$")
#: a bare `$ cmd` or `# cmd` (the latter only before a command netdiag knows, as '#' starts
#: comments in configuration files and iptables-save output)
BARE_PROMPT = re.compile(r"^([#$])\s+(\S.*)$")
KNOWN_COMMANDS = re.compile(
    r"^(sudo\s+)?(\S*/)?(ip|sysctl|cat|ipvsadm|ipvsadm-save|iptables-save|ip6tables-save|iptables|"
    r"nft|ss|netstat|docker|arp|route|grep|swanctl|ipsec|ifconfig|hostname)(\s|$)"
)


@dataclass
class Section:
    """One command's output (or one block of prompt-less text)."""

    file: str
    first_line: int  # 1-based line of the first output line
    text: str
    command: str = ""  # the command after the prompt ('' without a prompt)
    host: str = ""  # the host the prompt names ('' without)
    prompt_line: int = 0  # 1-based line of the prompt, 0 without


def parse_prompt(line: str) -> tuple[str, str] | None:
    """(host, command) if ``line`` is a shell prompt, else None; host '' for bare prompts."""
    stripped = line.rstrip()
    for pattern in (RHEL_PROMPT, DEBIAN_PROMPT):
        match = pattern.match(stripped)
        if match:
            return match.group(1), match.group(2).strip()
    match = BARE_PROMPT.match(stripped)
    if match:
        sign, command = match.groups()
        if sign == "$" or KNOWN_COMMANDS.match(command):
            return "", command.strip()
    return None


def split_transcript(text: str, file: str) -> list[Section]:
    """Sections of ``text``: one per prompt; text before the first prompt is one more section."""
    lines = text.splitlines()
    sections: list[Section] = []
    start = 0
    current_cmd = ""
    current_host = ""
    prompt_line = 0
    found_prompt = False
    for i, line in enumerate(lines):
        prompt = parse_prompt(line)
        if prompt is None:
            continue
        found_prompt = True
        if i > start or current_cmd:
            sections.append(
                Section(
                    file,
                    start + 1,
                    "\n".join(lines[start:i]),
                    current_cmd,
                    current_host,
                    prompt_line,
                )
            )
        current_host, current_cmd = prompt
        prompt_line = i + 1
        start = i + 1
    if not found_prompt:
        return [Section(file, 1, text)]
    sections.append(
        Section(file, start + 1, "\n".join(lines[start:]), current_cmd, current_host, prompt_line)
    )
    return sections


def split_blocks(section: Section) -> list[Section]:
    """A prompt-less section cut at blank lines into blocks (merged later by content)."""
    lines = section.text.splitlines()
    blocks: list[Section] = []
    start: int | None = None
    for i, line in enumerate(lines + [""]):
        if line.strip():
            if start is None:
                start = i
            continue
        if start is not None:
            blocks.append(
                Section(
                    section.file,
                    section.first_line + start,
                    "\n".join(lines[start:i]),
                    section.command,
                    section.host,
                    section.prompt_line,
                )
            )
            start = None
    return blocks


def join(a: Section, b: Section) -> Section:
    """Block ``b`` appended to ``a`` (with the blank lines between them kept)."""
    gap = b.first_line - (a.first_line + len(a.text.splitlines()))
    text = a.text + "\n" * (gap + 1) + b.text
    return Section(a.file, a.first_line, text, a.command, a.host, a.prompt_line)


CAPTURE_COMMAND = re.compile(r"^(sudo\s+)?(\S*/)?(tcpdump|tshark|dumpcap)\s")


def capture_from_command(command: str) -> tuple[str, str] | None:
    """(capture file name, interface) of `tcpdump -i eth1 -w dir-eth1.pcap ...`, else None.

    dumpcap and tshark take several `-i`: their interfaces are joined with "," in order.
    """
    if not CAPTURE_COMMAND.match(command):
        return None
    words = command.split()
    ifaces: list[str] = []
    out = ""
    for i, word in enumerate(words[:-1]):
        if word in ("-i", "--interface"):
            ifaces.append(words[i + 1])
        elif word == "-w":
            out = words[i + 1]
        elif word.startswith("-i") and len(word) > 2 and not word.startswith("--"):
            ifaces.append(word[2:])
    iface = ",".join(ifaces)
    if words[-1].startswith("-w") and len(words[-1]) > 2:
        out = words[-1][2:]
    if not out or out == "-":
        return None
    return out.replace("\\", "/").rsplit("/", 1)[-1], iface
