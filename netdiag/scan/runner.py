"""Runs a scan: plans which files need analysis, runs the per-file task in parallel, writes results.

Executors (one interface, ``map_unordered(tasks) -> (key, FileResult)``, registered in
``EXECUTORS``): local worker processes (default one per core; each imports netdiag and discovers
the rules once; a worker that overruns the time limit or dies is replaced and its file recorded
as failed), or a Dask distributed cluster (``tcp://scheduler:8786`` or ``local``). Either way the
results come back to this process, the only writer of the catalogue, one transaction per file.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from netdiag.errors import NetdiagError
from netdiag.scan.catalogue import Catalogue, FileMeta
from netdiag.scan.walk import Candidate, walk
from netdiag.scan.worker import FileResult, FileTask, analyse_file, init_worker_process, warm_up

#: a worker overrunning the time limit by this much is killed (the soft limit did not work)
KILL_GRACE_S = 5.0
#: exit code of a worker process that cannot set itself up (the scan stops: not the file's fault)
WORKER_CANNOT_START = 3
#: below this address-space limit a worker cannot even import numpy and pandas
MIN_MEMORY_LIMIT_MB = 512
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass
class ScanOptions:
    paths: Sequence[str]
    db: str
    facts: Sequence[str] = ()
    select: Sequence[str] = ()
    ignore: Sequence[str] = ()
    jobs: int = 0  # 0: one per core
    time_limit: float = 600.0
    memory_limit_mb: int = 4096
    all_files: bool = False
    retry_failed: bool = False
    verify: bool = False  # hash every catalogued file instead of trusting size + mtime
    dask: str | None = None


@dataclass
class ScanSummary:
    """What a scan did, and the state of every file it covered (for the exit code)."""

    run_id: int = 0
    files: int = 0
    analysed: int = 0
    unchanged: int = 0
    failed_now: int = 0
    skipped: int = 0
    packets: int = 0
    new_findings: int = 0
    seconds: float = 0.0
    executor: str = ""
    rules_version: str = ""
    #: over every file of the scan, analysed now or before
    failed_files: list[tuple[str, str]] = field(default_factory=list)
    severities: list[str] = field(default_factory=list)


# --- analysis identity ----------------------------------------------------------------------


def rules_version(select: Sequence[str] = (), ignore: Sequence[str] = ()) -> str:
    """What the results depend on besides the file: netdiag's version, the analysis code and
    the chosen rules' code. A catalogued result with another identity is analysed again.

    ``NETDIAG_RULES_VERSION`` in the environment pins it (reproducible tests while the code is
    being edited; keeping a catalogue across an upgrade known to change no result).
    """
    from netdiag import __version__
    from netdiag.engine.registry import rule_infos
    from netdiag.engine.selection import select_rules

    # read the rules' identity from their sources: importing them would load pandas, which is
    # most of the time of a resumed scan that analyses nothing
    chosen = select_rules(rule_infos(), list(select), list(ignore))  # unknown codes: NetdiagError
    pinned = os.environ.get("NETDIAG_RULES_VERSION")
    if pinned:
        return pinned + ("" if not (select or ignore) else f"/{','.join(r.code for r in chosen)}")
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    sources = [
        p
        for p in sorted(package.rglob("*.py"))
        if p.relative_to(package).parts[0] not in ("cli", "scan", "synth")
    ]
    for rule in chosen:
        digest.update(rule.code.encode() + b"\0")
        sources.extend(sorted(rule.folder.glob("*.py")))
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return f"{__version__}+{digest.hexdigest()[:12]}"


# --- progress --------------------------------------------------------------------------------


class ScanProgress(Protocol):
    def start(self, total: int, unchanged: int) -> None: ...

    def file_done(self, path: str, result: FileResult) -> None: ...

    def stop(self) -> None: ...


class _Counts:
    def __init__(self) -> None:
        self.total = self.done = self.packets = self.findings = self.failed = 0
        self.started = time.monotonic()

    def add(self, result: FileResult) -> None:
        self.done += 1
        self.packets += result.packets
        self.findings += len(result.findings)
        self.failed += result.status == "failed"


class PlainProgress:
    """One line per finished file on stderr (logs, CI, pipes)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.counts = _Counts()

    def start(self, total: int, unchanged: int) -> None:
        self.counts.total = total
        print(
            f"scan: {total} files to analyse, {unchanged} unchanged since the last scan",
            file=self.stream,
            flush=True,
        )

    def file_done(self, path: str, result: FileResult) -> None:
        c = self.counts
        c.add(result)
        width = len(str(c.total))
        if result.status == "failed":
            what = f"failed: {result.error}"
        elif result.status == "unchanged":
            what = "unchanged"
        else:
            what = f"{result.packets} packets, {len(result.findings)} findings"
        print(f"[{c.done:>{width}}/{c.total}] {path}: {what}", file=self.stream, flush=True)

    def stop(self) -> None:
        pass


