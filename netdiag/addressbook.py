"""Interning of addresses and short texts into int32 codes shared by every table of one analysis.

The decoder hands over addresses as numbers (IPv4 as uint32, IPv6 as 16 bytes, MAC as uint64);
only the distinct values of a chunk are turned into Python objects, so the cost grows with the
number of distinct addresses, not with packets. Codes only ever grow, so a code given out for one
chunk stays valid for every later chunk and for every table built from the same book (packets,
flows, ARP bindings, several captures of one incident).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas is imported by the methods that build pandas objects
    import pandas as pd

ABSENT = -1


class _Interner:
    """Maps hashable keys to dense int32 codes, keeping the display text of each code.

    New codes are given out under a lock: the decoder may intern in a read-ahead thread
    (``capture.readahead``) while the caller looks codes up or reads another capture."""

    def __init__(self) -> None:
        self.codes: dict[object, int] = {}
        self.texts: list[str] = []
        self._lock = threading.Lock()

    def code_for(self, key: object, text: str) -> int:
        code = self.codes.get(key)
        if code is None:
            with self._lock:
                code = self.codes.get(key)
                if code is None:
                    code = len(self.texts)
                    self.texts.append(text)
                    self.codes[key] = code
        return code

    def map_unique(self, uniques: list[object], to_text) -> np.ndarray:  # type: ignore[no-untyped-def]
        out = np.empty(len(uniques), dtype=np.int32)
        with self._lock:
            get = self.codes.get
            for i, key in enumerate(uniques):
                code = get(key)
                if code is None:
                    code = len(self.texts)
                    self.texts.append(to_text(key))
                    self.codes[key] = code
                out[i] = code
        return out


def _ip4_text(value: object) -> str:
    return socket.inet_ntop(socket.AF_INET, struct.pack("!I", int(value)))  # type: ignore[call-overload]


def _ip6_text(value: object) -> str:
    return socket.inet_ntop(socket.AF_INET6, bytes(value))  # type: ignore[call-overload]


def _mac_text(value: object) -> str:
    raw = int(value).to_bytes(8, "big")[2:]  # type: ignore[call-overload]
    return ":".join(f"{b:02x}" for b in raw)


class AddressBook:
    """IP, MAC and text dictionaries of one analysis (one or several captures)."""

    def __init__(self) -> None:
        self._ip = _Interner()
        self._mac = _Interner()
        self._text = _Interner()

    # --- interning, column-wise ---------------------------------------------------------------
    def intern_ip4(self, values: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        """uint32 addresses (host order value of the big-endian field) -> int32 codes."""
        return self._intern(
            self._ip, np.asarray(values, dtype=np.uint32), present, ("4",), _ip4_text
        )

    def intern_ip6(self, raw16: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        """(n, 16) uint8 addresses -> int32 codes."""
        raw = np.ascontiguousarray(raw16, dtype=np.uint8).reshape(-1, 16)
        as_void = raw.view(np.dtype((np.void, 16))).ravel()
        return self._intern(self._ip, as_void, present, ("6",), _ip6_text)

    def intern_mac(self, values: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        """uint64 MAC values (48 bits, big-endian byte order) -> int32 codes."""
        return self._intern(
            self._mac, np.asarray(values, dtype=np.uint64), present, ("m",), _mac_text
        )

    def intern_text(self, values: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        """An object or str array of texts -> int32 codes."""
        return self._intern(self._text, np.asarray(values, dtype=object), present, ("t",), str)

    @staticmethod
    def _intern(book: _Interner, values: np.ndarray, present, tag, to_text) -> np.ndarray:  # type: ignore[no-untyped-def]
        n = len(values)
        out = np.full(n, ABSENT, dtype=np.int32)
        if n == 0:
            return out
        idx = np.arange(n) if present is None else np.flatnonzero(present)
        if len(idx) == 0:
            return out
        sel = values[idx]
        uniq, inverse = np.unique(sel, return_inverse=True)
        if uniq.dtype.kind == "V":
            keys: list[object] = [tag + (u.tobytes(),) for u in uniq]
            codes = book.map_unique(keys, lambda k: to_text(k[1]))
        else:
            keys = [tag + (u,) for u in uniq.tolist()]
            codes = book.map_unique(keys, lambda k: to_text(k[1]))
        out[idx] = codes[inverse.ravel()]
        return out

    # --- single values, for rules and facts -------------------------------------------------
    def ip_code(self, text: str) -> int:
        """Code of an IP address text, or -1 if this book has never seen it."""
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            return ABSENT
        if addr.version == 4:
            key: object = ("4", int(addr))
        else:
            key = ("6", addr.packed)
        return self._ip.codes.get(key, ABSENT)

    def text_code(self, text: str) -> int:
        return self._text.code_for(("t", text), text)

    @property
    def ip_texts(self) -> list[str]:
        return self._ip.texts

    @property
    def mac_texts(self) -> list[str]:
        return self._mac.texts

    @property
    def texts(self) -> list[str]:
        return self._text.texts

    # --- pandas -------------------------------------------------------------------------------
    def dtype(self, kind: str) -> pd.CategoricalDtype:
        """The shared categorical dtype for 'ip', 'mac' or 'text' columns (as of now)."""
        import pandas as pd

        texts = {"ip": self._ip.texts, "mac": self._mac.texts, "text": self._text.texts}[kind]
        cached = getattr(self, "_dtype_cache", {})
        hit = cached.get(kind)
        if hit is not None and hit[0] == len(texts):
            return hit[1]  # type: ignore[no-any-return]
        dtype = pd.CategoricalDtype(pd.Index(texts, dtype=object), ordered=False)
        cached[kind] = (len(texts), dtype)
        self._dtype_cache = cached
        return dtype

    def categorical(self, codes: np.ndarray, kind: str) -> pd.Categorical:
        import pandas as pd

        return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int32), dtype=self.dtype(kind))
