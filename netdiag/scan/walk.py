"""Finding the captures to scan: directories, globs, rotated sets, and the facts of each capture.

Which file is a capture is decided by its content, by the reader, in the worker: a file named on
the command line (or matched by a glob) is always scanned, and one that is not a capture is
recorded as failed with the reader's one-line error. Inside a directory, only file names that look
like captures are taken (``.pcap``, ``.pcapng``, ``.cap``, ... with the numbers tcpdump ``-C``/``-W``
appends, and a compression suffix), unless ``all_files`` is set; ``facts/`` folders and hidden
entries are never walked into.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from netdiag.errors import NetdiagError

#: capture-looking names: extension, optional rotation number (tcpdump -C/-W), optional compression
CAPTURE_NAME_RE = re.compile(
    r"\.(?:pcap|pcapng|cap|dmp|ntar|pcapng_)(?P<rotation>\d+)?(?:\.(?:gz|zst|zstd|xz|bz2))?$",
    re.IGNORECASE,
)
#: the folder of topology facts beside captures, never walked as captures
FACTS_DIR = "facts"
#: how many folders above a capture's own folder may hold its case's facts/ folder
CASE_DEPTH = 2
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Candidate:
    """One file to scan: where it is, the facts it is analysed with, and its rotated set."""

    path: str  # absolute, normalised
    facts: tuple[str, ...] = ()  # facts files or folders, absolute
    facts_id: str = ""  # content hash of the facts ("" without facts)
    rotation_set: str = ""  # the set's base name for rotated captures (dump.pcap1 -> dump.pcap)


@dataclass
class WalkResult:
    candidates: list[Candidate] = field(default_factory=list)
    #: arguments that named nothing (reported as a usage error by the CLI)
    missing: list[str] = field(default_factory=list)


def looks_like_capture(name: str) -> bool:
    return CAPTURE_NAME_RE.search(name) is not None


def rotation_set(name: str) -> str:
    """The base name of a rotated set (``x.pcap12`` -> ``x.pcap``), "" for a lone file."""
    match = CAPTURE_NAME_RE.search(name)
    if match is None or match.group("rotation") is None:
        return ""
    return name[: match.start("rotation")] + name[match.end("rotation") :]


def natural_key(path: str) -> list[object]:
    """Sort ``dump.pcap2`` before ``dump.pcap10`` (tcpdump -C numbers are not zero-padded)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def expand(
    arguments: Sequence[str], all_files: bool = False
) -> tuple[list[tuple[str, str]], list[str]]:
    """Each capture path with the root it was found under (facts are not looked for above it)."""
    found: list[tuple[str, str]] = []
    missing: list[str] = []
    for arg in arguments:
        if os.path.lexists(arg):
            matches = [arg]
        elif _GLOB_CHARS.search(arg):
            matches = sorted(glob.glob(arg, recursive=True), key=natural_key)
        else:
            matches = []
        if not matches:
            missing.append(arg)
        for match in matches:
            full = os.path.abspath(match)
            if os.path.isdir(full):
                found.extend((p, full) for p in _walk_dir(full, all_files))
            else:
                # a file named by the user: its case folder may be one or two levels up
                found.append((full, ""))
    return found, missing


def _walk_dir(root: str, all_files: bool) -> Iterable[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != FACTS_DIR)
        for name in sorted(filenames, key=natural_key):
            if name.startswith("."):
                continue
            if all_files or looks_like_capture(name):
                path = os.path.join(dirpath, name)
                if os.path.isfile(path):
                    yield path


def find_facts(capture: str, root: str) -> str | None:
    """The facts/ folder beside the capture, or in its case folder (at most CASE_DEPTH up, never
    above ``root``, the directory the capture was found in)."""
    folder = os.path.dirname(capture)
    for _ in range(CASE_DEPTH + 1):
        candidate = os.path.join(folder, FACTS_DIR)
        if os.path.isdir(candidate):
            return candidate
        if root and (folder == root or not folder.startswith(root.rstrip(os.sep) + os.sep)):
            return None
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent
    return None


def facts_identity(paths: Sequence[str]) -> str:
    """A hash of the facts' names and contents: the same facts give the same id anywhere."""
    if not paths:
        return ""
    digest = hashlib.sha256()
    for path in paths:
        files = (
            sorted(
                os.path.join(d, f)
                for d, _, names in os.walk(path)
                for f in names
                if not f.startswith(".")
            )
            if os.path.isdir(path)
            else [path]
        )
        for file in files:
            rel = os.path.relpath(file, path) if os.path.isdir(path) else os.path.basename(file)
            digest.update(rel.encode() + b"\0")
            try:
                digest.update(file_sha256(file).encode() + b"\0")
            except OSError as exc:
                digest.update(f"unreadable:{exc.errno}".encode())
    return digest.hexdigest()[:32]


def file_sha256(path: str, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def walk(
    arguments: Sequence[str], facts: Sequence[str] = (), all_files: bool = False
) -> WalkResult:
    """The captures under ``arguments``, each with its facts: ``facts`` for all when given, else
    the ``facts/`` folder found beside it. Duplicates (same real path) are scanned once."""
    for path in facts:
        if not os.path.exists(path):
            raise NetdiagError(path, "no such file or directory (--facts)")
    fixed = tuple(os.path.abspath(p) for p in facts)
    fixed_id = facts_identity(fixed)
    found, missing = expand(arguments, all_files)
    result = WalkResult(missing=missing)
    seen: set[str] = set()
    identities: dict[str, str] = {}
    for path, root in found:
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        if fixed:
            cand_facts, cand_id = fixed, fixed_id
        else:
            folder = find_facts(path, root)
            if folder is None:
                cand_facts, cand_id = (), ""
            else:
                if folder not in identities:
                    identities[folder] = facts_identity([folder])
                cand_facts, cand_id = (folder,), identities[folder]
        result.candidates.append(
            Candidate(path, cand_facts, cand_id, rotation_set(os.path.basename(path)))
        )
    return result
