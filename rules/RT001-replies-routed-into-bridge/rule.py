"""Replies to a peer are routed into a local bridge (docker0, br-*, cni0, virbr0) instead of back out.

What it detects
---------------
Requests (ICMP echo requests, TCP SYNs) from a peer P to a host H arrive on one interface, and
the host's answer goes elsewhere: ARP requests for P, or the replies themselves, leave on another
interface, while nothing is answered on the interface the requests came in. The typical cause is
a container bridge whose connected route covers P (docker's default 172.17.0.0/16 on docker0,
a br-* network, cni0, virbr0): the longest-prefix match sends the replies into the bridge. Works
on `-i any` captures (Linux cooked: interface index and direction) and on multi-interface pcapng.

Why it matters
--------------
P sees a host that receives everything and answers nothing: pings time out, TCP SYNs are
retransmitted, while every other peer is served. Tools that drop the capture interface cannot
see the cause; the packet-level symptom is only "no reply".

Evidence
--------
The request arriving (request-in), the ARP request for P leaving on the wrong interface
(arp-for-peer-on-bridge) or the reply leaving there (reply-on-bridge), and the request
retransmissions. With facts: the connected route that covers P and its interface, the interface
names (ifindex -> name from `ip -o link`), and the docker setting to change.

From facts alone (`--facts` and no capture), the configuration is audited: a host whose connected
route of a local bridge (docker0, br-*, cni0, virbr0, or an interface of kind bridge) wins the
route lookup for an interface address of another host in the facts gives a low-confidence finding
with no frames, per bridge route. facts_used names the route line and the docker network (or
daemon.json `bip`) line; the remediation proposes a free `bip` and more specific routes for the
peers' subnets via the uplink.

Remediation
-----------
Move the bridge to an address range that does not contain the peers: for docker0 set `"bip"` in
/etc/docker/daemon.json (the finding proposes a free range) and restart docker; for br-* networks
recreate them with `--subnet` or set `"default-address-pools"`; for cni0 change the CNI
configuration; for virbr0 the libvirt network. As a stop-gap, a more specific route for P via the
uplink: `ip route add P/32 via <gateway> dev <uplink>`.

False positives
---------------
A host that forwards requests to a container (DNAT) sends them into the bridge with the
container's address as destination, not P's: that is not counted. A host with two uplinks and
asymmetric routing would show replies on the other uplink: the message names the interface, and
the facts (no bridge route covering P) lower nothing but make it clear.

The facts-only audit does not count a peer living on the bridge's own subnet (a container or VM
behind it), a peer the host routes elsewhere (a more specific route, as in the stop-gap), nor a
peer that also has an address on one of the host's other subnets (a router's far-side interface:
the host reaches that router on its near side).

References
----------
- Seed 002, scenario 2: docker0's 172.17.0.0/16 route hijacks replies to a VPC address.
- Docker documentation: daemon.json `bip` and `default-address-pools`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import numpy as np
import pandas as pd

from netdiag.capture.schema import TCP_ACK, TCP_SYN
from netdiag.engine import AnalysisContext, Finding, Rule
from netdiag.engine.context import LINK_ID_IFACE_OFFSET, link_ids
from netdiag.engine.finding import Confidence
from netdiag.render import wireshark_filter as wf

BRIDGE_PREFIXES = ("docker", "br-", "cni", "virbr", "cbr", "lxcbr", "podman")
_OUT = 4  # SLL packet type: outgoing


class RepliesRoutedIntoBridge(Rule):
    code = "RT001"
    name = "replies-routed-into-bridge"
    title = "Replies to a peer leave on a local bridge (docker0 route hijack)"
    category = "routing"
    severity = "error"
    needs = frozenset()
    needs_any = frozenset({"packets", "facts"})
    references = ("seed 002 scenario 2 (docker0 route hijack)", "Docker daemon.json: bip")

    def check(self, ctx: AnalysisContext) -> Iterable[Finding]:
        if ctx.facts_only():
            yield from self._audit_facts(ctx)
            return
        for index in ctx.capture_indices():
            yield from self._check_capture(ctx, index)

    def _check_capture(self, ctx: AnalysisContext, index: int) -> Iterable[Finding]:
        p = ctx.captures[index].packets
        if len(p) == 0:
            return
        iface = link_ids(p)
        if len(np.unique(iface)) < 2:
            return  # one interface: nothing can leave elsewhere
        pkttype = p["sll_pkttype"].to_numpy(dtype=np.int64)
        proto = p["ip_proto"].to_numpy()
        itype = p["icmp_type"].to_numpy()
        flags = p["tcp_flags"].to_numpy()
        src = p["ip_src"].cat.codes.to_numpy(dtype=np.int64)
        dst = p["ip_dst"].cat.codes.to_numpy(dtype=np.int64)
        v4 = p["ip_version"].to_numpy() == 4
        syn = (proto == 6) & (flags >= 0) & ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
        synack = (
            (proto == 6) & (flags >= 0) & ((flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
        )
        request = v4 & (((proto == 1) & (itype == 8)) | syn) & (pkttype != _OUT)
        reply = v4 & (((proto == 1) & (itype == 0)) | synack) & (pkttype != 0)
        req = pd.DataFrame(
            {
                "row": np.flatnonzero(request),
                "peer": src[request],
                "host": dst[request],
                "if_in": iface[request],
                "proto": proto[request],
            }
        )
        if req.empty:
            return
        rep = pd.DataFrame(
            {
                "row": np.flatnonzero(reply),
                "host": src[reply],
                "peer": dst[reply],
                "if_out": iface[reply],
            }
        )
        arp_mask = (p["arp_op"].to_numpy() == 1) & (pkttype != 0)
        arp = pd.DataFrame(
            {
                "row": np.flatnonzero(arp_mask),
                "peer": p["arp_tpa"].cat.codes.to_numpy(dtype=np.int64)[arp_mask],
                "if_out": iface[arp_mask],
            }
        )
        # Every (peer, host) pair of requests is judged column-wise; only the pairs left
        # unanswered (a handful, or none) are looked at one by one to build their findings.
        grouped = req.groupby(["peer", "host"], sort=True)
        pairs = grouped.agg(n=("row", "size"), first=("row", "min")).reset_index()
        gid = grouped.ngroup().to_numpy(dtype=np.int64)
        # the interface most requests of a pair came in on (the lowest one on a tie)
        per_iface = (
            pd.DataFrame({"g": gid, "if_in": req["if_in"].to_numpy()})
            .value_counts()
            .reset_index()
            .sort_values(["g", "count", "if_in"], ascending=[True, False, True], kind="stable")
        )
        mode = per_iface.drop_duplicates("g")
        if_in = np.empty(len(pairs), dtype=np.int64)
        if_in[mode["g"].to_numpy()] = mode["if_in"].to_numpy()
        pairs.insert(2, "if_in", if_in)
        n_ingress = np.bincount(per_iface["g"].to_numpy(), minlength=len(pairs))
        # (pair, interface) keys of where each pair's requests came in
        span = np.int64(1) << np.int64(32)
        ingress_keys = per_iface["g"].to_numpy(dtype=np.int64) * span + per_iface["if_in"].to_numpy(
            dtype=np.int64
        )
        pair_ids = pairs[["peer", "host"]].assign(g=np.arange(len(pairs), dtype=np.int64))
        rep_g = rep.merge(pair_ids, on=["peer", "host"], how="inner")
        rep_gid = rep_g["g"].to_numpy(dtype=np.int64)
        at_ingress = np.isin(
            rep_gid * span + rep_g["if_out"].to_numpy(dtype=np.int64), ingress_keys
        )
        answered = np.zeros(len(pairs), dtype=bool)
        answered[rep_gid[at_ingress]] = True
        has_reply = np.bincount(rep_gid, minlength=len(pairs)) > 0
        cooked = bool((pkttype >= 0).any())  # Linux cooked: the direction of each packet is known
        # the same request on several interfaces without directions: a switch or a bridge's
        # ports, not the host's own ingress
        candidate = ~answered & (cooked | (n_ingress <= 1))
        arp_g = arp.merge(pair_ids[candidate], on="peer", how="inner")
        arp_gid = arp_g["g"].to_numpy(dtype=np.int64)
        elsewhere = ~np.isin(
            arp_gid * span + arp_g["if_out"].to_numpy(dtype=np.int64), ingress_keys
        )
        has_wrong_arp = np.zeros(len(pairs), dtype=bool)
        has_wrong_arp[arp_gid[elsewhere]] = True
        hit = candidate & (has_reply | has_wrong_arp)
        for g in np.flatnonzero(hit).tolist():
            r = next(pairs.iloc[g : g + 1].itertuples(index=False))
            ingress = set(req["if_in"].to_numpy()[gid == g].tolist())
            wrong_replies = rep[(rep.peer == r.peer) & (rep.host == r.host)]
            wrong_arp = arp[(arp.peer == r.peer) & ~arp.if_out.isin(ingress)]
            yield self._finding(ctx, index, r, req, wrong_replies, wrong_arp, iface)

    def _finding(self, ctx, index, pair, req, wrong_replies, wrong_arp, iface) -> Finding:  # type: ignore[no-untyped-def]
        packets = ctx.captures[index].packets
        peer, host = ctx.ip_text(index, pair.peer), ctx.ip_text(index, pair.host)
        facts_host = self._facts_host(ctx, host)
        out_ifaces = sorted(set(wrong_replies.if_out) | set(wrong_arp.if_out))
        in_name = self._ifname(packets, iface, int(pair.if_in), facts_host)
        out_names = [self._ifname(packets, iface, int(i), facts_host) for i in out_ifaces]
        requests = req[(req.peer == pair.peer) & (req.host == pair.host)]
        table = pd.concat(
            [
                pd.concat([requests.drop_duplicates("proto"), requests.head(3)])
                .drop_duplicates("row")[["row"]]
                .assign(role="request-in", note=f"request from {peer} arrives on {in_name}"),
                wrong_arp[["row"]]
                .head(4)
                .assign(
                    role="arp-for-peer-on-bridge",
                    note=f"the host looks for {peer} on {', '.join(out_names)}",
                ),
                wrong_replies[["row"]]
                .head(3)
                .assign(role="reply-on-bridge", note="the reply leaves on the wrong interface"),
            ],
            ignore_index=True,
        )
        evidence = []
        for (role, note), rows in table.groupby(["role", "note"], sort=False):
            evidence.extend(ctx.evidence(index, packets.iloc[rows["row"].to_numpy()], role, note))
        total = len(requests) + len(wrong_arp) + len(wrong_replies)

        facts_used, route_text, bridge, gateway, uplink = self._facts(ctx, facts_host, peer)
        bridge = bridge or next((n for n in out_names if n.startswith(BRIDGE_PREFIXES)), "")
        confidence: Confidence = "high" if route_text else "medium"
        message = (
            f"{len(requests)} request{'s' if len(requests) != 1 else ''} from {peer} to {host} arrived on "
            f"{in_name} and none was answered there; "
            + (
                f"{len(wrong_arp)} ARP request{'s' if len(wrong_arp) != 1 else ''} for {peer} "
                if len(wrong_arp)
                else ""
            )
            + ("and " if len(wrong_arp) and len(wrong_replies) else "")
            + (
                f"{len(wrong_replies)} repl{'ies' if len(wrong_replies) != 1 else 'y'} "
                if len(wrong_replies)
                else ""
            )
            + f"left on {', '.join(out_names)} instead."
            + (f" {route_text}." if route_text else "")
        )
        remediation = self._remediation(ctx, facts_host, peer, bridge, gateway, uplink or in_name)
        filt = wf.any_of(
            [
                wf.all_of([wf.addr(peer, "src"), wf.addr(host, "dst")]),
                wf.all_of([wf.addr(host, "src"), wf.addr(peer, "dst")]),
                f"arp.dst.proto_ipv4 == {peer}",
            ]
        )
        return self.finding(
            ctx,
            subject=f"replies from {host} to {peer}",
            message=message,
            confidence=confidence,
            evidence=evidence,
            evidence_total=total,
            wireshark_filter=filt,
            facts_used=facts_used,
            explanation=(
                f"{host} chooses the route for {peer} by longest prefix: a route of "
                f"{bridge or ', '.join(out_names)} covers {peer}, so the replies (and the ARP lookups "
                f"for {peer}) go into that interface, where {peer} does not live, instead of back "
                f"out of {in_name}."
            ),
            remediation=remediation,
            captures=[ctx.captures[index].path],
        )

    @staticmethod
    def _facts_host(ctx: AnalysisContext, host: str):  # type: ignore[no-untyped-def]
        if ctx.facts is None:
            return None
        owners = ctx.facts.owners(host)
        return owners[0][0] if owners else None

    @staticmethod
    def _ifname(packets: pd.DataFrame, iface: np.ndarray, key: int, facts_host) -> str:  # type: ignore[no-untyped-def]
        names = packets["iface_name"].astype(object).to_numpy()[iface == key]
        named = [n for n in names if isinstance(n, str) and n and not n.isdigit()]
        if named:
            return named[0]
        if key < LINK_ID_IFACE_OFFSET and facts_host is not None:
            name = facts_host.ifname(key)
            if name:
                return name
        if key < LINK_ID_IFACE_OFFSET:
            return f"ifindex {key}"
        return f"interface {key - LINK_ID_IFACE_OFFSET}"

    @staticmethod
    def _facts(ctx: AnalysisContext, host, peer: str) -> tuple[list, str, str, str, str]:  # type: ignore[no-untyped-def]
        """The route covering the peer on the host, when it is a bridge's."""
        if host is None:
            return [], "", "", "", ""
        route = host.route_lookup(peer)
        defaults = host.default_routes()
        gateway = defaults[0].gateway if defaults else ""
        uplink = defaults[0].device if defaults else ""
        if route is None or not route.device:
            return [], "", "", gateway, uplink
        iface = host.interfaces.get(route.device)
        is_bridge = route.device.startswith(BRIDGE_PREFIXES) or (
            iface is not None and iface.kind == "bridge"
        )
        if not is_bridge:
            return [], "", "", gateway, uplink
        used = [u for u in [ctx.fact(route.source)] if u is not None]
        text = f"Facts: {host.name} has the route {route.destination} dev {route.device}, which covers {peer}"
        # the container network (docker network inspect, daemon.json bip) that owns the bridge
        for network in host.container_networks:
            if network.bridge == route.device:
                used += [u for u in [ctx.fact(network.source)] if u is not None]
                text += f" (docker network {network.name!r}, subnet {network.subnet or '?'})"
        return used, text, route.device, gateway, uplink

    @staticmethod
    def _remediation(
        ctx: AnalysisContext, host, peer: str, bridge: str, gateway: str, uplink: str
    ) -> str:  # type: ignore[no-untyped-def]
        taken = []
        if host is not None:
            for _i, a in host.addresses():
                try:
                    taken.append(a.network)
                except ValueError:
                    continue
        peer_ip = ipaddress.ip_address(peer)
        bip = next(
            (
                c
                for c in ("172.30.0.1/16", "10.254.0.1/16", "192.168.254.1/24")
                if peer_ip not in ipaddress.ip_interface(c).network
                and not any(
                    ipaddress.ip_interface(c).network.overlaps(n)
                    for n in taken
                    if n.version == 4
                    and n.prefixlen > 0
                    and str(n) != str(ipaddress.ip_interface(c).network)
                )
            ),
            "172.30.0.1/16",
        )
        lines = []
        if not bridge or bridge.startswith("docker"):
            lines.append(
                f"Give {bridge or 'the bridge'} a range that does not contain {peer}: in /etc/docker/daemon.json "
                f'set {{"bip": "{bip}"}} and restart docker (containers get new addresses).'
            )
        elif bridge.startswith("br-"):
            lines.append(
                f'Recreate the docker network of {bridge} with a --subnet that does not contain {peer}, or set "default-address-pools" in /etc/docker/daemon.json.'
            )
        elif bridge.startswith("cni"):
            lines.append(
                f"Change the pod/bridge subnet of the CNI configuration of {bridge} so that it does not contain {peer}."
            )
        else:
            lines.append(
                f"Change the address range of {bridge} (e.g. `virsh net-edit`) so that it does not contain {peer}."
            )
        lines.append(
            f"Stop-gap: a more specific route for the peer via the uplink: "
            f"`ip route add {peer}/32 via {gateway or '<gateway>'} dev {uplink}`."
        )
        return "\n".join(lines)

    # --- facts alone: the configuration audit -------------------------------------------------
    def _audit_facts(self, ctx: AnalysisContext) -> Iterable[Finding]:
        """Bridge routes that win the route lookup for another known host's address."""
        facts = ctx.facts
        if facts is None:
            return
        hosts = sorted(facts.hosts.values(), key=lambda h: h.name)
        for host in hosts:
            for route in host.table_routes():
                if route.gateway or route.type != "unicast" or not _is_bridge(host, route.device):
                    continue
                try:
                    net = route.network
                except ValueError:
                    continue
                if net.prefixlen == 0:
                    continue
                peers = _peers_in(host, hosts, net, route)
                if peers:
                    yield self._facts_finding(ctx, host, route, peers)

    def _facts_finding(self, ctx: AnalysisContext, host, route, peers) -> Finding:  # type: ignore[no-untyped-def]
        bridge = route.device
        used = [u for u in [ctx.fact(route.source)] if u is not None]
        networks = [n for n in host.container_networks if n.bridge == bridge]
        used += [u for u in (ctx.fact(n.source) for n in networks) if u is not None]
        defaults = host.default_routes()
        gateway = defaults[0].gateway if defaults else ""
        uplink = defaults[0].device if defaults else ""
        named = ", ".join(
            f"{addr.address} ({peer.name} {iface.name})" for peer, iface, addr in peers
        )
        docker = next((n for n in networks if n.kind in ("network", "bip")), None)
        message = (
            f"Facts: {host.name} has the connected route {route.destination} dev {bridge}, which "
            f"covers {named}"
            + (
                f" (docker network {docker.name!r}, subnet {docker.subnet or '?'})"
                if docker is not None
                else ""
            )
            + f": replies to {'them' if len(peers) > 1 else 'it'} and the ARP requests for "
            f"{'them' if len(peers) > 1 else 'it'} would leave on {bridge}"
            + (f" instead of {uplink}" if uplink else "")
            + ". From facts alone: no capture shows whether these peers talk to "
            f"{host.name}."
        )
        addresses = [addr.address for _p, _i, addr in peers]
        return self.finding(
            ctx,
            subject=f"route {route.destination} dev {bridge} on {host.name}",
            message=message,
            confidence="low",
            facts_used=used,
            explanation=(
                f"{host.name} picks the route for a destination by longest prefix: "
                f"{route.destination} dev {bridge} is more specific than its "
                f"{'default route' if defaults else 'other routes'}, so packets for "
                f"{', '.join(addresses)} go into the bridge, where "
                f"{'those hosts do' if len(addresses) > 1 else 'that host does'} not live."
            ),
            remediation=_facts_remediation(host, addresses, peers, bridge, gateway, uplink),
            captures=[],
        )


