"""Replies of translated connections do not come back through the point that translated them.

What it detects
---------------
Several captures of one incident (``netdiag analyze a.pcap b.pcap ...``): a connection whose
packets were rewritten (DNAT, SNAT or both) between two taps, at a NAT device or between two
capture points, and whose replies never come back through the taps of that rewrite. Either the
replies were captured elsewhere (at another router, at the server leaving by another gateway, at
the client with the untranslated address): an asymmetric return path; or no reply was captured at
any point while the request kept being sent again at the translator. One finding per rewrite
(where, and the rewritten endpoints), with the connections it affects.

Why it matters
--------------
A NAT keeps per-connection state: only the device that rewrote the request can rewrite the reply
back. A reply routed around it arrives with the wrong address (the client resets it) or is
dropped by a stateful firewall or reverse-path filter on the other path; the connection fails
although every host "works". Captures at one point show a timeout; only the points together show
where the reply went.

Evidence
--------
Per connection (a few): the request before the rewrite (before-translation) and after it
(after-translation) at the translating taps, then either the reply where it was seen instead
(reply-elsewhere, with its path across the points) or the request sent again with no answer
(unanswered). The message names the hop: the tap the reply never reached.

Remediation
-----------
Make the replies return through the translating device: on the server (or its router), route the
client networks (or the default route) via the NAT device's inside address, or use a policy route
for the service's replies; with two gateways, keep both directions of a flow on one (ECMP hashing
on both directions, VRRP with conntrack synchronisation such as conntrackd), or SNAT the requests
on the translator so that replies come back to it by construction.

False positives
---------------
A reply lost by one capture (drops, a capture started late) looks missing: a rewrite is reported
only when at least half of its connections lack their replies at the translator, and a connection
with no reply anywhere only when its request was sent at least twice there. "No reply anywhere"
can also be a server that is down or filters the port: the confidence is then medium at best. The
LVS-NAT case of a real server whose default route bypasses the director is also reported by
NAT001 with its specific diagnosis; this rule reports the return path in general terms.

References
----------
- RFC 2663 (NAT terminology) and RFC 4787 section 4: a NAT needs both directions of a session.
- Linux conntrack: replies that bypass the translating host are never un-NATed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from netdiag.correlate.narrate import path_text
from netdiag.engine import AnalysisContext, Evidence, Finding, Rule
from netdiag.engine.finding import EVIDENCE_CAP, Confidence
from netdiag.render import wireshark_filter as wf

#: connections shown with evidence per finding
SHOWN_CONNECTIONS = 3
#: share of a rewrite's connections that must lack their replies at the translator
MIN_SHARE = 0.5


class AsymmetricReturnPath(Rule):
    code = "NAT004"
    name = "asymmetric-return-path"
    title = "Replies of translated connections do not come back through the translating point"
    category = "nat"
    severity = "error"
    needs = frozenset({"packets", "points"})
    references = ("RFC 2663", "RFC 4787 section 4")

    def check(self, ctx: AnalysisContext) -> Iterable[Finding]:
        corr = ctx.correlation
        if corr is None or corr.translations.empty:
            return
        per_conn = corr.translations.drop_duplicates("conn")
        # a connection sent back to its own source (an L4 hairpin) is LB001's: its reply stays
        # on the host, it has no return path
        per_conn = per_conn[per_conn["b_src"] != per_conn["a_dst"]]
        obs = corr.observations
        in_conn = obs[obs["conn"].isin(per_conn["conn"])]
        at = per_conn[["conn", "from_tap", "to_tap"]]
        replies = in_conn[in_conn["cdir"] == 1].merge(at, on="conn")
        back = replies[
            (replies["tap"] == replies["from_tap"]) | (replies["tap"] == replies["to_tap"])
        ]
        missing = per_conn[~per_conn["conn"].isin(back["conn"])]
        if missing.empty:
            return
        requests = in_conn[in_conn["cdir"] == 0].merge(at, on="conn")
        sent_at_translator = requests[requests["tap"] == requests["to_tap"]]
        sent_count = sent_at_translator.groupby("conn").size()
        elsewhere = replies[replies["conn"].isin(missing["conn"])]
        seen_elsewhere = set(elsewhere["conn"].astype(int))
        retried = set(sent_count[sent_count >= 2].index.astype(int))
        missing = missing[missing["conn"].isin(seen_elsewhere | retried)]
        if missing.empty:
            return
        keys = ["from_tap", "to_tap", "kind", "rule_before", "rule_after"]
        totals = corr.translations.drop_duplicates("conn").groupby(keys)["conn"].nunique()
        for key, group in missing.groupby(keys, sort=True):
            total = int(totals.get(key, len(group)))
            if len(group) < MIN_SHARE * total:
                continue
            yield self._finding(ctx, corr, key, group, total, elsewhere, sent_at_translator)

    def _finding(
        self,
        ctx: AnalysisContext,
        corr: Any,
        key: tuple,
        group: pd.DataFrame,
        total: int,
        elsewhere: pd.DataFrame,
        sent: pd.DataFrame,
    ) -> Finding:
        from_tap, to_tap, kind, rule_before, rule_after = key
        where = _where(corr, int(from_tap), int(to_tap))
        translator = corr.tap_name(int(to_tap))
        conns = sorted(set(group["conn"].astype(int)))
        other = elsewhere[elsewhere["conn"].isin(conns)]
        other_taps = sorted({corr.tap_name(int(t)) for t in other["tap"]})
        evidence: list[Evidence] = []
        total_frames = 0
        example = ""
        shown: set[tuple[int, int]] = set()
        for conn in conns[:SHOWN_CONNECTIONS]:
            row = group[group["conn"] == conn].iloc[0]
            items = [
                (
                    int(row["capture_before"]),
                    int(row["frame_before"]),
                    "before-translation",
                    f"request before the rewrite ({kind} {where})",
                ),
                (
                    int(row["capture_after"]),
                    int(row["frame_after"]),
                    "after-translation",
                    f"the same packet after the rewrite, at {translator}",
                ),
            ]
            replies = other[other["conn"] == conn].sort_values("t_ref_ns")
            if not replies.empty:
                first = replies.iloc[0]
                items.append(
                    (
                        int(first["capture"]),
                        int(first["frame"]),
                        "reply-elsewhere",
                        f"the reply, seen at {corr.tap_name(int(first['tap']))} "
                        f"and never at {translator}",
                    )
                )
                if not example:
                    route = path_text(corr, int(first["capture"]), int(first["frame"]))
                    example = (
                        f" For example {row['after']}: the reply was seen at "
                        f"{route or corr.tap_name(int(first['tap']))}, never at {translator}."
                    )
            else:
                again = sent[sent["conn"] == conn].sort_values("t_ref_ns").iloc[1:3]
                for _, r in again.iterrows():
                    items.append(
                        (
                            int(r["capture"]),
                            int(r["frame"]),
                            "unanswered",
                            f"the request sent again at {translator}: no reply came back",
                        )
                    )
            for capture, frame, role, note in items:
                if (capture, frame) in shown:
                    continue
                shown.add((capture, frame))
                rows = _rows(ctx, capture, [frame])
                total_frames += len(rows)
                evidence.extend(ctx.evidence(capture, rows, role, note))
        n = len(conns)
        if other_taps:
            seen = (
                f"their replies were seen at {', '.join(other_taps)} instead: the return path "
                "bypasses the translator"
            )
            confidence: Confidence = "high"
        else:
            seen = "no reply was captured at any point while the requests were sent again"
            confidence = "medium" if n >= 2 else "low"
        message = (
            f"{n} of {total} connection(s) rewritten {where} ({kind}: {rule_before} -> "
            f"{rule_after}) got no reply back through {translator}; {seen}.{example}"
        )
        ports = sorted(
            {int(p) for c in ("b_sport", "b_dport", "a_sport", "a_dport") for p in group[c]} - {-1}
        )
        number = int(group["proto"].iloc[0])
        proto = {6: "tcp", 17: "udp", 132: "sctp"}.get(number, "")
        if proto and ports:
            filt = wf.in_set(f"{proto}.port", ports[:20])
        else:
            filt = {1: "icmp", 58: "icmpv6", 50: "esp"}.get(number, f"ip.proto == {number}")
        return self.finding(
            ctx,
            subject=f"{rule_before} -> {rule_after} {where}",
            message=message,
            confidence=confidence,
            evidence=evidence[: EVIDENCE_CAP * 3],
            evidence_total=total_frames,
            wireshark_filter=filt,
            explanation=(
                f"The packets were rewritten ({kind}) {where}; only that device holds the "
                "state to rewrite the replies back. Replies that do not return through it reach "
                "the client with the wrong address, or are dropped on the other path."
            ),
            remediation=(
                f"Route the replies of {rule_after} back through {translator}'s device: make it "
                "the server's gateway for the client networks (or a policy route for the "
                "service's replies); with two gateways keep both directions of a flow on one, or "
                "SNAT the requests on the translator so that replies come back to it."
            ),
        )


def _where(corr: Any, from_tap: int, to_tap: int) -> str:
    from netdiag.correlate.paths import where

    return where(corr.taps[from_tap], corr.taps[to_tap])


def _rows(ctx: AnalysisContext, capture: int, frames: list[int]) -> pd.DataFrame:
    packets = ctx.captures[capture].packets
    positions = np.flatnonzero(np.isin(packets["frame"].to_numpy(), frames))
    return packets.iloc[positions]
