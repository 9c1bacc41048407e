"""The scan catalogue: an SQLite database (WAL mode) of runs, captures and their findings.

One row per capture path holds the latest result for that file: its size, mtime, content hash,
format, packet count, time span, status (ok / failed / skipped), one-line error, the analysis
identity it was made with (``rules_version``, ``facts_id``) and its findings, one row each with
the finding's JSON. Each file's result is written in one transaction (old rows replaced), so a
scan stopped at any moment -- Ctrl-C or ``kill -9`` -- leaves every finished file complete and
no file half-written; the next scan skips what is current and does the rest.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from netdiag.errors import NetdiagError
from netdiag.scan.worker import FileResult

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL,            -- running, done, interrupted
    pid INTEGER,
    arguments TEXT NOT NULL,         -- JSON list of the scanned paths
    rules_version TEXT NOT NULL,
    executor TEXT NOT NULL,          -- "processes:N", "dask:ADDRESS"
    files INTEGER DEFAULT 0,
    analysed INTEGER DEFAULT 0,
    unchanged INTEGER DEFAULT 0,
    failed INTEGER DEFAULT 0,
    seconds REAL
);
CREATE TABLE IF NOT EXISTS captures (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,       -- absolute
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    format TEXT,
    packets INTEGER,
    first_ts TEXT,                   -- ISO 8601 UTC
    last_ts TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'skipped')),
    error TEXT,
    rules_version TEXT NOT NULL,
    facts_id TEXT NOT NULL,          -- hash of the facts' names and contents, '' without facts
    facts TEXT NOT NULL,             -- JSON list of the facts paths used
    rotation_set TEXT NOT NULL,      -- base name of a tcpdump -C/-G set, '' for a lone file
    warnings TEXT NOT NULL,          -- JSON list: reader warnings, facts problems, rule errors
    findings INTEGER NOT NULL,
    seconds REAL,
    run_id INTEGER REFERENCES runs(id),
    scanned_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS findings (
    id INTEGER PRIMARY KEY,
    capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    severity TEXT NOT NULL,
    subject TEXT NOT NULL,
    first_ts TEXT,
    last_ts TEXT,
    fingerprint TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_capture ON findings(capture_id);
CREATE INDEX IF NOT EXISTS findings_code ON findings(code);
CREATE INDEX IF NOT EXISTS captures_sha ON captures(sha256);
"""


@dataclass(frozen=True)
class Known:
    """What the catalogue holds about one path: enough to decide whether it is current."""

    size: int
    mtime_ns: int
    sha256: str
    rules_version: str
    facts_id: str
    status: str


