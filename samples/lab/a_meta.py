"""What each lab sample of patterns 1, 2 and 5 is: ground-truth metadata and signature detectors.

One entry per pattern and variant; a_samples.py turns it into expected.yaml and README.md. The
addresses repeat the constants of the pattern's shell script (tests check they occur in the facts).
"""

from typing import Any

HAIRPIN_ADDR = {
    "vip": "10.10.0.100",
    "rips": ["10.10.1.11", "10.10.2.12"],
    "client": "10.10.1.11",
    "lb": "10.10.1.1",
    "other_client": "10.20.0.5",
}
HAIRPIN_HOSTS = ["backend1", "backend2", "lb", "client"]
HAIRPIN_HOW = """Four network namespaces: client, lb (a router with the VIP 10.10.0.100 on lo),
backend1 and backend2, each backend on its own link to lb with lb as default gateway. Both
backends run a small HTTP server on :80 answering with their host name. backend1 curls the VIP
six times (each attempt bounded to 2.5 s connect, 4 s total) while tcpdump -i any runs on
backend1 (Linux cooked v2, -B 16384, kernel drop count checked to be 0). Background: pings
backend1 -> backend2 and client -> VIP, two UDP exchanges to an echo on backend2:7 (UDP echo), one
direct HTTP fetch backend1 -> backend2, one fetch client -> VIP, IPv6 link-local chatter."""
HAIRPIN_L4_EMULATED = """The cloud L4 (TCP) listener is emulated by nftables on lb: `ip daddr
10.10.0.100 tcp dport 80 dnat to numgen inc mod 2 map { 0 : 10.10.1.11, 1 : 10.10.2.12 }`, a
destination-only rewrite that keeps the client address, as a layer-4 listener does; lb has
send_redirects=0. facts/lb-listener.yaml describes the listener as a cloud console would."""

HAIRPIN: dict[str, dict[str, Any]] = {
    "faulty-l4": {
        "pattern": "l4-hairpin-reset",
        "rules": ["LB001"],
        "description": """backend1 (10.10.1.11) is both a backend and a client of the L4
        listener 10.10.0.100:80. Connections scheduled to backend2 succeed; those scheduled to
        backend1 itself show the seed's sequence on backend1's -i any capture: SYN
        10.10.1.11:p > 10.10.0.100:80, the same SYN (same ISN and port) back on eth0 as
        10.10.1.11:p > 10.10.1.11:80, the SYN-ACK 10.10.1.11:80 > 10.10.1.11:p over lo, and
        the RST; the client's SYN retransmissions repeat it until curl gives up. backend1 has
        accept_local=1, so this kernel accepts the packet with its own source address (older
        kernels without the local-source check accept it with the defaults, as in seed 000).""",
        "emulated": HAIRPIN_L4_EMULATED,
        "real": """Every packet in the capture was sent and received by the Linux kernel of this
        machine (6.x): the DNAT hairpin, the acceptance of the own-source SYN (accept_local=1),
        the SYN-ACK routed over lo and the RST because no socket owns that 4-tuple. Measured
        on this kernel: accept_local=1 gives SYN-ACK over lo + RST whatever rp_filter is
        (0, 1 or 2); accept_local=0 drops the SYN as a martian (see faulty-l4-martian).""",
        "crafted": "nothing; the listener YAML in facts/ is written, not captured.",
        "addresses": HAIRPIN_ADDR,
        "hosts": HAIRPIN_HOSTS,
        "how": HAIRPIN_HOW,
        "captures": [
            {
                "file": "backend1-any.pcap",
                "host": "backend1",
                "interface": "any",
                "detector": {"name": "hairpin", "vip": "10.10.0.100"},
                "require": ["syn-to-vip", "hairpin-syn", "syn-ack-over-lo", "rst"],
            }
        ],
    },
    "faulty-l4-martian": {
        "pattern": "l4-hairpin-reset",
        "rules": ["LB001"],
        "description": """The same L4 listener and the same backend1-as-client traffic as
        faulty-l4, but backend1 keeps this kernel's default accept_local=0. The hairpinned SYN
        (src = dst = 10.10.1.11, same ISN and port as the SYN to the VIP) is visible on eth0 in
        the -i any capture, is then dropped by the kernel as a martian source, so there is no
        SYN-ACK and no RST: the SYN to the VIP is retransmitted and curl times out. Connections
        scheduled to backend2 succeed.""",
        "emulated": HAIRPIN_L4_EMULATED,
        "real": """All packets are real kernel traffic. The silent drop of a packet whose source
        is a local address (accept_local=0; rp_filter 0, 1 and 2 all give the same drop on this
        6.x kernel) is real kernel behaviour; kernels of the seed's age skipped that check when
        rp_filter=0 and answered as in faulty-l4.""",
        "crafted": "nothing; the listener YAML in facts/ is written, not captured.",
        "addresses": HAIRPIN_ADDR,
        "hosts": HAIRPIN_HOSTS,
        "how": HAIRPIN_HOW,
        "captures": [
            {
                "file": "backend1-any.pcap",
                "host": "backend1",
                "interface": "any",
                "detector": {"name": "hairpin", "vip": "10.10.0.100"},
                "require": ["syn-to-vip", "hairpin-syn", "syn-retransmission"],
                "forbid": ["syn-ack-over-lo"],
            }
        ],
    },
    "healthy-l7": {
        "pattern": "healthy",
        "rules": [],
        "description": """The fix of seed 000: backend1 uses a layer-7 (HTTP) listener on
        10.10.0.100:8080. The proxy terminates backend1's connection and opens its own to a
        backend from the proxy address 100.64.0.2, so backend1 sees requests from 100.64.0.2 and
        never its own address; all six attempts succeed, including those scheduled to itself.""",
        "emulated": """The cloud HTTP listener is emulated by a small userspace proxy on lb
        (samples/lab/a_l7proxy.py) listening on 10.10.0.100:8080, binding its upstream
        connections to 100.64.0.2 (the seed's 100.64.0.0/10 proxy range), round-robin between the
        two backends. facts/lb-listener.yaml describes it.""",
        "real": "All packets are real kernel traffic of the proxy's and backends' sockets.",
        "crafted": "nothing; the listener YAML in facts/ is written, not captured.",
        "addresses": {**HAIRPIN_ADDR, "proxy": "100.64.0.2"},
        "hosts": HAIRPIN_HOSTS,
        "how": HAIRPIN_HOW,
        "captures": [
            {
                "file": "backend1-any.pcap",
                "host": "backend1",
                "interface": "any",
                "detector": {"name": "hairpin", "vip": "10.10.0.100"},
            }
        ],
    },
    "healthy-snat": {
        "pattern": "healthy",
        "rules": [],
        "description": """The other fix: the L4 listener also rewrites the source (masquerade to
        lb's address 10.10.1.1 / 10.10.2.1 towards the backends). The connection scheduled to
        backend1 itself arrives as 10.10.1.1:p > 10.10.1.11:80 with the same ISN as backend1's SYN
        to the VIP, the reply goes back through lb, and all six attempts succeed. The client
        address is no longer preserved (the trade-off of this fix).""",
        "emulated": HAIRPIN_L4_EMULATED
        + """ Plus a postrouting rule `ct status dnat ip daddr {
        10.10.1.11, 10.10.2.12 } tcp dport 80 masquerade`.""",
        "real": "All packets are real kernel traffic (DNAT + masquerade by nftables conntrack).",
        "crafted": "nothing; the listener YAML in facts/ is written, not captured.",
        "addresses": HAIRPIN_ADDR,
        "hosts": HAIRPIN_HOSTS,
        "how": HAIRPIN_HOW,
        "captures": [
            {
                "file": "backend1-any.pcap",
                "host": "backend1",
                "interface": "any",
                "detector": {"name": "hairpin", "vip": "10.10.0.100"},
            }
        ],
    },
}

