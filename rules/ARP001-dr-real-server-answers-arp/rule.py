"""An LVS-DR real server claims the VIP in ARP, so clients' frames bypass the director.

What it detects
---------------
Two or more MAC addresses claim the same IP address in ARP (replies, announcements, or requests
whose sender address is that IP) and that address is a load-balancer VIP: the facts name it as a
service address or show it on a host's lo, or the capture shows a director relaying frames for
it to another MAC, or one of the claiming MACs also owns another address (a real server with the
VIP on lo). The director's MAC is the one relaying frames for the VIP (or, from facts, the host
holding the VIP on a real interface); the others are real servers leaking the VIP. Frames for
the VIP sent straight to a real server's MAC are counted: the director is bypassed.

Why it matters
--------------
In LVS direct routing every real server holds the VIP on lo and must never answer or announce
it. When one does (arp_ignore / arp_announce left at 0 after a reboot or a new server), the router
caches the real server's MAC for the VIP: all clients' traffic lands on that one server, the
director's scheduling and health checks are bypassed, and when that server goes away the VIP is
black-holed until the ARP entry expires.

Evidence
--------
The director's ARP claim for the VIP (arp-for-vip-from-director), the real server's ARP packets
with the VIP as sender address (arp-request-with-vip-from-rs, arp-reply-for-vip-from-rs,
garp-for-vip-from-rs) and the frames for the VIP delivered to the real server's MAC by someone
other than the director (frame-to-vip-bypassing-director). With facts: the real server with the
VIP on lo, and its effective arp_ignore and arp_announce (the kernel uses max(all, interface)).

From facts alone (`--facts` and no capture), the configuration is audited: a host holding a VIP
on lo (or a dummy interface) whose effective arp_ignore < 1 or arp_announce < 2 on the interface
facing the segment (the one carrying its real-server address, else the one towards the director
or its default gateway) gives a low-confidence finding with no frames. facts_used lists the VIP's
address line, the ipvsadm/keepalived service and real-server lines, and the sysctl lines the
effective values come from; the remediation gives the exact sysctl lines with the interface name.

Remediation
-----------
On every real server, with the VIP on lo: `net.ipv4.conf.all.arp_ignore = 1`,
`net.ipv4.conf.<iface>.arp_ignore = 1`, `net.ipv4.conf.all.arp_announce = 2`,
`net.ipv4.conf.<iface>.arp_announce = 2` (the finding names the interface), persisted in
/etc/sysctl.d/; then flush the router's ARP entry for the VIP (or send a gratuitous ARP from the
director: `arping -U -I <iface> <VIP>`).

False positives
---------------
ARP probes (sender 0.0.0.0) claim nothing and are ignored, and so are ARP packets whose sender
MAC differs from the Ethernet source or is zero/multicast (fuzzed or relayed frames). A
keepalived/VRRP failover also moves a VIP from one MAC to another, but the new owner is then the
only one to claim it and no director relays frames to it: that is reported by ARP002 at info
level, not here.

The facts-only audit counts an address on lo as a VIP only when the facts also name it as a
load-balancer service address or show it on another host (an address of its own on lo, such as a
router id, is left alone), skips the director itself, and reports only values the facts prove too
low: when the interface's own value is missing, `all` is only a lower bound and nothing is said.

References
----------
- Seeds 001 and 003: LVS-DR setup, arp_ignore=1 / arp_announce=2 on all and lo.
- Linux kernel Documentation/networking/ip-sysctl.rst: arp_ignore, arp_announce.
- LVS HOWTO, "The ARP problem".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from netdiag.engine import AnalysisContext, Evidence, Finding, Rule
from netdiag.engine.finding import Confidence, FactUsed
from netdiag.facts.model import Address, Host, Interface
from netdiag.render import wireshark_filter as wf

_ROLE_BY_KIND = {
    "request": "arp-request-with-vip-from-rs",
    "reply": "arp-reply-for-vip-from-rs",
    "gratuitous": "garp-for-vip-from-rs",
}


class DrRealServerAnswersArp(Rule):
    code = "ARP001"
    name = "dr-real-server-answers-arp"
    title = "LVS-DR real server answers or announces ARP for the VIP"
    category = "arp"
    severity = "error"
    needs = frozenset()
    needs_any = frozenset({"arp", "facts"})
    references = ("seeds 001 and 003 (LVS-DR)", "Linux ip-sysctl: arp_ignore, arp_announce")

    def check(self, ctx: AnalysisContext) -> Iterable[Finding]:
        if ctx.facts_only():
            yield from self._audit_facts(ctx)
            return
        for index in ctx.capture_indices():
            claims = ctx.arp_claims(index)
            for ip, group in claims.groupby("ip", sort=True):
                finding = self._check_address(ctx, index, int(ip), group)
                if finding is not None:
                    yield finding

    def _check_address(
        self, ctx: AnalysisContext, index: int, ip: int, claims: pd.DataFrame
    ) -> Finding | None:
        packets = ctx.captures[index].packets
        vip = ctx.ip_text(index, ip)
        macs_text = packets["eth_src"].cat.categories if "eth_src" in packets else pd.Index([])
        signals = ctx.dr_signals(index, ip, set(claims["mac"]))
        relay = signals["relay"]
        facts_vip, facts_director_macs = self._facts_vip(ctx, vip)
        director: int | None = None
        if not relay.empty:
            director = int(relay["eth_src"].mode().iloc[0])
        elif facts_director_macs:
            hits = [m for m in set(claims["mac"]) if str(macs_text[m]) in facts_director_macs]
            director = hits[0] if hits else None
        elif signals["multi_address_macs"]:
            single = [m for m in set(claims["mac"]) if m not in signals["multi_address_macs"]]
            director = single[0] if len(single) == 1 else None
        if not (
            facts_vip or not relay.empty or (signals["multi_address_macs"] and director is not None)
        ):
            return None  # not known as a VIP: a duplicate address, ARP002's case
        leakers = sorted(m for m in set(claims["mac"]) if m != director)
        if not leakers:
            return None
        to_ip = signals["to_ip"]
        bypass = to_ip[
            to_ip.eth_dst.isin(leakers)
            & (to_ip.eth_src != (director if director is not None else -2))
        ]

        parts = []
        if director is not None:
            own = claims[claims.mac == director].head(2)
            parts.append(
                own[["row", "ts_ns"]].assign(
                    role="arp-for-vip-from-director", note="the director claims the VIP"
                )
            )
        leak = claims[claims.mac.isin(leakers)]
        parts.append(
            leak[["row", "ts_ns"]]
            .assign(
                role=leak["kind"].map(_ROLE_BY_KIND).to_numpy(),
                note="a real server's MAC as the sender of the VIP",
            )
            .head(5)
        )
        parts.append(
            bypass[["row", "ts_ns"]]
            .head(3)
            .assign(
                role="frame-to-vip-bypassing-director",
                note="frame for the VIP sent to the real server's MAC",
            )
        )
        table = pd.concat(parts, ignore_index=True).drop_duplicates("row").sort_values("ts_ns")
        evidence = []
        for (role, note), rows in table.groupby(["role", "note"], sort=False):
            evidence.extend(ctx.evidence(index, packets.iloc[rows["row"].to_numpy()], role, note))
        origin, origin_text = self._sender_capture(ctx, index, evidence)
        evidence.extend(origin)
        total = len(origin) + int(
            (claims.mac.isin(leakers)).sum()
            + len(bypass)
            + (0 if director is None else (claims.mac == director).sum())
        )

        leak_macs = [str(macs_text[m]) for m in leakers]
        director_mac = str(macs_text[director]) if director is not None else None
        facts_used, fixes = self._facts_sysctls(ctx, vip, leak_macs)
        confidence: Confidence = "high" if (facts_vip and fixes) else "medium"
        message = (
            f"{len(leak_macs) + (director is not None)} MAC addresses claim the VIP {vip} in ARP: "
            + (f"the director {director_mac} and " if director_mac else "")
            + f"real server MAC {', '.join(leak_macs)} ({len(leak)} ARP packet{'s' if len(leak) != 1 else ''} with the VIP as sender)"
            + (
                f"; {len(bypass)} frame{'s' if len(bypass) != 1 else ''} for the VIP went straight to a real server's MAC"
                if len(bypass)
                else ""
            )
            + "."
            + origin_text
        )
        remediation = (
            "\n".join(fixes)
            if fixes
            else (
                f"On the real server(s) with MAC {', '.join(leak_macs)} (the VIP {vip} on lo), set and persist:\n"
                "net.ipv4.conf.all.arp_ignore = 1\nnet.ipv4.conf.<iface>.arp_ignore = 1\n"
                "net.ipv4.conf.all.arp_announce = 2\nnet.ipv4.conf.<iface>.arp_announce = 2"
            )
        )
        remediation += (
            f"\nThen refresh the router's ARP entry for {vip}: from the director, "
            f"`arping -U -c 3 -I <iface> {vip}`."
        )
        filt = wf.any_of(
            [wf.arp_claims(vip)]
            + (
                [wf.all_of([wf.addr(vip, "dst"), wf.in_set("eth.dst", leak_macs)])]
                if len(bypass)
                else []
            )
        )
        return self.finding(
            ctx,
            subject=f"VIP {vip}",
            message=message,
            confidence=confidence,
            evidence=evidence,
            evidence_total=total,
            wireshark_filter=filt,
            facts_used=facts_used,
            explanation=(
                f"In LVS-DR every real server holds {vip} on lo to accept the director's frames, and "
                "must neither answer who-has for it (arp_ignore >= 1) nor use it as the sender address "
                "of its own ARP requests (arp_announce = 2). A real server that does either teaches "
                f"the router that {vip} is at its MAC, so clients reach it directly and the director "
                "is bypassed."
            ),
            remediation=remediation,
            captures=[ctx.captures[index].path],
        )

    @staticmethod
    def _sender_capture(
        ctx: AnalysisContext, index: int, evidence: list[Evidence]
    ) -> tuple[list[Evidence], str]:
        """With several capture points: the real server's leaking ARP as the first point on its
        way saw it (the real server's own capture shows it leaving the real server itself)."""
        corr = ctx.correlation
        if corr is None:
            return [], ""
        from netdiag.correlate.narrate import path_text

        for item in evidence:
            if not item.role.endswith("-from-rs"):
                continue
            path = corr.path(index, item.frame)
            if len(path) < 2:
                continue
            first = path.iloc[0]
            where = corr.tap_name(int(first["tap"]))
            text = (
                f" Across the capture points the real server's ARP ({item.role}) was first seen "
                f"at {where}: {path_text(corr, index, item.frame)}."
            )
            capture = int(first["capture"])
            if capture == index:
                return [], text
            packets = ctx.captures[capture].packets
            rows = packets.iloc[np.flatnonzero(packets["frame"].to_numpy() == int(first["frame"]))]
            origin = ctx.evidence(
                capture, rows, "sent-by-real-server", f"the same ARP packet, first seen at {where}"
            )
            return origin, text
        return [], ""

    @staticmethod
    def _facts_vip(ctx: AnalysisContext, vip: str) -> tuple[bool, set[str]]:
        """Is ``vip`` a VIP according to the facts, and the MACs of the hosts directing it."""
        facts = ctx.facts
        if facts is None:
            return False, set()
        is_vip = bool(facts.services_by_vip(vip))
        director_macs = set()
        for _host, iface in facts.owners(vip):
            if iface.kind == "loopback" or iface.name == "lo":
                is_vip = True
            elif iface.mac:
                director_macs.add(iface.mac.lower())
        for host, _service in facts.services_by_vip(vip):
            for iface in host.interfaces.values():
                if iface.mac and iface.name != "lo" and any(a.address for a in iface.addresses):
                    director_macs.add(iface.mac.lower())
        return is_vip, director_macs

    @staticmethod
    def _facts_sysctls(
        ctx: AnalysisContext, vip: str, leak_macs: list[str]
    ) -> tuple[list, list[str]]:
        """For each leaking real server known to the facts: its effective arp_ignore/arp_announce."""
        facts = ctx.facts
        if facts is None:
            return [], []
        used: list[FactUsed] = []
        lines: list[str] = []
        for host in facts.hosts.values():
            ifaces = [i for i in host.interfaces.values() if i.mac and i.mac.lower() in leak_macs]
            if not ifaces:
                continue
            iface = ifaces[0].name
            on_lo = host.owns(vip)
            if on_lo is not None:
                used.extend(
                    u
                    for u in [ctx.fact(a.source) for i, a in host.addresses() if a.address == vip]
                    if u
                )
            wrong = []
            for name, want in (("arp_ignore", 1), ("arp_announce", 2)):
                eff = host.effective_sysctl(name, iface)
                used.extend(u for u in (ctx.fact(s.source) for s in eff.used) if u is not None)
                if eff.value is None or eff.value < want:
                    wrong.append((name, want, eff.value, eff.rule))
            if not wrong:
                continue
            found = "; ".join(
                f"{n} = {v if v is not None else 'unknown'} ({r})" for n, _w, v, r in wrong
            )
            lines.append(
                f"On {host.name} ({ifaces[0].mac}, VIP {vip} on {on_lo.name if on_lo else 'lo'}): {found}. Set and persist in /etc/sysctl.d/:"
            )
            for name, want, _v, _r in wrong:
                lines.append(f"net.ipv4.conf.all.{name} = {want}")
                lines.append(f"net.ipv4.conf.{iface}.{name} = {want}")
        return used, lines

    # --- facts alone: the configuration audit -------------------------------------------------
    def _audit_facts(self, ctx: AnalysisContext) -> Iterable[Finding]:
        """One low-confidence finding per VIP held on lo by real servers that would answer ARP."""
        facts = ctx.facts
        if facts is None:
            return
        per_vip: dict[str, list[_LeakyRealServer]] = {}
        for host in sorted(facts.hosts.values(), key=lambda h: h.name):
            for iface, addr in host.addresses():
                if not _is_loopback(iface) or not _vip_candidate(addr.address):
                    continue
                found = self._audit_real_server(ctx, host, iface, addr)
                if found is not None:
                    per_vip.setdefault(addr.address, []).append(found)
        for vip in sorted(per_vip):
            yield self._facts_finding(ctx, vip, per_vip[vip])

    @staticmethod
    def _audit_real_server(
        ctx: AnalysisContext, host: Host, iface: Interface, addr: Address
    ) -> _LeakyRealServer | None:
        """``host`` holds ``addr`` on lo: is it a VIP, and do the sysctls let the host claim it?"""
        facts = ctx.facts
        assert facts is not None
        vip = addr.address
        services = facts.services_by_vip(vip)
        if any(h is host for h, _ in services):
            return None  # the director itself
        others = [(h, i) for h, i in facts.owners(vip) if h is not host]
        dr_entries = [
            (s, rs)
            for _h, s in services
            for rs in s.real_servers
            if rs.method.upper() == "DR" and host.owns(rs.address) is not None
        ]
        if not (services or others):
            return None  # an address of its own on lo (router id, anycast): not a shared VIP
        segment = _segment_interface(host, [rs.address for _s, rs in dr_entries], others)
        if segment is None:
            return None
        used: list[FactUsed] = [u for u in [ctx.fact(addr.source)] if u is not None]
        for service, rs in dr_entries[:1]:
            used += [u for u in (ctx.fact(service.source), ctx.fact(rs.source)) if u is not None]
        wrong = []
        for name, want in (("arp_ignore", 1), ("arp_announce", 2)):
            eff = host.effective_sysctl(name, segment)
            if eff.value is None or "lower bound" in eff.rule or eff.value >= want:
                continue  # unknown, or not proven too low by the facts
            used += [u for u in (ctx.fact(s.source) for s in eff.used) if u is not None]
            wrong.append((name, want, eff.value, eff.rule))
        if not wrong:
            return None
        director = next(
            ((h.name, i.name) for h, i in others if not _is_loopback(i)),
            (services[0][0].name, "") if services else ("", ""),
        )
        return _LeakyRealServer(
            host=host.name,
            lo=addr.label or iface.name,
            segment=segment,
            dr_service=(f"{dr_entries[0][0].vip}:{dr_entries[0][0].port}" if dr_entries else ""),
            wrong=wrong,
            used=used,
            director=director,
        )

    def _facts_finding(
        self, ctx: AnalysisContext, vip: str, servers: list[_LeakyRealServer]
    ) -> Finding:
        parts = []
        lines = []
        for rs in servers:
            values = ", ".join(f"{n} = {v} ({r})" for n, _w, v, r in rs.wrong)
            role = f"a DR real server of {rs.dr_service}" if rs.dr_service else "it"
            parts.append(
                f"{rs.host} holds {vip} on {rs.lo} ({role}) with {values} on {rs.segment}, "
                f"the interface facing the segment"
            )
            lines.append(f"On {rs.host}, set and persist in /etc/sysctl.d/90-lvs-dr.conf:")
            for name, want, _v, _r in rs.wrong:
                lines.append(f"net.ipv4.conf.all.{name} = {want}")
                lines.append(f"net.ipv4.conf.{rs.segment}.{name} = {want}")
        lines.append("then apply with `sysctl --system`.")
        director, director_iface = servers[0].director
        if director and director_iface:
            lines.append(
                f"If the router already caches a real server's MAC for {vip}, refresh it from "
                f"{director}: `arping -U -c 3 -I {director_iface} {vip}`."
            )
        message = (
            "Facts: "
            + "; ".join(parts)
            + f". Such a host answers who-has {vip} or announces it as the sender of its own ARP "
            "requests, so the router can learn its MAC for the VIP. From facts alone: no capture "
            "shows whether it has already happened."
        )
        return self.finding(
            ctx,
            subject=f"VIP {vip}",
            message=message,
            confidence="low",
            facts_used=[u for rs in servers for u in rs.used],
            explanation=(
                f"A real server accepts the director's frames for {vip} because it holds {vip} on "
                "lo; with arp_ignore < 1 it also answers ARP requests for it arriving on any "
                "interface, and with arp_announce < 2 it may use it as the sender address of its own "
                "ARP requests. The kernel uses max(all, interface) for both."
            ),
            remediation="\n".join(lines),
            captures=[],
        )


@dataclass
class _LeakyRealServer:
    """A host holding a VIP on lo whose ARP sysctls let it claim the VIP (from facts)."""

    host: str
    lo: str
    segment: str
    dr_service: str
    wrong: list[tuple[str, int, int, str]]
    used: list[FactUsed]
    director: tuple[str, str]


def _is_loopback(iface: Interface) -> bool:
    return iface.name == "lo" or iface.kind in ("loopback", "dummy")


def _vip_candidate(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 4 and not ip.is_loopback and not ip.is_link_local


def _segment_interface(
    host: Host, rs_addresses: list[str], others: list[tuple[Host, Interface]]
) -> str | None:
    """The interface on which the host receives ARP requests for the VIP (the segment's)."""
    for address in rs_addresses:
        iface = host.owns(address)
        if iface is not None and not _is_loopback(iface):
            return iface.name
    for _other, iface in others:  # the director's own address on the shared segment
        for a in iface.addresses:
            if a.address in {x.address for _i, x in host.addresses()}:
                continue
            name = host.egress_interface(a.address)
            if name and name != "lo":
                return name
    for route in host.default_routes():
        if route.gateway:
            name = host.egress_interface(route.gateway)
            if name:
                return name
    return None
