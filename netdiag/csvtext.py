"""Text tables built column-wise with numpy: integers as ASCII digits, CSV rows from byte matrices.

A column's cells are an ``(n, width)`` uint8 matrix, one row per cell, holding the cell's bytes
and NUL bytes around them (integers right-aligned, texts left-aligned). A CSV row is its cells'
matrices side by side with a separator byte after each; dropping every NUL byte of that block
leaves the CSV text. So no Python code runs per row or per cell, and no offsets need computing:
the price is that a cell cannot itself hold a NUL byte (``inner_nul`` tells; callers fall back).
"""

from __future__ import annotations

import functools

import numpy as np

_QUOTE = ord('"')

#: 10**1 ... 10**19: a magnitude's digit count is 1 + how many of these it reaches
_POWERS_OF_TEN = np.array([10**k for k in range(1, 20)], dtype=np.uint64)


@functools.cache
def _four_digit_words() -> np.ndarray:
    """Four ASCII digits of 0 ... 9999 as one 4-byte word each (its bytes in memory are the
    digits in order, whatever the machine's byte order), in three tables of 10,000:
    [0, 10000) zero-padded ("0042"), [10000, 20000) NUL-padded for a number's leading group
    ("\\0\\042", 0 is all NUL: no digits left), [20000, 30000) the same but 0 is "\\0\\0\\00"
    (the last group of the number 0). Made with numpy: formatting 30,000 strs costs 13 ms,
    paid by every ``netdiag flows``."""
    numbers = np.arange(10_000)
    place = np.array([1000, 100, 10, 1])
    digits = (numbers[:, None] // place % 10 + ord("0")).astype(np.uint8)
    leading = np.where(numbers[:, None] >= place, digits, np.uint8(0))
    only = leading.copy()
    only[0, 3] = ord("0")
    return np.concatenate([digits, leading, only]).view(np.uint32).ravel()


def ascii_ints(values: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
    """Integers as decimal ASCII, one row each, right-aligned in the width of the longest
    (with its "-"), padded on the left with NUL bytes: an (n, width) uint8 matrix. The
    ``blank`` rows are all NUL (an empty cell; the width is that of the others).

    Four digits at a time: each group is looked up in a 4-byte table, the leading group in
    a NUL-padded one, so leading zeros never need finding. Several times faster than
    ``astype("S")`` (a Python str per value). Any signed or unsigned integer dtype, int64's
    minimum and uint64's maximum included.
    """
    v = np.asarray(values)
    n = len(v)
    if n == 0:
        return np.zeros((0, 1), dtype=np.uint8)
    # the last group's table: the number 0 keeps its one "0"
    last: np.ndarray | np.uint32 = np.uint32(20_000)
    if blank is not None and blank.any():
        if blank.all():
            return np.zeros((n, 0), dtype=np.uint8)
        v = np.where(blank, v.dtype.type(0), v)
        last = np.where(blank, np.uint32(10_000), last)  # a blank 0 has no digit
    negative: np.ndarray | None = None
    magnitude: np.ndarray
    if v.dtype.kind == "u":
        magnitude = v.astype(np.uint64, copy=False)
    else:
        v = v.astype(np.int64, copy=False)
        if int(v.min()) < 0:
            negative = v < 0
            # -(v + 1) cannot overflow (int64's minimum has no positive counterpart)
            magnitude = np.where(negative, -(v + 1), v).view(np.uint64) + negative
        else:
            magnitude = v.view(np.uint64)
    top = int(magnitude.max())
    groups = -(-len(str(top)) // 4)
    width = len(str(top)) if negative is None else max(len(str(top)), len(str(int(v.min()))))
    rest = magnitude.astype(np.uint32) if top < 1 << 32 else magnitude  # faster to divide
    words = np.empty((n, groups), dtype=np.uint32)
    table = _four_digit_words()
    offset: np.ndarray | np.uint32 = last
    for g in range(groups - 1, 0, -1):
        higher = rest // 10_000
        index = (rest - higher * 10_000).astype(np.uint32, copy=False)
        index += (higher == 0) * offset  # nothing above: this group leads
        words[:, g] = table[index]
        rest = higher
        offset = np.uint32(10_000)
    words[:, 0] = table[rest.astype(np.uint32, copy=False) + offset]  # the leading group
    digits = words.view(np.uint8).reshape(n, 4 * groups)
    if width <= 4 * groups:
        out = digits[:, 4 * groups - width :]
    else:  # a "-" needs a column of its own
        out = np.zeros((n, width), dtype=np.uint8)
        out[:, width - 4 * groups :] = digits
    if negative is not None:
        rows = np.flatnonzero(negative)
        count = 1 + np.searchsorted(_POWERS_OF_TEN, magnitude[rows], side="right")
        out[rows, width - 1 - count] = ord("-")
    return out


def text_cells(texts: np.ndarray) -> np.ndarray:
    """A bytes column's cells (numpy S: trailing NULs are padding), left-aligned."""
    n = len(texts)
    return texts.view(np.uint8).reshape(n, texts.dtype.itemsize)


def inner_nul(texts: np.ndarray) -> bool:
    """True when a text (numpy S) holds a NUL byte, which ``csv_rows`` would drop: its
    non-NUL bytes are then fewer than its length (numpy counts up to the last non-NUL)."""
    if not len(texts):
        return False
    return int(np.count_nonzero(text_cells(texts))) < int(np.char.str_len(texts).sum())


def quoted(cells: np.ndarray, absent: np.ndarray | None = None) -> np.ndarray:
    """Left-aligned text cells in double quotes, quotes inside doubled (RFC 4180); the
    ``absent`` rows stay empty, unquoted. Quoted empty texts are ``""``."""
    n = len(cells)
    used = cells != 0
    lengths = used.sum(axis=1)
    quotes = (cells == _QUOTE).sum(axis=1)
    data = cells[used]  # row by row: the texts end to end
    data = np.repeat(data, np.where(data == _QUOTE, 2, 1))
    lengths = lengths + quotes
    out = np.zeros((n, int(lengths.max(initial=0)) + 2), dtype=np.uint8)
    columns = np.arange(out.shape[1])
    out[(columns >= 1) & (columns <= lengths[:, None])] = data
    rows = np.arange(n) if absent is None else np.flatnonzero(~absent)
    out[rows, 0] = _QUOTE
    out[rows, lengths[rows] + 1] = _QUOTE
    return out


def csv_rows(cells: list[np.ndarray], head: bytes = b"") -> bytearray:
    """``head`` (no NUL in it), then CSV lines ("," between cells, "\\n" after each row) from
    the columns' cell matrices.

    The rows are laid out in a bytearray that becomes the answer once its NUL bytes are
    dropped: no further copy of some 20 MB (each costs its page faults too)."""
    n = cells[0].shape[0] if cells else 0
    width = sum(c.shape[1] for c in cells) + len(cells)
    buffer = bytearray(len(head) + n * width)
    buffer[: len(head)] = head
    if n and width:
        block = np.frombuffer(buffer, dtype=np.uint8, offset=len(head)).reshape(n, width)
        at = 0
        for column in cells:
            used = column.shape[1]
            block[:, at : at + used] = column
            block[:, at + used] = ord(",")
            at += used + 1
        block[:, -1] = ord("\n")
    return buffer.translate(None, b"\0")
