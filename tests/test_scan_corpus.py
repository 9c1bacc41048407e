"""netdiag scan over samples and the shared corpus: same findings as analysing each file alone,
resume without re-analysis, a scan killed with SIGKILL resumes to the same catalogue, and Dask."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from netdiag.errors import NetdiagError
from netdiag.scan.runner import ScanOptions, scan

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
CORPUS = REPO.parent / "shared" / "corpus" / "files"
IDENTITY = "test-corpus"


@pytest.fixture(autouse=True)
def pinned_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    # other engineers edit the engine while tests run: pin the identity so resume is testable
    monkeypatch.setenv("NETDIAG_RULES_VERSION", IDENTITY)


def scan_roots() -> list[str]:
    roots = [str(SAMPLES)]
    if CORPUS.is_dir():
        roots.append(str(CORPUS))
    return roots


def snapshot(db: str) -> dict[str, Any]:
    """The catalogue's content without run ids, timestamps and durations."""
    con = sqlite3.connect(db)
    captures = con.execute(
        "SELECT path, size, mtime_ns, sha256, format, packets, first_ts, last_ts, status, error,"
        " rules_version, facts_id, facts, rotation_set, warnings, findings FROM captures"
        " ORDER BY path"
    ).fetchall()
    findings = con.execute(
        "SELECT c.path, f.code, f.severity, f.subject, f.first_ts, f.last_ts, f.fingerprint,"
        " f.json FROM findings f JOIN captures c ON c.id = f.capture_id"
        " ORDER BY c.path, f.code, f.subject, f.fingerprint"
    ).fetchall()
    con.close()
    return {"captures": captures, "findings": findings}


