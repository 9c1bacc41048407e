"""Private source addresses leave an egress NAT gateway untranslated (no SNAT/masquerade for them).

What it detects
---------------
At the gateway (a capture with two or more interfaces): the same packet (destination, IP id,
protocol, payload) seen coming in from a private source S (RFC 1918, 100.64.0.0/10) and leaving on
another interface towards a public destination with S unchanged, while other sources' packets are
translated on the way out (the device does NAT, just not for S). At the far end: packets from S
reach a public server, whose replies to S draw ICMP destination unreachable from the edge. With
facts: no SNAT/MASQUERADE rule of the gateway covers S.

Why it matters
--------------
Hosts of one subnet have no Internet access while their neighbours do. Their packets do go out;
the answers cannot come back (nobody routes private addresses on the Internet), so connections
time out with no error on the client.

Evidence
--------
At the gateway: the packet leaving with its private source (untranslated-private-source-out)
and, for contrast, a translated packet of another source (translated-out). At the server: the
packets from the private source (syn-from-private-source, request-from-private-source) and the
edge's ICMP unreachable about the replies (icmp-unreachable). With facts: the existing source-NAT
rules and the subnet of S.

From facts alone (`--facts` and no capture), the configuration is audited: a host with
net.ipv4.ip_forward = 1 and a SNAT/MASQUERADE rule naming both a source subnet and the outside
interface, one of whose connected private subnets (another interface than the outside one) no
source-NAT rule on that interface covers, gives a low-confidence finding with no frames. facts_used
lists the subnet's route line, the ip_forward line and the existing rules; the message names the
hosts of the facts whose default gateway is the host's address on that subnet.

Remediation
-----------
Add S's subnet to the gateway's source NAT, on the outside interface, e.g. nftables
`oifname "eth0" ip saddr 10.2.0.0/24 masquerade`, or iptables
`iptables -t nat -A POSTROUTING -s 10.2.0.0/24 -o eth0 -j MASQUERADE` (the finding uses the real
subnet and interface when the facts give them).

False positives
---------------
Routers between private networks forward private sources unchanged by design: the rule only
counts packets towards public destinations, and at the gateway only when the same device
translates other sources. At a server, private sources are normal inside a private network: the
server-side form needs the edge's ICMP unreachable for the replies.

The facts-only audit needs a rule that names the outside interface and a source subnet (docker's
own `-s 172.17.0.0/16 ! -o docker0` masquerade does not show that other subnets are meant to be
translated), so a plain router or a docker host with a second private NIC is not reported. An
inside subnet that is deliberately routed without NAT (to a private WAN) would still be reported:
the finding is low-confidence and says it comes from facts alone.

References
----------
- RFC 1918 (private address space), RFC 6598 (100.64.0.0/10), RFC 3022 (traditional NAT).
- nftables wiki: performing network address translation (masquerade).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import numpy as np
import pandas as pd

from netdiag.engine import AnalysisContext, Finding, Rule
from netdiag.engine.context import link_ids
from netdiag.render import wireshark_filter as wf

PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
_SPECIAL = tuple(
    ipaddress.ip_network(n)
    for n in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4")
)


def _private(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return ip.version == 4 and any(ip in n for n in PRIVATE)


def _public(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return ip.version == 4 and not any(ip in n for n in PRIVATE + _SPECIAL)


class MissingSnat(Rule):
    code = "NAT003"
    name = "missing-snat"
    title = "Private sources leave the NAT gateway untranslated (missing SNAT/masquerade)"
    category = "nat"
    severity = "error"
    needs = frozenset()
    needs_any = frozenset({"packets", "facts"})
    references = ("RFC 1918", "RFC 3022 (traditional NAT)")

    def check(self, ctx: AnalysisContext) -> Iterable[Finding]:
        if ctx.facts_only():
            yield from self._audit_facts(ctx)
            return
        for index in ctx.capture_indices():
            yield from self._gateway_side(ctx, index)
            yield from self._server_side(ctx, index)

    # --- at the gateway --------------------------------------------------------------------------
    def _gateway_side(self, ctx: AnalysisContext, index: int) -> Iterable[Finding]:
        p = ctx.captures[index].packets
        if len(p) == 0:
            return
        iface = link_ids(p)
        if len(np.unique(iface)) < 2:
            return
        v4 = (p["ip_version"].to_numpy() == 4) & (p["ip_src"].cat.codes.to_numpy() >= 0)
        # cheap pre-filter: a packet seen twice has its (destination, IP id) seen twice; only
        # those rows (and a few colliding ones) are gathered and compared on the whole key
        rows = np.flatnonzero(v4)
        dst_id = (
            p["ip_dst"].cat.codes.to_numpy(dtype=np.int64)[rows] * 65536
            + p["ip_id"].to_numpy(dtype=np.int64)[rows]
        )
        rows = rows[pd.Series(dst_id).duplicated(keep=False).to_numpy()]
        frame = pd.DataFrame(
            {
                "row": rows,
                "ts_ns": p["ts_ns"].to_numpy()[rows],
                "iface": iface[rows],
                "src": p["ip_src"].cat.codes.to_numpy(dtype=np.int64)[rows],
                "dst": p["ip_dst"].cat.codes.to_numpy(dtype=np.int64)[rows],
                "ip_id": p["ip_id"].to_numpy(dtype=np.int64)[rows],
                "proto": p["ip_proto"].to_numpy(dtype=np.int64)[rows],
                "dport": p["dport"].to_numpy(dtype=np.int64)[rows],
                "hash": p["payload_hash"].to_numpy(dtype=np.int64)[rows],
                "seq": p["tcp_seq"].to_numpy(dtype=np.int64)[rows],
            }
        )
        key = ["dst", "ip_id", "proto", "dport", "hash", "seq"]
        frame = frame[frame.duplicated(key, keep=False)].sort_values("ts_ns", kind="stable")
        if frame.empty:
            return
        first = frame.groupby(key, sort=False).head(1)
        last = frame.groupby(key, sort=False).tail(1)
        pairs = first.merge(last, on=key, suffixes=("_in", "_out"))
        pairs = pairs[pairs.iface_in != pairs.iface_out]
        if pairs.empty:
            return
        ips = p["ip_src"].cat.categories
        text = np.array([str(x) for x in ips], dtype=object)
        src_private = np.array([_private(t) for t in text])
        dst_public = np.array([_public(t) for t in text])
        pairs = pairs[src_private[pairs.src_in.to_numpy()] & dst_public[pairs.dst.to_numpy()]]
        translated = pairs[pairs.src_in != pairs.src_out]
        untranslated = pairs[pairs.src_in == pairs.src_out]
        if untranslated.empty:
            return
        for src, group in untranslated.groupby("src_in"):
            s = str(ips[int(src)])
            facts_used, gateway, cidr, out_iface, style = self._facts(ctx, s, group, ips)
            if translated.empty and gateway is None:
                continue  # no sign this device does NAT at all: a plain router
            rows = [
                (
                    group[["row_out", "ts_ns_out"]].head(8),
                    "untranslated-private-source-out",
                    "leaves with its private source",
                )
            ]
            if not translated.empty:
                rows.append(
                    (
                        translated[["row_out", "ts_ns_out"]].head(2),
                        "translated-out",
                        "another source is translated",
                    )
                )
            evidence = []
            for table, role, note in rows:
                evidence.extend(
                    ctx.evidence(index, p.iloc[table["row_out"].to_numpy()], role, note)
                )
            dsts = sorted({str(ips[int(d)]) for d in group.dst})
            yield self.finding(
                ctx,
                subject=f"{s} not translated",
                message=(
                    f"{len(group)} packet{'s' if len(group) != 1 else ''} from {s} to {', '.join(dsts[:5])} "
                    f"left the gateway with the private source unchanged"
                    + (
                        f", while {translated.src_in.nunique()} other source(s) were translated"
                        if len(translated)
                        else ""
                    )
                    + (f"; facts: no SNAT/MASQUERADE on {gateway} covers {s}" if gateway else "")
                    + "."
                ),
                confidence="high" if gateway else "medium",
                evidence=evidence,
                evidence_total=len(group) + len(translated),
                wireshark_filter=wf.any_of(
                    [
                        wf.all_of([wf.addr(s, "src"), wf.addr_in(dsts[:20], "dst")]),
                        wf.all_of(
                            [
                                wf.addr_in(
                                    sorted({str(ips[int(x)]) for x in translated.src_out.head(2)}),
                                    "src",
                                ),
                                wf.addr_in(
                                    sorted({str(ips[int(x)]) for x in translated.dst.head(2)}),
                                    "dst",
                                ),
                            ]
                        )
                        if len(translated)
                        else "",
                    ]
                ),
                facts_used=facts_used,
                explanation=(
                    f"The gateway translates some sources but not {s}: its packets reach the outside "
                    f"with a private source, and replies to {s} cannot be routed back."
                ),
                remediation=self._remediation(cidr or f"{s}/32", out_iface, style),
                captures=[ctx.captures[index].path],
            )

    # --- at the far end --------------------------------------------------------------------------
    def _server_side(self, ctx: AnalysisContext, index: int) -> Iterable[Finding]:
        p = ctx.captures[index].packets
        if len(p) == 0:
            return
        unreach = (p["ip_proto"].to_numpy() == 1) & (p["icmp_type"].to_numpy() == 3)
        if not unreach.any():
            return
        ips = p["ip_src"].cat.categories
        text = np.array([str(x) for x in ips], dtype=object)
        src_private = np.array([_private(t) for t in text])
        dst_public = np.array([_public(t) for t in text])
        inner_src = p["icmp_inner_src"].cat.codes.to_numpy(dtype=np.int64)
        inner_dst = p["icmp_inner_dst"].cat.codes.to_numpy(dtype=np.int64)
        ok = unreach & (inner_src >= 0) & (inner_dst >= 0)
        ok[ok] &= dst_public[inner_src[ok]] & src_private[inner_dst[ok]]
        if not ok.any():
            return
        src = p["ip_src"].cat.codes.to_numpy(dtype=np.int64)
        dst = p["ip_dst"].cat.codes.to_numpy(dtype=np.int64)
        flags = p["tcp_flags"].to_numpy()
        for private in sorted(set(inner_dst[ok])):
            s = str(ips[int(private)])
            icmp_rows = np.flatnonzero(ok & (inner_dst == private))
            servers = set(inner_src[icmp_rows])
            from_s = np.flatnonzero((src == private) & np.isin(dst, list(servers)))
            if not len(from_s):
                continue
            syn = (
                (p["ip_proto"].to_numpy()[from_s] == 6)
                & (flags[from_s] >= 0)
                & ((flags[from_s] & 0x12) == 0x02)
            )
            evidence = ctx.evidence(
                index,
                p.iloc[from_s[syn][:4]],
                "syn-from-private-source",
                f"a public server receives {s}",
            )
            evidence += ctx.evidence(
                index,
                p.iloc[from_s[~syn][:2]],
                "request-from-private-source",
                f"a public server receives {s}",
            )
            evidence += ctx.evidence(
                index,
                p.iloc[icmp_rows[:4]],
                "icmp-unreachable",
                f"the replies to {s} cannot be delivered",
            )
            facts_used, gateway, cidr, out_iface, style = self._facts(ctx, s, None, ips)
            server_names = sorted(str(ips[int(x)]) for x in servers)
            yield self.finding(
                ctx,
                subject=f"{s} not translated",
                message=(
                    f"{len(from_s)} packet{'s' if len(from_s) != 1 else ''} from the private address {s} "
                    f"reached {', '.join(server_names)}, and {len(icmp_rows)} ICMP unreachable came back "
                    f"about the replies to {s}: its NAT gateway did not translate it"
                    + (f"; facts: no SNAT/MASQUERADE on {gateway} covers {s}" if gateway else "")
                    + "."
                ),
                confidence="high" if gateway else "medium",
                evidence=evidence,
                evidence_total=len(from_s) + len(icmp_rows),
                wireshark_filter=wf.any_of(
                    [wf.addr(s, "src"), wf.all_of(["icmp.type == 3", wf.addr(s, "dst")])]
                ),
                facts_used=facts_used,
                explanation=(
                    f"A public server sees {s} as the source: the egress NAT did not rewrite it. Its "
                    f"replies to {s} are not routable outside, so the edge answers unreachable."
                ),
                remediation=self._remediation(cidr or f"{s}/32", out_iface, style),
                captures=[ctx.captures[index].path],
            )

    # --- facts ------------------------------------------------------------------------------------
    @staticmethod
    def _facts(ctx: AnalysisContext, s: str, group, ips):  # type: ignore[no-untyped-def]
        """(facts used, gateway name, S's subnet, outside interface, rule style) when the facts show
        a host with source NAT rules, none of which covers S."""
        facts = ctx.facts
        if facts is None:
            return [], None, "", "eth0", "nft"
        for host in facts.hosts.values():
            snat = [r for r in host.nat_rules if r.action in ("SNAT", "MASQUERADE")]
            if not snat or host.nat_rules_covering_source(s):
                continue
            route = host.route_lookup(s)
            cidr = route.destination if route is not None and "/" in route.destination else ""
            used = [u for u in (ctx.fact(r.source) for r in snat) if u is not None]
            if route is not None:
                used += [u for u in [ctx.fact(route.source)] if u is not None]
            out_iface = next(
                (r.out_iface for r in snat if r.out_iface and not r.out_iface.startswith("!")),
                "eth0",
            )
            text = getattr(snat[0].source, "text", "")
            style = (
                "nft"
                if ("masquerade" in text and "-j" not in text) or "oifname" in text
                else "iptables"
            )
            return used, host.name, cidr, out_iface, style
        return [], None, "", "eth0", "nft"

    @staticmethod
    def _remediation(cidr: str, out_iface: str, style: str) -> str:
        nft = f'oifname "{out_iface}" ip saddr {cidr} masquerade'
        ipt = f"iptables -t nat -A POSTROUTING -s {cidr} -o {out_iface} -j MASQUERADE"
        first, second = (nft, ipt) if style == "nft" else (ipt, nft)
        return (
            f"Add {cidr} to the gateway's source NAT on the outside interface {out_iface}:\n"
            f"  {first}\n(or: {second}), and make it persistent."
        )

    # --- facts alone: the configuration audit -------------------------------------------------
    def _audit_facts(self, ctx: AnalysisContext) -> Iterable[Finding]:
        """Forwarding hosts that source-NAT some inside subnets out of an interface but not all."""
        facts = ctx.facts
        if facts is None:
            return
        for host in sorted(facts.hosts.values(), key=lambda h: h.name):
            if host.effective_sysctl("ip_forward").value != 1:
                continue
            snat = [r for r in host.nat_rules if r.action in ("SNAT", "MASQUERADE")]
            if not snat:
                continue
            defaults = [r for r in host.default_routes() if r.device]
            named = [r.out_iface for r in snat if r.out_iface and not r.out_iface.startswith("!")]
            outside = named[0] if named else (defaults[0].device if defaults else "")
            if not outside:
                continue
            on_outside = [r for r in snat if _applies_to(r.out_iface, outside)]
            # the intent: a rule naming both a source and the outside interface; docker's own
            # `-s 172.17.0.0/16 ! -o docker0` masquerade says nothing about the other subnets
            intent = [
                r
                for r in on_outside
                if r.src and not r.src.startswith("!") and r.out_iface == outside
            ]
            if not intent:
                continue
            for route in host.table_routes():
                if route.gateway or route.type != "unicast" or route.device in ("", "lo", outside):
                    continue
                try:
                    net = route.network
                except ValueError:
                    continue
                if net.version != 4 or net.prefixlen == 0 or not _private(str(net.network_address)):
                    continue
                first, last = str(net.network_address + 1), str(net.broadcast_address - 1)
                if any(r in on_outside for r in host.nat_rules_covering_source(first)) and any(
                    r in on_outside for r in host.nat_rules_covering_source(last)
                ):
                    continue
                yield self._facts_finding(ctx, host, route, outside, intent)

    def _facts_finding(self, ctx: AnalysisContext, host, route, outside, intent) -> Finding:  # type: ignore[no-untyped-def]
        cidr = str(route.network)
        ip_forward = host.effective_sysctl("ip_forward")
        used = [u for u in [ctx.fact(route.source)] if u is not None]
        used += [u for u in (ctx.fact(s.source) for s in ip_forward.used) if u is not None]
        used += [u for u in (ctx.fact(r.source) for r in intent) if u is not None]
        covered = sorted({r.src for r in intent})
        text = getattr(intent[0].source, "text", "")
        style = "iptables" if "-j" in text else "nft"
        # who uses this host as the gateway of that subnet (strengthens the case)
        users = [
            h.name
            for h in ctx.facts.hosts.values()  # type: ignore[union-attr]
            if h is not host
            and any(
                d.gateway and _inside(d.gateway, route.network) and host.owns(d.gateway)
                for d in h.default_routes()
            )
        ]
        return self.finding(
            ctx,
            subject=f"{cidr} not translated",
            message=(
                f"Facts: {host.name} forwards (net.ipv4.ip_forward = 1) and source-NATs "
                f"{', '.join(covered)} out of {outside}, but no SNAT/MASQUERADE rule covers its "
                f"connected subnet {cidr} on {route.device}"
                + (f" (default gateway of {', '.join(sorted(users))})" if users else "")
                + f": packets from {cidr} would leave {outside} with their private source. From "
                "facts alone: no capture shows such packets."
            ),
            confidence="low",
            facts_used=used,
            explanation=(
                f"{host.name} translates some inside subnets but not {cidr}: packets from it "
                "would reach the outside with a private source address, and replies could not be "
                "routed back."
            ),
            remediation=self._remediation(cidr, outside, style),
            captures=[],
        )


def _applies_to(out_iface: str, outside: str) -> bool:
    """Does an iptables/nft output-interface match ('' any, '!' negation, 'eth+') cover it?"""
    if not out_iface:
        return True
    negate = out_iface.startswith("!")
    name = out_iface.lstrip("!").strip()
    hit = outside.startswith(name[:-1]) if name.endswith("+") else outside == name
    return hit != negate


def _inside(address: str, net) -> bool:  # type: ignore[no-untyped-def]
    try:
        return ipaddress.ip_address(address) in net
    except (ValueError, TypeError):
        return False
