"""The read-only analysis context rules see: captures' tables, derived tables, facts, helpers.

Derived tables (ARP packets and ARP claims, TCP control packets, ICMP errors, repeated packets and
forwarding loops) are computed once per capture on first use and cached, so that several rules
asking for them pay once. Rules must treat every table as read-only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from netdiag.engine.finding import Evidence, FactUsed
from netdiag.timefmt import iso_ns

if TYPE_CHECKING:
    from netdiag.correlate import Correlation
    from netdiag.facts.model import FactSet
    from netdiag.pipeline import LoadedCapture

#: columns of the ARP table (a view of the ARP rows of a capture's packets)
ARP_COLUMNS: tuple[str, ...] = ("frame", "ts_ns", "iface_name", "sll_pkttype", "eth_src", "eth_dst")
ARP_COLUMNS += ("arp_op", "arp_sha", "arp_spa", "arp_tha", "arp_tpa", "decode_error")
ARP_COLUMNS += ("iface", "sll_ifindex")

#: ICMP types that quote the packet they are about (v4: unreachable, redirect, time exceeded,
#: parameter problem; v6: unreachable, too big, time exceeded, parameter problem)
ICMP4_ERRORS = (3, 5, 11, 12)
ICMP6_ERRORS = (1, 2, 3, 4)


@dataclass
class AnalysisContext:
    """What one analysis has: the captures (same address book), the facts, and cached derivations."""

    captures: Sequence[LoadedCapture] = ()
    facts: FactSet | None = None
    facts_sources: Sequence[str] = ()
    #: capture path -> point name given by the user (``--point NAME=FILE``)
    point_names: Mapping[str, str] = field(default_factory=dict)
    _cache: dict[tuple[str, int], Any] = field(default_factory=dict, repr=False)

    # --- several capture points ------------------------------------------------------------
    def point_name(self, index: int) -> tuple[str, str]:
        """(name, how named) of capture ``index``: --point, the facts' capture host, the file."""
        path = self.captures[index].path
        if path in self.point_names:
            return self.point_names[path], "option"
        if self.facts is not None:
            binding = self.facts.capture_host(path)
            if binding is not None and binding.host:
                hosts = [self.facts.capture_host(c.path) for c in self.captures if c.path != path]
                if all(b is None or b.host != binding.host for b in hosts):
                    return binding.host, "facts"
        name = os.path.basename(path)
        for suffix in (".gz", ".zst", ".xz", ".bz2", ".pcapng", ".pcap", ".cap"):
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
        return name, "file"

    @property
    def correlation(self) -> Correlation | None:
        """The capture points correlated (computed once, on first use); None with a single
        capture seen on a single link, where there is nothing to correlate."""
        key = ("correlation", 0)
        if key in self._cache:
            return self._cache[key]  # type: ignore[no-any-return]
        result = None
        if self.captures and (len(self.captures) > 1 or self._links(0) > 1):
            result = self._correlate()
        self._cache[key] = result
        return result

    def _links(self, index: int) -> int:
        packets = self.captures[index].packets
        if len(packets) == 0:
            return 0
        return len(np.unique(link_ids(packets)))

    def _correlate(self) -> Correlation:
        from netdiag.correlate import PointInput, correlate, observations_from_packets

        inputs = []
        names: set[str] = set()
        for index, cap in enumerate(self.captures):
            obs: Any = cap.extra.get("observations")
            if obs is None:
                obs = observations_from_packets(cap.packets)
            name, named_by = self.point_name(index)
            while name in names:  # two files of one name in different folders
                name += "'"
            names.add(name)
            inputs.append(
                PointInput(
                    cap.path, name, named_by, obs, cap.flows, self._iface_namer(index), cap.packets
                )
            )
        book = self.captures[0].book
        texts = book.ip_texts
        return correlate(inputs, lambda code: texts[code] if 0 <= code < len(texts) else "?")

    def _iface_namer(self, index: int) -> Any:
        """link id -> interface name for capture ``index`` (capture interfaces, else the facts'
        ifindex table of the capturing host)."""
        cap = self.captures[index]
        interfaces = list(getattr(cap.info, "interfaces", []) or [])

        def name(link: int) -> str:
            if link >= LINK_ID_IFACE_OFFSET:
                i = link - LINK_ID_IFACE_OFFSET
                if 0 <= i < len(interfaces):
                    return str(getattr(interfaces[i], "name", "") or "")
                return ""
            host = self.capture_host(index)
            found = host.ifname(link) if host is not None else None
            return found or f"if{link}"

        return name

    # --- what is there ---------------------------------------------------------------------
    def has(self, need: str) -> bool:
        """Is the input ``need`` ("packets", "arp", "facts", "points") present in this analysis?"""
        if need == "packets":
            return any(len(c.packets) > 0 for c in self.captures)
        if need == "arp":
            return any(len(self.arp(i)) > 0 for i in range(len(self.captures)))
        if need == "facts":
            return self.facts is not None and not self.facts.is_empty()
        if need == "points":
            return self.correlation is not None
        raise ValueError(f"unknown rule input {need!r}")

    def capture_indices(self) -> range:
        _return_freed_memory(now=True)  # rules start here: the rules before them are done
        return range(len(self.captures))

    def facts_only(self) -> bool:
        """Facts and no capture: rules audit the configuration alone (low-confidence findings)."""
        return not self.captures and self.has("facts")

    def _cached(self, kind: str, index: int, build: Any) -> Any:
        _return_freed_memory()
        key = (kind, index)
        if key not in self._cache:
            self._cache[key] = build(self.captures[index])
        return self._cache[key]

    # --- derived tables --------------------------------------------------------------------
    def arp(self, index: int) -> pd.DataFrame:
        """ARP rows of capture ``index`` with a ``kind`` column: request, reply, gratuitous, probe.

        gratuitous: sender address == target address (announcement, request or reply form);
        probe: sender address absent or 0.0.0.0 (RFC 5227 address probe, claims nothing).
        """
        return self._cached("arp", index, _arp_table)  # type: ignore[no-any-return]

    def repeats(self, index: int) -> pd.DataFrame:
        """IPv4 packets seen several times with different TTLs: the passes of a forwarding loop.

        One row per observation, with ``group`` (one id per distinct packet: addresses, IP id,
        protocol, ports, sequence numbers, payload hash), ``ttls`` (distinct TTLs of its group)
        and ``row`` (position in the packet table). Only groups with at least 3 distinct TTLs.
        """
        return self._cached("repeats", index, _repeat_table)  # type: ignore[no-any-return]

    def loops(self, index: int) -> pd.DataFrame:
        """Packets caught in a forwarding loop: one row per packet (group of ``repeats``).

        A group loops when its TTL falls from first to last observation over at least
        ``MIN_LOOP_TTLS`` distinct values, or over 3 when an ICMP time exceeded quotes it.
        Columns: group, src, dst (IP codes), ip_id, passes, ttls, ttl_first, ttl_last, first_ts,
        last_ts, first_row, second_row, last_row (packet-table positions), te_row and te_src
        (the time exceeded quoting the packet, -1 when none was captured).
        """
        return self._cached("loops", index, lambda cap: _loop_table(cap, self.repeats(index)))

    def tcp_control(self, index: int) -> pd.DataFrame:
        """TCP SYN, SYN-ACK and RST packets of capture ``index`` as plain integer columns.

        Columns: row (position in the packet table), frame, ts_ns, src, dst (IP codes of the
        shared address book: comparable across captures), sport, dport, seq, ack, tflags.
        """
        return self._cached("tcp_control", index, _tcp_control_table)  # type: ignore[no-any-return]

    def ip_text(self, index: int, code: int) -> str:
        """The address text of an IP code (from capture ``index``'s dictionary)."""
        return str(self.captures[index].packets["ip_src"].cat.categories[int(code)])

    def arp_claims(self, index: int) -> pd.DataFrame:
        """ARP packets that claim an address (sender IP -> sender MAC), for addresses claimed by
        two or more MACs in capture ``index``.

        Probes (sender 0.0.0.0) claim nothing; packets whose sender MAC differs from the
        Ethernet source, or whose sender MAC/IP is zero, broadcast or multicast, are ignored (fuzzed
        or relayed frames). In `-i any` captures the capturing host's own outgoing ARP counts as
        one claimant whatever interface (MAC) it left on. Columns: row, frame, ts_ns, kind, ip (IP code), mac (MAC code),
        eth_dst (MAC code), macs (distinct MACs claiming that IP).
        """
        return self._cached("arp_claims", index, lambda cap: _arp_claims(self.arp(index)))

    def frames_to(self, index: int, ip_code: int) -> pd.DataFrame:
        """IP packets for ``ip_code`` with link addresses: row, ts_ns, eth_src, eth_dst (codes)."""
        packets = self.captures[index].packets
        mask = packets["ip_dst"].cat.codes.to_numpy() == ip_code
        if "eth_src" not in packets.columns:
            mask &= False
        # the four columns are gathered alone: a copy of the whole rows would cost ~200 bytes each
        rows = np.flatnonzero(mask)
        del mask
        return pd.DataFrame(
            {
                "row": rows,
                "ts_ns": _gather(packets, "ts_ns", rows),
                "eth_src": _gather(packets, "eth_src", rows) if len(rows) else [],
                "eth_dst": _gather(packets, "eth_dst", rows) if len(rows) else [],
            }
        )

    def dr_signals(self, index: int, ip: int, macs: set[int]) -> dict[str, Any]:
        """Signs that ``ip``, claimed in ARP by ``macs``, is a direct-routing VIP.

        to_ip: frames for the address; relay: those sent by one claiming MAC to another (a
        director forwarding to a real server); multi_address_macs: claiming MACs that also claim
        another address in ARP (a real server's own address beside the VIP on lo).
        """
        key = ("dr", index * 1_000_003 + ip)
        cached = self._cache.get(key)  # type: ignore[call-overload]
        if cached is not None:
            # to_ip is rebuilt rather than kept: on a large capture the frames for a busy
            # address are millions of rows, and one pass over the codes is cheap
            return {"to_ip": self.frames_to(index, ip), **cached}
        to_ip = self.frames_to(index, ip)
        relay = to_ip[
            to_ip.eth_src.isin(macs) & to_ip.eth_dst.isin(macs) & (to_ip.eth_src != to_ip.eth_dst)
        ]
        arp = self.arp(index)
        claims = arp[arp["kind"].astype(str).isin(["request", "reply", "gratuitous"])]
        sha = claims["arp_sha"].cat.codes
        other = claims[sha.isin(list(macs)) & (claims["arp_spa"].cat.codes != ip)]
        result = {
            "to_ip": to_ip,
            "relay": relay,
            "multi_address_macs": set(other["arp_sha"].cat.codes.astype(int)),
        }
        self._cache[key] = {k: v for k, v in result.items() if k != "to_ip"}  # type: ignore[index]
        return result

    def icmp_errors(self, index: int) -> pd.DataFrame:
        """ICMP/ICMPv6 error rows of capture ``index`` (with the quoted header's columns)."""
        return self._cached("icmp_errors", index, _icmp_error_table)  # type: ignore[no-any-return]

    # --- helpers for building findings -------------------------------------------------------
    def evidence(
        self,
        index: int,
        rows: pd.DataFrame,
        role: str,
        note: str | Sequence[str] = "",
        verbose: bool = False,
    ) -> list[Evidence]:
        """Evidence entries for the given packet rows (a few: callers cap before calling)."""
        from netdiag.render.tcpdump_line import summarize

        if len(rows) == 0:
            return []
        capture = self.captures[index].path
        rows = self._with_interface_names(index, rows)
        lines = summarize(rows, verbose=verbose)
        notes = [note] * len(rows) if isinstance(note, str) else list(note)
        frames = rows["frame"].to_numpy(dtype=np.int64)
        ts = rows["ts_ns"].to_numpy(dtype=np.int64)
        return [
            Evidence(capture, int(f), iso_ns(int(t)), s, role, str(n))
            for f, t, s, n in zip(frames, ts, lines, notes, strict=True)
        ]

    def capture_host(self, index: int) -> Any:
        """The facts' host that took capture ``index``, or None.

        From the facts' capture bindings when they name the file, else the host owning the
        source address of most outgoing packets (Linux cooked captures mark them).
        """
        key = ("capture_host", index)
        if key in self._cache:
            return self._cache[key]
        host = None
        if self.facts is not None:
            binding = self.facts.capture_host(self.captures[index].path)
            if binding is not None:
                host = self.facts.hosts.get(binding.host)
            packets = self.captures[index].packets
            if host is None and "sll_pkttype" in packets.columns and len(packets):
                out = packets.loc[packets["sll_pkttype"].to_numpy() == 4, "ip_src"]
                for address in out.value_counts().index[:3]:
                    owners = self.facts.owners(str(address))
                    if owners:
                        host = owners[0][0]
                        break
        self._cache[key] = host
        return host

    def _with_interface_names(self, index: int, rows: pd.DataFrame) -> pd.DataFrame:
        """Rows whose interface name is unknown get it from the capturing host's ifindex table."""
        if "sll_ifindex" not in rows.columns or self.facts is None:
            return rows
        names = rows["iface_name"].astype(object) if "iface_name" in rows.columns else None
        known = names.notna().to_numpy() if names is not None else np.zeros(len(rows), dtype=bool)
        if known.all():
            return rows
        host = self.capture_host(index)
        if host is None:
            return rows
        ifindex = rows["sll_ifindex"].to_numpy()
        filled = [
            (str(n) if ok else (host.ifname(int(i)) or "")) if i >= 0 or ok else ""
            for n, ok, i in zip(
                names if names is not None else [None] * len(rows), known, ifindex, strict=True
            )
        ]
        out = rows.copy()
        out["iface_name"] = pd.Series(filled, index=rows.index, dtype=object)
        return out

    @staticmethod
    def fact(source: Any) -> FactUsed | None:
        """A facts_used entry from a fact's provenance (None when it has none)."""
        if source is None:
            return None
        ref = getattr(source, "ref", None) or str(source)
        return FactUsed(ref, getattr(source, "text", "").strip())

    def capture_name(self, index: int) -> str:
        return os.path.basename(self.captures[index].path)