DR_ADDR = {
    "vip": "10.30.0.100",
    "dip": "10.30.0.2",
    "rips": ["10.30.0.11", "10.30.0.12"],
    "client": "10.40.0.10",
    "gateway": "10.30.0.1",
    "director_mac": "02:00:0a:1e:00:02",
    "rs_macs": ["02:00:0a:1e:00:0b", "02:00:0a:1e:00:0c"],
    "gateway_mac": "02:00:0a:1e:00:01",
}
DR_HOSTS = ["director", "rs1", "rs2", "router", "client", "sw"]
DR_HOW = """Six namespaces: client (10.40.0.10) behind router (10.40.0.1 / 10.30.0.1), and one
switched segment (a Linux bridge in namespace sw) joining router, director (DIP 10.30.0.2, VIP
10.30.0.100 on eth0:0), rs1 (10.30.0.11) and rs2 (10.30.0.12), each real server with the VIP on
lo:0 (/32), default route via the router and a small HTTP server on :80. Phase 1: the client
fetches http://VIP/ four times. Then rs1 is "rebooted" (its neighbour table flushed; in the faulty
variant its ARP sysctls go back to 0/0 because they were never persisted). Phase 2: ten more
fetches. Background: pings client -> rs2 and client -> router, two UDP exchanges with an echo on
rs2:7 (UDP echo), IPv6 link-local chatter. Captures: dumpcap on all four switch ports into one pcapng
(Ethernet, several interfaces, drop counters checked), tcpdump -i eth1 on the router with
nanosecond timestamps (drop count checked). Every client request is bounded (curl -m 3)."""
DR_EMULATED = """The IPVS-DR director is emulated with an nftables netdev ingress rule on the director's
eth0: frames for VIP:80 addressed to the director get `ether saddr set <director MAC> ether daddr
set jhash ip saddr . tcp sport mod 2 map { 0 : <rs1 MAC>, 1 : <rs2 MAC> } fwd to "eth0"`, i.e. only
the MAC header is rewritten, as IPVS does in DR mode (scheduler like ipvsadm's sh with sh-port).
facts/ipvsadm.txt and facts/keepalived.conf are written in the real tools' syntax for that
service, not captured. The shared segment is a Linux bridge in its own namespace."""
DR_DETECTOR = {"name": "dr_arp", "vip": "10.30.0.100", "director_mac": "02:00:0a:1e:00:02"}

