"""Run one function in a thread beside the caller; its result, or its exception, when asked for.

For numpy work that releases the GIL (most of it does, in its loops): two independent pieces of
a step that is otherwise serial (the end of reading a capture, writing its table) run on two
cores. Plain ``threading``: ``concurrent.futures`` costs more to import than it would save here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """``fn()`` started in a daemon thread at once; ``result()`` waits for it."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn = fn
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="netdiag-background", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as error:  # raised again in the caller by result()
            self._error = error

    def result(self) -> T:
        """``fn``'s return value; raises what ``fn`` raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