#: seconds between two returns of freed heap memory to the system (see _return_freed_memory)
_RELEASE_EVERY_S = 0.05
_last_release = [0.0]


def _return_freed_memory(now: bool = False) -> None:
    """Give the heap pages freed by the rules run so far back to the system (glibc).

    Rules ask the context for their captures and derived tables first thing; the working memory
    of the rules before them (large merges on big captures) is free by then but still resident,
    so the next rule's peak would add to it. Throttled unless ``now`` (a rule starts): cheap,
    but not free on a large heap, and derived tables may be asked for many times in a row.
    """
    from netdiag.capture.table import release_freed_memory

    if now or time.monotonic() - _last_release[0] >= _RELEASE_EVERY_S:
        release_freed_memory()
        _last_release[0] = time.monotonic()


def _arp_table(cap: LoadedCapture) -> pd.DataFrame:
    packets = cap.packets
    if "arp_op" not in packets.columns or len(packets) == 0:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in (*ARP_COLUMNS, "row", "kind")})
    is_arp = packets["arp_op"].to_numpy() >= 0
    rows = packets.loc[is_arp, [c for c in ARP_COLUMNS if c in packets]]
    spa = rows["arp_spa"].astype(object)
    tpa = rows["arp_tpa"].astype(object)
    probe = spa.isna() | (spa == "0.0.0.0")
    gratuitous = ~probe & (spa == tpa)
    op = rows["arp_op"].to_numpy()
    kind = np.where(op == 1, "request", np.where(op == 2, "reply", "other")).astype(object)
    kind = np.where(gratuitous.to_numpy(), "gratuitous", kind)
    kind = np.where(probe.to_numpy(), "probe", kind)
    out = rows.copy()
    out["row"] = np.flatnonzero(is_arp)  # position in the packet table
    out["kind"] = pd.Categorical(
        kind, categories=["request", "reply", "gratuitous", "probe", "other"]
    )
    return out


