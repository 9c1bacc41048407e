"""netdiag: finds known network failure patterns in packet captures and topology facts."""

__version__ = "0.1.0"
