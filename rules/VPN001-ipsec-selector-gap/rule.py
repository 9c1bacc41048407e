"""Traffic not covered by an IPsec tunnel's selectors loops instead of being encrypted.

What it detects
---------------
A VPN gateway encrypts traffic from its local subnets to the remote subnets; a source S outside
the local selector (leftsubnet / local_ts / the cloud's local CIDR) sending to a remote R is not
encrypted, falls back to the ordinary routes, which send it back to the network that routes R to
the gateway: the packet loops with its TTL falling until the gateway answers ICMP time exceeded
from its private address; traceroute from S shows the gateway on every other hop. The rule needs
the loop (the same packet, IP id and payload, seen again with a lower TTL) in a capture that also
carries ESP (the gateway's vantage point), or facts with an IPsec connection whose remote subnet
covers R and whose local subnet misses S.

Why it matters
--------------
Some clients reach the other side of the VPN and others do not, with a confusing traceroute;
IKE and the tunnel are up, so checks of the VPN itself show nothing wrong. The loop also burns
bandwidth on the path between the router and the gateway.

Evidence
--------
The looped packet's first, next and last pass (loop-first-pass, loop-next-pass, loop-last-pass),
the time exceeded from the gateway (time-exceeded-from-gateway), a traceroute probe expiring at
the gateway (traceroute-hop-is-gateway), and for contrast a covered source's request to the
remote side (covered-request) and the ESP that carries it (esp-for-covered). With facts: the
connection, its local and remote selectors, and the line to change.

Remediation
-----------
Add S's network to the local selector of the connection on the gateway (e.g.
`leftsubnet=10.16.0.0/16,10.64.3.0/24` in ipsec.conf, `local_ts` in swanctl.conf, the local CIDR
of a cloud VPN connection) and the same network to the peer's remote selector
(rightsubnet / remote_ts), then reload the connection. Alternatively route S's traffic for R
somewhere else than the gateway.

False positives
---------------
A routing loop near a gateway that is unrelated to its selectors (a wrong static route) looks the
same on the wire: without facts the confidence is medium and RT002 reports the loop too. With
facts, the rule only confirms when a connection covers R remotely and misses S locally.

References
----------
- Seed 002, scenario 1: VPN connection local subnet 10.16.0.0/16 misses client 10.64.3.22.
- RFC 4301 section 4.4.1 (Security Policy Database, traffic selectors).
- strongSwan ipsec.conf leftsubnet / swanctl.conf local_ts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import PurePath

import numpy as np
import pandas as pd

from netdiag.engine import AnalysisContext, Finding, Rule
from netdiag.engine.finding import Confidence
from netdiag.render import wireshark_filter as wf

TRACEROUTE_PORTS = (33434, 33534)


class IpsecSelectorGap(Rule):
    code = "VPN001"
    name = "ipsec-selector-gap"
    title = "Traffic outside the IPsec selectors loops instead of entering the tunnel"
    category = "vpn"
    severity = "error"
    needs = frozenset({"packets"})
    references = ("seed 002 scenario 1", "RFC 4301 4.4.1 (SPD selectors)")

    def check(self, ctx: AnalysisContext) -> Iterable[Finding]:
        for index in ctx.capture_indices():
            loops = ctx.loops(index)
            if loops.empty:
                continue
            packets = ctx.captures[index].packets
            has_esp = bool((packets["esp_spi"].to_numpy() >= 0).any())
            for (src, dst), groups in loops.groupby(["src", "dst"], sort=False):
                finding = self._check_pair(ctx, index, int(src), int(dst), groups, has_esp)
                if finding is not None:
                    yield finding

    def _check_pair(
        self,
        ctx: AnalysisContext,
        index: int,
        src: int,
        dst: int,
        groups: pd.DataFrame,
        has_esp: bool,
    ) -> Finding | None:
        s, r = ctx.ip_text(index, src), ctx.ip_text(index, dst)
        conn_info = self._facts(ctx, s, r)
        if not has_esp and conn_info is None:
            return None  # a loop with no sign of IPsec: RT002's finding only
        packets = ctx.captures[index].packets
        first = groups.iloc[0]
        gateway = (
            ctx.ip_text(index, int(groups.loc[groups.te_src >= 0, "te_src"].iloc[0]))
            if (groups.te_src >= 0).any()
            else ""
        )
        rows = [
            (int(first.first_row), "loop-first-pass", f"first pass, ttl {int(first.ttl_first)}"),
            (int(first.second_row), "loop-next-pass", "the same packet again, lower ttl"),
            (int(first.last_row), "loop-last-pass", f"last pass, ttl {int(first.ttl_last)}"),
            (
                int(first.te_row),
                "time-exceeded-from-gateway",
                "ICMP time exceeded from the gateway's private address",
            ),
        ]
        probe_te = self._traceroute_hop(packets, src, dst)
        if probe_te >= 0:
            rows.append(
                (probe_te, "traceroute-hop-is-gateway", "a traceroute probe expires at the gateway")
            )
        covered_row, esp_row, covered_src = self._covered(ctx, index, packets, src, dst, groups)
        if covered_row >= 0:
            rows.append(
                (
                    covered_row,
                    "covered-request",
                    f"a covered source ({covered_src}) to the remote side",
                )
            )
        if esp_row >= 0:
            rows.append((esp_row, "esp-for-covered", "ESP: covered traffic is encrypted"))
        evidence = []
        for row, role, note in rows:
            if row >= 0:
                evidence.extend(ctx.evidence(index, packets.iloc[[row]], role, note, verbose=True))
        total = int(groups["passes"].sum() + (groups["te_row"] >= 0).sum())

        facts_used = []
        confidence: Confidence = "medium"
        selector = ""
        remediation = (
            f"Add {s}'s network to the local traffic selector of the IPsec connection that carries "
            f"{r} (leftsubnet / local_ts / the cloud connection's local CIDR), and to the peer's "
            "remote selector; then reload the connection."
        )
        if conn_info is not None:
            host, conn, cidr = conn_info
            confidence = "high"
            for source in (conn.local_subnets_source, conn.remote_subnets_source, conn.source):
                fact = ctx.fact(source)
                if fact is not None:
                    facts_used.append(fact)
            selector = (
                f" Facts: {host.name} connection {conn.name} has local {', '.join(conn.local_subnets)} "
                f"and remote {', '.join(conn.remote_subnets)}: {r} is covered, {s} is not."
            )
            line = getattr(conn.local_subnets_source, "text", "").strip()
            source = conn.local_subnets_source
            # the file's name, not its path: the report reads the same wherever the facts lie
            ref = f"{PurePath(source.file).name}:{source.line}" if line else ""
            if line:
                remediation = (
                    f"On {host.name}, connection {conn.name}, change ({ref})\n"
                    f"  {line}\nto\n  {line},{cidr}\n"
                    f"and add {cidr} to the peer's remote selector (rightsubnet / remote_ts); reload the "
                    "connection."
                )
        message = (
            f"Packets from {s} to {r} are not encrypted and loop: up to {int(groups['passes'].max())} "
            f"passes of the same packet with a falling TTL"
            + (
                f", ICMP time exceeded from the gateway's private address {gateway}"
                if gateway
                else ""
            )
            + (
                ", while other sources' traffic to the remote side leaves as ESP"
                if esp_row >= 0
                else ""
            )
            + "."
            + selector
        )
        filt = wf.any_of(
            [
                wf.all_of(
                    [wf.addr(s, "src"), wf.addr(r, "dst"), f"ip.id == {hex(int(first.ip_id))}"]
                ),
                wf.all_of(["icmp.type == 11", wf.addr(s, "dst")]) if gateway else "",
                wf.all_of([wf.addr(covered_src, "src"), wf.addr(r, "dst")])
                if covered_row >= 0
                else "",
                "esp" if esp_row >= 0 else "",
            ]
        )
        return self.finding(
            ctx,
            subject=f"{s} -> {r} outside IPsec selectors",
            message=message,
            confidence=confidence,
            evidence=evidence,
            evidence_total=total,
            wireshark_filter=filt,
            facts_used=facts_used,
            explanation=(
                f"The gateway only encrypts traffic matching its selectors. {s} is outside the local "
                f"selector, so its packets for {r} are routed normally, back to the router whose "
                f"route for {r} points at the gateway: they circle until the TTL runs out."
            ),
            remediation=remediation,
            captures=[ctx.captures[index].path],
        )

    @staticmethod
    def _traceroute_hop(packets: pd.DataFrame, src: int, dst: int) -> int:
        """Row of the first time exceeded quoting a traceroute probe from src to dst, or -1."""
        te = (packets["icmp_type"].to_numpy() == 11) & (packets["ip_proto"].to_numpy() == 1)
        probe = (
            te
            & (packets["icmp_inner_src"].cat.codes.to_numpy() == src)
            & (packets["icmp_inner_dst"].cat.codes.to_numpy() == dst)
            & (packets["icmp_inner_proto"].to_numpy() == 17)
            & (packets["icmp_inner_dport"].to_numpy() >= TRACEROUTE_PORTS[0])
            & (packets["icmp_inner_dport"].to_numpy() <= TRACEROUTE_PORTS[1])
        )
        hits = np.flatnonzero(probe)
        return int(hits[0]) if len(hits) else -1

    @staticmethod
    def _covered(
        ctx: AnalysisContext,
        index: int,
        packets: pd.DataFrame,
        src: int,
        dst: int,
        groups: pd.DataFrame,
    ) -> tuple[int, int, str]:
        """A request from another source to the same destination that did not loop, and ESP."""
        loops = ctx.loops(index)
        looping_sources = set(loops.loc[loops.dst == dst, "src"])
        s = packets["ip_src"].cat.codes.to_numpy()
        d = packets["ip_dst"].cat.codes.to_numpy()
        other = (d == dst) & ~np.isin(s, list(looping_sources | {src})) & (s >= 0)
        # prefer the same kind of packet as the looped one (a ping beside a ping)
        proto = packets["ip_proto"].to_numpy()
        looped_proto = proto[int(groups.iloc[0].first_row)]
        candidates = np.flatnonzero(other & (proto == looped_proto))
        if not len(candidates):
            candidates = np.flatnonzero(other)
        esp = np.flatnonzero(packets["esp_spi"].to_numpy() >= 0)
        if not len(candidates):
            return -1, int(esp[0]) if len(esp) else -1, ""
        row = int(candidates[0])
        ts = packets["ts_ns"].to_numpy()
        after = esp[ts[esp] >= ts[row]]
        after = after[np.argsort(ts[after], kind="stable")]
        esp_row = int(after[0]) if len(after) else (int(esp[0]) if len(esp) else -1)
        return row, esp_row, ctx.ip_text(index, int(s[row]))

    @staticmethod
    def _facts(ctx: AnalysisContext, s: str, r: str):  # type: ignore[no-untyped-def]
        """(host, conn, CIDR to add) for a connection covering r remotely and missing s locally."""
        facts = ctx.facts
        if facts is None:
            return None
        for host, conn in facts.ipsec_covering_remote(r):
            if conn.covers_local(s):
                continue
            cidr = f"{s}/32"
            for owner, _iface in facts.owners(s):
                for _i, addr in owner.addresses():
                    if addr.address == s:
                        cidr = str(ipaddress.ip_interface(f"{s}/{addr.prefixlen}").network)
            return host, conn, cidr
        return None