def _icmp_error_table(cap: LoadedCapture) -> pd.DataFrame:
    packets = cap.packets
    if "icmp_type" not in packets.columns or len(packets) == 0:
        return packets.iloc[0:0]
    proto = packets["ip_proto"].to_numpy()
    itype = packets["icmp_type"].to_numpy()
    mask = ((proto == 1) & np.isin(itype, ICMP4_ERRORS)) | (
        (proto == 58) & np.isin(itype, ICMP6_ERRORS)
    )
    return packets.loc[mask]


#: what makes two observations the same packet (besides the TTL, which routers decrement)
_IDENTITY: tuple[str, ...] = (
    "ip_src",
    "ip_dst",
    "ip_id",
    "ip_proto",
    "ip_frag_offset",
    "sport",
    "dport",
)
_IDENTITY += ("tcp_seq", "tcp_ack", "tcp_flags", "icmp_type", "icmp_id", "icmp_seq", "payload_hash")
MIN_REPEAT_TTLS = 3


def _repeat_table(cap: LoadedCapture) -> pd.DataFrame:
    packets = cap.packets
    columns = ["row", "group", "ttls", "frame", "ts_ns", "src", "dst", "ip_id", "ip_ttl"]
    if len(packets) == 0 or "ip_ttl" not in packets.columns:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in columns})
    v4 = (packets["ip_version"].to_numpy() == 4) & (packets["ip_ttl"].to_numpy() >= 0)

    def values(name: str, rows: np.ndarray) -> np.ndarray:
        column = packets[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            return column.cat.codes.to_numpy()[rows].astype(np.int64, copy=False)
        return column.to_numpy()[rows].astype(np.int64, copy=False)

    # cheap pre-filter, before the identity columns are gathered: only packets whose
    # (src, dst, id) occurs more than once can repeat
    rows = np.flatnonzero(v4)
    del v4
    rows = rows[_repeated_triples(packets, rows)]
    if len(rows) == 0:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in columns})
    frame = pd.DataFrame(
        {name: values(name, rows) for name in _IDENTITY if name in packets.columns}
    )
    frame["row"] = rows
    frame["ip_ttl"] = values("ip_ttl", rows)
    keys = [c for c in _IDENTITY if c in frame.columns]
    frame["group"] = frame.groupby(keys, sort=False).ngroup()
    frame["ttls"] = frame.groupby("group")["ip_ttl"].transform("nunique")
    frame = frame[frame["ttls"] >= MIN_REPEAT_TTLS]
    rows = frame["row"].to_numpy()
    out = pd.DataFrame(
        {
            "row": rows,
            "group": frame["group"].to_numpy(),
            "ttls": frame["ttls"].to_numpy(),
            "frame": packets["frame"].to_numpy()[rows],
            "ts_ns": packets["ts_ns"].to_numpy()[rows],
            "src": frame["ip_src"].to_numpy(),
            "dst": frame["ip_dst"].to_numpy(),
            "ip_id": frame["ip_id"].to_numpy(),
            "ip_ttl": frame["ip_ttl"].to_numpy(),
        }
    )
    return out.sort_values(["group", "ts_ns", "frame"], kind="stable").reset_index(drop=True)