class RichProgress:
    """A live bar on a terminal: files done/left, packets, findings so far, failures, ETA."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.counts = _Counts()
        self.bar = Progress(
            TextColumn("scan"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "files · {task.fields[packets]:,} packets · {task.fields[findings]} findings"
            ),
            TextColumn("· [red]{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.task: Any = None

    def start(self, total: int, unchanged: int) -> None:
        self.counts.total = total
        self.bar.start()
        self.task = self.bar.add_task("scan", total=total, packets=0, findings=0, failed=0)

    def file_done(self, path: str, result: FileResult) -> None:
        c = self.counts
        c.add(result)
        if result.status == "failed":
            self.bar.console.print(f"[red]failed[/red] {path}: {result.error}", markup=True)
        self.bar.update(
            self.task, completed=c.done, packets=c.packets, findings=c.findings, failed=c.failed
        )

    def stop(self) -> None:
        self.bar.stop()


class QuietProgress:
    def start(self, total: int, unchanged: int) -> None:
        pass

    def file_done(self, path: str, result: FileResult) -> None:
        pass

    def stop(self) -> None:
        pass


# --- executors -------------------------------------------------------------------------------

Keyed = tuple[Any, FileTask]


class Executor(Protocol):
    description: str

    def map_unordered(self, tasks: Iterable[Keyed]) -> Iterator[tuple[Any, FileResult]]: ...

    def close(self) -> None: ...


def _serve(conn: multiprocessing.connection.Connection, memory_limit_mb: int) -> None:
    """A local worker process: analyse the tasks the client sends until it goes away."""
    # Ctrl-C reaches the whole process group: the client decides, the workers keep quiet
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        init_worker_process(memory_limit_mb)
    except BaseException as exc:  # e.g. a memory limit too small to import numpy: say it once
        first = (str(exc).splitlines() or [""])[0]
        print(f"netdiag scan: worker cannot start: {type(exc).__name__}: {first}", file=sys.stderr)
        os._exit(WORKER_CANNOT_START)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the client is gone (even killed with -9): nothing to do for anybody
        if task is None:
            return
        result = analyse_file(task)
        try:
            conn.send(result)
        except OSError:  # BrokenPipeError: the client was killed while we worked
            return


@dataclass
class _Slot:
    process: Any
    conn: multiprocessing.connection.Connection
    busy: Keyed | None = None
    since: float = 0.0


class LocalProcesses:
    """Worker processes on this machine, each watched: over time or dead -> replaced."""

    def __init__(self, jobs: int, memory_limit_mb: int, time_limit: float) -> None:
        self.jobs = max(1, jobs)
        self.memory_limit_mb = memory_limit_mb
        self.time_limit = time_limit
        self.description = f"processes:{self.jobs}"
        methods = multiprocessing.get_all_start_methods()
        if "forkserver" in methods:
            # forking from a server that imported netdiag once: cheap respawns, and no fork of
            # this process (which runs the progress display's thread)
            server = multiprocessing.get_context("forkserver")
            server.set_forkserver_preload(
                ["netdiag.engine.analysis", "netdiag.render.json", "netdiag.scan.worker"]
            )
            self.context: Any = server
        else:  # pragma: no cover - non-Linux
            self.context = multiprocessing.get_context("spawn")
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            # one analysis per core: no thread pools in the workers competing for the cores
            os.environ.setdefault(var, "1")
        self.slots: list[_Slot] = []

    def _spawn(self) -> _Slot:
        parent, child = self.context.Pipe()
        process = self.context.Process(
            target=_serve, args=(child, self.memory_limit_mb), daemon=True, name="netdiag-scan"
        )
        process.start()
        child.close()
        return _Slot(process, parent)

    def _retire(self, slot: _Slot, kill: bool) -> None:
        if kill and slot.process.is_alive():
            slot.process.kill()
        slot.process.join(timeout=5)
        slot.conn.close()
        self.slots.remove(slot)

    def map_unordered(self, tasks: Iterable[Keyed]) -> Iterator[tuple[Any, FileResult]]:
        pending = iter(tasks)
        exhausted = False
        while True:
            # keep every worker busy
            idle = [s for s in self.slots if s.busy is None]
            while not exhausted and (idle or len(self.slots) < self.jobs):
                item = next(pending, None)
                if item is None:
                    exhausted = True
                    break
                slot = idle.pop() if idle else self._spawn()
                if slot not in self.slots:
                    self.slots.append(slot)
                slot.conn.send(item[1])
                slot.busy, slot.since = item, time.monotonic()
            busy = [s for s in self.slots if s.busy is not None]
            if not busy:
                return
            hard_limit = self.time_limit + KILL_GRACE_S if self.time_limit > 0 else None
            timeout = None
            if hard_limit is not None:
                timeout = max(0.0, min(s.since + hard_limit for s in busy) - time.monotonic())
            waitables: list[Any] = [s.conn for s in busy] + [s.process.sentinel for s in busy]
            ready = multiprocessing.connection.wait(waitables, timeout=timeout)
            now = time.monotonic()
            for slot in busy:
                assert slot.busy is not None
                key, task = slot.busy
                if slot.conn in ready:
                    try:
                        result = slot.conn.recv()
                        slot.busy = None
                    except (EOFError, OSError):
                        result = self._died(slot, task)
                    yield key, result
                elif slot.process.sentinel in ready:
                    yield key, self._died(slot, task)
                elif hard_limit is not None and now - slot.since >= hard_limit:
                    self._retire(slot, kill=True)
                    yield (
                        key,
                        FileResult(
                            task.path,
                            "failed",
                            error=f"over the time limit of {self.time_limit:g} s (worker killed)",
                        ),
                    )

    def _died(self, slot: _Slot, task: FileTask) -> FileResult:
        slot.process.join(timeout=5)
        code = slot.process.exitcode
        self._retire(slot, kill=True)
        if code == WORKER_CANNOT_START:
            # the environment is broken, not the file: recording it as failed would hide it
            raise NetdiagError(None, "a worker process cannot start (see the message above)")
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        hint = " (out of memory?)" if code == -signal.SIGKILL else ""
        return FileResult(task.path, "failed", error=f"the worker analysing it died: {how}{hint}")

    def close(self) -> None:
        for slot in list(self.slots):
            if slot.busy is None:
                with contextlib.suppress(OSError):
                    slot.conn.send(None)
            self._retire(slot, kill=slot.busy is not None)


class DaskCluster:
    """The same per-file task on a Dask distributed cluster; results come back to this client.

    ``address`` is a scheduler (``tcp://host:8786``) or ``local`` for a LocalCluster of ``jobs``
    single-threaded workers. The workers must see the captures under the same paths.
    """

    def __init__(
        self, address: str, jobs: int, memory_limit_mb: int, processes: bool = True
    ) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise NetdiagError(
                None, '--dask needs Dask: pip install "netdiag[scan]" (or "dask[distributed]")'
            ) from None
        self.cluster: Any = None
        try:
            if address == "local":
                self.cluster = LocalCluster(
                    n_workers=max(1, jobs),
                    threads_per_worker=1,
                    processes=processes,
                    memory_limit=f"{memory_limit_mb}MB" if memory_limit_mb > 0 else None,
                    dashboard_address=None,
                )
                self.client = Client(self.cluster)
            else:
                self.client = Client(address, timeout=30)
        except OSError as exc:
            raise NetdiagError(None, f"--dask {address}: cannot connect: {exc}") from None
        self.description = f"dask:{address}"
        self.client.run(warm_up)  # import netdiag and discover the rules once per worker
        threads = sum(self.client.nthreads().values()) or 1
        self.window = 4 * threads  # tasks in flight: enough to keep workers busy, no flood

    def map_unordered(self, tasks: Iterable[Keyed]) -> Iterator[tuple[Any, FileResult]]:
        from dask.distributed import as_completed

        pending = iter(tasks)
        keys: dict[Any, Keyed] = {}
        done = as_completed()

        def submit_next() -> bool:
            item = next(pending, None)
            if item is None:
                return False
            future = self.client.submit(analyse_file, item[1], pure=False)
            keys[future.key] = item
            done.add(future)
            return True

        for _ in range(self.window):
            if not submit_next():
                break
        for future in done:
            key, task = keys.pop(future.key)
            try:
                result = future.result()
            except Exception as exc:  # KilledWorker, a lost connection: this file's error
                first = (str(exc).splitlines() or [""])[0]
                result = FileResult(
                    task.path, "failed", error=f"dask: {type(exc).__name__}: {first}"
                )
            future.release()
            submit_next()
            yield key, result

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_executor(options: ScanOptions) -> Executor:
    jobs = options.jobs or os.cpu_count() or 1
    if options.dask:
        return EXECUTORS["dask"](options.dask, jobs, options.memory_limit_mb)
    return EXECUTORS["processes"](jobs, options.memory_limit_mb, options.time_limit)


EXECUTORS: dict[str, Callable[..., Executor]] = {
    "processes": LocalProcesses,
    "dask": DaskCluster,
}


# --- the scan --------------------------------------------------------------------------------


def plan(
    candidates: Sequence[Candidate],
    catalogue: Catalogue,
    identity: str,
    options: ScanOptions,
) -> tuple[
    list[tuple[Candidate, FileMeta, FileTask]],
    list[Candidate],
    list[tuple[Candidate, FileMeta, FileResult]],
]:
    """Split the files: to analyse (with their task), unchanged, and decided here (empty or
    unreadable files, which need no worker)."""
    known = catalogue.known()
    todo: list[tuple[Candidate, FileMeta, FileTask]] = []
    unchanged: list[Candidate] = []
    decided: list[tuple[Candidate, FileMeta, FileResult]] = []
    for cand in candidates:
        try:
            st = os.stat(cand.path)
        except OSError as exc:
            meta = FileMeta(0, 0, "")
            error = f"{cand.path}: cannot read: {exc.strerror}"
            decided.append((cand, meta, FileResult(cand.path, "failed", error=error)))
            continue
        meta = FileMeta(st.st_size, st.st_mtime_ns, "")
        if not stat.S_ISREG(st.st_mode):
            # a FIFO or device named on the command line would block a worker forever
            error = f"{cand.path}: not a regular file"
            decided.append((cand, meta, FileResult(cand.path, "failed", error=error)))
            continue
        if st.st_size == 0:
            # tcpdump -C/-G creates the next file before writing it: nothing to analyse yet
            meta = FileMeta(0, st.st_mtime_ns, EMPTY_SHA256)
            decided.append((cand, meta, FileResult(cand.path, "skipped", error="empty file")))
            continue
        row = known.get(cand.path)
        same_analysis = (
            row is not None
            and row.rules_version == identity
            and row.facts_id == cand.facts_id
            and not (options.retry_failed and row.status == "failed")
        )
        if (
            row is not None
            and same_analysis
            and not options.verify
            and (row.size, row.mtime_ns) == (meta.size, meta.mtime_ns)
        ):
            unchanged.append(cand)
            continue
        task = FileTask(
            cand.path,
            cand.facts,
            tuple(options.select),
            tuple(options.ignore),
            options.time_limit,
            known_sha256=row.sha256 if row is not None and same_analysis else "",
        )
        todo.append((cand, meta, task))
    return todo, unchanged, decided


def scan(options: ScanOptions, progress: ScanProgress | None = None) -> ScanSummary:
    """Scan ``options.paths`` into the catalogue ``options.db``; see the module docstring."""
    started = time.perf_counter()
    progress = progress or QuietProgress()
    if 0 < options.memory_limit_mb < MIN_MEMORY_LIMIT_MB:
        raise NetdiagError(
            None,
            f"--memory-limit {options.memory_limit_mb} MB is too small: a worker needs about"
            f" 400 MB of address space to start; give at least {MIN_MEMORY_LIMIT_MB} (0: no limit)",
        )
    found = walk(options.paths, options.facts, options.all_files)
    if found.missing:
        raise NetdiagError(found.missing[0], "no such file or directory")
    if not found.candidates:
        raise NetdiagError(
            None, f"no capture files found under {', '.join(options.paths)} (see --all-files)"
        )
    identity = rules_version(options.select, options.ignore)
    summary = ScanSummary(files=len(found.candidates), rules_version=identity)
    with Catalogue(options.db) as catalogue:
        todo, unchanged, decided = plan(found.candidates, catalogue, identity, options)
        summary.unchanged = len(unchanged)
        executor = make_executor(options) if todo else None
        summary.executor = executor.description if executor else "none"
        run_id = catalogue.start_run(options.paths, identity, summary.executor)
        summary.run_id = run_id
        status = "interrupted"
        progress.start(len(todo) + len(decided), len(unchanged))
        try:
            for cand, meta, result in decided:
                _write(catalogue, run_id, cand, meta, result, identity, summary)
                progress.file_done(cand.path, result)
            if executor is not None:
                by_key = {i: (cand, meta) for i, (cand, meta, _task) in enumerate(todo)}
                work = ((i, task) for i, (_cand, _meta, task) in enumerate(todo))
                for key, result in executor.map_unordered(work):
                    cand, meta = by_key.pop(key)
                    _write(catalogue, run_id, cand, meta, result, identity, summary)
                    progress.file_done(cand.path, result)
            status = "done"
        finally:
            progress.stop()
            if executor is not None:
                executor.close()
            summary.seconds = time.perf_counter() - started
            catalogue.finish_run(
                run_id,
                status,
                {
                    "files": summary.files,
                    "analysed": summary.analysed,
                    "unchanged": summary.unchanged,
                    "failed": summary.failed_now,
                },
                summary.seconds,
            )
        paths = [c.path for c in found.candidates]
        summary.failed_files = catalogue.failed(paths)
        summary.severities = catalogue.severities(paths)
    return summary


def _write(
    catalogue: Catalogue,
    run_id: int,
    cand: Candidate,
    meta: FileMeta,
    result: FileResult,
    identity: str,
    summary: ScanSummary,
) -> None:
    if result.status == "unchanged":
        catalogue.touch(cand.path, FileMeta(meta.size, meta.mtime_ns, result.sha256))
        summary.unchanged += 1
        return
    meta = FileMeta(meta.size, meta.mtime_ns, result.sha256 or meta.sha256)
    catalogue.record(run_id, meta, result, identity, cand.facts, cand.facts_id, cand.rotation_set)
    if result.status == "ok":
        summary.analysed += 1
        summary.packets += result.packets
        summary.new_findings += len(result.findings)
    elif result.status == "failed":
        summary.failed_now += 1
    else:
        summary.skipped += 1
