"""A backend's own connection to its L4 load balancer is scheduled back to itself and fails.

What it detects
---------------
A host B opens a TCP connection to a load-balancer address V:x (SYN B:p > V:x), and the same SYN,
with the same initial sequence number and source port, comes back to B with V rewritten to B
itself (SYN B:p > B:y, source = destination). The layer-4 listener kept the client address and
picked B as the backend. B then either answers its own SYN over lo (SYN-ACK B:y > B:p) and
resets it (RST B:p > B:y), or drops it as a martian source and retransmits the SYN to V until the
application gives up. The rule counts how many attempts were hairpinned this way and how many
attempts of B to V:x were answered by another backend.

Why it matters
--------------
The failure is intermittent: with N backends about 1/N of the connections a backend makes to its
own service fail with a reset or a timeout, the others work. It is usually taken for a flaky
application or network. The connection cannot work: B's socket expects the answer from V, the
SYN-ACK comes from B itself, so no socket matches it and B's kernel answers it with a reset.

Evidence
--------
For each hairpinned attempt: the SYN to the VIP (role syn-to-vip), the rewritten SYN with source
= destination (hairpin-syn), then either the SYN-ACK over lo (syn-ack-over-lo) and the RST (rst),
or the retransmitted SYNs (syn-retransmission). Without facts the VIP is the destination the SYN
was sent to; with facts (a load-balancer service on that address), the listener is confirmed as
layer 4 keeping the client address with B in its pool, and the confidence is high.

Remediation
-----------
Do not let a backend reach its own layer-4 listener: call the service locally (127.0.0.1 or its
own address) from the backends; or use a layer-7 listener (it connects from its own address); or
make the listener rewrite the source as well (SNAT / full-NAT), giving up the client address; or
take the host out of the listener's pool if it must be a client.

False positives
---------------
The pattern needs the same ISN and source port first towards another address and then to the
host itself, which only an address-rewriting middlebox produces. A host talking to its own
address (curl to its own IP) shows source = destination but never the earlier SYN to another
address, and is not flagged.

References
----------
- Seed 000: cloud load balancer lab, L4 vs L7 listener, backend as a client of its own VIP.
- Alibaba Cloud SLB / AWS NLB documentation: "backend servers cannot access the load balancer they
  are attached to" for layer-4 listeners that preserve the client IP.
- RFC 793 section 3.4 (reset generation for an unexpected SYN-ACK).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from netdiag.capture.schema import TCP_ACK, TCP_RST, TCP_SYN
from netdiag.engine import AnalysisContext, Finding, Rule
from netdiag.engine.finding import EVIDENCE_CAP, Confidence
from netdiag.render import wireshark_filter as wf


class L4Hairpin(Rule):
    code = "LB001"
    name = "l4-hairpin"
    title = "L4 load balancer sends a backend's own connection back to itself"
    category = "load-balancer"
    severity = "error"
    needs = frozenset({"packets"})
    references = (
        "seed 000 (L4 vs L7 listener, backend as client of its own VIP)",
        "RFC 793 3.4 (reset on unexpected SYN-ACK)",
    )

    def check(self, ctx: AnalysisContext) -> Iterable[Finding]:
        # one finding per subject: captures at several points (backend, load balancer) of the
        # same hairpinned attempts are merged, with the rewrite the correlation saw
        by_subject: dict[str, list[dict[str, Any]]] = {}
        for index in ctx.capture_indices():
            for found in self._check_capture(ctx, index):
                by_subject.setdefault(found["subject"], []).append(found)
        for subject in sorted(by_subject):
            parts = sorted(by_subject[subject], key=lambda f: -int(f["evidence_total"]))
            main = dict(parts[0])
            rewrite = self._rewrite_seen(ctx, main.pop("keys"))
            for other in parts[1:]:
                main["evidence"] = list(main["evidence"]) + list(other["evidence"])
                main["evidence_total"] += other["evidence_total"]
                main["captures"] = main["captures"] + other["captures"]
            if rewrite:
                main["message"] += " " + rewrite
            yield self.finding(ctx, **main)

    @staticmethod
    def _rewrite_seen(ctx: AnalysisContext, keys: tuple[int, int, int]) -> str:
        """The rewrite of the backend's SYN to itself, as another capture point saw it."""
        corr = ctx.correlation
        if corr is None or corr.translations.empty:
            return ""
        backend, vip, vport = keys  # address codes of the shared address book, and the port
        tr = corr.translations
        hit = tr[
            (tr["b_src"] == backend)
            & (tr["b_dst"] == vip)
            & (tr["b_dport"] == vport)
            & (tr["a_dst"] == backend)
            & tr["kind"].astype(str).str.startswith("DNAT")
        ]
        if hit.empty:
            return ""
        row = hit.iloc[0]
        from netdiag.correlate.paths import where

        at = where(corr.taps[int(row["from_tap"])], corr.taps[int(row["to_tap"])])
        return (
            f"Across the capture points the rewrite itself is seen {at}: {row['before']} became "
            f"{row['after']} (same ISN), {int(hit['conn'].nunique())} connection(s)."
        )

    def _check_capture(self, ctx: AnalysisContext, index: int) -> Iterable[dict[str, Any]]:
        packets = ctx.captures[index].packets
        if len(packets) == 0:
            return
        tcp = ctx.tcp_control(index)
        is_syn = ((tcp.tflags & TCP_SYN) != 0) & ((tcp.tflags & TCP_ACK) == 0)
        syns = tcp[is_syn & (tcp.src >= 0)]
        land = syns[syns.src == syns.dst]
        if land.empty:
            return
        to_other = syns[syns.src != syns.dst]
        # a hairpinned attempt: the same (source, source port, ISN) first towards V, then to itself
        pairs = land.merge(to_other, on=["src", "sport", "seq"], suffixes=("_h", "_v"))
        pairs = pairs[pairs.ts_ns_v <= pairs.ts_ns_h]
        if pairs.empty:
            return
        attempts = pairs.groupby(["src", "sport", "seq"], as_index=False).agg(
            vip=("dst_v", "first"), vport=("dport_v", "first"), bport=("dport_h", "first")
        )
        ip_texts = packets["ip_src"].cat.categories
        for (src, vip, vport), group in attempts.groupby(["src", "vip", "vport"]):
            yield self._finding(
                ctx, index, tcp, syns, group, int(src), int(vip), int(vport), ip_texts
            )

    def _finding(
        self,
        ctx: AnalysisContext,
        index: int,
        tcp: pd.DataFrame,
        syns: pd.DataFrame,
        attempts: pd.DataFrame,
        src: int,
        vip: int,
        vport: int,
        ip_texts: pd.Index,
    ) -> dict[str, Any]:
        b, v = str(ip_texts[src]), str(ip_texts[vip])
        keys = attempts[["sport", "seq", "bport"]]
        # frames of the hairpinned attempts, by role
        mine = tcp[tcp.src == src]
        vip_syns = syns[(syns.src == src) & (syns.dst == vip) & (syns.dport == vport)]
        to_vip = vip_syns.merge(keys[["sport", "seq"]], on=["sport", "seq"])
        land = syns[(syns.src == src) & (syns.dst == src)].merge(
            keys[["sport", "seq"]], on=["sport", "seq"]
        )
        self_pkts = mine[(mine.dst == src)]
        is_synack = (self_pkts.tflags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)
        answer_keys = keys.rename(columns={"sport": "dport", "bport": "sport", "seq": "isn"})
        synack = self_pkts[is_synack].merge(answer_keys, on=["sport", "dport"])
        synack = synack[synack.ack == (synack.isn + 1) % 2**32]
        reset_keys = keys.rename(columns={"bport": "dport", "seq": "isn"})
        rst = self_pkts[(self_pkts.tflags & TCP_RST) != 0].merge(reset_keys, on=["sport", "dport"])
        # the first SYN of each attempt is syn-to-vip; later ones are retransmissions
        to_vip = to_vip.sort_values("ts_ns")
        first_tx = ~to_vip.duplicated(["sport", "seq"])
        reset_attempts = int(rst.drop_duplicates(["sport"]).shape[0])
        n_attempts = len(attempts)
        silent = n_attempts - reset_attempts
        retrans = int((~first_tx).sum())

        # attempts of the same host to the same VIP:port that were not hairpinned
        others = vip_syns.drop_duplicates(["sport", "seq"]).merge(
            keys[["sport", "seq"]], on=["sport", "seq"], how="left", indicator=True
        )
        others = others[others["_merge"] == "left_only"]
        answers = tcp[(tcp.src == vip) & (tcp.dst == src) & (tcp.sport == vport)]
        answers = answers[(answers.tflags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)]
        answered = others.merge(
            answers[["dport", "ack"]].rename(columns={"dport": "sport", "ack": "sa_ack"}),
            on="sport",
        )
        answered = answered[answered.sa_ack == (answered.seq + 1) % 2**32]
        elsewhere = int(answered.drop_duplicates(["sport", "seq"]).shape[0])

        packets = ctx.captures[index].packets
        roles = [
            (to_vip[first_tx], "syn-to-vip", "SYN from the backend to the load-balancer address"),
            (to_vip[~first_tx], "syn-retransmission", "the same SYN sent again: no answer came"),
            (
                land,
                "hairpin-syn",
                "same ISN and source port, destination rewritten to the backend itself",
            ),
            (synack, "syn-ack-over-lo", "the backend answers its own SYN"),
            (
                rst,
                "rst",
                "the kernel resets the SYN-ACK: no socket matches, the client waits for the VIP",
            ),
        ]
        table = pd.concat(
            [
                r[["row", "ts_ns", "frame", "sport", "dport"]].assign(role=role, note=note)
                for r, role, note in roles
            ],
            ignore_index=True,
        ).sort_values(["ts_ns", "frame"], kind="stable")
        total = len(table)
        shown_rows = table.head(EVIDENCE_CAP)
        evidence = []
        for (role, note), rows in shown_rows.groupby(["role", "note"], sort=False):
            evidence.extend(ctx.evidence(index, packets.iloc[rows["row"].to_numpy()], role, note))

        bport = int(attempts["bport"].iloc[0])
        sports = sorted({int(p) for p in attempts["sport"]})
        if len(sports) > 20:  # keep the filter short: the attempts shown as evidence
            sports = sorted(set(shown_rows["sport"]) | set(shown_rows["dport"]) - {vport, bport})
        filt = wf.all_of(
            [
                wf.addr(b, "src"),
                wf.addr_in([b, v], "dst"),
                wf.in_set("tcp.port", sports),
                "tcp.flags.syn == 1 || tcp.flags.reset == 1",
            ]
        )

        facts_used, listener = self._facts(ctx, b, v, vport)
        confidence: Confidence = "high" if listener else "medium"
        outcome = []
        if reset_attempts:
            outcome.append(f"{reset_attempts} reset by {b} itself (SYN-ACK and RST over lo)")
        if silent:
            outcome.append(
                f"{silent} silently dropped as a martian source ({retrans} SYN retransmission"
                f"{'s' if retrans != 1 else ''})"
            )
        message = (
            f"{n_attempts} connection attempt{'s' if n_attempts != 1 else ''} of {b} to {v}:{vport} "
            f"came back to {b}:{bport} itself with the source unchanged: {'; '.join(outcome)}. "
            f"{elsewhere} other attempt{'s' if elsewhere != 1 else ''} to {v}:{vport} were answered "
            f"(another backend)."
        )
        explanation = (
            f"{v}:{vport} is a layer-4 listener that keeps the client address and has {b} among its "
            f"backends. When it schedules {b}'s own connection to {b}, it only rewrites the "
            f"destination: {b} receives a SYN from itself ({b}:p > {b}:{bport}), answers it over lo, "
            f"and the kernel resets that SYN-ACK: no socket of {b} matches it, since the "
            f"connecting socket waits for an answer from {v}"
            + (" (or the kernel drops the SYN as a martian source)" if silent else "")
            + ". Roughly one attempt in N fails, N being the number of backends."
        )
        remediation = (
            f"Any one of:\n"
            f"- on {b}, reach the service locally (127.0.0.1:{bport} or {b}:{bport}) instead of "
            f"{v}:{vport};\n"
            f"- use a layer-7 (HTTP) listener for traffic from the backends: it connects from its own "
            f"address;\n"
            f"- make the listener {v}:{vport} rewrite the source too (SNAT / full-NAT), e.g. nftables "
            f"on the balancer: `ct status dnat ip daddr {b} tcp dport {bport} masquerade` "
            f"(backends then no longer see the client address);\n"
            f"- take {b} out of the backend pool of {v}:{vport} if it has to be a client of it."
        )
        if listener is not None:
            remediation += f"\nListener from the facts: {listener}."
        return {
            "subject": f"{b} -> {v}:{vport}",
            "message": message,
            "confidence": confidence,
            "evidence": evidence,
            "evidence_total": total,
            "wireshark_filter": filt,
            "facts_used": facts_used,
            "explanation": explanation,
            "remediation": remediation,
            "captures": [ctx.captures[index].path],
            "keys": (int(src), int(vip), int(vport)),
        }

    @staticmethod
    def _facts(ctx: AnalysisContext, backend: str, vip: str, vport: int) -> tuple[list, str | None]:
        """Facts that confirm the listener: a service on the VIP with the backend in its pool."""
        if ctx.facts is None:
            return [], None
        used = []
        for _host, service in ctx.facts.services_by_vip(vip, vport):
            pool = [rs for rs in service.real_servers if rs.address == backend]
            if not pool:
                continue
            if service.layer and service.layer.upper() not in ("L4", "4"):
                continue
            if service.keeps_client_address is False:
                continue
            for src in (service.source, pool[0].source):
                fact = ctx.fact(src)
                if fact is not None:
                    used.append(fact)
            kind = f"{service.layer or 'L4'} {service.protocol}".strip()
            return used, f"{vip}:{service.port} {kind}, backend {backend} in its pool"
        # a destination NAT for the VIP with no source NAT beside it is an L4 listener that keeps
        # the client address (how iptables/nftables balancers and IPVS-NAT work)
        for host in ctx.facts.hosts.values():
            dnat = [
                r
                for r in host.nat_rules
                if r.action == "DNAT"
                and r.dst.split("/")[0] == vip
                and (not r.dports or str(vport) in r.dports)
            ]
            snat = [r for r in host.nat_rules if r.action in ("SNAT", "MASQUERADE")]
            if dnat and not snat:
                used = [u for u in [ctx.fact(dnat[0].source)] if u is not None]
                return used, (
                    f"{host.name} rewrites only the destination of {vip}:{vport} (DNAT, no SNAT): "
                    f"a layer-4 listener keeping the client address"
                )
        return used, None