DR: dict[str, dict[str, Any]] = {
    "faulty-arp-ignore": {
        "pattern": "lvs-dr-arp-leak",
        "rules": ["ARP001"],
        "description": """LVS-DR with ARP suppression lost on one real server: after its reboot rs1
        has arp_ignore=0 and arp_announce=0 while the VIP sits on its lo. When rs1 answers a
        client connection (source address VIP) it must resolve the router and sends `who-has
        10.30.0.1 tell 10.30.0.100` from its own MAC (arp_announce=0 takes the packet's source,
        the VIP); the router takes that as 10.30.0.100 is-at rs1's MAC (Wireshark: "duplicate use of
        10.30.0.100 detected"). From then on the router sends the client's frames for the VIP
        straight to rs1's MAC: the director is bypassed and all load lands on rs1. rs1 would also answer a
        who-has for the VIP (arp_ignore=0 answers for an address held on lo); the router did not
        re-resolve the VIP during this short capture, so no such reply appears. Phase 1 (before the reboot) shows the normal DR path
        for contrast: router -> director MAC, director -> real server MAC.""",
        "emulated": DR_EMULATED,
        "real": """All ARP behaviour is the real kernel's: rs1's choice of the VIP as ARP sender
        address (arp_announce=0), the router's
        neighbour table update from an ARP request addressed to it, and the router's choice of
        rs1's MAC afterwards; all TCP is real sockets.""",
        "crafted": """nothing is crafted; the one lab shortcut is `ip neigh flush` on rs1
        standing in for the empty neighbour table after a reboot, and the sysctl reset standing
        in for the reboot itself.""",
        "addresses": DR_ADDR,
        "hosts": DR_HOSTS,
        "how": DR_HOW,
        "captures": [
            {
                "file": "segment.pcapng",
                "host": "sw",
                "interface": "p-router,p-director,p-rs1,p-rs2",
                "detector": DR_DETECTOR,
                "require": ["frame-to-vip-bypassing-director"],
            },
            {
                "file": "router-eth1.pcap",
                "host": "router",
                "interface": "eth1",
                "detector": DR_DETECTOR,
                "require": ["frame-to-vip-bypassing-director"],
            },
        ],
    },
    "healthy": {
        "pattern": "healthy",
        "rules": [],
        "description": """The same LVS-DR setup and the same two phases, with arp_ignore=1 and
        arp_announce=2 on all and lo of both real servers, persisted across rs1's reboot. Only
        the director answers who-has 10.30.0.100; rs1 resolves the router with its own address
        10.30.0.11 as sender; every client frame for the VIP reaches the director's MAC first and
        is then forwarded with a real server's MAC, and the replies come from the real servers
        with source address VIP straight to the router (the DR return path).""",
        "emulated": DR_EMULATED,
        "real": "All ARP and TCP behaviour is the real kernel's.",
        "crafted": """nothing; `ip neigh flush` on rs1 stands in for the reboot's empty
        neighbour table.""",
        "addresses": DR_ADDR,
        "hosts": DR_HOSTS,
        "how": DR_HOW,
        "captures": [
            {
                "file": "segment.pcapng",
                "host": "sw",
                "interface": "p-router,p-director,p-rs1,p-rs2",
                "detector": DR_DETECTOR,
            },
            {
                "file": "router-eth1.pcap",
                "host": "router",
                "interface": "eth1",
                "detector": DR_DETECTOR,
            },
        ],
    },
}

LVSNAT_ADDR = {
    "vip": "198.51.100.131",
    "dip": "192.168.1.186",
    "rips": ["192.168.1.185", "192.168.1.190"],
    "client": "198.51.100.150",
    "gateway": "192.168.1.1",
}
LVSNAT_HOSTS = ["director", "real_server1", "real_server2", "router", "client"]
LVSNAT_HOW = """Seed 004's LVS-NAT lab with its inside addresses (director eth0 DIP 192.168.1.186,
real_server1 192.168.1.185, real_server2 192.168.1.190) and the outside network moved to
TEST-NET-2: VIP 198.51.100.131 on the director's eth1, client 198.51.100.150, and a second router
(192.168.1.1 / 198.51.100.1) joining both networks. Each network is a Linux bridge in its own
namespace. Both real servers run a small HTTP server on :80. The client fetches http://VIP/ six
times (curl --connect-timeout 2.5 -m 4). Background: client pings the router and the VIP, the
real servers ping each other and exchange a UDP echo (port 7). Captures: tcpdump -i eth0 on the
client with nanosecond timestamps (Ethernet) and dumpcap -i eth1 -i eth0 on the director (one
pcapng, two interfaces): two vantage points of the same connections, same ISNs, as in seed 004.
Drop counters checked to be 0."""
LVSNAT_EMULATED = """The IPVS-NAT director is emulated with nftables on the director: `ip daddr
198.51.100.131 tcp dport 80 dnat to numgen inc mod 2 map { 0 : 192.168.1.185, 1 : 192.168.1.190
}` (conntrack reverses it for replies that come back through the director, as IPVS does);
send_redirects=0 as in the seed's script. facts/ipvsadm.txt and facts/keepalived.conf are written
in the real tools' syntax for that service, not captured."""
LVSNAT_VIP = {"vip": "198.51.100.131", "client": "198.51.100.150"}

