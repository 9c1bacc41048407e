"""A case folder: the captures and facts of one incident kept together, found by their content.

``netdiag analyze CASE_DIR`` reads every capture in the folder (and its subfolders) as one capture
point of the incident. A file is a capture when the capture reader recognises its first bytes
(pcap or pcapng, plain or compressed), whatever its name: incident folders hold ``.cap``,
``.dmp`` and files with no extension at all. The facts are the ``facts/`` subfolder when there is
one (the layout ``netdiag scan`` looks for beside captures); otherwise every other text file of
the folder (transcripts of ``ip addr``, ``ipvsadm -Ln``, ``sysctl -a`` ...), except notes written
for people (README, Markdown) and reports (HTML).
"""

from __future__ import annotations

import codecs
import os
import re

from netdiag.capture.compression import ByteSource, open_decompressed, sniff_compression
from netdiag.capture.formats import SNIFF_BYTES, sniff_format
from netdiag.errors import NetdiagError
from netdiag.scan.walk import FACTS_DIR, looks_like_capture, natural_key

#: bytes read from a file to decide whether it is text
TEXT_SNIFF_BYTES = 8192
#: files never taken as facts: notes for people and reports, not configuration
_NOT_FACTS = re.compile(r"(?:^readme(?:\..*)?$|\.(?:md|markdown|html?|pdf)$)", re.IGNORECASE)


def expand_case(path: str) -> tuple[list[str], list[str]]:
    """The captures and the facts (files or a folder) of the case folder ``path``.

    Captures are in natural order of their path under the folder (``dump.pcap2`` before
    ``dump.pcap10``); the first is the reference point of the correlation. Raises
    :class:`NetdiagError` when ``path`` is not a folder or holds neither captures nor facts.
    """
    if not os.path.exists(path):
        raise NetdiagError(path, "no such file or directory")
    if not os.path.isdir(path):
        raise NetdiagError(path, "not a folder (a case folder holds captures and facts)")
    facts_dir = os.path.join(path, FACTS_DIR)
    has_facts_dir = os.path.isdir(facts_dir)
    captures: list[str] = []
    texts: list[str] = []
    for file in _files(path):
        if is_capture(file) or _named_like_capture_but_unreadable(file):
            captures.append(file)
        elif not has_facts_dir and _may_be_facts(file):
            texts.append(file)
    facts = [facts_dir] if has_facts_dir else texts
    if not captures and not facts:
        raise NetdiagError(path, "no capture (pcap, pcapng) and no facts file in this folder")
    return captures, facts


def is_capture(path: str) -> bool:
    """Does the file start like a capture the reader knows (compressed or not)?"""
    try:
        with open(path, "rb") as raw:
            head = raw.read(16)
            compression = sniff_compression(head)
            if not compression:
                return bool(sniff_format(head[:SNIFF_BYTES]))
            raw.seek(0)
            # the same byte source the reader uses, so a damaged stream is judged the same way
            warnings: list[str] = []
            source = ByteSource(open_decompressed(raw, compression), compression, warnings)
            try:
                return bool(sniff_format(source.peek(SNIFF_BYTES)))
            finally:
                source.close()
    except (OSError, ValueError, EOFError):
        return False


def _named_like_capture_but_unreadable(path: str) -> bool:
    """A ``.pcap`` that the reader refuses is still a capture of the case: analysing it gives
    the reader's one-line reason (an empty or damaged file), instead of silently leaving it out."""
    return looks_like_capture(os.path.basename(path))


def _files(root: str) -> list[str]:
    """Every regular file under ``root``, hidden entries and the facts folder left out."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != FACTS_DIR)
        for name in filenames:
            full = os.path.join(dirpath, name)
            if not name.startswith(".") and os.path.isfile(full):
                found.append(full)
    return sorted(found, key=lambda p: natural_key(os.path.relpath(p, root)))


def _may_be_facts(path: str) -> bool:
    """A text file that is not a note for people (README, Markdown) nor a report."""
    if _NOT_FACTS.search(os.path.basename(path)):
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(TEXT_SNIFF_BYTES)
    except OSError:
        return False
    if not head.strip() or b"\0" in head:
        return False
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)  # a character cut at the end of the sample is fine
    except UnicodeDecodeError:
        return False
    return True