def _is_bridge(host, device: str) -> bool:  # type: ignore[no-untyped-def]
    iface = host.interfaces.get(device)
    return bool(device) and (
        device.startswith(BRIDGE_PREFIXES) or (iface is not None and iface.kind == "bridge")
    )


def _peers_in(host, hosts, net, route) -> list:  # type: ignore[no-untyped-def]
    """Other hosts' interface addresses inside ``net`` that ``host`` would route via ``route``.

    A peer on the bridge's own subnet (a container or VM behind that bridge) belongs there and
    is not counted; neither is a peer the host routes elsewhere (a more specific route), nor a
    peer that also has an address on one of the host's other subnets (reached there).
    """
    own = {a.address for _i, a in host.addresses()}
    near_nets = []
    for iface, a in host.addresses():
        if iface.name != route.device and iface.kind != "loopback" and iface.name != "lo":
            try:
                near_nets.append(a.network)
            except ValueError:
                continue
    out = []
    for peer in hosts:
        if peer is host:
            continue
        # a peer with an address on one of the host's own (non-bridge) subnets is reached there:
        # its far-side addresses (a router's other interfaces) are not what the host talks to
        if any(_address_in(a.address, n) for _i, a in peer.addresses() for n in near_nets):
            continue
        for iface, addr in peer.addresses():
            if iface.name == "lo" or iface.kind == "loopback" or addr.address in own:
                continue
            try:
                ip = ipaddress.ip_address(addr.address)
                if ip.version != net.version or ip not in net or ip.is_link_local:
                    continue
                if addr.network == net:
                    continue  # lives on that bridge's subnet
            except ValueError:
                continue
            hit = host.route_lookup(addr.address)
            if hit is None or hit.device != route.device or hit.destination != route.destination:
                continue
            out.append((peer, iface, addr))
    return out