#: parts the packed (src, dst, id) keys are hashed in (a power of two)
_KEY_PARTS = 8


def _repeated_triples(packets: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """For each of ``rows``: does its (ip_src, ip_dst, ip_id) occur more than once among them?

    The three values are packed into one int64 when they fit (address codes below 2**14 or so,
    IP ids of 32 bits): one hashed column costs a fraction of a three-column DataFrame's memory
    on millions of rows. Otherwise the three columns are compared as they are.
    """
    span = len(packets["ip_src"].cat.categories) + 1  # codes -1 .. span - 2, shifted by one
    ip_id = _gather(packets, "ip_id", rows)
    if len(rows) and span * span < (1 << 30) and ip_id.min() >= -1 and ip_id.max() < (1 << 32):
        key = _gather(packets, "ip_src", rows)
        key += 1
        key *= span
        key += _gather(packets, "ip_dst", rows)
        key += 1
        key <<= 33
        ip_id += 1
        key |= ip_id
        del ip_id
        # equal keys fall in the same part (by their low bits): hashing a part at a time keeps
        # the hash table a fraction of the size of one over all rows
        repeated = np.zeros(len(key), dtype=bool)
        low = key & (_KEY_PARTS - 1)
        for part in range(_KEY_PARTS):
            at = np.flatnonzero(low == part)
            repeated[at] = pd.Series(key[at], copy=False).duplicated(keep=False).to_numpy()
        return repeated
    triple = pd.DataFrame(
        {
            "ip_src": _gather(packets, "ip_src", rows),
            "ip_dst": _gather(packets, "ip_dst", rows),
            "ip_id": ip_id,
        }
    )
    return triple.duplicated(keep=False).to_numpy()  # type: ignore[no-any-return]


#: distinct falling TTLs that make a loop without an ICMP time exceeded to confirm it
MIN_LOOP_TTLS = 4


def _loop_table(cap: LoadedCapture, repeats: pd.DataFrame) -> pd.DataFrame:
    columns = ["group", "src", "dst", "ip_id", "passes", "ttls", "ttl_first", "ttl_last"]
    columns += ["first_ts", "last_ts", "first_row", "second_row", "last_row", "te_row", "te_src"]
    if repeats.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in columns})
    by = repeats.groupby("group", sort=False)
    stats = by.agg(
        src=("src", "first"),
        dst=("dst", "first"),
        ip_id=("ip_id", "first"),
        passes=("row", "size"),
        ttls=("ttls", "first"),
        ttl_first=("ip_ttl", "first"),
        ttl_last=("ip_ttl", "last"),
        ttl_max=("ip_ttl", "max"),
        ttl_min=("ip_ttl", "min"),
        first_ts=("ts_ns", "first"),
        last_ts=("ts_ns", "last"),
        first_row=("row", "first"),
        last_row=("row", "last"),
    ).reset_index()
    second = repeats[repeats.groupby("group").cumcount() == 1].set_index("group")["row"]
    stats["second_row"] = stats["group"].map(second).fillna(-1).astype(np.int64)
    falling = (stats.ttl_first == stats.ttl_max) & (stats.ttl_last == stats.ttl_min)
    # ICMP time exceeded in transit quoting the packet (source, destination, IP id)
    packets = cap.packets
    te_mask = (
        (packets["ip_proto"].to_numpy() == 1)
        & (packets["icmp_type"].to_numpy() == 11)
        & (packets["icmp_code"].to_numpy() == 0)
    )
    te = pd.DataFrame(
        {
            "te_row": np.flatnonzero(te_mask),
            "src": packets["icmp_inner_src"].cat.codes.to_numpy(dtype=np.int64)[te_mask],
            "dst": packets["icmp_inner_dst"].cat.codes.to_numpy(dtype=np.int64)[te_mask],
            "ip_id": packets["icmp_inner_id"].to_numpy(dtype=np.int64)[te_mask],
            "te_src": packets["ip_src"].cat.codes.to_numpy(dtype=np.int64)[te_mask],
        }
    ).drop_duplicates(["src", "dst", "ip_id"])
    stats = stats.merge(te, on=["src", "dst", "ip_id"], how="left")
    stats["te_row"] = stats["te_row"].fillna(-1).astype(np.int64)
    stats["te_src"] = stats["te_src"].fillna(-1).astype(np.int64)
    enough = (stats.ttls >= MIN_LOOP_TTLS) | (stats.te_row >= 0)
    return stats.loc[falling & enough, columns].sort_values("first_ts").reset_index(drop=True)


