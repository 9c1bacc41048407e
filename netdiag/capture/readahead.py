"""Read-ahead: a background thread produces the next decoded chunk while the caller uses this one.

Reading a capture is two alternating kinds of work: walking and decoding a batch of records
(``capture.table``), then whatever the caller does with the chunk (the flow builder, keeping
packets). Both are numpy work that releases the GIL in its loops, so on a machine with two
cores they overlap: the decoder runs one chunk ahead in a thread while the caller consumes.
Order, values and errors are those of the plain loop: items arrive in order, an exception
raised by the producer is raised again in the caller at the place of the item it stopped at,
and a caller that stops early (``break``, an error of its own, Ctrl-C) stops the producer and
waits for it before the capture file is closed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

#: how long the producer waits for room before looking whether the caller stopped
_POLL_SECONDS = 0.05


class _End:
    """The producer's last item: it stopped because its iterator ended or raised ``error``."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def read_ahead(items: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """``items`` produced in a background thread, at most ``depth`` items beyond the one the
    caller holds: the thread starts on the next item when the caller takes one, so that with
    ``depth`` 1 two items at most exist at once (each chunk of a capture is tens of MB).

    The thread runs ``items`` to its end (or until the returned iterator is closed) and closes
    it in that thread: a generator is only ever resumed by one thread.
    """
    slots: queue.SimpleQueue[T | _End] = queue.SimpleQueue()
    room = threading.Semaphore(depth)  # items the thread may make before the caller takes one
    stopped = threading.Event()

    def wait_for_room() -> bool:
        """Wait until the caller has taken an item; False when it stopped instead."""
        while not stopped.is_set():
            if room.acquire(timeout=_POLL_SECONDS):
                return True
        return False

    def produce() -> None:
        end = _End()
        iterator = iter(items)
        try:
            while wait_for_room():
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                slots.put(item)
            else:
                return  # the caller stopped: nobody waits for the end
        except BaseException as error:  # handed to the caller, raised there
            end = _End(error)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        slots.put(end)

    thread = threading.Thread(target=produce, name="netdiag-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            room.release()  # the thread may make the next one while the caller uses this one
            yield item
    finally:
        stopped.set()
        thread.join()