EGRESS_ADDR = {
    "gateway": "198.51.100.2",
    "inside_subnets": ["10.1.0.0/24", "10.2.0.0/24"],
    "untranslated_subnet": "10.2.0.0/24",
    "clients": ["10.1.0.5", "10.2.0.5"],
    "server": "203.0.113.10",
    "edge": "198.51.100.1",
}
EGRESS_HOSTS = ["natgw", "hosta", "hostb", "edge", "srv"]
EGRESS_HOW = """Five namespaces: hosta (10.1.0.5) and hostb (10.2.0.5), each on its own link to
natgw (10.1.0.1, 10.2.0.1; outside 198.51.100.2), the edge router (198.51.100.1 / 203.0.113.1,
which knows only its two connected networks) and srv (203.0.113.10, HTTP on :80, UDP echo on 7).
Each inside host pings its gateway and srv, sends one UDP echo and fetches http://srv/ twice
(curl --connect-timeout 2.5 -m 4). Captures: tcpdump -i any on natgw (Linux cooked v2) and
tcpdump -i eth0 on srv (Ethernet); drop counts checked to be 0."""
EGRESS_EMULATED = """Nothing product-specific: the NAT gateway is Linux with an nftables
masquerade rule (`oifname "eth0" ip saddr { ... } masquerade`), which is how such gateways are
built; the edge stands in for the provider network that has no route to private addresses."""