def _gather(packets: pd.DataFrame, name: str, rows: np.ndarray) -> np.ndarray:
    """Column ``name`` (codes for Categoricals) at positions ``rows``, as int64.

    Gathers one column at a time: ``packets.loc[mask]`` would first copy whole rows (all ~70
    columns) only to read a few of them, a peak of memory on large captures.
    """
    column = packets[name]
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy()[rows].astype(np.int64, copy=False)
    return column.to_numpy()[rows].astype(np.int64, copy=False)


def _tcp_control_table(cap: LoadedCapture) -> pd.DataFrame:
    from netdiag.capture.schema import TCP_RST, TCP_SYN

    packets = cap.packets
    flags = packets["tcp_flags"].to_numpy() if len(packets) else np.zeros(0, dtype=np.int64)
    keep = (
        (
            (packets["ip_proto"].to_numpy() == 6)
            & (flags >= 0)
            & ((flags & (TCP_SYN | TCP_RST)) != 0)
            & (packets["ip_src"].cat.codes.to_numpy() >= 0)
        )
        if len(packets)
        else np.zeros(0, dtype=bool)
    )
    rows = np.flatnonzero(keep)
    del keep
    columns = {"frame": "frame", "ts_ns": "ts_ns", "src": "ip_src", "dst": "ip_dst"}
    columns |= {"sport": "sport", "dport": "dport", "seq": "tcp_seq", "ack": "tcp_ack"}
    columns |= {"tflags": "tcp_flags"}
    table = {"row": rows}
    table |= {out: _gather(packets, name, rows) for out, name in columns.items()}
    return pd.DataFrame(table)


