"""Consistent, prefix-preserving pseudonymisation of IP and MAC addresses (``--redact``).

One :class:`Redactor` (one key) maps every address the same way wherever it appears: in report
texts, in facts excerpts and inside the packets of the evidence pcapng, so that a redacted report
still reads right. The mapping is a keyed permutation in the manner of Crypto-PAn: each bit of
the output is the input bit flipped by a keyed function of the bits before it, so two addresses
that share an n-bit prefix share an n-bit prefix after mapping (two hosts of one /24 stay in one
/24). Further rules keep the diagnosis readable:

* well-known ranges keep their prefix and only the rest is permuted: 10/8, 172.16/12,
  192.168/16, 100.64/10, 169.254/16, the documentation nets, fe80::/64, fd00::/8, 2000::/3,
  2001:db8::/32;
  a public address never lands in one of them (cycle walking, which keeps the mapping one-to-one
  and, since those ranges are /24 or wider, keeps /24s together);
* addresses that identify nobody are kept as they are: 0.0.0.0/8, 127/8, multicast, limited
  broadcast, ::, ::1, ff00::/8; MAC broadcast, multicast and all-zero;
* in IPv4 the last octet is permuted among 1..254 (keyed by its /24), so .0 and .255 (network
  and broadcast of a /24) stay what they are; prefixes longer than /24 are not preserved;
* MAC addresses keep their multicast and locally-administered bits, and MACs sharing an OUI
  still share one.

Without a key the redactor draws a random one: nobody can undo the mapping, and two runs differ.
Give a key (``NETDIAG_REDACT_KEY``) to get the same pseudonyms across runs.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import struct
from dataclasses import dataclass, field

#: the environment variable that holds a redaction key (any text)
KEY_ENV = "NETDIAG_REDACT_KEY"


@dataclass(frozen=True)
class _Range:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    keep: bool  # True: addresses in it are not changed at all


def _ranges(specs: list[tuple[str, bool]]) -> list[_Range]:
    return [_Range(ipaddress.ip_network(s), keep) for s, keep in specs]


#: longest match decides; "keep" ranges are unchanged, the others keep their prefix
_V4_RANGES = _ranges(
    [
        ("0.0.0.0/8", True),
        ("127.0.0.0/8", True),
        ("224.0.0.0/4", True),
        ("255.255.255.255/32", True),
        ("10.0.0.0/8", False),
        ("100.64.0.0/10", False),
        ("169.254.0.0/16", False),
        ("172.16.0.0/12", False),
        ("192.168.0.0/16", False),
        ("192.0.2.0/24", False),
        ("198.51.100.0/24", False),
        ("203.0.113.0/24", False),
        ("240.0.0.0/4", False),
    ]
)
_V6_RANGES = _ranges(
    [
        ("::/128", True),
        ("::1/128", True),
        ("ff00::/8", True),
        ("fe80::/10", False),
        ("fe80::/64", False),  # link-local as used: only the interface id is permuted
        ("fc00::/7", False),
        ("fd00::/8", False),
        ("2000::/3", False),
        ("2001:db8::/32", False),
        ("::ffff:0:0/96", False),  # IPv4-mapped: the IPv4 part is mapped as IPv4
    ]
)

_MAC_RE = re.compile(r"(?<![0-9A-Fa-f:])((?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2})(?![0-9A-Fa-f:])")
_V4_RE = re.compile(r"(?<![\d.])((?:\d{1,3}\.){3}\d{1,3})(?:/(\d{1,2}))?(?![\d])")
#: IPv6 candidates: hex groups and colons (at least two), maybe a dotted IPv4 tail, maybe /len
_V6_RE = re.compile(
    r"(?<![0-9A-Fa-f:.])([0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3})(?:/(\d{1,3}))?"
)


def _longest(ranges: list[_Range], address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """Index of the most specific range holding ``address`` (-1: none)."""
    best, best_len = -1, -1
    for i, r in enumerate(ranges):
        inside = address.version == r.network.version and address in r.network
        if inside and r.network.prefixlen > best_len:
            best, best_len = i, r.network.prefixlen
    return best


@dataclass
class Redactor:
    """One pseudonymisation: the same key maps every address the same way."""

    key: bytes = field(default_factory=lambda: os.urandom(32))
    _cache: dict[str, str] = field(default_factory=dict, repr=False)
    _orders: dict[int, list[int]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls) -> Redactor:
        """Keyed by ``NETDIAG_REDACT_KEY`` when set (reproducible), else a random key."""
        text = os.environ.get(KEY_ENV, "")
        return cls(text.encode()) if text else cls()

    # --- the keyed bit function ---------------------------------------------------------------
    def _flip(self, domain: bytes, prefix_bits: int, length: int) -> int:
        """The keyed bit for a prefix of ``length`` bits (value ``prefix_bits``)."""
        msg = domain + struct.pack(">H", length) + prefix_bits.to_bytes(17, "big")
        return hmac.new(self.key, msg, hashlib.sha256).digest()[0] & 1

    def _permute_bits(self, value: int, width: int, start: int, stop: int, domain: bytes) -> int:
        """Crypto-PAn-like: flip bits ``start..stop-1`` (from the top) by a keyed function of
        the original bits before each; bits outside are unchanged. One-to-one."""
        out = value
        for i in range(start, stop):
            shift = width - 1 - i
            prefix = value >> (shift + 1)
            if self._flip(domain, prefix, i):
                out ^= 1 << shift
        return out

    def _last_octet(self, prefix24: int, octet: int) -> int:
        """A keyed shuffle of 1..254 per /24 (0 and 255 stay)."""
        if octet in (0, 255):
            return octet
        order = self._orders.get(prefix24)
        if order is None:
            seed = hmac.new(self.key, b"v4-host" + prefix24.to_bytes(3, "big"), hashlib.sha256)
            order = sorted(
                range(1, 255),
                key=lambda h: hmac.new(seed.digest(), bytes([h]), hashlib.sha256).digest(),
            )
            self._orders[prefix24] = order
        return order[octet - 1]

    # --- addresses ------------------------------------------------------------------------------
    def ipv4(self, text: str) -> str:
        key = "4" + text
        if key not in self._cache:
            self._cache[key] = str(
                ipaddress.IPv4Address(self._map_v4(int(ipaddress.IPv4Address(text))))
            )
        return self._cache[key]

    def _map_v4(self, value: int) -> int:
        index = _longest(_V4_RANGES, ipaddress.IPv4Address(value))
        if index >= 0 and _V4_RANGES[index].keep:
            return value
        start = _V4_RANGES[index].network.prefixlen if index >= 0 else 0
        domain = b"v4/%d" % start
        out = value
        while True:  # cycle walking: stay in the address's own range (see module docstring)
            out = self._permute_bits(out, 32, start, 24, domain)
            if _longest(_V4_RANGES, ipaddress.IPv4Address(out)) == index:
                break
        return (out & 0xFFFFFF00) | self._last_octet(out >> 8, value & 0xFF)

    def ipv6(self, text: str) -> str:
        key = "6" + text
        if key not in self._cache:
            self._cache[key] = self._map_v6(ipaddress.IPv6Address(text))
        return self._cache[key]

    def _map_v6(self, address: ipaddress.IPv6Address) -> str:
        if address.ipv4_mapped is not None:
            return "::ffff:" + self.ipv4(str(address.ipv4_mapped))
        index = _longest(_V6_RANGES, address)
        if index >= 0 and _V6_RANGES[index].keep:
            return str(address)
        start = _V6_RANGES[index].network.prefixlen if index >= 0 else 0
        domain = b"v6/%d" % start
        out = int(address)
        while True:
            out = self._permute_bits(out, 128, start, 128, domain)
            if _longest(_V6_RANGES, ipaddress.IPv6Address(out)) == index:
                break
        return str(ipaddress.IPv6Address(out))

    def ip(self, text: str) -> str:
        """Any IP address text (v4 or v6); text that is not an address is returned unchanged."""
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return text
        return self.ipv4(str(address)) if address.version == 4 else self.ipv6(str(address))

    def mac(self, text: str) -> str:
        """A MAC address (``aa:bb:..`` or ``aa-bb-..``); its separator and case are kept."""
        key = "m" + text
        if key in self._cache:
            return self._cache[key]
        sep = "-" if "-" in text else ":"
        value = int(text.replace(sep, ""), 16)
        first = value >> 40
        if value in (0, (1 << 48) - 1) or first & 1:  # all-zero, broadcast, multicast
            mapped = value
        else:
            # bits 6 and 7 of the first octet (U/L and I/G) stay; OUIs stay shared
            out = self._permute_bits(value, 48, 0, 6, b"mac")
            out = self._permute_bits(out, 48, 8, 48, b"mac")
            mapped = out
        digits = f"{mapped:012x}"
        if text.upper() == text and any(c.isalpha() for c in text):
            digits = digits.upper()
        result = sep.join(digits[i : i + 2] for i in range(0, 12, 2))
        self._cache[key] = result
        return result

    def mac_bytes(self, raw: bytes) -> bytes:
        return bytes.fromhex(self.mac(raw.hex(":")).replace(":", ""))

    def ip_bytes(self, raw: bytes) -> bytes:
        address = ipaddress.ip_address(raw)
        return ipaddress.ip_address(self.ip(str(address))).packed

    # --- free text ------------------------------------------------------------------------------
    def text(self, text: str) -> str:
        """Every MAC, IPv4 and IPv6 address in ``text`` replaced (CIDR networks stay networks)."""
        if not text:
            return text
        out = _MAC_RE.sub(lambda m: self.mac(m.group(1)), text)
        out = _V4_RE.sub(self._v4_match, out)
        return _V6_RE.sub(self._v6_match, out)

    def _v4_match(self, m: re.Match[str]) -> str:
        address, length = m.group(1), m.group(2)
        if m.string[max(0, m.start() - 1) : m.start()] == ":":
            return m.group(0)  # the tail of an IPv6 address (::ffff:a.b.c.d): mapped as IPv6
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            return m.group(0)
        mapped = self.ipv4(address)
        if length is None:
            return mapped
        return _network(address, mapped, int(length), 32) + "/" + length

    def _v6_match(self, m: re.Match[str]) -> str:
        candidate, length = m.group(1), m.group(2)
        tail = ""
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            # tcpdump writes "addr.port": try without a dotted number at the end
            head, dot, port = candidate.rpartition(".")
            try:
                if not (dot and port.isdigit()):
                    raise ValueError
                ipaddress.IPv6Address(head)
            except ValueError:
                return m.group(0)
            candidate, tail = head, dot + port
        mapped = self.ipv6(candidate)
        if length is None:
            return mapped + tail
        return _network(candidate, mapped, int(length), 128) + tail + "/" + length


def _network(original: str, mapped: str, length: int, width: int) -> str:
    """A network written as ``address/len`` stays a network: when the original's host bits are
    zero, the mapped address's are cleared too (prefix preservation makes that the network of
    the mapped hosts, up to /24 in IPv4)."""
    if not 0 <= length <= width:
        return mapped
    host = (1 << (width - length)) - 1
    if int(ipaddress.ip_address(original)) & host:
        return mapped  # an interface address with its prefix length (10.0.0.5/24)
    return str(ipaddress.ip_address(int(ipaddress.ip_address(mapped)) & ~host & ((1 << width) - 1)))