NAT: dict[str, dict[str, Any]] = {
    "faulty-rs-gateway": {
        "pattern": "nat-reply-bypass",
        "rules": ["NAT001"],
        "description": """LVS-NAT with one real server whose default gateway is not the
        director: real_server2 routes via 192.168.1.1, a router that reaches the client
        directly. Connections scheduled to real_server1 work. For those scheduled to
        real_server2 the client sees its SYN to the VIP answered by a SYN-ACK from 192.168.1.190
        (the RIP, not the VIP) acknowledging its ISN+1, and answers with RST; every SYN
        retransmission repeats it and curl fails. On the director the same SYN (same ISN) is seen
        arriving on eth1 for the VIP and leaving eth0 for 192.168.1.190, and no SYN-ACK ever comes
        back.""",
        "emulated": LVSNAT_EMULATED,
        "real": """All packets are real kernel traffic: the DNAT, real_server2's reply routed by
        its default route to the other router, the client's RST for a SYN-ACK that matches no
        socket, the retransmissions.""",
        "crafted": "nothing; ipvsadm.txt and keepalived.conf in facts/ are written.",
        "addresses": LVSNAT_ADDR,
        "hosts": LVSNAT_HOSTS,
        "how": LVSNAT_HOW,
        "captures": [
            {
                "file": "client-eth0.pcap",
                "host": "client",
                "interface": "eth0",
                "detector": {"name": "nat_bypass_client", **LVSNAT_VIP},
                "require": ["syn-to-vip", "syn-ack-from-rip", "rst-from-client"],
            },
            {
                "file": "director.pcapng",
                "host": "director",
                "interface": "eth1,eth0",
                "detector": {"name": "nat_bypass_director", **LVSNAT_VIP, "rip": "192.168.1.190"},
                "require": ["syn-to-vip", "syn-forwarded-to-rip"],
            },
        ],
    },
    "faulty-ip-forward": {
        "pattern": "nat-no-forward",
        "rules": ["NAT002"],
        "description": """The same LVS-NAT director with net.ipv4.ip_forward=0. The client's
        SYNs to VIP:80 arrive on the director's eth1 and are retransmitted; none leaves eth0 towards
        a real server and nothing answers (the kernel drops a packet it may not forward without
        an ICMP error). Pings to the VIP itself are answered, the director is up.""",
        "emulated": LVSNAT_EMULATED,
        "real": """All packets are real kernel traffic; the silent drop of the DNATed SYN with
        forwarding disabled is real kernel behaviour.""",
        "crafted": "nothing; ipvsadm.txt and keepalived.conf in facts/ are written.",
        "addresses": LVSNAT_ADDR,
        "hosts": LVSNAT_HOSTS,
        "how": LVSNAT_HOW,
        "captures": [
            {
                "file": "client-eth0.pcap",
                "host": "client",
                "interface": "eth0",
                "detector": {"name": "syn_unanswered", **LVSNAT_VIP},
                "require": ["syn-unanswered", "syn-retransmission"],
            },
            {
                "file": "director.pcapng",
                "host": "director",
                "interface": "eth1,eth0",
                "detector": {"name": "nat_no_forward", **LVSNAT_VIP},
                "require": ["syn-not-forwarded", "syn-retransmission"],
            },
        ],
    },
    "healthy-lvs-nat": {
        "pattern": "healthy",
        "rules": [],
        "description": """The seed's working LVS-NAT: ip_forward=1 on the director and both real
        servers' default gateway is the DIP 192.168.1.186. Every connection is answered by the
        VIP; the director capture shows each SYN arriving for the VIP on eth1 and leaving for a
        RIP on eth0, and each reply coming back on eth0 and leaving eth1 from the VIP.""",
        "emulated": LVSNAT_EMULATED,
        "real": "All packets are real kernel traffic.",
        "crafted": "nothing; ipvsadm.txt and keepalived.conf in facts/ are written.",
        "addresses": LVSNAT_ADDR,
        "hosts": LVSNAT_HOSTS,
        "how": LVSNAT_HOW,
        "captures": [
            {
                "file": "client-eth0.pcap",
                "host": "client",
                "interface": "eth0",
                "detector": [
                    {"name": "nat_bypass_client", **LVSNAT_VIP},
                    {"name": "syn_unanswered", **LVSNAT_VIP},
                ],
            },
            {
                "file": "director.pcapng",
                "host": "director",
                "interface": "eth1,eth0",
                "detector": [
                    {"name": "nat_bypass_director", **LVSNAT_VIP, "rip": "192.168.1.185"},
                    {"name": "nat_bypass_director", **LVSNAT_VIP, "rip": "192.168.1.190"},
                    {"name": "nat_no_forward", **LVSNAT_VIP},
                ],
            },
        ],
    },
    "faulty-missing-snat": {
        "pattern": "nat-missing-snat",
        "rules": ["NAT003"],
        "description": """An egress NAT gateway whose masquerade rule covers 10.1.0.0/24 but not
        10.2.0.0/24. hosta's traffic leaves as 198.51.100.2 and is answered. hostb's packets
        (ping, UDP, TCP SYN) leave the outside interface with their private source 10.2.0.5
        (natgw -i any: in on eth2, out on eth0 unchanged) and nothing ever comes back: srv answers
        towards 10.2.0.5, and the edge router, which has no route to 10.2.0.0/24, returns ICMP
        network unreachable to srv.""",
        "emulated": EGRESS_EMULATED,
        "real": """All packets are real kernel traffic, including the edge's ICMP network
        unreachable (type 3 code 0). The edge forwards private sources because its rp_filter is
        0; with rp_filter=1 it would drop them silently and srv would see nothing.""",
        "crafted": "nothing.",
        "addresses": EGRESS_ADDR,
        "hosts": EGRESS_HOSTS,
        "how": EGRESS_HOW,
        "captures": [
            {
                "file": "natgw-any.pcap",
                "host": "natgw",
                "interface": "any",
                "detector": {"name": "nat_missing_snat", "inside_net": "10.2.0.0/24"},
                "require": ["untranslated-private-source-out"],
                "forbid": ["untranslated-but-answered"],
            },
            {
                "file": "srv-eth0.pcap",
                "host": "srv",
                "interface": "eth0",
                "detector": [
                    {"name": "syn_to_private", "inside_net": "10.2.0.0/24"},
                    {"name": "icmp_unreachable", "about": "10.2.0.5"},
                ],
                "require": ["syn-from-private-source", "icmp-unreachable"],
            },
        ],
    },
    "healthy-egress-snat": {
        "pattern": "healthy",
        "rules": [],
        "description": """The same egress NAT gateway with the masquerade rule covering both
        inside subnets: hosta's and hostb's traffic leaves as 198.51.100.2 and is answered.""",
        "emulated": EGRESS_EMULATED,
        "real": "All packets are real kernel traffic.",
        "crafted": "nothing.",
        "addresses": EGRESS_ADDR,
        "hosts": EGRESS_HOSTS,
        "how": EGRESS_HOW,
        "captures": [
            {
                "file": "natgw-any.pcap",
                "host": "natgw",
                "interface": "any",
                "detector": [
                    {"name": "nat_missing_snat", "inside_net": "10.1.0.0/24"},
                    {"name": "nat_missing_snat", "inside_net": "10.2.0.0/24"},
                ],
            },
            {
                "file": "srv-eth0.pcap",
                "host": "srv",
                "interface": "eth0",
                "detector": [
                    {"name": "syn_to_private", "inside_net": "10.0.0.0/8"},
                    {"name": "icmp_unreachable", "about": "anything"},
                ],
            },
        ],
    },
}

META: dict[str, dict[str, dict[str, Any]]] = {
    "lb-hairpin": HAIRPIN,
    "lvs-dr-arp": DR,
    "nat-gateway": NAT,
}


