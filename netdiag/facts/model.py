"""The topology facts model: hosts, their interfaces, routes, sysctls, NAT, services, tunnels.

Every fact keeps its provenance: a ``Source`` (file, line, the line's text) when it was read from
pasted text, or an ``Inferred`` (capture and frames) when it was deduced from traffic. Provenance
never takes part in equality (``compare=False``), so facts exported to the YAML topology and read
back compare equal to the originals.

The query helpers at the bottom (route lookup, effective sysctl, address owner, ...) are what the
rules use; they never touch the text the facts came from.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- provenance -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Where a fact was read: file, 1-based line number and the text of that line."""

    file: str
    line: int
    text: str = ""

    @property
    def ref(self) -> str:
        return f"{self.file}:{self.line}"

    def __str__(self) -> str:
        return f"{self.ref}: {self.text.strip()}" if self.text else self.ref


@dataclass(frozen=True)
class Inferred:
    """A fact deduced from traffic: which capture and which (1-based) frames show it."""

    capture: str
    frames: tuple[int, ...]
    note: str = ""

    @property
    def ref(self) -> str:
        shown = ",".join(str(f) for f in self.frames[:5])
        more = "..." if len(self.frames) > 5 else ""
        return f"inferred from {self.capture} frames {shown}{more}"

    def __str__(self) -> str:
        return self.ref + (f" ({self.note})" if self.note else "")


Provenance = Source | Inferred


