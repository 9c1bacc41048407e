"""The per-file task of a scan: analyse one capture with its facts, under a time and memory limit.

:func:`analyse_file` takes a :class:`FileTask` and returns a :class:`FileResult`, both plain
picklable data, so the same function runs in a local worker process or on a Dask worker. It never
raises for a bad file: a capture the reader refuses, a broken facts file, the time limit, memory
exhaustion or a bug of ours all become ``status="failed"`` with a one-line ``error``.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from netdiag.errors import NetdiagError
from netdiag.scan.walk import file_sha256


@dataclass(frozen=True)
class FileTask:
    """What a worker needs to analyse one file (no open handles: it crosses process borders)."""

    path: str
    facts: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    time_limit: float = 0.0  # seconds; 0: none
    #: content hash the catalogue holds for this path with the same analysis identity: when the
    #: file still hashes to it (only its mtime changed), it is not analysed again
    known_sha256: str = ""


@dataclass
class FileResult:
    """The outcome of one file, ready to be written into the catalogue by the client."""

    path: str
    status: str  # "ok", "failed", or "unchanged" (same content as catalogued: not analysed)
    sha256: str = ""
    error: str = ""
    format: str = ""
    packets: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    warnings: list[str] = field(default_factory=list)
    facts_problems: list[str] = field(default_factory=list)
    rules_errored: list[str] = field(default_factory=list)
    #: each finding as the JSON report has it (paths relative to the capture's folder)
    findings: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


class TimeLimitExceeded(BaseException):
    """Raised inside the analysing thread when the per-file time limit is reached.

    A BaseException so that the rule runner's ``except Exception`` (one broken rule must not hide
    the others) does not swallow it.
    """


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise TimeLimitExceeded in this thread after ``seconds`` (at the next Python bytecode).

    An asynchronous exception works in any thread (a Dask worker runs tasks in threads, where
    SIGALRM cannot be used). A long C call delays it; the local runner kills a worker that
    overruns the limit by a grace period, so a stuck C call cannot stall the scan either.
    """
    if seconds <= 0:
        yield
        return
    thread_id = threading.get_ident()
    lock = threading.Lock()
    state = {"done": False}

    def fire() -> None:
        with lock:
            if not state["done"]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread_id), ctypes.py_object(TimeLimitExceeded)
                )

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            state["done"] = True
        timer.cancel()


def one_line(text: str) -> str:
    return (str(text).strip().splitlines() or [""])[0]


def analyse_file(task: FileTask) -> FileResult:
    """Analyse one capture alone, as `netdiag analyze CAPTURE --facts ...` would."""
    start = time.perf_counter()
    sha256 = ""
    try:
        # the hash is inside the limit too: reading a huge file is part of its cost
        with deadline(task.time_limit):
            try:
                sha256 = file_sha256(task.path)
            except OSError as exc:
                return FileResult(
                    task.path, "failed", error=f"{task.path}: cannot read: {exc.strerror}"
                )
            if sha256 == task.known_sha256:
                return FileResult(task.path, "unchanged", sha256=sha256)
            result = FileResult(task.path, "failed")
            _analyse_into(task, result)
    except TimeLimitExceeded:
        result = FileResult(
            task.path, "failed", error=f"over the time limit of {task.time_limit:g} s"
        )
    except MemoryError:
        result = FileResult(task.path, "failed", error=memory_error_text())
    except NetdiagError as exc:
        result = FileResult(task.path, "failed", error=one_line(str(exc)))
    except Exception as exc:  # a bug of ours must not stop the scan: it is this file's error
        result = FileResult(
            task.path, "failed", error=one_line(f"internal error: {type(exc).__name__}: {exc}")
        )
    result.sha256 = sha256
    result.seconds = time.perf_counter() - start
    return result


def _analyse_into(task: FileTask, result: FileResult) -> None:
    from netdiag.engine.analysis import analyze
    from netdiag.render.json import report

    analysis = analyze([task.path], list(task.facts), list(task.select), list(task.ignore))
    # paths in findings relative to the capture's folder: the same JSON wherever the scan ran
    data = report(analysis, base=os.path.dirname(task.path))
    capture = data["captures"][0]
    result.status = "ok"
    result.format = str(capture["format"])
    result.packets = int(capture["packets"])
    result.first_ts = capture["first_ts"]
    result.last_ts = capture["last_ts"]
    result.warnings = [one_line(w) for w in capture["warnings"]]
    result.facts_problems = [one_line(p) for p in data["facts_problems"]]
    result.rules_errored = [
        f"{e['code']}: {one_line(e['reason'])}" for e in data["rules"]["errored"]
    ]
    result.findings = list(data["findings"])


# --- worker process set-up (local pool) ------------------------------------------------------

_MEMORY_LIMIT_MB = 0


def memory_error_text() -> str:
    if _MEMORY_LIMIT_MB:
        return f"over the memory limit of {_MEMORY_LIMIT_MB} MB"
    return "out of memory"


def init_worker_process(memory_limit_mb: int) -> None:
    """Once per local worker process: cap its address space and import/discover everything once.

    RLIMIT_AS makes an allocation beyond the cap fail with MemoryError inside this worker only,
    instead of the whole machine swapping or the OOM killer picking a random process.
    """
    global _MEMORY_LIMIT_MB
    import resource

    if memory_limit_mb > 0:
        limit = memory_limit_mb * 1024 * 1024
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        _MEMORY_LIMIT_MB = memory_limit_mb
    warm_up()


def warm_up() -> None:
    """Import the analysis stack and discover the rules, so the first file pays nothing extra."""
    from netdiag.engine.analysis import analyze  # noqa: F401
    from netdiag.engine.registry import discover
    from netdiag.render.json import report  # noqa: F401

    discover()