def _address_in(address: str, net) -> bool:  # type: ignore[no-untyped-def]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == net.version and ip in net and not (ip.is_loopback or ip.is_link_local)


def _facts_remediation(host, addresses, peers, bridge, gateway, uplink) -> str:  # type: ignore[no-untyped-def]
    """The bridge setting to change (a free range for daemon.json's bip), then a stop-gap."""
    taken = []
    for _i, a in host.addresses():
        try:
            taken.append(a.network)
        except ValueError:
            continue
    peer_ips = [ipaddress.ip_address(a) for a in addresses]
    bip = next(
        (
            c
            for c in ("172.30.0.1/16", "10.254.0.1/16", "192.168.254.1/24")
            if not any(ip in ipaddress.ip_interface(c).network for ip in peer_ips)
            and not any(
                ipaddress.ip_interface(c).network.overlaps(n)
                for n in taken
                if n.version == 4 and n.prefixlen > 0
            )
        ),
        "172.30.0.1/16",
    )
    lines = []
    if bridge.startswith("docker"):
        bip_line = next(
            (n.source for n in host.container_networks if n.kind == "bip" and n.source), None
        )
        where = f" (today {bip_line.ref}: {bip_line.text.strip()})" if bip_line else ""
        lines.append(
            f"On {host.name}, give {bridge} a range that contains none of them: in "
            f'/etc/docker/daemon.json set {{"bip": "{bip}"}}{where} and restart docker '
            "(containers get new addresses)."
        )
    elif bridge.startswith("br-"):
        lines.append(
            f"On {host.name}, recreate the docker network of {bridge} with a --subnet that "
            'contains none of them, or set "default-address-pools" in /etc/docker/daemon.json.'
        )
    elif bridge.startswith("cni"):
        lines.append(
            f"On {host.name}, change the pod/bridge subnet of the CNI configuration of {bridge} so "
            "that it contains none of them."
        )
    else:
        lines.append(
            f"On {host.name}, change the address range of {bridge} (e.g. `virsh net-edit`) so "
            "that it contains none of them."
        )
    # stop-gap: the peers' own subnets (more specific than the bridge's) via the uplink
    stopgaps = []
    for _peer, _iface, addr in peers:
        net = addr.network
        target = str(net) if net.prefixlen < net.max_prefixlen else f"{addr.address}/32"
        if target not in stopgaps:
            stopgaps.append(target)
    lines.append("Stop-gap, more specific routes via the uplink:")
    for target in stopgaps:
        lines.append(
            f"ip route add {target} via {gateway or '<gateway>'} dev {uplink or '<uplink>'}"
        )
    return "\n".join(lines)