# ---- multi-point variants (issue 8): the same incident captured at several places at once -------
# Each adds "points": the vantage point name of every capture, the translations the lab configured
# and how a_samples.py traces connections across the points (see samples/README.md, "points").

PF_ADDR = {
    "public": "203.0.113.10",
    "client": "203.0.113.50",
    "server": "10.0.2.20",
    "web2": "10.0.2.21",
    "gateways": {"gwa": ["203.0.113.10", "10.0.2.1"], "gwb": ["203.0.113.11", "10.0.2.2"]},
    "gateway_macs": {"gwa_lan": "02:00:0a:00:02:01", "gwb_lan": "02:00:0a:00:02:02"},
}
PF_HOSTS = ["gwa", "gwb", "server", "client", "web2"]
PF_HOW = """Seven namespaces: a client network 203.0.113.0/24 (a Linux bridge in namespace swc) with
the client 203.0.113.50 and two routers, gwa (203.0.113.10) and gwb (203.0.113.11); a server LAN
10.0.2.0/24 (bridge in namespace swl) with gwa (10.0.2.1), gwb (10.0.2.2), server 10.0.2.20 and
web2 10.0.2.21, both running a small HTTP server on :80 (gwb serves its own page too). gwa port-forwards 203.0.113.10:8080 to
10.0.2.20:80 and 203.0.113.10:8081 to 10.0.2.21:80 (nftables DNAT, client address kept); gwb is a
plain router (ip_forward=1, no firewall, no NAT). web2 routes via gwa; the client's default route
is gwb. The client fetches http://203.0.113.10:8080/ and :8081 three times each, alternating
(curl --connect-timeout 2.5 -m 4). Background: pings client -> gwa and gwb, server -> gwa and gwb,
two UDP echoes client -> gwa:7, one HTTP fetch of gwb's own page, IPv6 link-local chatter. Four
captures run at the same time on the same kernel clock: tcpdump -i eth0 on the client (Ethernet,
nanosecond), tcpdump -i any on gwa (Linux cooked v2), dumpcap -i eth0 -i eth1 on gwb (one pcapng,
two Ethernet interfaces) and tcpdump -i eth0 on the server (Ethernet); drop counts checked to be 0.
The capture commands as run are at the end of each capturing host's facts transcript."""
PF_EMULATED = """Nothing product-specific: gwa is a Linux router whose port forward is an nftables
DNAT rule (`ip daddr 203.0.113.10 tcp dport 8080 dnat to 10.0.2.20:80`, and :8081 to 10.0.2.21:80),
which is how such edge routers are built; gwb is a plain Linux router. The two segments are Linux
bridges in their own namespaces."""
PF_VANTAGE = [
    ("client", "client-eth0.pcap", "the client's link to the client network"),
    (
        "gwa",
        "gwa-any.pcap",
        "both interfaces of the translating router: eth0 client side, eth1 LAN",
    ),
    ("gwb", "gwb.pcapng", "both interfaces of the other router: eth0 client side, eth1 LAN"),
    ("server", "server-eth0.pcap", "the server's LAN link"),
]
PF_TRANSLATIONS = [
    {
        "at": "gwa",
        "kind": "DNAT",
        "proto": "tcp",
        "from": "203.0.113.10:8080",
        "to": "10.0.2.20:80",
    },
    {
        "at": "gwa",
        "kind": "DNAT",
        "proto": "tcp",
        "from": "203.0.113.10:8081",
        "to": "10.0.2.21:80",
    },
]
PF_TRACE = {"clients": ["203.0.113.50"], "services": ["203.0.113.10:8080", "203.0.113.10:8081"]}
PF_SIDE = {"vip": "203.0.113.10", "client": "203.0.113.50"}


def _pf_captures(healthy: bool) -> list[dict[str, Any]]:
    client_detector: Any = {"name": "nat_bypass_client", **PF_SIDE}
    if healthy:
        client_detector = [client_detector, {"name": "syn_unanswered", **PF_SIDE}]
    caps: list[dict[str, Any]] = [
        {
            "file": "client-eth0.pcap",
            "host": "client",
            "interface": "eth0",
            "detector": client_detector,
            "require": ["syn-to-vip", "syn-ack-from-rip", "rst-from-client"],
        },
        {
            "file": "gwa-any.pcap",
            "host": "gwa",
            "interface": "any",
            "detector": {"name": "nat_bypass_director", **PF_SIDE, "rip": "10.0.2.20"},
            "require": ["syn-to-vip", "syn-forwarded-to-rip"],
        },
        {
            "file": "gwb.pcapng",
            "host": "gwb",
            "interface": "eth0,eth1",
            "detector": {"name": "reply_without_request", "server": "10.0.2.20", **PF_SIDE},
            "require": ["syn-ack-without-syn", "rst-forwarded"],
        },
        {
            "file": "server-eth0.pcap",
            "host": "server",
            "interface": "eth0",
            "detector": {
                "name": "reply_via_other_gateway",
                "client": "203.0.113.50",
                "translator_mac": "02:00:0a:00:02:01",
            },
            "require": ["syn-via-translator", "syn-ack-to-other-gateway"],
        },
    ]
    if healthy:
        for cap in caps:
            cap.pop("require")
    return caps


