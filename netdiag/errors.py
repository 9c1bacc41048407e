"""Errors netdiag reports to its user as one line (never a traceback)."""

from __future__ import annotations


class NetdiagError(Exception):
    """Base class: an error about the user's input, printed as one line, exit code 2."""

    def __init__(self, path: str | None, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


class CaptureError(NetdiagError):
    """A capture file cannot be read at all (not a capture, unsupported, unreadable)."""


class FactsError(NetdiagError):
    """A facts file cannot be read at all."""