#: link ids at or above this are capture interface ids (see link_ids), below it SLL2 ifindexes
LINK_ID_IFACE_OFFSET = 1_000_000


def link_ids(packets: pd.DataFrame) -> np.ndarray:
    """One number per link a packet was seen on: the SLL2 ifindex of a `-i any` capture, else the
    capture's interface id plus LINK_ID_IFACE_OFFSET (so the two kinds never collide)."""
    ifindex = packets["sll_ifindex"].to_numpy(dtype=np.int64)
    iface = packets["iface"].to_numpy(dtype=np.int64)
    return np.where(ifindex >= 0, ifindex, iface + LINK_ID_IFACE_OFFSET)


def rows_in(
    left: pd.DataFrame, right: pd.DataFrame, on: list[str], right_on: list[str] | None = None
) -> np.ndarray:
    """For each row of ``left``: is its key (columns ``on``) among ``right``'s (``right_on``)?"""
    keys = right[right_on or on].drop_duplicates()
    keys.columns = on
    hit = left[on].merge(keys, on=on, how="left", indicator=True)["_merge"] == "both"
    return hit.to_numpy(dtype=bool)


def _arp_claims(arp: pd.DataFrame) -> pd.DataFrame:
    columns = ["row", "frame", "ts_ns", "kind", "ip", "mac", "eth_dst", "macs"]
    if arp.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in columns})
    ip = arp["arp_spa"].cat.codes.to_numpy(dtype=np.int64)
    mac = arp["arp_sha"].cat.codes.to_numpy(dtype=np.int64)
    eth_src = arp["eth_src"].cat.codes.to_numpy(dtype=np.int64) if "eth_src" in arp else mac
    mac_text = arp["arp_sha"].astype(object).fillna("").astype(str)
    ip_text = arp["arp_spa"].astype(object).fillna("").astype(str)
    first_octet = mac_text.str.slice(0, 2).map(lambda h: int(h, 16) if h else 1)
    bad_mac = mac_text.isin(["", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"]) | (
        (first_octet & 1) == 1
    )
    bad_ip = ip_text.isin(["", "0.0.0.0", "255.255.255.255"]) | ip_text.str.match(
        r"^(127\.|22[4-9]\.|23\d\.|24\d\.|25[0-5]\.)"
    )
    kind = arp["kind"].astype(str).to_numpy()
    damaged = arp["decode_error"].notna().to_numpy() if "decode_error" in arp else False
    keep = (
        ~damaged
        & np.isin(kind, ["request", "reply", "gratuitous"])
        & (ip >= 0)
        & (mac >= 0)
        & ((eth_src == mac) | (eth_src < 0))
        & ~bad_mac.to_numpy()
        & ~bad_ip.to_numpy()
    )
    claims = pd.DataFrame(
        {
            "row": arp["row"].to_numpy(dtype=np.int64)[keep],
            "frame": arp["frame"].to_numpy(dtype=np.int64)[keep],
            "ts_ns": arp["ts_ns"].to_numpy(dtype=np.int64)[keep],
            "kind": kind[keep],
            "ip": ip[keep],
            "mac": mac[keep],
            "eth_dst": (
                arp["eth_dst"].cat.codes.to_numpy(dtype=np.int64)
                if "eth_dst" in arp
                else np.full(len(arp), -1)
            )[keep],
        }
    )
    # an `-i any` capture sees its own host send ARP from several interfaces (eth0, docker0,
    # veths) with one sender address: that is one claimant, not a conflict. Keep, per address,
    # only the MAC the host uses most for it among its outgoing packets.
    pkttype = arp["sll_pkttype"].to_numpy(dtype=np.int64)[keep] if "sll_pkttype" in arp else None
    if pkttype is not None and (pkttype == 4).any():
        outgoing = claims[pkttype == 4]
        counts = outgoing.groupby(["ip", "mac"]).size().rename("n").reset_index()
        main = counts.sort_values(["ip", "n"], ascending=[True, False]).drop_duplicates("ip")
        claims = claims[(pkttype != 4) | rows_in(claims, main, ["ip", "mac"])]
    # ARP is per link: two MACs claiming one address on different links (a host's docker0 and
    # eth0 seen in one multi-interface capture) do not conflict. A conflict needs a link (capture
    # interface) on which two MACs claim the address.
    if "sll_ifindex" in arp and "iface" in arp:
        ifkey = link_ids(arp)[keep]
        ifkey = ifkey[claims.index.to_numpy()]  # claims keeps the positions of its rows
        per_link = claims.assign(link=ifkey).groupby(["ip", "link"])["mac"].nunique()
        shared = set(per_link[per_link >= 2].index.get_level_values("ip"))
        claims = claims[claims["ip"].isin(shared)]
    claims["macs"] = claims.groupby("ip")["mac"].transform("nunique")
    return claims[claims["macs"] >= 2].sort_values(["ip", "ts_ns", "frame"]).reset_index(drop=True)