NAT["faulty-asymmetric-return"] = {
    "pattern": "nat-asymmetric-return",
    "rules": ["NAT004", "NAT001"],
    "description": """A port forward whose replies take another way back. gwa translates
    203.0.113.10:8080 to the server 10.0.2.20:80, but the server's default route is the other
    router gwb. Each SYN from the client arrives at gwa for 203.0.113.10:8080 and leaves gwa's LAN
    side as 203.0.113.50:p > 10.0.2.20:80 with the same ISN; the server answers with a SYN-ACK to
    gwb's MAC; gwb, a plain router without connection tracking rules, forwards it untranslated (source
    10.0.2.20:80) to the client network; the client, whose socket waits for 203.0.113.10:8080,
    answers with RST (via its default route gwb, which forwards it to the server, where it resets
    the half-open connection), and every SYN retransmission repeats the sequence until curl gives up.
    gwa never sees a SYN-ACK for these connections: the reply went missing at gwa, the translating
    point, and appeared at gwb. Connections to :8081 (web2, default route gwa) work, through the same
    gwa. NAT004 names the hop; the client capture also carries NAT001's signature (a SYN-ACK from the
    private address acknowledging the ISN+1 of a SYN sent to the public address, then RST), so NAT001
    fires too.""",
    "emulated": PF_EMULATED,
    "real": """All packets are real kernel traffic: the DNAT and its conntrack entry on gwa (which
    rewrites each retransmitted SYN again), the server's routing of its reply to gwb, gwb forwarding a
    SYN-ACK it never saw the SYN of (without nftables rules it has no conntrack state to check; measured
    here: with a forward rule `ct state invalid drop` on gwb the SYN-ACK is dropped there, silently,
    and the client sees only its SYN retransmissions), the client's RST, the server's reset of its half-open connection, the
    retransmissions.""",
    "crafted": "nothing.",
    "addresses": PF_ADDR,
    "hosts": PF_HOSTS,
    "how": PF_HOW,
    "captures": _pf_captures(healthy=False),
    "points": {
        "vantage": PF_VANTAGE,
        "translations": PF_TRANSLATIONS,
        "trace": PF_TRACE,
        "missing": [
            {
                "what": "SYN-ACK",
                "of": "203.0.113.10:8080",
                "translated_at": "gwa",
                "never_at": "gwa",
                "reply_via": "gwb",
            }
        ],
    },
}
NAT["healthy-port-forward"] = {
    "pattern": "healthy",
    "rules": [],
    "description": """The same two routers and the same traffic with the server's default route via
    gwa, the translating router: every SYN-ACK from 10.0.2.20:80 and 10.0.2.21:80 comes back through
    gwa, which rewrites its source to 203.0.113.10:8080 / :8081 (conntrack), and all six requests
    succeed. gwb carries only its own traffic.""",
    "emulated": PF_EMULATED,
    "real": "All packets are real kernel traffic (DNAT and its reverse by nftables conntrack).",
    "crafted": "nothing.",
    "addresses": PF_ADDR,
    "hosts": PF_HOSTS,
    "how": PF_HOW,
    "captures": _pf_captures(healthy=True),
    "points": {
        "vantage": PF_VANTAGE,
        "translations": PF_TRANSLATIONS,
        "trace": PF_TRACE,
        "missing": [],
    },
}

HAIRPIN["faulty-l4-two-points"] = {
    "pattern": "l4-hairpin-reset",
    "rules": ["LB001"],
    "description": """faulty-l4 seen from two points at once: backend1 (10.10.1.11, -i any) and the
    load balancer lb (-i any). For every connection the L4 listener schedules to backend1 itself,
    lb's capture shows the SYN 10.10.1.11:p > 10.10.0.100:80 arriving on eth1 and the same SYN (same
    ISN and port) leaving eth1 as 10.10.1.11:p > 10.10.1.11:80: the rewrite to the backend itself.
    backend1's capture shows that SYN coming back, the SYN-ACK over lo and the RST; neither ever
    reaches lb (the reply went missing at the translating point). Connections scheduled to backend2
    pass lb both ways, with the VIP restored on the SYN-ACK.""",
    "emulated": HAIRPIN_L4_EMULATED,
    "real": """Every packet in both captures was sent and received by the Linux kernel: the DNAT
    hairpin on lb (captured there before and after the rewrite), backend1's acceptance of its own
    source address (accept_local=1, as in faulty-l4), the SYN-ACK over lo and the RST.""",
    "crafted": "nothing; the listener YAML in facts/ is written, not captured.",
    "addresses": HAIRPIN_ADDR,
    "hosts": HAIRPIN_HOSTS,
    "how": HAIRPIN_HOW
    + """ A second tcpdump -i any runs on lb during the same traffic (Linux cooked v2, drop count
    checked); the capture commands as run are at the end of backend1's and lb's facts.""",
    "captures": [
        {
            "file": "backend1-any.pcap",
            "host": "backend1",
            "interface": "any",
            "detector": {"name": "hairpin", "vip": "10.10.0.100"},
            "require": ["syn-to-vip", "hairpin-syn", "syn-ack-over-lo", "rst"],
        },
        {
            "file": "lb-any.pcap",
            "host": "lb",
            "interface": "any",
            "detector": {"name": "hairpin_at_lb", "vip": "10.10.0.100"},
            "require": ["syn-to-vip", "syn-rewritten-to-client"],
            "forbid": ["syn-ack-over-lo"],
        },
    ],
    "points": {
        "vantage": [
            ("backend1", "backend1-any.pcap", "all of backend1's interfaces, lo included"),
            ("lb", "lb-any.pcap", "all of the load balancer's interfaces (client side, backends)"),
        ],
        "translations": [
            {"at": "lb", "kind": "DNAT", "proto": "tcp", "from": "10.10.0.100:80", "to": to}
            for to in ("10.10.1.11:80", "10.10.2.12:80")
        ],
        "trace": {"clients": ["10.10.1.11", "10.20.0.5"], "services": ["10.10.0.100:80"]},
        "missing": [
            {
                "what": "SYN-ACK",
                "of": "10.10.0.100:80",
                "translated_at": "lb",
                "never_at": "lb",
                "reply_via": "backend1 lo",
            }
        ],
    },
}

