"""A NAT device (LVS-NAT director, DNAT gateway) receives connections and never forwards them.

What it detects
---------------
From packets, at the NAT device (a capture with two or more interfaces): TCP SYNs for an address
A:x arrive, are retransmitted, and neither a copy of them (same source, port and ISN) leaves
towards a real server nor any SYN-ACK comes back. From facts, with or without a capture: a host
that is meant to forward (an IPVS service with NAT real servers, DNAT or masquerade rules) has
net.ipv4.ip_forward = 0. Packets and facts together give high confidence.

Why it matters
--------------
The service address answers pings (the host is up) but every connection times out: the kernel
silently drops packets it may not forward, without any ICMP error, so nothing in the network
says why. A reboot that lost the sysctl, or a new director built without it, is the usual cause.

Evidence
--------
The first SYN of each unanswered connection as it arrives (syn-not-forwarded) and its
retransmissions (syn-retransmission). With facts: the ip_forward line and the NAT rule or
service that needs it.

Remediation
-----------
On the NAT device: `sysctl -w net.ipv4.ip_forward=1` and persist it
(`net.ipv4.ip_forward = 1` in /etc/sysctl.d/90-forward.conf); then check that the SYNs leave
towards the real servers.

False positives
---------------
Without facts, a host whose firewall drops the port looks the same on the wire (SYNs in, nothing
out): the message says so, and only facts (ip_forward = 0) give high confidence. A capture with a single interface
cannot show what leaves, so the packet test needs two interfaces (pcapng with several interfaces,
or `-i any`).

References
----------
- Seeds 003 and 004: LVS-NAT needs ip_forward=1 on the director.
- Linux ip-sysctl: ip_forward.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from netdiag.capture.schema import TCP_ACK, TCP_SYN
from netdiag.engine import AnalysisContext, Finding, Rule
from netdiag.engine.context import link_ids, rows_in
from netdiag.engine.finding import EVIDENCE_CAP, Confidence
from netdiag.render import wireshark_filter as wf

_MOD = 2**32


class NatDeviceNotForwarding(Rule):
    code = "NAT002"
    name = "nat-device-not-forwarding"
    title = "NAT device does not forward (SYNs arrive and never leave; ip_forward=0)"
    category = "nat"
    severity = "error"
    needs = frozenset()
    needs_any = frozenset({"packets", "facts"})
    references = ("seeds 003 and 004 (LVS-NAT)", "Linux ip-sysctl: ip_forward")

    def check(self, ctx: AnalysisContext) -> Iterable[Finding]:
        fact_hosts = self._hosts_not_forwarding(ctx)
        reported: set[str] = set()
        for index in ctx.capture_indices():
            for finding, host in self._from_packets(ctx, index, fact_hosts):
                if host:
                    reported.add(host)
                yield finding
        for name, (_host, why, used) in fact_hosts.items():
            if name in reported:
                continue
            yield self.finding(
                ctx,
                subject=f"{name} does not forward",
                message=f"{name} has net.ipv4.ip_forward = 0 but {why}: it drops what it should forward.",
                confidence="low",
                facts_used=used,
                explanation="With ip_forward = 0 the kernel drops every packet not addressed to the host "
                "itself, after DNAT too, without an ICMP error.",
                remediation=_REMEDIATION,
                captures=[],
            )

    @staticmethod
    def _hosts_not_forwarding(ctx: AnalysisContext) -> dict:
        """Hosts meant to forward (NAT services or rules) whose facts say ip_forward = 0."""
        out: dict = {}
        if ctx.facts is None:
            return out
        for host in ctx.facts.hosts.values():
            eff = host.effective_sysctl("ip_forward")
            if eff.value != 0:
                continue
            nat_services = [
                s
                for s in host.services
                if any(rs.method.upper() in ("NAT", "MASQ") for rs in s.real_servers)
            ]
            nat_rules = [r for r in host.nat_rules if r.action in ("DNAT", "SNAT", "MASQUERADE")]
            if not (nat_services or nat_rules):
                continue
            used = [u for u in (ctx.fact(s.source) for s in eff.used) if u is not None]
            if nat_services:
                s = nat_services[0]
                why = f"it serves {s.vip}:{s.port} with NAT real servers"
                used += [u for u in [ctx.fact(s.source)] if u is not None]
            else:
                r = nat_rules[0]
                why = f"it has {r.action} rules"
                used += [u for u in [ctx.fact(r.source)] if u is not None]
            out[host.name] = (host, why, used)
        return out

    def _from_packets(
        self, ctx: AnalysisContext, index: int, fact_hosts: dict
    ) -> Iterable[tuple[Finding, str]]:
        packets = ctx.captures[index].packets
        if len(packets) == 0:
            return
        iface = link_ids(packets)
        if len(np.unique(iface)) < 2:
            return  # one interface: what leaves cannot be seen
        tcp = ctx.tcp_control(index)
        syn = tcp[((tcp.tflags & TCP_SYN) != 0) & ((tcp.tflags & TCP_ACK) == 0)]
        if syn.empty:
            return
        synack = tcp[(tcp.tflags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)]
        answered = syn.merge(
            synack[["dst", "dport", "ack"]].rename(
                columns={"dst": "src", "dport": "sport", "ack": "a"}
            ),
            on=["src", "sport"],
        )
        answered = answered[answered.a == (answered.seq + 1) % _MOD]
        per_attempt = (
            syn.groupby(["src", "sport", "seq"])
            .agg(
                dsts=("dst", "nunique"),
                dst=("dst", "first"),
                dport=("dport", "first"),
                n=("row", "size"),
            )
            .reset_index()
        )
        stuck = per_attempt[
            (per_attempt.dsts == 1) & ~rows_in(per_attempt, answered, ["src", "sport", "seq"])
        ]
        if stuck.empty:
            return
        # only addresses whose connections are never forwarded nor answered at all
        services = answered[["dst", "dport"]].drop_duplicates()  # few rows: distinct services
        served = set(zip(services.dst, services.dport, strict=True))
        forwarded = per_attempt[per_attempt.dsts > 1]
        targets = forwarded[["dst", "dport"]].drop_duplicates()
        forwarded_to = set(zip(targets.dst, targets.dport, strict=True))
        for (dst, dport), attempts in stuck.groupby(["dst", "dport"]):
            if (dst, dport) in served or (dst, dport) in forwarded_to or len(attempts) < 2:
                continue
            yield self._packet_finding(ctx, index, int(dst), int(dport), attempts, syn, fact_hosts)

    def _packet_finding(
        self, ctx, index, dst, dport, attempts, syn, fact_hosts
    ) -> tuple[Finding, str]:  # type: ignore[no-untyped-def]
        packets = ctx.captures[index].packets
        addr = ctx.ip_text(index, dst)
        rows = syn.merge(attempts[["src", "sport", "seq"]], on=["src", "sport", "seq"]).sort_values(
            "ts_ns"
        )
        first = ~rows.duplicated(["src", "sport", "seq"])
        roles = np.where(first, "syn-not-forwarded", "syn-retransmission")
        notes = np.where(
            first, "arrives; no copy leaves, nothing answers", "the client tries again"
        )
        table = rows[["row", "ts_ns"]].assign(role=roles, note=notes).head(EVIDENCE_CAP)
        evidence = []
        for (role, note), r in table.groupby(["role", "note"], sort=False):
            evidence.extend(ctx.evidence(index, packets.iloc[r["row"].to_numpy()], role, note))
        host_name, used, why = "", [], ""
        if ctx.facts is not None:
            owners = ctx.facts.owners(addr) or []
            services = ctx.facts.services_by_vip(addr, dport)
            candidates = [h.name for h, _ in owners] + [h.name for h, _ in services]
            for name in candidates:
                if name in fact_hosts:
                    host_name = name
                    _host, why, used = fact_hosts[name]
                    break
        confidence: Confidence = "high" if host_name else "medium"
        n = len(attempts)
        message = (
            f"{n} connections to {addr}:{dport} arrived ({len(rows)} SYNs with retransmissions) and none "
            "was forwarded or answered"
            + (
                f"; facts: {host_name} has net.ipv4.ip_forward = 0 and {why}"
                if host_name
                else " (from packets alone: a firewall dropping the port looks the same)"
            )
            + "."
        )
        sports = sorted({int(p) for p in attempts.sport})[:20]
        filt = wf.all_of(
            [
                wf.addr(addr, "dst"),
                f"tcp.dstport == {dport}",
                "tcp.flags.syn == 1",
                wf.in_set("tcp.srcport", sports),
            ]
        )
        finding = self.finding(
            ctx,
            subject=f"{host_name or addr} does not forward",
            message=message,
            confidence=confidence,
            evidence=evidence,
            evidence_total=len(rows),
            wireshark_filter=filt,
            facts_used=used,
            explanation=(
                f"The SYNs for {addr}:{dport} reach the device but no rewritten copy leaves towards a "
                "real server and nothing answers: the kernel drops them instead of forwarding."
            ),
            remediation=_REMEDIATION,
            captures=[ctx.captures[index].path],
        )
        return finding, host_name


_REMEDIATION = (
    "On the NAT device: `sysctl -w net.ipv4.ip_forward=1`, and persist it with the line\n"
    "net.ipv4.ip_forward = 1\nin /etc/sysctl.d/90-forward.conf."
)