@dataclass(frozen=True)
class FileMeta:
    """A file's identity when it was scanned."""

    size: int
    mtime_ns: int
    sha256: str


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Catalogue:
    """An open catalogue; one writer (the scan's client), any number of readers."""

    def __init__(self, path: str, create: bool = True) -> None:
        self.path = path
        if not create and not os.path.isfile(path):
            raise NetdiagError(path, "no such catalogue (run `netdiag scan --db FILE` first)")
        try:
            self.db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
            self.db.execute("PRAGMA foreign_keys = ON")
            if create:
                # WAL: readers (scan-report) never block the writer; NORMAL sync is durable
                # against a killed process, which is what resume promises
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = NORMAL")
                self.db.executescript(SCHEMA)
                self._check_version()
            else:
                self._check_version(readonly=True)
        except sqlite3.DatabaseError as exc:
            raise NetdiagError(path, f"not a netdiag catalogue (SQLite): {exc}") from None

    def _check_version(self, readonly: bool = False) -> None:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:
            raise NetdiagError(self.path, "not a netdiag catalogue (no meta table)") from None
        if row is None:
            if readonly:
                raise NetdiagError(self.path, "not a netdiag catalogue (no schema version)")
            self.db.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif row[0] != str(SCHEMA_VERSION):
            raise NetdiagError(
                self.path,
                f"catalogue schema version {row[0]}, this netdiag uses {SCHEMA_VERSION}",
            )

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- runs ------------------------------------------------------------------------------
    def start_run(self, arguments: Sequence[str], rules_version: str, executor: str) -> int:
        self._close_dead_runs()
        cur = self.db.execute(
            "INSERT INTO runs(started, status, pid, arguments, rules_version, executor)"
            " VALUES (?, 'running', ?, ?, ?, ?)",
            (now_iso(), os.getpid(), json.dumps(list(arguments)), rules_version, executor),
        )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, counts: dict[str, int], seconds: float) -> None:
        self.db.execute(
            "UPDATE runs SET finished = ?, status = ?, files = ?, analysed = ?, unchanged = ?,"
            " failed = ?, seconds = ? WHERE id = ?",
            (
                now_iso(),
                status,
                counts.get("files", 0),
                counts.get("analysed", 0),
                counts.get("unchanged", 0),
                counts.get("failed", 0),
                seconds,
                run_id,
            ),
        )

    def _close_dead_runs(self) -> None:
        """Runs still 'running' whose process is gone were killed: say so."""
        for run_id, pid in self.db.execute(
            "SELECT id, pid FROM runs WHERE status = 'running'"
        ).fetchall():
            if pid and _alive(int(pid)) and int(pid) != os.getpid():
                continue
            self.db.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (run_id,))

    # --- captures --------------------------------------------------------------------------
    def known(self) -> dict[str, Known]:
        """Every catalogued path with what decides whether it must be analysed again."""
        rows = self.db.execute(
            "SELECT path, size, mtime_ns, sha256, rules_version, facts_id, status FROM captures"
        )
        return {r[0]: Known(*r[1:]) for r in rows}

    def touch(self, path: str, meta: FileMeta) -> None:
        """Same content under a new mtime (copied, touched): keep the results, note the mtime."""
        self.db.execute(
            "UPDATE captures SET mtime_ns = ?, size = ? WHERE path = ?",
            (meta.mtime_ns, meta.size, path),
        )

    def record(
        self,
        run_id: int,
        meta: FileMeta,
        result: FileResult,
        rules_version: str,
        facts: Sequence[str],
        facts_id: str,
        rotation_set: str,
    ) -> None:
        """Replace the path's row and findings with this result, in one transaction."""
        warnings = [
            *result.warnings,
            *(f"facts: {p}" for p in result.facts_problems),
            *(f"rule {e}" for e in result.rules_errored),
        ]
        with self.transaction():
            self.db.execute("DELETE FROM captures WHERE path = ?", (result.path,))
            cur = self.db.execute(
                "INSERT INTO captures(path, size, mtime_ns, sha256, format, packets, first_ts,"
                " last_ts, status, error, rules_version, facts_id, facts, rotation_set, warnings,"
                " findings, seconds, run_id, scanned_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    result.path,
                    meta.size,
                    meta.mtime_ns,
                    meta.sha256,
                    result.format or None,
                    result.packets if result.status == "ok" else None,
                    result.first_ts,
                    result.last_ts,
                    result.status,
                    result.error or None,
                    rules_version,
                    facts_id,
                    json.dumps(list(facts)),
                    rotation_set,
                    json.dumps(warnings),
                    len(result.findings),
                    round(result.seconds, 6),
                    run_id,
                    now_iso(),
                ),
            )
            capture_id = cur.lastrowid
            self.db.executemany(
                "INSERT INTO findings(capture_id, code, severity, subject, first_ts, last_ts,"
                " fingerprint, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        capture_id,
                        f["code"],
                        f["severity"],
                        f["subject"],
                        f.get("first_ts"),
                        f.get("last_ts"),
                        f.get("fingerprint", ""),
                        json.dumps(f, sort_keys=True, ensure_ascii=False),
                    )
                    for f in result.findings
                ],
            )

    class _Transaction:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, *rest: object) -> None:
            self.db.execute("ROLLBACK" if exc_type is not None else "COMMIT")

    def transaction(self) -> Catalogue._Transaction:
        return Catalogue._Transaction(self.db)

    # --- reading ---------------------------------------------------------------------------
    def severities(self, paths: Sequence[str]) -> list[str]:
        """The severities of every finding of these captures (for the exit code)."""
        out: list[str] = []
        for chunk in _chunks(list(paths), 500):
            marks = ",".join("?" * len(chunk))
            out.extend(
                r[0]
                for r in self.db.execute(
                    "SELECT f.severity FROM findings f JOIN captures c ON c.id = f.capture_id"
                    f" WHERE c.path IN ({marks})",
                    chunk,
                )
            )
        return out

    def failed(self, paths: Sequence[str]) -> list[tuple[str, str]]:
        """(path, error) of the captures among ``paths`` whose last analysis failed."""
        out: list[tuple[str, str]] = []
        for chunk in _chunks(list(paths), 500):
            marks = ",".join("?" * len(chunk))
            out.extend(
                (r[0], r[1] or "")
                for r in self.db.execute(
                    f"SELECT path, error FROM captures WHERE status = 'failed' AND path IN ({marks})"
                    " ORDER BY path",
                    chunk,
                )
            )
        return out

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[sqlite3.Row]:
        self.db.row_factory = sqlite3.Row
        try:
            yield from self.db.execute(sql, params)
        finally:
            self.db.row_factory = None


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
