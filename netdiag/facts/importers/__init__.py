"""The facts importers, one module per source format, in an explicit registry.

``IMPORTERS`` maps a name to an :class:`~netdiag.facts.importers.base.Importer`; its order is the
order in which content sniffing tries them (specific formats before general ones).
"""

from __future__ import annotations

import re

from netdiag.facts.importers import (
    bridge_fdb,
    docker_daemon,
    docker_network,
    ip_addr,
    ip_link,
    ip_neigh,
    ip_route,
    ip_rule,
    iptables_save,
    ipvsadm,
    keepalived,
    libreswan,
    nft_ruleset,
    route_n,
    ss,
    strongswan_ipsec_conf,
    swanctl,
    sysctl,
    topology_yaml,
)
from netdiag.facts.importers.base import Fragment, Importer

IMPORTERS: dict[str, Importer] = {
    imp.name: imp
    for imp in (
        topology_yaml.IMPORTER,
        docker_network.IMPORTER,
        docker_daemon.IMPORTER,
        ip_addr.IMPORTER,
        ip_link.IMPORTER,
        ip_neigh.IMPORTER,
        bridge_fdb.IMPORTER,
        ip_route.IMPORTER,
        ip_rule.IMPORTER,
        route_n.IMPORTER,
        ipvsadm.IMPORTER,
        iptables_save.IMPORTER,
        nft_ruleset.IMPORTER,
        ss.IMPORTER,
        swanctl.IMPORTER,
        libreswan.IMPORTER,
        strongswan_ipsec_conf.IMPORTER,
        keepalived.IMPORTER,
        sysctl.IMPORTER,
    )
}


#: wrappers in front of the real command: `sudo ip route`, `ip netns exec ns1 ip route`
_WRAPPERS = re.compile(
    r"^(sudo(\s+-\S+)*\s+|(\S*/)?ip\s+netns\s+exec\s+\S+\s+|(\S*/)?nsenter\s.*?--\s+)+"
)


def strip_wrappers(command: str) -> str:
    return _WRAPPERS.sub("", command.strip())


def by_command(command: str) -> Importer | None:
    """The importer for the output of a transcript command, if any prints a known format."""
    command = strip_wrappers(command)
    for importer in IMPORTERS.values():
        if importer.matches_command(command):
            return importer
    return None


def by_content(text: str) -> Importer | None:
    """The first importer whose sniffing recognises ``text``."""
    for importer in IMPORTERS.values():
        try:
            if importer.sniff(text):
                return importer
        except Exception:  # noqa: BLE001 - a sniffing bug must not stop the others
            continue
    return None


__all__ = ["IMPORTERS", "Fragment", "Importer", "by_command", "by_content"]