def catalogued(db: str) -> int:
    """How many captures a running scan has committed so far (0 before the tables exist)."""
    if not os.path.exists(db):
        return 0
    con = sqlite3.connect(db, timeout=1)
    try:
        return int(con.execute("SELECT count(*) FROM captures").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def facts_of(con: sqlite3.Connection, path: str) -> list[str]:
    import json

    return json.loads(
        con.execute("SELECT facts FROM captures WHERE path = ?", (path,)).fetchone()[0]
    )


@pytest.mark.slow
def test_scan_of_samples_and_corpus_equals_analyze_per_file_and_resumes(tmp_path: Path) -> None:
    from netdiag.engine.analysis import analyze

    db = str(tmp_path / "scan.sqlite")
    start = time.perf_counter()
    first = scan(ScanOptions(scan_roots(), db, jobs=2))
    first_s = time.perf_counter() - start
    assert first.files >= 30 + (250 if CORPUS.is_dir() else 0)
    assert first.analysed + first.failed_now + first.skipped == first.files

    con = sqlite3.connect(db)
    rows = con.execute("SELECT path, status, error FROM captures ORDER BY path").fetchall()
    assert len(rows) == first.files
    for path, status, error in rows:
        # every file either analysed, or recorded with a one-line error naming it
        assert status in ("ok", "failed"), (path, status)
        if status == "failed":
            assert error and "\n" not in error and os.path.basename(path) in error
    scanned: dict[str, set[tuple[str, str, str, str]]] = {path: set() for path, _, _ in rows}
    for path, code, subject, fingerprint, severity in con.execute(
        "SELECT c.path, f.code, f.subject, f.fingerprint, f.severity"
        " FROM findings f JOIN captures c ON c.id = f.capture_id"
    ):
        scanned[path].add((code, subject, fingerprint, severity))

    # the same files, one `analyze` each, in this process
    for path, status, error in rows:
        facts = facts_of(con, path)
        try:
            alone = analyze([path], facts)
        except NetdiagError as exc:
            assert status == "failed" and error == str(exc).splitlines()[0], path
            continue
        assert status == "ok", (path, error)
        expected = {(f.code, f.subject, f.fingerprint, f.severity) for f in alone.result.findings}
        assert scanned[path] == expected, path
    assert sum(len(v) for v in scanned.values()) >= 15  # the faulty samples do find things
    con.close()

    # resume: nothing analysed again
    before = snapshot(db)
    start = time.perf_counter()
    second = scan(ScanOptions(scan_roots(), db, jobs=2))
    second_s = time.perf_counter() - start
    assert (second.analysed, second.unchanged) == (0, first.files)
    assert snapshot(db) == before
    print(f"\nscan {first.files} files: first {first_s:.2f} s, resume {second_s:.3f} s")


def _subset(tmp: Path) -> list[str]:
    """Samples plus 60 corpus files (as symlinks in one folder): enough to kill half way."""
    roots = [str(SAMPLES)]
    if CORPUS.is_dir():
        folder = tmp / "corpus-subset"
        folder.mkdir()
        for path in sorted(CORPUS.iterdir())[:60]:
            (folder / path.name).symlink_to(path)
        roots.append(str(folder))
    return roots


def test_scan_killed_with_sigkill_resumes_to_the_same_catalogue(tmp_path: Path) -> None:
    roots = _subset(tmp_path)
    killed_db = str(tmp_path / "killed.sqlite")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NETDIAG_RULES_VERSION": IDENTITY}
    command = [sys.executable, "-m", "netdiag", "scan", *roots, "--db", killed_db, "--jobs", "2"]
    proc = subprocess.Popen(
        [*command, "--progress", "plain"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        count = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            count = catalogued(killed_db)
            if count >= 15:
                break
        assert proc.poll() is None, "the scan finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        # its workers notice the client is gone and exit by themselves
        gone = time.monotonic() + 15
        while time.monotonic() < gone:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("worker processes outlived the killed scan")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    con = sqlite3.connect(killed_db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    partial = con.execute("SELECT count(*) FROM captures").fetchone()[0]
    # every catalogued file is complete: its findings count matches its findings rows
    assert (
        con.execute(
            "SELECT count(*) FROM captures c WHERE c.findings !="
            " (SELECT count(*) FROM findings f WHERE f.capture_id = c.id)"
        ).fetchone()[0]
        == 0
    )
    assert con.execute("SELECT status FROM runs").fetchall() == [("running",)]
    con.close()

    resumed = subprocess.run(
        [*command, "--progress", "none"], env=env, capture_output=True, text=True, timeout=300
    )
    # 2 when some corpus files failed (unsupported link types): they are recorded, not fatal
    assert resumed.returncode in (0, 1, 2), resumed.stdout + resumed.stderr
    assert resumed.stdout.startswith("scanned ") and "Traceback" not in resumed.stderr
    whole_db = str(tmp_path / "whole.sqlite")
    whole = scan(ScanOptions(roots, whole_db, jobs=2))
    assert 0 < partial < whole.files
    assert snapshot(killed_db) == snapshot(whole_db)
    con = sqlite3.connect(killed_db)
    runs = con.execute(
        "SELECT status, analysed + failed, unchanged FROM runs ORDER BY id"
    ).fetchall()
    assert runs[0][0] == "interrupted" and runs[1][0] == "done"
    assert runs[1][1:] == (whole.files - partial, partial)  # nothing finished was redone
    con.close()


def test_dask_local_cluster_gives_the_same_catalogue(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    roots = [str(SAMPLES / "lb-hairpin"), str(SAMPLES / "lvs-dr-arp")]
    local_db = str(tmp_path / "local.sqlite")
    dask_db = str(tmp_path / "dask.sqlite")
    scan(ScanOptions(roots, local_db, jobs=2))
    summary = scan(ScanOptions(roots, dask_db, jobs=2, dask="local"))
    assert summary.executor == "dask:local"
    assert summary.analysed == summary.files > 0
    assert snapshot(dask_db) == snapshot(local_db)


def test_ctrl_c_keeps_the_finished_files_and_marks_the_run(tmp_path: Path) -> None:
    roots = _subset(tmp_path)
    db = str(tmp_path / "int.sqlite")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NETDIAG_RULES_VERSION": IDENTITY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "netdiag", "scan", *roots, "--db", db, "--jobs", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # a Ctrl-C from the terminal reaches the whole process group with SIGINT's default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        count, deadline = 0, time.monotonic() + 120
        while count < 10 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            count = catalogued(db)
        assert proc.poll() is None, "the scan finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert "netdiag: error: interrupted" in err and "Traceback" not in err
    con = sqlite3.connect(db)
    ((status, analysed, failed),) = con.execute("SELECT status, analysed, failed FROM runs")
    kept = con.execute("SELECT count(*) FROM captures").fetchone()[0]
    assert status == "interrupted" and kept == analysed + failed >= 10
    con.close()
    rest = scan(ScanOptions(roots, db, jobs=2))
    assert rest.unchanged == kept and rest.analysed + rest.failed_now == rest.files - kept
