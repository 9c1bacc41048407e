"""Two or more MAC addresses claim one IP address in ARP: a duplicate address or ARP flip-flop.

What it detects
---------------
An IPv4 address claimed by two or more MAC addresses in ARP (replies, gratuitous announcements, or
requests whose sender address is that IP), when the address is not a load-balancer VIP (that is
ARP001). When the ownership changes back and forth (two or more changes: a flip-flop) it is a
warning; when it moves once from one MAC to the other, as a VRRP/keepalived failover does, it is
reported at info level so that the move is known but not alarming.

Why it matters
--------------
Hosts and routers cache one MAC per address: with two claimants, traffic for the address goes to
whichever answered last, so connections break or hang at random, and the symptom moves with
every ARP refresh. A single move explains a short outage during a failover.

Evidence
--------
The first ARP packets of each claiming MAC (claim), and the packets where the claimant changes
(owner-change). The message counts claims per MAC and the ownership changes.

Remediation
-----------
Find the hosts owning the MAC addresses (switch MAC tables, `ip neigh`, DHCP leases) and give one
of them another address; look for a static address inside a DHCP pool, a cloned VM, or a
keepalived split brain (both nodes MASTER: check VRRP adverts and the link between them). For a
single move during a failover nothing needs to change.

False positives
---------------
ARP probes (sender 0.0.0.0, RFC 5227) claim nothing and are ignored, as are ARP packets whose
sender MAC is zero, multicast or differs from the Ethernet source, or that failed to decode
(fuzzed captures, relayed frames); a MAC must claim the address at least twice to count, so one
damaged frame does not make a conflict. Proxy ARP makes a router answer for addresses behind it with its own MAC: if one of the
MACs is a router's, check its proxy_arp setting before suspecting a duplicate.

References
----------
- RFC 5227 (IPv4 address conflict detection), RFC 5798 (VRRP gratuitous ARP on failover).
- Wireshark expert info "Duplicate IP address configured"; arpwatch "flip flop".
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from netdiag.engine import AnalysisContext, Finding, Rule
from netdiag.render import wireshark_filter as wf

#: claims each MAC must make before it counts as a claimant
MIN_CLAIMS = 2


class DuplicateAddress(Rule):
    code = "ARP002"
    name = "duplicate-address"
    title = "Duplicate IP address: several MACs claim one address in ARP"
    category = "arp"
    severity = "warning"
    needs = frozenset({"arp"})
    references = ("RFC 5227", "RFC 5798 (VRRP)")

    def check(self, ctx: AnalysisContext) -> Iterable[Finding]:
        for index in ctx.capture_indices():
            claims = ctx.arp_claims(index)
            for ip, group in claims.groupby("ip", sort=True):
                finding = self._check_address(ctx, index, int(ip), group)
                if finding is not None:
                    yield finding

    def _check_address(
        self, ctx: AnalysisContext, index: int, ip: int, claims: pd.DataFrame
    ) -> Finding | None:
        address = ctx.ip_text(index, ip)
        macs = set(claims["mac"])
        # the same tests as ARP001: a VIP of direct routing is ARP001's finding, not this one
        signals = ctx.dr_signals(index, ip, macs)
        multi = signals["multi_address_macs"]
        if (
            not signals["relay"].empty
            or (multi and len(macs - multi) == 1)
            or self._facts_vip(ctx, address)
        ):
            return None
        # a MAC seen claiming the address once may be a damaged frame (bit flips in fuzzed or
        # corrupted captures): a conflict needs two MACs that each claim it repeatedly
        counts = claims.groupby("mac")["row"].size()
        repeated = set(counts[counts >= MIN_CLAIMS].index)
        if len(repeated) < 2:
            return None
        claims = claims[claims["mac"].isin(repeated)]
        macs = repeated
        claims = claims.sort_values(["ts_ns", "frame"])
        mac_seq = claims["mac"].to_numpy()
        change = np.r_[False, mac_seq[1:] != mac_seq[:-1]]
        changes = int(change.sum())
        packets = ctx.captures[index].packets
        mac_texts = packets["arp_sha"].cat.categories
        per_mac = claims.groupby("mac").agg(n=("row", "size"), first=("ts_ns", "min"))
        per_mac = per_mac.sort_values("first")
        names = [
            f"{mac_texts[m]} ({int(r.n)} claim{'s' if r.n != 1 else ''})"
            for m, r in per_mac.iterrows()
        ]
        single_move = changes == 1 and len(macs) == 2

        firsts = (
            claims.groupby("mac", sort=False)
            .head(2)
            .assign(role="claim", note="claims the address")
        )
        switches = (
            claims[change].head(4).assign(role="owner-change", note="a different MAC claims it now")
        )
        table = (
            pd.concat([switches, firsts], ignore_index=True)
            .drop_duplicates("row")
            .sort_values("ts_ns")
        )
        evidence = []
        for (role, note), rows in table.groupby(["role", "note"], sort=False):
            evidence.extend(ctx.evidence(index, packets.iloc[rows["row"].to_numpy()], role, note))
        if single_move:
            message = (
                f"{address} moved once from {mac_texts[per_mac.index[0]]} to "
                f"{mac_texts[per_mac.index[1]]} (a failover, e.g. VRRP/keepalived, or an address "
                "taken over): claims by " + ", ".join(names) + "."
            )
        else:
            message = (
                f"{len(macs)} MAC addresses claim {address} in ARP: "
                + ", ".join(names)
                + f"; the owner changed {changes} times (flip-flop)."
            )
        return self.finding(
            ctx,
            subject=address,
            message=message,
            confidence="medium",
            severity="info" if single_move else "warning",
            evidence=evidence,
            evidence_total=len(claims),
            wireshark_filter=wf.arp_claims(address),
            explanation=(
                f"Neighbours keep one MAC per address; with several claimants, frames for {address} "
                "go to whichever answered last."
                + (" A single move is what a failover does." if single_move else "")
            ),
            remediation=(
                "Nothing to change if this was a planned failover; check that only one node is "
                "MASTER afterwards."
                if single_move
                else f"Find the hosts with MAC {', '.join(str(mac_texts[m]) for m in per_mac.index)} "
                f"and give all but one of them another address than {address} (static address in a "
                "DHCP pool, cloned VM, keepalived split brain)."
            ),
            captures=[ctx.captures[index].path],
        )

    @staticmethod
    def _facts_vip(ctx: AnalysisContext, address: str) -> bool:
        facts = ctx.facts
        if facts is None:
            return False
        if facts.services_by_vip(address):
            return True
        return any(i.kind == "loopback" or i.name == "lo" for _h, i in facts.owners(address))
