"""Packets circle between routers until their TTL runs out: a forwarding loop.

What it detects
---------------
The same IPv4 packet (same addresses, IP id, protocol, ports, sequence numbers and payload hash)
captured again and again with its TTL falling each time, from the first observation down to the
last, over at least 4 distinct TTL values, or 3 when an ICMP time exceeded (type 11 code 0)
quoting that packet was captured too. One finding per destination address, counting the looped
packets, their sources, the MAC addresses that pass them back and forth, and the router that
finally sent time exceeded.

Why it matters
--------------
A looped packet never arrives. Every packet to the destination multiplies the load on the links
of the loop by the TTL, and the sender only sees timeouts, or a traceroute stuck on the same one
or two hops. Loops come from two routers each pointing at the other for the same prefix: a route
added on one side only, a VPN gateway that does not encapsulate some traffic and hands it back to
its default gateway, a static route left behind after a change.

Evidence
--------
For the earliest looped packet: its first pass (loop-first-pass), the next pass with a lower TTL
(loop-next-pass), the last pass (loop-last-pass) and the ICMP time exceeded that quotes it
(time-exceeded). With facts, the routes of the hosts involved are followed from host to next hop
until one repeats; the lines of that cycle are listed and the confidence is high.

Remediation
-----------
Find the two (or more) routers that send the destination's prefix to each other, usually the
hosts owning the alternating MAC addresses and the source of the time exceeded, and fix the
route that should have pointed elsewhere (or be absent). With facts, the routes of the cycle are
named. If one of the routers is an IPsec gateway, see VPN001: the traffic is probably not covered
by the tunnel's selectors.

False positives
---------------
A packet seen on several interfaces of one forwarding host (veth, bridge, uplink in one `-i any`
capture) shows two or three TTL values, not a long falling series; traceroute probes are all
different packets. Captures that merge the two directions of several routers of a long path could
show 4 TTLs for one packet: check that the MAC addresses alternate between the same routers.

References
----------
- RFC 791 (Time to Live), RFC 792 (time exceeded, code 0: in transit).
- Seed 002: VPC route pointing at a VPN gateway that hands uncovered traffic back to the VPC.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from netdiag.engine import AnalysisContext, FactUsed, Finding, Rule
from netdiag.facts.model import Host
from netdiag.render import wireshark_filter as wf


class ForwardingLoop(Rule):
    code = "RT002"
    name = "forwarding-loop"
    title = "Forwarding loop: the same packet seen again and again with a falling TTL"
    category = "routing"
    severity = "error"
    needs = frozenset({"packets"})
    references = ("RFC 791 (TTL)", "RFC 792 (time exceeded)", "seed 002 (VPN gateway loop)")

    def check(self, ctx: AnalysisContext) -> Iterable[Finding]:
        for index in ctx.capture_indices():
            loops = ctx.loops(index)
            if loops.empty:
                continue
            for _dst, groups in loops.groupby("dst", sort=False):
                yield self._finding(ctx, index, groups)

    def _finding(self, ctx: AnalysisContext, index: int, groups: pd.DataFrame) -> Finding:
        packets = ctx.captures[index].packets
        ips = packets["ip_src"].cat.categories
        dst = str(ips[int(groups["dst"].iloc[0])])
        sources = sorted({str(ips[int(s)]) for s in groups["src"]})
        first = groups.iloc[0]
        roles = [
            (int(first.first_row), "loop-first-pass", f"first pass, ttl {int(first.ttl_first)}"),
            (int(first.second_row), "loop-next-pass", "the same packet again, lower ttl"),
            (int(first.last_row), "loop-last-pass", f"last pass, ttl {int(first.ttl_last)}"),
            (int(first.te_row), "time-exceeded", "ICMP time exceeded quoting this packet"),
        ]
        evidence = []
        for row, role, note in roles:
            if row >= 0:
                evidence.extend(ctx.evidence(index, packets.iloc[[row]], role, note, verbose=True))
        total = int(groups["passes"].sum() + (groups["te_row"] >= 0).sum())
        te_sources = sorted({str(ips[int(s)]) for s in groups["te_src"] if s >= 0})
        macs = self._macs(packets, groups)

        shown_ids = sorted({int(first.ip_id)})
        filt = wf.all_of(
            [wf.addr_in(sources, "src"), wf.addr(dst, "dst"), f"ip.id == {hex(shown_ids[0])}"]
        )
        n = len(groups)
        message = (
            f"{n} packet{'s' if n != 1 else ''} from {', '.join(sources)} to {dst} looped: each was "
            f"captured up to {int(groups['passes'].max())} times with its TTL falling (e.g. IP id "
            f"0x{int(first.ip_id):04x}: ttl {int(first.ttl_first)} -> {int(first.ttl_last)})"
            + (f"; ICMP time exceeded from {', '.join(te_sources)}" if te_sources else "")
            + (f"; passed back and forth by {', '.join(macs)}" if len(macs) > 1 else "")
            + "."
        )
        facts_used, cycle = self._route_cycle(ctx, dst, sources[0])
        explanation = (
            f"Routers on the path forward packets for {dst} to each other: each pass decrements the "
            f"TTL until a router drops the packet and answers with ICMP time exceeded. Nothing "
            f"reaches {dst}."
        )
        if cycle:
            explanation += f" The facts show the cycle: {cycle}."
        remediation = (
            f"Fix the route for {dst} on one of the routers of the loop"
            + (
                f" ({cycle})"
                if cycle
                else (
                    f" (the time exceeded came from {', '.join(te_sources)})" if te_sources else ""
                )
            )
            + ": it must point towards the destination, not back to the previous hop. If one of "
            "them is a VPN gateway, check that its IPsec selectors cover the source (VPN001)."
        )
        return self.finding(
            ctx,
            subject=f"loop towards {dst}",
            message=message,
            confidence="high" if cycle else "medium",
            evidence=evidence,
            evidence_total=total,
            wireshark_filter=filt,
            facts_used=facts_used,
            explanation=explanation,
            remediation=remediation,
            captures=[ctx.captures[index].path],
        )

    @staticmethod
    def _macs(packets: pd.DataFrame, groups: pd.DataFrame) -> list[str]:
        """Link-layer sources of the looped packets' first group (the routers passing it on)."""
        if "eth_src" not in packets.columns:
            return []
        first = groups.iloc[0]
        rows = np.arange(int(first.first_row), int(first.last_row) + 1)
        same = packets["ip_id"].to_numpy()[rows] == int(first.ip_id)
        macs = packets["eth_src"].iloc[rows[same]].dropna().astype(str)
        return sorted(set(macs))

    @staticmethod
    def _route_cycle(ctx: AnalysisContext, dst: str, src: str) -> tuple[list, str]:
        """Follow each host's route for ``dst`` to the host owning its gateway, until one repeats."""
        facts = ctx.facts
        if facts is None:
            return [], ""
        for start in facts.hosts.values():
            path: list[str] = []
            used: list[FactUsed] = []
            host: Host | None = start
            while host is not None and host.name not in path:
                route = host.route_lookup(dst, src=src)
                if route is None or not route.gateway or route.type != "unicast":
                    break
                path.append(host.name)
                fact = ctx.fact(route.source)
                if fact is not None:
                    used.append(fact)
                owners = facts.owners(route.gateway)
                host = owners[0][0] if owners else None
            if host is not None and host.name in path and len(path) >= 2:
                loop = path[path.index(host.name) :] + [host.name]
                return used, f"route for {dst}: " + " -> ".join(loop)
        return [], ""