@dataclass(frozen=True)
class Problem:
    """Something in the input that could not be understood (reported, then skipped)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


# --- per-host facts ---------------------------------------------------------------------------
@dataclass
class Address:
    """An address configured on an interface, with its prefix length."""

    address: str  # "10.0.0.3"
    prefixlen: int
    scope: str = ""  # host, link, global
    label: str = ""  # eth0:0
    peer: str = ""  # point-to-point peer prefix
    source: Provenance | None = field(default=None, compare=False, repr=False)

    @property
    def interface(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        return ipaddress.ip_interface(f"{self.address}/{self.prefixlen}")

    @property
    def network(self) -> IPNetwork:
        return self.interface.network


@dataclass
class Interface:
    """A network interface of a host."""

    name: str
    ifindex: int | None = None
    mac: str = ""
    mtu: int | None = None
    kind: str = ""  # loopback, ether, veth, bridge, vlan, ...
    master: str = ""  # the bridge (or bond) it is enslaved to
    link: str = ""  # "eth0@if2": the peer/parent as printed after '@'
    state: str = ""  # UP, DOWN, UNKNOWN
    flags: list[str] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)
    source: Provenance | None = field(default=None, compare=False, repr=False)


@dataclass
class Route:
    """One routing table entry."""

    destination: str  # "default", "0.0.0.0/0", "10.0.0.0/24", "10.0.0.3" (= /32)
    table: str = "main"
    type: str = "unicast"  # unicast, local, broadcast, blackhole, unreachable, prohibit, ...
    gateway: str = ""
    device: str = ""
    prefsrc: str = ""
    metric: int | None = None
    protocol: str = ""  # kernel, static, dhcp, boot
    scope: str = ""
    family: int = 4
    source: Provenance | None = field(default=None, compare=False, repr=False)

    @property
    def network(self) -> IPNetwork:
        if self.destination == "default":
            return ipaddress.ip_network("::/0" if self.family == 6 else "0.0.0.0/0")
        return ipaddress.ip_network(self.destination, strict=False)


@dataclass
class PolicyRule:
    """An `ip rule` entry: selectors and the table it looks up (or its action)."""

    priority: int
    from_: str = "all"
    to: str = "all"
    iif: str = ""
    oif: str = ""
    fwmark: str = ""
    table: str = ""  # lookup TABLE
    action: str = "lookup"  # lookup, unreachable, blackhole, prohibit, goto, nop
    invert: bool = False
    family: int = 4
    source: Provenance | None = field(default=None, compare=False, repr=False)


@dataclass
class Neighbour:
    """An ARP / NDP cache entry."""

    address: str
    mac: str = ""  # empty when incomplete/failed
    device: str = ""
    state: str = ""  # REACHABLE, STALE, PERMANENT, FAILED, INCOMPLETE...
    source: Provenance | None = field(default=None, compare=False, repr=False)


@dataclass
class FdbEntry:
    """A bridge forwarding-database entry: a MAC learnt (or set) behind a bridge port."""

    mac: str
    device: str  # the port
    master: str = ""  # the bridge
    vlan: str = ""
    state: str = ""  # permanent, static, '' (learnt)
    dst: str = ""  # VXLAN remote
    source: Provenance | None = field(default=None, compare=False, repr=False)


@dataclass
class Sysctl:
    """One kernel parameter as the host reported it, keyed by its dotted name."""

    key: str  # net.ipv4.conf.eth0.rp_filter (VLAN dots as '/': eth0/100)
    value: str
    source: Provenance | None = field(default=None, compare=False, repr=False)


@dataclass
class NatRule:
    """One address-translation rule (iptables nat table / nft nat chain)."""

    action: str  # DNAT, SNAT, MASQUERADE, REDIRECT
    chain: str = ""
    table: str = "nat"
    src: str = ""  # CIDR the source must be in ('' = any); prefix '!' negates
    dst: str = ""
    in_iface: str = ""  # prefix '!' negates
    out_iface: str = ""
    protocol: str = ""
    dports: list[str] = field(default_factory=list)
    to: str = ""  # to-destination / to-source / to-ports
    matches: list[str] = field(default_factory=list)  # other matches, as written
    source: Provenance | None = field(default=None, compare=False, repr=False)

    def to_addresses(self) -> list[str]:
        """The IPv4 addresses named by ``to`` ('192.168.1.185:80', an nft numgen map, a range)."""
        return re.findall(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])", self.to)


@dataclass
class Socket:
    """A listening socket."""

    protocol: str  # tcp, udp
    address: str  # "0.0.0.0", "::", "*", "10.0.0.3"
    port: int
    process: str = ""
    source: Provenance | None = field(default=None, compare=False, repr=False)


@dataclass
class RealServer:
    """A backend of a load-balancer service."""

    address: str
    port: int | None = None
    method: str = ""  # DR, NAT, TUN, FULLNAT (L7 proxies: PROXY)
    weight: int | None = None
    source: Provenance | None = field(default=None, compare=False, repr=False)


@dataclass
class Service:
    """A load-balancer listener: VIP:port and how it reaches its real servers."""

    vip: str
    port: int | None
    protocol: str = "tcp"
    layer: str = ""  # L4 or L7 ('' unknown)
    keeps_client_address: bool | None = None
    scheduler: str = ""
    persistence: int | None = None  # seconds
    kind: str = ""  # ipvs, keepalived, cloud
    name: str = ""
    real_servers: list[RealServer] = field(default_factory=list)
    source: Provenance | None = field(default=None, compare=False, repr=False)


@dataclass
class IpsecConn:
    """An IPsec connection (or child SA) with its gateways and traffic selectors."""

    name: str
    local_gateway: str = ""
    remote_gateway: str = ""
    local_subnets: list[str] = field(default_factory=list)
    remote_subnets: list[str] = field(default_factory=list)
    kind: str = ""  # strongswan, swanctl, libreswan, cloud
    auto: str = ""
    source: Provenance | None = field(default=None, compare=False, repr=False)
    #: the lines that set the local / remote subnets (what a remediation changes)
    local_subnets_source: Provenance | None = field(default=None, compare=False, repr=False)
    remote_subnets_source: Provenance | None = field(default=None, compare=False, repr=False)

    def covers_local(self, address: str) -> bool:
        return _covered(address, self.local_subnets)

    def covers_remote(self, address: str) -> bool:
        return _covered(address, self.remote_subnets)


@dataclass
class ContainerNetwork:
    """A container bridge network (docker network inspect, daemon.json bip/pools)."""

    name: str
    driver: str = "bridge"
    bridge: str = ""  # docker0, br-1a2b3c...
    subnet: str = ""
    gateway: str = ""
    kind: str = "network"  # network, bip (daemon.json), pool (default-address-pools)
    pool_size: int | None = None
    source: Provenance | None = field(default=None, compare=False, repr=False)


@dataclass
class CaptureBinding:
    """Which capture file was taken on which host and interface."""

    capture: str
    host: str
    interface: str = ""
    note: str = ""
    source: Provenance | None = field(default=None, compare=False, repr=False)


# --- inferred from traffic --------------------------------------------------------------------
@dataclass
class MacBinding:
    """An IP address seen with a MAC address (ARP sender, or IP source of a frame)."""

    ip: str
    mac: str
    via: str  # "arp" or "ip"
    frames: int = 0  # how many frames show it
    source: Provenance | None = field(default=None, compare=False, repr=False)


@dataclass
class Gateway:
    """A MAC that carries the traffic of many IP addresses: a router, the director, a NAT box."""

    mac: str
    ips: int  # distinct IP sources seen behind it
    own_ips: list[str] = field(default_factory=list)  # addresses it claims in ARP
    source: Provenance | None = field(default=None, compare=False, repr=False)


@dataclass
class ProxyRange:
    """A well-known range seen in traffic, e.g. 100.64.0.0/10 of cloud L7 proxies / health checks."""

    cidr: str
    meaning: str
    addresses: list[str] = field(default_factory=list)
    source: Provenance | None = field(default=None, compare=False, repr=False)


# --- host and fact set ------------------------------------------------------------------------
#: sysctls whose effective value is max(all, interface), and those that are (all OR interface)
SYSCTL_MAX = ("arp_ignore", "arp_announce", "rp_filter", "arp_accept", "arp_notify")
SYSCTL_OR = (
    "accept_local",
    "send_redirects",
    "proxy_arp",
    "arp_filter",
    "route_localnet",
    "log_martians",
    "secure_redirects",
    "shared_media",
)


@dataclass
class EffectiveSysctl:
    """The value the kernel uses for one parameter on one interface, and why."""

    name: str
    interface: str
    value: int | None  # None: not known from the facts
    rule: str  # "max(all, eth0)", "all OR eth0", "net.ipv4.ip_forward"
    used: list[Sysctl] = field(default_factory=list)


@dataclass
class Host:
    """Everything known about one host (a machine, namespace, or cloud device)."""

    name: str
    interfaces: dict[str, Interface] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    rules: list[PolicyRule] = field(default_factory=list)
    neighbours: list[Neighbour] = field(default_factory=list)
    fdb: list[FdbEntry] = field(default_factory=list)
    sysctls: dict[str, Sysctl] = field(default_factory=dict)
    nat_rules: list[NatRule] = field(default_factory=list)
    sockets: list[Socket] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    ipsec: list[IpsecConn] = field(default_factory=list)
    container_networks: list[ContainerNetwork] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not any(
            (self.interfaces, self.routes, self.rules, self.neighbours, self.fdb, self.sysctls)
            + (self.nat_rules, self.sockets, self.services, self.ipsec, self.container_networks)
        )

    # --- queries ---------------------------------------------------------------------------
    def addresses(self) -> list[tuple[Interface, Address]]:
        return [(i, a) for i in self.interfaces.values() for a in i.addresses]

    def owns(self, address: str) -> Interface | None:
        """The interface carrying ``address``, or None."""
        ip = _ip(address)
        if ip is None:
            return None
        for iface, addr in self.addresses():
            if _ip(addr.address) == ip:
                return iface
        return None

    def ifname(self, ifindex: int) -> str | None:
        for iface in self.interfaces.values():
            if iface.ifindex == ifindex:
                return iface.name
        return None

    def connected_routes(self) -> list[Route]:
        """Routes implied by the interface addresses (what the kernel adds, proto kernel)."""
        out = []
        for iface, addr in self.addresses():
            try:
                net = addr.network
            except ValueError:
                continue
            out.append(
                Route(
                    destination=str(net),
                    device=iface.name,
                    prefsrc=addr.address,
                    protocol="kernel",
                    scope="host" if iface.kind == "loopback" else "link",
                    family=net.version,
                    source=addr.source,
                )
            )
        return out

    def table_routes(self, table: str = "main") -> list[Route]:
        """The routes of one table; for 'main', the connected routes when no route was pasted."""
        routes = [r for r in self.routes if r.table == table]
        if table == "main" and not any(r.table == "main" for r in self.routes):
            routes = [r for r in self.connected_routes() if r.scope != "host"]
        return routes

    def lookup_table(self, address: str, table: str = "main") -> Route | None:
        """Longest prefix match of ``address`` in one table (lowest metric among equals)."""
        ip = _ip(address)
        if ip is None:
            return None
        best: Route | None = None
        best_key: tuple[int, int] = (-1, 0)
        for route in self.table_routes(table):
            try:
                net = route.network
            except ValueError:
                continue
            if net.version != ip.version or ip not in net:
                continue
            key = (net.prefixlen, -(route.metric or 0))
            if key > best_key:
                best, best_key = route, key
        return best

    def route_lookup(self, address: str, src: str | None = None) -> Route | None:
        """The route the kernel picks for ``address``: local first, then policy rules, then main.

        Rules with from/to/lookup selectors are honoured; rules matching on marks or interfaces
        are skipped (a packet's mark and input interface are not known here).
        """
        ip = _ip(address)
        if ip is None:
            return None
        for iface, addr in self.addresses():
            if _ip(addr.address) == ip:
                # an address of the host itself: the local table's 'local' route
                return Route(
                    destination=address,
                    table="local",
                    type="local",
                    device=iface.name,
                    prefsrc=address,
                    family=ip.version,
                    source=addr.source,
                )
        for rule in self.effective_rules():
            if rule.iif or rule.oif or rule.fwmark or rule.invert:
                continue
            if rule.from_ != "all" and (src is None or not _covered(src, [rule.from_])):
                continue
            if rule.to != "all" and not _covered(address, [rule.to]):
                continue
            if rule.action in ("blackhole", "unreachable", "prohibit"):
                return Route(destination=address, table="", type=rule.action, source=rule.source)
            if rule.action != "lookup" or not rule.table:
                continue
            hit = self.lookup_table(address, rule.table)
            if hit is not None:
                return hit
        return None

    def egress_interface(self, address: str, src: str | None = None) -> str | None:
        """The interface packets to ``address`` leave by (the one an ARP for it goes out on).

        arp_ignore is judged on the interface a request arrives on and arp_announce on the one
        the request leaves by: for a DR real server, ``effective_sysctl("arp_ignore",
        host.egress_interface(client_or_router))``, not on lo where the VIP sits.
        """
        route = self.route_lookup(address, src)
        if route is None or not route.device or route.type == "local":
            return None
        return route.device

    def effective_rules(self) -> list[PolicyRule]:
        """The policy rules in priority order; the kernel's three defaults when none was pasted."""
        if self.rules:
            return sorted(self.rules, key=lambda r: r.priority)
        return [
            PolicyRule(priority=0, table="local"),
            PolicyRule(priority=32766, table="main"),
            PolicyRule(priority=32767, table="default"),
        ]

    def default_routes(self, table: str = "main") -> list[Route]:
        return [r for r in self.table_routes(table) if r.network.prefixlen == 0]

    def sysctl(self, key: str) -> Sysctl | None:
        return self.sysctls.get(key)

    def effective_sysctl(self, name: str, interface: str = "all") -> EffectiveSysctl:
        """The value the kernel uses for IPv4 parameter ``name`` on ``interface``.

        arp_ignore, arp_announce, rp_filter (and arp_accept/arp_notify): max(all, interface);
        accept_local, send_redirects, proxy_arp...: all OR interface; ip_forward: the global
        net.ipv4.ip_forward; forwarding: the interface's own value, else ip_forward.
        """
        if name == "ip_forward":
            got = self.sysctls.get("net.ipv4.ip_forward")
            used = [got] if got else []
            return EffectiveSysctl(name, interface, _int(got), "net.ipv4.ip_forward", used)
        dev = interface.replace(".", "/")
        all_ = self.sysctls.get(f"net.ipv4.conf.all.{name}")
        own = self.sysctls.get(f"net.ipv4.conf.{dev}.{name}") if dev != "all" else None
        used = [s for s in (all_, own) if s is not None]
        if name == "forwarding":
            fwd = own or all_ or self.sysctls.get("net.ipv4.ip_forward")
            return EffectiveSysctl(
                name, interface, _int(fwd), f"conf.{dev}.forwarding", [fwd] if fwd else []
            )
        values = [_int(s) for s in used]
        known = [v for v in values if v is not None]
        if name in SYSCTL_MAX:
            rule = f"max(all, {interface})"
            value = max(known) if known else None
        elif name in SYSCTL_OR:
            rule = f"all OR {interface}"
            value = (1 if any(known) else 0) if known else None
        else:
            rule = f"{interface}"
            value = _int(own) if own is not None else _int(all_)
        if dev != "all" and own is None and value is not None and name in SYSCTL_MAX + SYSCTL_OR:
            # the interface's own value is unknown: all's value is only a lower bound
            rule += " (interface value not in facts: lower bound)"
        return EffectiveSysctl(name, interface, value, rule, used)

    def nat_rules_covering_source(
        self, address: str, actions: tuple[str, ...] = ("SNAT", "MASQUERADE")
    ) -> list[NatRule]:
        """Source-NAT rules whose source match includes ``address`` (any output interface)."""
        return [r for r in self.nat_rules if r.action in actions and _match_cidr(address, r.src)]


@dataclass
class FactSet:
    """All facts of one analysis: hosts, captures' placement, facts inferred from traffic."""

    hosts: dict[str, Host] = field(default_factory=dict)
    captures: list[CaptureBinding] = field(default_factory=list)
    mac_bindings: list[MacBinding] = field(default_factory=list)
    gateways: list[Gateway] = field(default_factory=list)
    proxy_ranges: list[ProxyRange] = field(default_factory=list)
    files: list[str] = field(default_factory=list, compare=False)

    def host(self, name: str) -> Host:
        """The host of that name, created empty when first asked for."""
        got = self.hosts.get(name)
        if got is None:
            got = self.hosts[name] = Host(name)
        return got

    def is_empty(self) -> bool:
        return all(h.is_empty() for h in self.hosts.values()) and not self.captures

    # --- queries ---------------------------------------------------------------------------
    def owners(self, address: str) -> list[tuple[Host, Interface]]:
        """Every (host, interface) that has ``address`` configured (a VIP has several)."""
        out = []
        for host in self.hosts.values():
            iface = host.owns(address)
            if iface is not None:
                out.append((host, iface))
        return out

    def services(self) -> list[tuple[Host, Service]]:
        return [(h, s) for h in self.hosts.values() for s in h.services]

    def services_by_vip(self, vip: str, port: int | None = None) -> list[tuple[Host, Service]]:
        ip = _ip(vip)
        return [
            (h, s)
            for h, s in self.services()
            if _ip(s.vip) == ip and (port is None or s.port in (None, 0, port))
        ]

    def real_server_hosts(self, service: Service) -> list[Host]:
        """Hosts owning a real server address of ``service``."""
        out: list[Host] = []
        for rs in service.real_servers:
            out.extend(h for h, _ in self.owners(rs.address))
        return out

    def ipsec_conns(self) -> list[tuple[Host, IpsecConn]]:
        return [(h, c) for h in self.hosts.values() for c in h.ipsec]

    def ipsec_covering_remote(self, address: str) -> list[tuple[Host, IpsecConn]]:
        """IPsec connections whose remote traffic selector includes ``address``."""
        return [(h, c) for h, c in self.ipsec_conns() if c.covers_remote(address)]

    def container_networks(self) -> list[tuple[Host, ContainerNetwork]]:
        return [(h, n) for h in self.hosts.values() for n in h.container_networks]

    def capture_host(self, capture: str) -> CaptureBinding | None:
        """Where a capture was taken, matched on the file name (with or without folders)."""
        base = capture.replace("\\", "/").rsplit("/", 1)[-1]
        for c in self.captures:
            if c.capture == capture or c.capture.replace("\\", "/").rsplit("/", 1)[-1] == base:
                return c
        return None


# --- small helpers ----------------------------------------------------------------------------
def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _int(s: Sysctl | None) -> int | None:
    if s is None:
        return None
    try:
        return int(s.value.split()[0])
    except (ValueError, IndexError):
        return None


def parse_network(text: str) -> IPNetwork | None:
    """A CIDR, a bare address (host route) or 'default'/'any'/'%any' as a network; None if bad."""
    t = text.strip()
    if t in ("default", "all", "any", "%any", "0/0"):
        return ipaddress.ip_network("0.0.0.0/0")
    if t in ("%any6", "::/0"):
        return ipaddress.ip_network("::/0")
    try:
        return ipaddress.ip_network(t, strict=False)
    except ValueError:
        return None


def host_prefix_as_address(text: str) -> str:
    """'172.17.0.2/32' -> '172.17.0.2' (keeps '!' and lists): iptables and nft print it apart."""
    negate = "!" if text.startswith("!") else ""
    out = []
    for part in text.lstrip("!").split(","):
        net = parse_network(part.strip()) if "/" in part else None
        if net is not None and net.prefixlen == net.max_prefixlen:
            out.append(str(net.network_address))
        else:
            out.append(part.strip())
    return negate + ",".join(out)


def _covered(address: str, cidrs: list[str]) -> bool:
    ip = _ip(address)
    if ip is None:
        return False
    for cidr in cidrs:
        if cidr.startswith("%") or cidr == "dynamic":
            continue  # %any / dynamic: the peer's own address, not known from the text
        net = parse_network(cidr.split("[", 1)[0])  # swanctl 'net[proto/port]'
        if net is not None and net.version == ip.version and ip in net:
            return True
    return False


def _match_cidr(address: str, spec: str) -> bool:
    """Does ``address`` satisfy an iptables-style source match ('' any, '!' negation)?"""
    if not spec:
        return True
    negate = spec.startswith("!")
    body = spec.lstrip("!").strip()
    hit = _covered(address, [c.strip() for c in body.split(",")])
    return hit != negate