DR["faulty-arp-ignore-rs"] = {
    "pattern": "lvs-dr-arp-leak",
    "rules": ["ARP001"],
    "description": """faulty-arp-ignore with a third vantage point, rs1 itself (tcpdump -i eth0),
    beside the mirror of the four switch ports and the router's eth1. After rs1's reboot
    (arp_ignore=0, arp_announce=0) rs1 resolves the router with the VIP as ARP sender address, the
    router learns 10.30.0.100 -> rs1's MAC and sends the client's frames straight to rs1. Before the
    last two requests the router's neighbour entry for the VIP expires (the lab deletes it) and the
    router asks who-has 10.30.0.100 by broadcast: the director and rs1 both answer. rs1's ARP reply
    (10.30.0.100 is-at 02:00:0a:1e:00:0b) is one frame seen at three points: leaving rs1 (rs1-eth0),
    on the mirror at rs1's and the router's switch ports, and arriving at the router.""",
    "emulated": DR_EMULATED,
    "real": """All ARP behaviour is the real kernel's: rs1's ARP reply for an address held on lo
    (arp_ignore=0), its choice of the VIP as sender address (arp_announce=0), the router's
    neighbour-table update, the broadcast re-resolution after the entry is gone; all TCP is real
    sockets.""",
    "crafted": """nothing is crafted; lab shortcuts: `ip neigh flush` on rs1 and the sysctl reset
    stand in for its reboot, `ip neigh del 10.30.0.100 dev eth1` on the router stands in for the
    expiry of its entry.""",
    "addresses": DR_ADDR,
    "hosts": DR_HOSTS,
    "how": DR_HOW
    + """ A third capture runs on rs1 (tcpdump -i eth0, Ethernet, drop count checked); before
    requests 13 and 14 the router's neighbour entry for the VIP is deleted. The capture commands as
    run are at the end of the sw, router and rs1 facts.""",
    "captures": [
        {
            "file": "segment.pcapng",
            "host": "sw",
            "interface": "p-router,p-director,p-rs1,p-rs2",
            "detector": DR_DETECTOR,
            "require": ["frame-to-vip-bypassing-director", "arp-reply-with-vip-from-rs"],
        },
        {
            "file": "router-eth1.pcap",
            "host": "router",
            "interface": "eth1",
            "detector": DR_DETECTOR,
            "require": ["frame-to-vip-bypassing-director", "arp-reply-with-vip-from-rs"],
        },
        {
            "file": "rs1-eth0.pcap",
            "host": "rs1",
            "interface": "eth0",
            "detector": DR_DETECTOR,
            "require": [
                "arp-request-with-vip-from-rs",
                "arp-reply-with-vip-from-rs",
                "frame-to-vip-bypassing-director",
            ],
        },
    ],
    "points": {
        "vantage": [
            (
                "mirror",
                "segment.pcapng",
                "a mirror of the four switch ports (router, director, rs1, rs2)",
            ),
            ("router", "router-eth1.pcap", "the router's interface on the segment"),
            ("rs1", "rs1-eth0.pcap", "the real server that leaks ARP"),
        ],
        "translations": [
            {
                "at": "director",
                "kind": "DR-MAC",
                "proto": "tcp",
                "from": "10.30.0.100:80 to 02:00:0a:1e:00:02",
                "to": "10.30.0.100:80 to 02:00:0a:1e:00:0b or 02:00:0a:1e:00:0c",
            }
        ],
        "arp": {"vip": "10.30.0.100", "director_mac": "02:00:0a:1e:00:02"},
        "missing": [],
    },
}
