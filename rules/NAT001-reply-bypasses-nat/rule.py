"""Replies of a NAT real server bypass the director: the client gets a SYN-ACK from the wrong address.

What it detects
---------------
LVS-NAT (or any destination NAT) where a real server's replies do not go back through the NAT
device. At the client: a SYN C:p > V:x, then a SYN-ACK from another address R:y acknowledging
that very SYN (ack = ISN + 1), and a RST from C:p to R:y (the client has no connection with R).
At the director: the SYN C:p > V:x arrives and leaves rewritten as C:p > R:y with the same ISN,
and no SYN-ACK ever comes back from R. One finding per real server and service (R, V:x), with
evidence from every capture that shows it.

Why it matters
--------------
Every connection scheduled to that real server fails (reset or timeout) while the others work,
so the service looks intermittently broken. The real server answers, but its answer carries its
own address: the director never sees it and cannot rewrite it back to the VIP.

Evidence
--------
Client side: syn-to-vip, syn-ack-from-rip, rst-from-client. Director side: syn-to-vip and
syn-forwarded-to-rip (same ISN), with no SYN-ACK back. From the director's capture alone the
message warns that a real server that does not answer at all looks the same. With facts: the real
server's default route, which does not point at the director (high confidence).

From facts alone (`--facts` and no capture), the configuration is audited: for each LVS-NAT real
server (ipvsadm `-m`, keepalived `lb_kind NAT`) whose host is in the facts and sits on a subnet of
the director, the route it uses towards the client side (the director's own default gateway, with
the real server's address as source, so policy rules count; else its default route) must go via
the director's inside address (DIP). When it does not, a low-confidence finding with no frames
names the route line, the service and real-server lines and the DIP, and the fix
(`ip route replace default via DIP`).

Remediation
-----------
Route the real server's replies through the director: make the director's inside address the
real server's default gateway (`ip route replace default via DIP`), or add a policy route for the
service's replies; or use LVS-DR / full-NAT, which do not need the replies to come back.

False positives
---------------
A SYN-ACK from another address than the SYN went to is never legitimate TCP. The director-only
form can also be a real server that is down or filters the port: the message says so and the
confidence is low unless the facts show the real server's default route bypasses the director.
A backend that sends its own connection back to itself (LB001, source = destination) is excluded.
The facts-only audit skips real servers the director does not reach on a subnet of its own (a
router between them may route the replies back, which the facts cannot show), and real servers
whose host is not in the facts.

References
----------
- Seed 004: LVS-NAT lab, real servers' default gateway must be the director.
- Linux Virtual Server documentation, "LVS/NAT": the real servers' default route must point to
  the load balancer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import pandas as pd

from netdiag.capture.schema import TCP_ACK, TCP_RST, TCP_SYN
from netdiag.engine import AnalysisContext, Evidence, Finding, Rule
from netdiag.engine.context import rows_in
from netdiag.engine.finding import EVIDENCE_CAP, Confidence
from netdiag.facts.model import Address, Host
from netdiag.render import wireshark_filter as wf

_MOD = 2**32


class ReplyBypassesNat(Rule):
    code = "NAT001"
    name = "reply-bypasses-nat"
    title = "NAT real server replies bypass the director (SYN-ACK from the real server's address)"
    category = "nat"
    severity = "error"
    needs = frozenset()
    needs_any = frozenset({"packets", "facts"})
    references = ("seed 004 (LVS-NAT lab)", "LVS-NAT: real servers route replies via the director")

    def check(self, ctx: AnalysisContext) -> Iterable[Finding]:
        if ctx.facts_only():
            yield from self._audit_facts(ctx)
            return
        # subject (rip, vip, vport) -> evidence tables per capture, attempts, kinds of proof
        subjects: dict[tuple[str, str, int], dict] = {}
        for index in ctx.capture_indices():
            tcp = ctx.tcp_control(index)
            if tcp.empty:
                continue
            for key, table, kind, sports in self._client_side(ctx, index, tcp):
                entry = subjects.setdefault(key, {"tables": [], "kinds": set(), "sports": set()})
                entry["tables"].append((index, table))
                entry["kinds"].add(kind)
                entry["sports"] |= sports
            for key, table, kind, sports in self._director_side(ctx, index, tcp):
                entry = subjects.setdefault(key, {"tables": [], "kinds": set(), "sports": set()})
                entry["tables"].append((index, table))
                entry["kinds"].add(kind)
                entry["sports"] |= sports
        for key in sorted(subjects):
            yield self._finding(ctx, key, subjects[key])

    # --- the two vantage points --------------------------------------------------------------
    @staticmethod
    def _client_side(ctx: AnalysisContext, index: int, tcp: pd.DataFrame) -> Iterable[tuple]:
        syn = tcp[((tcp.tflags & TCP_SYN) != 0) & ((tcp.tflags & TCP_ACK) == 0)]
        synack = tcp[(tcp.tflags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)]
        synack = synack[synack.src != synack.dst]  # src == dst is LB001's hairpin
        pairs = synack.merge(
            syn.rename(columns={"src": "c", "dst": "v", "sport": "p", "dport": "x", "seq": "isn"})[
                ["c", "v", "p", "x", "isn"]
            ].drop_duplicates(),
            left_on=["dst", "dport"],
            right_on=["c", "p"],
        )
        pairs = pairs[(pairs.ack == (pairs.isn + 1) % _MOD) & (pairs.src != pairs.v)]
        # a SYN C:p > R seen here too means this is the NAT device's own view (it sent the SYN
        # on to R), where R's untranslated SYN-ACK is normal: only the client's view counts
        pairs = pairs[~rows_in(pairs, syn, ["c", "p", "src"], ["src", "sport", "dst"])]
        if pairs.empty:
            return
        rst = tcp[(tcp.tflags & TCP_RST) != 0]
        for (rip, vip, vport), group in pairs.groupby(["src", "v", "x"]):
            sports = set(group.p.astype(int))
            keys = group[["c", "p", "isn"]].drop_duplicates()
            syns = syn.merge(keys, left_on=["src", "sport", "seq"], right_on=["c", "p", "isn"])
            syns = syns[syns.dst == vip]
            resets = rst[(rst.src.isin(keys.c)) & (rst.dst == rip) & rst.sport.isin(sports)]
            table = pd.concat(
                [
                    syns[["row", "ts_ns"]].assign(role="syn-to-vip", note="SYN to the VIP"),
                    group[["row", "ts_ns"]].assign(
                        role="syn-ack-from-rip",
                        note="SYN-ACK from the real server's own address, acknowledging that SYN",
                    ),
                    resets[["row", "ts_ns"]].assign(
                        role="rst-from-client",
                        note="the client knows no connection with this address",
                    ),
                ],
                ignore_index=True,
            )
            key = (ctx.ip_text(index, rip), ctx.ip_text(index, vip), int(vport))
            yield key, table, "client", sports

    @staticmethod
    def _director_side(ctx: AnalysisContext, index: int, tcp: pd.DataFrame) -> Iterable[tuple]:
        syn = tcp[((tcp.tflags & TCP_SYN) != 0) & ((tcp.tflags & TCP_ACK) == 0)]
        # the same SYN (client, port, ISN) seen to two destinations: before and after DNAT
        pairs = syn.merge(syn, on=["src", "sport", "seq"], suffixes=("_v", "_r"))
        pairs = pairs[
            (pairs.dst_v != pairs.dst_r)
            & (pairs.dst_r != pairs.src)
            & (pairs.ts_ns_v <= pairs.ts_ns_r)
        ]
        if pairs.empty:
            return
        # the VIP is the address the SYN arrived for first: drop pairs where the "vip" side is
        # itself a rewritten copy (its first sighting is later than the other's)
        first_seen = syn.groupby(["src", "sport", "seq", "dst"]).ts_ns.min().rename("first")
        pairs = pairs.join(first_seen, on=["src", "sport", "seq", "dst_v"])
        pairs = pairs.join(first_seen.rename("first_r"), on=["src", "sport", "seq", "dst_r"])
        pairs = pairs[pairs["first"] < pairs["first_r"]]
        synack = tcp[(tcp.tflags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)]
        answered = pairs.merge(
            synack[["src", "dst", "sport", "dport", "ack"]].rename(
                columns={"src": "a_src", "dst": "a_dst", "sport": "a_sport", "dport": "a_dport"}
            ),
            left_on=["src", "sport"],
            right_on=["a_dst", "a_dport"],
        )
        answered = answered[answered.ack == (answered.seq + 1) % _MOD]
        pairs = pairs[~rows_in(pairs, answered, ["src", "sport", "seq"])]
        if pairs.empty:
            return
        for (rip, vip, vport), group in pairs.groupby(["dst_r", "dst_v", "dport_v"]):
            sports = set(group.sport.astype(int))
            table = pd.concat(
                [
                    group[["row_v", "ts_ns_v"]]
                    .drop_duplicates()
                    .set_axis(["row", "ts_ns"], axis=1)
                    .assign(role="syn-to-vip", note="SYN arriving for the VIP"),
                    group[["row_r", "ts_ns_r"]]
                    .drop_duplicates()
                    .set_axis(["row", "ts_ns"], axis=1)
                    .assign(
                        role="syn-forwarded-to-rip",
                        note="the same SYN (same ISN) sent on to the real server; no SYN-ACK comes back",
                    ),
                ],
                ignore_index=True,
            )
            key = (ctx.ip_text(index, rip), ctx.ip_text(index, vip), int(vport))
            yield key, table, "director", sports

    # --- the finding ---------------------------------------------------------------------------
    def _finding(self, ctx: AnalysisContext, key: tuple[str, str, int], entry: dict) -> Finding:
        rip, vip, vport = key
        evidence: list[Evidence] = []
        total = 0
        per_capture = max(EVIDENCE_CAP // len(entry["tables"]), 3)
        for index, table in entry["tables"]:
            table = table.drop_duplicates("row").sort_values(["ts_ns", "row"])
            total += len(table)
            shown = table.head(per_capture)
            packets = ctx.captures[index].packets
            for (role, note), rows in shown.groupby(["role", "note"], sort=False):
                evidence.extend(
                    ctx.evidence(index, packets.iloc[rows["row"].to_numpy()], role, note)
                )
        kinds = entry["kinds"]
        facts_used, route_text, dip = self._facts(ctx, rip, vip)
        confidence: Confidence = "high" if route_text else "medium"
        sports = sorted(entry["sports"])
        if len(sports) > 20:
            sports = sports[:20]
        filt = wf.all_of(
            [wf.in_set("tcp.port", sports), "tcp.flags.syn == 1 || tcp.flags.reset == 1"]
        )
        seen = []
        if "client" in kinds:
            seen.append(
                f"the client got SYN-ACKs from {rip} for SYNs it sent to {vip}:{vport} and reset them"
            )
        if "director" in kinds:
            seen.append(
                f"the director forwarded SYNs for {vip}:{vport} to {rip} and no SYN-ACK came back"
            )
        message = (
            f"Replies of real server {rip} for {vip}:{vport} do not go back through the director: "
            + "; ".join(seen)
            + "."
            + (f" {route_text}." if route_text else "")
        )
        hop = self._hop(ctx, entry["tables"], rip)
        if hop:
            message += " " + hop
        if kinds == {"director"} and not route_text:
            message += f" ({rip} may also be down or filtering: a capture at the client or the facts tell.)"
        gw = dip or "the director's inside address"
        remediation = (
            f"On the real server {rip}, route replies through the director: "
            f"`ip route replace default via {gw}` (or a policy route for traffic from port {vport}); "
            f"or switch the service to LVS-DR / full-NAT, which do not need the replies to come back."
        )
        return self.finding(
            ctx,
            subject=f"{rip} replies for {vip}:{vport}",
            message=message,
            confidence=confidence,
            evidence=evidence,
            evidence_total=total,
            wireshark_filter=filt,
            facts_used=facts_used,
            explanation=(
                f"The director rewrote the destination {vip} to {rip}, but {rip}'s reply goes to its "
                f"own default gateway, not to the director, so nobody rewrites its source back to "
                f"{vip}. The client receives a SYN-ACK from an address it never contacted and resets "
                f"it, or the reply is lost."
            ),
            remediation=remediation,
        )

    @staticmethod
    def _hop(ctx: AnalysisContext, tables: list, rip: str) -> str:
        """With several capture points: the SYN's path and the hop where the SYN-ACK went missing."""
        corr = ctx.correlation
        if corr is None:
            return ""
        from netdiag.correlate.narrate import path_text

        syn_path, synack, syn_taps = "", None, []
        for index, table in tables:
            frames = ctx.captures[index].packets["frame"].to_numpy()
            for role, rows in table.sort_values(["ts_ns", "row"]).groupby("role", sort=False):
                first = int(frames[int(rows["row"].iloc[0])])
                if role in ("syn-to-vip", "syn-forwarded-to-rip") and not syn_path:
                    syn_path = path_text(corr, index, first)
                    syn_taps = [int(t) for t in corr.path(index, first)["tap"]]
                if role == "syn-ack-from-rip" and synack is None:
                    synack = (index, first)
        parts = []
        if syn_path:
            parts.append(f"Across the capture points the SYN went {syn_path}")
        if synack is not None:
            # the taps the SYN-ACK passed, against the taps the SYN passed: a reply to a NAT
            # must retrace the request
            seen = corr.path(synack[0], synack[1])
            reply_taps = [int(t) for t in seen["tap"]]
            gone = [t for t in syn_taps if t not in reply_taps]
            if gone and reply_taps:
                where = ", ".join(corr.tap_name(t) for t in reply_taps)
                never = ", ".join(corr.tap_name(t) for t in gone)
                # the reply should have come back first where the SYN was last seen
                parts.append(
                    f"the SYN-ACK from {rip} reached {where} without passing {never}: it went "
                    f"missing on the hop from {rip} to {corr.tap_name(gone[-1])}, where the SYN "
                    "had left"
                )
        elif syn_path:
            parts.append(f"no SYN-ACK from {rip} was seen at any capture point")
        return "; ".join(parts) + "." if parts else ""

    @staticmethod
    def _facts(ctx: AnalysisContext, rip: str, vip: str) -> tuple[list, str, str]:
        """(facts used, what they show, the director's inside address) for real server ``rip``.

        The director is the host with a service on the VIP (or owning it); its inside address is
        its address on the real server's subnet. The finding is confirmed when the real server's
        default route does not point at that address.
        """
        facts = ctx.facts
        if facts is None:
            return [], "", ""
        directors = [h for h, _ in facts.services_by_vip(vip)] + [h for h, _ in facts.owners(vip)]
        rip_ip = ipaddress.ip_address(rip)
        dips = [
            addr.address
            for director in directors
            for _iface, addr in director.addresses()
            if addr.address != rip and _in(rip_ip, addr)
        ]
        dip = dips[0] if dips else ""
        for host, _iface in facts.owners(rip):
            defaults = host.default_routes()
            if not defaults:
                continue
            route = defaults[0]
            if route.gateway and route.gateway in dips:
                return [], "", dip  # the facts contradict the bypass: replies do go back
            used = [u for u in [ctx.fact(route.source)] if u is not None]
            text = f"Facts: {host.name}'s default route is via {route.gateway or route.device}"
            if dip:
                text += f", not the director's {dip}"
            return used, text, dip
        return [], "", dip

    # --- facts alone: the configuration audit -------------------------------------------------
    def _audit_facts(self, ctx: AnalysisContext) -> Iterable[Finding]:
        """LVS-NAT real servers whose route back to the clients does not go via the director."""
        facts = ctx.facts
        if facts is None:
            return
        seen: set[tuple[str, str, int]] = set()
        for director, service in sorted(facts.services(), key=lambda hs: (hs[0].name, hs[1].vip)):
            # the client side: the director's own next hop towards the world (else the default)
            client_side = next((r.gateway for r in director.default_routes() if r.gateway), "")
            for rs in service.real_servers:
                if rs.method.upper() != "NAT":
                    continue
                dip = _inside_address(director, rs.address)
                if dip is None:
                    continue  # the director reaches it through a router: cannot judge
                for host, _iface in facts.owners(rs.address):
                    if host is director:
                        continue
                    route = (
                        host.route_lookup(client_side, src=rs.address)
                        if client_side
                        else next(iter(host.default_routes()), None)
                    )
                    if route is None or route.type != "unicast" or route.gateway == dip.address:
                        continue
                    key = (rs.address, service.vip, service.port or 0)
                    if key in seen:
                        continue
                    seen.add(key)
                    yield self._facts_finding(ctx, key, host, route, director, dip, service, rs)

    def _facts_finding(self, ctx, key, host, route, director, dip, service, rs) -> Finding:  # type: ignore[no-untyped-def]
        rip, vip, vport = key
        used = [
            u
            for u in (
                ctx.fact(route.source),
                ctx.fact(service.source),
                ctx.fact(rs.source),
                ctx.fact(dip.source),
            )
            if u is not None
        ]
        via = f"via {route.gateway}" if route.gateway else "directly (a connected route)"
        what = "default route" if route.network.prefixlen == 0 else f"route {route.destination}"
        device = f" dev {route.device}" if route.device else ""
        destination = "default" if route.network.prefixlen == 0 else route.destination
        return self.finding(
            ctx,
            subject=f"{rip} replies for {vip}:{vport}",
            message=(
                f"Facts: {director.name} serves {vip}:{vport} by LVS-NAT with real server {rip} "
                f"({host.name}), whose {what} towards the clients goes {via}{device}, not via the "
                f"director's inside address {dip.address}. Its replies would bypass the director "
                "and reach the clients with the source address "
                f"{rip}. From facts alone: no capture shows the connections failing."
            ),
            confidence="low",
            facts_used=used,
            explanation=(
                f"The director rewrites the destination {vip} to {rip}; only the director can "
                f"rewrite the reply's source back to {vip}, so {rip}'s replies must be routed "
                f"through {dip.address}. Sent elsewhere, they reach the client from {rip}, which "
                "the client resets, or they are dropped."
            ),
            remediation=(
                f"On {host.name} ({rip}): `ip route replace {destination} via {dip.address}"
                f"{device}` and make it persistent (netplan, ifcfg or systemd-networkd); or a "
                f"policy route for the replies: `ip rule add from {rip} sport {vport} lookup 100` "
                f"with `ip route add default via {dip.address} table 100`; or switch the service "
                "to LVS-DR / full-NAT."
            ),
            captures=[],
        )


def _inside_address(director: Host, rip: str) -> Address | None:
    """The director's address on the real server's subnet (the DIP), or None."""
    ip = ipaddress.ip_address(rip)
    for _iface, addr in director.addresses():
        if addr.address != rip and _in(ip, addr) and addr.prefixlen < ip.max_prefixlen:
            return addr
    return None


def _in(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, addr: object) -> bool:
    try:
        return ip in addr.network  # type: ignore[attr-defined]
    except (ValueError, TypeError):
        return False
