"""What every subcommand shares: one-line errors and exit codes, output files, progress display."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

import typer

from netdiag.errors import NetdiagError

#: exit codes, as ruff and tcpdump use them
EXIT_CLEAN, EXIT_FINDINGS, EXIT_INPUT_ERROR = 0, 1, 2

F = TypeVar("F", bound=Callable[..., Any])


def error_line(message: str) -> None:
    """Print one error line on stderr (never a traceback)."""
    print(f"netdiag: error: {message}", file=sys.stderr)


def warning_lines(path: str, warnings: list[str]) -> None:
    """A capture's reading warnings (file cut short, lying record length...), one line each."""
    for warning in warnings:
        print(f"netdiag: warning: {path}: {warning}", file=sys.stderr)


def one_line_errors(func: F) -> F:
    """Turn input errors into one line on stderr and exit code 2; keep internal errors short too."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NetdiagError as exc:
            error_line(str(exc))
            raise typer.Exit(EXIT_INPUT_ERROR) from None
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # `netdiag packets x.pcap | head`: the reader went away; not an error of ours
            with contextlib.suppress(Exception):
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115
            raise typer.Exit(EXIT_CLEAN) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug of ours: still one line, the traceback on request
            if os.environ.get("NETDIAG_DEBUG"):
                raise
            error_line(
                f"internal error: {type(exc).__name__}: {exc} (set NETDIAG_DEBUG=1 for the traceback)"
            )
            raise typer.Exit(EXIT_INPUT_ERROR) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def output_stream(path: str | None, binary: bool = False) -> Iterator[IO[Any]]:
    """stdout, or the file given with -o (created only once there is something to write)."""
    if path in (None, "-"):
        yield sys.stdout.buffer if binary else sys.stdout
        return
    assert path is not None
    try:
        handle = open(path, "wb" if binary else "w", encoding=None if binary else "utf-8")  # noqa: SIM115
    except OSError as exc:
        raise NetdiagError(path, f"cannot write output: {exc.strerror or exc}") from None
    with handle:
        yield handle


class Progress:
    """A progress line on stderr for reads longer than a second; silent when not a terminal."""

    def __init__(self, label: str, total_bytes: int, enabled: bool | None = None) -> None:
        self.label = label
        self.total = max(total_bytes, 1)
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.monotonic()
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, frames: int, consumed: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            if time.monotonic() - self.start < 1.0:
                return
            from rich.progress import (
                BarColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[frames]:,} frames"),
                TimeRemainingColumn(),
                transient=True,
                console=_stderr_console(),
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, frames=0)
        self._bar.update(self._task, completed=min(consumed, self.total), frames=frames)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
