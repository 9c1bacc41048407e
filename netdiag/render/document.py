"""The report document the Markdown and HTML renderers share: the JSON report plus what a reader
of a support ticket needs besides (decisive frames, ladder diagrams, flows, capture details).

It is plain data (dicts, lists, strings, numbers) built once from an analysis, so that redaction
is one walk over it (:func:`redact_document`) and the renderers never look at packet tables.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shlex
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from netdiag.render.json import display_path, report
from netdiag.render.points import (
    correlation_of,
    evidence_path,
    evidence_path_texts,
    for_evidence,
    path_ladder,
)
from netdiag.timefmt import iso_ns

if TYPE_CHECKING:
    from netdiag.engine.analysis import Analysis
    from netdiag.pipeline import LoadedCapture
    from netdiag.redact import Redactor

#: keys whose string values are never addresses nor capture text (kept as they are by redaction)
_NOT_REDACTED = frozenset({"code", "severity", "confidence", "ts", "first_ts"})
_NOT_REDACTED |= {"last_ts", "generated", "schema_version", "netdiag_version", "fingerprint"}

#: the head of a tcpdump line: clock, optional interface/direction, family, addresses
_HEAD_RE = re.compile(r"^\d\d:\d\d:\d\d\.\d{6} (?P<where>.*?)(?P<family>IP6?|ARP)\b")
_VERBOSE_RE = re.compile(r"\(ttl \d+, id \d+\)")

LINKTYPE_NAMES = {0: "NULL", 1: "EN10MB", 12: "RAW", 101: "RAW", 113: "LINUX_SLL"}
LINKTYPE_NAMES |= {228: "IPV4", 229: "IPV6", 276: "LINUX_SLL2", 108: "LOOP"}


def generated_now() -> str:
    """The one time stamp of a report (UTC, seconds)."""
    return _dt.datetime.now(tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_document(
    analysis: Analysis,
    redactor: Redactor | None = None,
    generated: str | None = None,
    base: str | None = None,
) -> dict[str, Any]:
    """The JSON report of ``analysis`` with, per finding, ``decisive`` flags for its evidence,
    ``ladders`` (lanes and arrows, one per capture point), its ``flows`` and ``show_commands``;
    ``capture_details`` per capture. With several capture points (``correlation``), per finding
    also ``evidence_paths`` (a "seen at ..." text per evidence frame, "" when it has none) and
    ``path_ladder`` (see :func:`netdiag.render.points.path_ladder`, None when nothing to draw).

    With ``redactor`` every address in it is pseudonymised (see :mod:`netdiag.redact`).
    """
    doc = report(analysis, base)
    doc["generated"] = generated or generated_now()
    captures = list(analysis.context.captures)
    by_path = {cap.path: cap for cap in captures}
    endpoints: dict[str, tuple[np.ndarray, ...]] = {}  # per capture, built on first use
    correlation = correlation_of(analysis)
    if correlation is not None:  # only the observations the evidence paths need
        evidence = [e for f in analysis.result.findings for e in f.evidence]
        correlation = for_evidence(correlation, evidence)
    for finding, item in zip(analysis.result.findings, doc["findings"], strict=True):
        item["decisive"] = decisive_flags([e.role for e in finding.evidence])
        if correlation is not None:
            # where each evidence packet was seen across the capture points, and its ladder
            paths = [evidence_path(correlation, e.capture, e.frame) for e in finding.evidence]
            item["evidence_paths"] = evidence_path_texts(finding.evidence, paths)
            item["path_ladder"] = path_ladder(
                correlation, finding.evidence, paths, item["decisive"], base
            )
        rows = [_evidence_row(by_path.get(e.capture), e.frame) for e in finding.evidence]
        # one ladder per capture point: what each sniffer saw, in its own order
        item["ladders"] = []
        for capture in dict.fromkeys(e.capture for e in finding.evidence):
            picked = [i for i, e in enumerate(finding.evidence) if e.capture == capture]
            ladder = ladder_data(
                [finding.evidence[i] for i in picked],
                [rows[i] for i in picked],
                [item["decisive"][i] for i in picked],
                several=False,
            )
            item["ladders"].append({"capture": display_path(capture, base), **ladder})
        item["flows"] = _flows_of(finding.evidence, rows, by_path, base, endpoints)
        item["show_commands"] = show_commands(item["evidence"], item["decisive"])
    doc["capture_details"] = [_capture_details(cap, base) for cap in captures]
    if redactor is not None:
        doc = redact_document(doc, redactor)
    return doc


def show_commands(evidence: list[dict[str, Any]], decisive: list[bool]) -> list[str]:
    """`netdiag show` command lines for the decisive frames, one per capture."""
    frames: dict[str, list[int]] = {}
    for e, d in zip(evidence, decisive, strict=True):
        if d:
            frames.setdefault(e["capture"], []).append(int(e["frame"]))
    return [
        f"netdiag show {shlex.quote(path)} --frame {','.join(map(str, sorted(numbers)))}"
        for path, numbers in sorted(frames.items())
    ]


def decisive_flags(roles: list[str]) -> list[bool]:
    """The decisive frames of an evidence list: the first frame of each role.

    The rest repeat a role already shown (a retransmission, the next pass of a loop, the same
    pattern on another connection): they support the finding but prove nothing new.
    """
    seen: set[str] = set()
    flags = []
    for role in roles:
        flags.append(role not in seen)
        seen.add(role)
    return flags


# --- packet rows of the evidence ----------------------------------------------------------------
def _evidence_row(cap: LoadedCapture | None, frame: int) -> pd.Series | None:
    """The packet-table row of one evidence frame (None when it was not kept)."""
    if cap is None or len(cap.packets) == 0:
        return None
    frames = cap.packets["frame"].to_numpy(dtype=np.int64)
    hits = np.flatnonzero(frames == frame)
    return cap.packets.iloc[int(hits[0])] if len(hits) else None


def _value(row: pd.Series, name: str) -> Any:
    if name not in row.index:
        return None
    v = row[name]
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (int, np.integer)):
        return None if int(v) < 0 else int(v)
    text = str(v)
    return text if text and text != "nan" else None


def ladder_data(
    evidence: list[Any], rows: list[pd.Series | None], decisive: list[bool], several: bool
) -> dict[str, Any]:
    """Lanes (one per host) and one arrow per evidence frame, labelled like its tcpdump line
    without the clock and the addresses the lanes already show.

    Hosts are IP addresses, or link (MAC) addresses when the evidence holds ARP: the point of an
    ARP finding is which MAC claims an address and where frames went, so then every frame is
    drawn between link addresses (a request towards "broadcast") and IP packets keep their
    addresses in the label. With evidence from several captures (``several``) each arrow says
    which capture point saw it and each lane which captures show it.
    """
    link_mode = any(r is not None and _value(r, "arp_op") is not None for r in rows)
    lanes: list[dict[str, Any]] = []
    index: dict[str, int] = {}

    def lane(host: str, capture: str, detail: str = "") -> int:
        if host not in index:
            index[host] = len(lanes)
            lanes.append({"host": host, "details": [], "captures": []})
        entry = lanes[index[host]]
        if detail and detail not in entry["details"]:
            entry["details"].append(detail)
        name = os.path.basename(capture)
        if several and name not in entry["captures"]:
            entry["captures"].append(name)
        return index[host]

    # in link mode, the MAC that claimed an IP in ARP stands for that IP when a frame has no
    # destination MAC (Linux cooked captures record only the source link address)
    claimed: dict[str, str] = {}
    if link_mode:
        for r in rows:
            if r is not None and _value(r, "arp_op") is not None:
                sha, spa = _value(r, "arp_sha"), _value(r, "arp_spa")
                if sha and spa:
                    claimed.setdefault(str(spa), str(sha))

    arrows = []
    skipped = 0
    for e, row, dec in zip(evidence, rows, decisive, strict=True):
        head = _HEAD_RE.match(e.summary)
        where = " ".join(head.group("where").split()) if head else ""
        body = e.summary.split(": ", 1)[1] if ": " in e.summary else e.summary
        src = dst = None
        label = body
        arp_op = _value(row, "arp_op") if row is not None else None
        ip_src = _value(row, "ip_src") if row is not None else None
        ip_dst = _value(row, "ip_dst") if row is not None else None
        sport = _value(row, "sport") if row is not None else None
        dport = _value(row, "dport") if row is not None else None
        ports = sport is not None and dport is not None
        if row is None:
            pass
        elif link_mode:
            eth_src = _value(row, "eth_src") or _value(row, "arp_sha")
            eth_dst = _value(row, "eth_dst")
            if arp_op is not None:
                spa = _value(row, "arp_spa")
                if not eth_dst:
                    eth_dst = _value(row, "arp_tha") if arp_op == 2 else None
                label = e.summary.split("ARP, ", 1)[-1].removesuffix(", length 28")
                label = label.replace("Request ", "").replace("Reply ", "")
                detail = f"ARP sender {spa}" if spa else ""
            else:
                if not eth_dst and ip_dst:
                    eth_dst = claimed.get(str(ip_dst), str(ip_dst))
                a = f"{ip_src}.{sport}" if ports else str(ip_src)
                b = f"{ip_dst}.{dport}" if ports else str(ip_dst)
                label = f"{a} > {b}: {body}" if ip_src else body
                detail = f"IP {ip_src}" if ip_src else ""
            if eth_src:
                src = lane(str(eth_src), e.capture, detail)
                target = str(eth_dst or "broadcast")
                if target.lower() == "ff:ff:ff:ff:ff:ff":
                    target = "broadcast"
                dst = lane(target, e.capture)
        elif ip_src and ip_dst:
            src = lane(str(ip_src), e.capture)
            dst = lane(str(ip_dst), e.capture)
            label = f"{sport} > {dport}: {body}" if ports else body
            verbose = _VERBOSE_RE.search(e.summary)
            if verbose:
                label = f"{label} {verbose.group(0)}"
        if src is None or dst is None:
            skipped += 1
            continue
        arrows.append(
            {
                "capture": os.path.basename(e.capture) if several else "",
                "frame": int(e.frame),
                "clock": e.summary[:15],
                "where": where,
                "src": src,
                "dst": dst,
                "label": label.removesuffix(", length 0"),
                "role": e.role,
                "note": e.note,
                "decisive": bool(dec),
            }
        )
    for entry in lanes:
        entry["detail"] = " · ".join([*entry.pop("details"), *entry.pop("captures")])
    if "broadcast" in index:  # the broadcast lane goes last, out of the hosts' way
        last = index["broadcast"]
        order = [i for i in range(len(lanes)) if i != last] + [last]
        new_index = {old: new for new, old in enumerate(order)}
        lanes = [lanes[i] for i in order]
        for arrow in arrows:
            arrow["src"], arrow["dst"] = new_index[arrow["src"]], new_index[arrow["dst"]]
    return {"lanes": lanes, "arrows": arrows, "not_drawn": skipped}


def _flows_of(
    evidence: list[Any],
    rows: list[pd.Series | None],
    by_path: dict[str, LoadedCapture],
    base: str | None,
    endpoints: dict[str, tuple[np.ndarray, ...]],
) -> list[dict[str, Any]]:
    """The flow-table rows of the evidence frames' connections (either direction)."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for e, row in zip(evidence, rows, strict=True):
        cap = by_path.get(e.capture)
        if cap is None or row is None or len(cap.flows) == 0:
            continue
        src, dst = _value(row, "ip_src"), _value(row, "ip_dst")
        proto = _value(row, "ip_proto")
        if not src or not dst or proto is None:
            continue
        flows = cap.flows
        if e.capture not in endpoints:
            endpoints[e.capture] = (
                flows["orig_h"].astype(object).astype(str).to_numpy(),
                flows["resp_h"].astype(object).astype(str).to_numpy(),
                flows["orig_p"].to_numpy(dtype=np.int64),
                flows["resp_p"].to_numpy(dtype=np.int64),
            )
        orig_h, resp_h, orig_p, resp_p = endpoints[e.capture]
        sport = _value(row, "sport")
        dport = _value(row, "dport")
        same = flows["ip_proto"].to_numpy(dtype=np.int64) == proto
        if sport is not None and dport is not None:
            forward = (orig_h == src) & (resp_h == dst) & (orig_p == sport) & (resp_p == dport)
            backward = (orig_h == dst) & (resp_h == src) & (orig_p == dport) & (resp_p == sport)
        else:
            forward = (orig_h == src) & (resp_h == dst)
            backward = (orig_h == dst) & (resp_h == src)
        for i in np.flatnonzero(same & (forward | backward)):
            flow = flows.iloc[int(i)]
            key = (e.capture, int(flow["flow_id"]))
            if key in seen:
                continue
            seen.add(key)
            out.append(
                {
                    "capture": display_path(e.capture, base),
                    "proto": str(flow["proto"]),
                    "orig": _endpoint(str(flow["orig_h"]), int(flow["orig_p"]), str(flow["proto"])),
                    "resp": _endpoint(str(flow["resp_h"]), int(flow["resp_p"]), str(flow["proto"])),
                    "conn_state": str(flow["conn_state"]),
                    "history": str(flow["history"]),
                    "orig_pkts": int(flow["orig_pkts"]),
                    "resp_pkts": int(flow["resp_pkts"]),
                    "first_frame": int(flow["first_frame"]),
                    "last_frame": int(flow["last_frame"]),
                    "first_ts": iso_ns(int(flow["first_ts_ns"])),
                    "community_id": str(flow["community_id"]),
                }
            )
    out.sort(key=lambda f: (f["capture"], f["first_frame"]))
    return out


def _endpoint(host: str, port: int, proto: str) -> str:
    if proto in ("tcp", "udp") and port >= 0:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return host


def _capture_details(cap: LoadedCapture, base: str | None) -> dict[str, Any]:
    info = cap.info
    return {
        "path": display_path(cap.path, base),
        "format": info.format,
        "compression": info.compression,
        "file_size": int(info.file_size),
        "interfaces": [
            {
                "id": i.iface_id,
                "linktype": i.linktype,
                "linktype_name": LINKTYPE_NAMES.get(i.linktype, str(i.linktype)),
                "name": i.name,
                "description": i.description,
                "snaplen": i.snaplen,
            }
            for i in info.interfaces
        ],
        "packets": int(info.packets),
        "packets_kept": int(len(cap.packets)),
        "flows": int(len(cap.flows)),
        "first_ts": iso_ns(info.first_ts_ns) if info.first_ts_ns is not None else None,
        "last_ts": iso_ns(info.last_ts_ns) if info.last_ts_ns is not None else None,
        "truncated_frames": int(info.truncated_frames),
        "decode_errors": int(info.decode_errors),
        "section_comments": list(info.section_comments),
        "warnings": list(info.warnings),
    }


# --- redaction ----------------------------------------------------------------------------------
def redact_document(doc: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """A copy of ``doc`` with every address pseudonymised; fingerprints are recomputed from the
    redacted subject (the original ones, hashes of the real addresses, could confirm a guess)."""

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, str):
            return value if key in _NOT_REDACTED else redactor.text(value)
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        return value

    from netdiag.engine.finding import fingerprint

    out: dict[str, Any] = walk(doc)
    for item in out.get("findings", []):
        captures = sorted({e["capture"] for e in item.get("evidence", [])})
        item["fingerprint"] = fingerprint(item["code"], item["subject"], captures)
    return out


def write_redacted(fmt: str, analysis: Analysis, out: Any, redactor: Redactor) -> None:
    """Write the report of ``analysis`` in format ``fmt`` with every address pseudonymised.

    Markdown and HTML redact their document; JSON redacts its data (and stays valid against the
    schema); the plain text report is redacted as text. Fingerprints are recomputed everywhere
    from the redacted subjects (see :func:`redact_document`). Colour is never used.
    """
    import json

    from netdiag.engine.finding import fingerprint
    from netdiag.render import RENDERERS

    if fmt in ("md", "html"):
        from netdiag.render import html as html_render
        from netdiag.render import markdown as md_render

        module = md_render if fmt == "md" else html_render
        out.write(module.render_document(build_document(analysis, redactor)))
        return
    if fmt == "json":
        data = redact_document(report(analysis), redactor)
        out.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return
    import io

    buffer = io.StringIO()
    RENDERERS[fmt](analysis, buffer, False)
    text = redactor.text(buffer.getvalue())
    for f in analysis.result.findings:
        captures = sorted({display_path(e.capture) for e in f.evidence})
        redacted = fingerprint(f.code, redactor.text(f.subject), captures)
        text = text.replace(f.fingerprint, redacted)
    out.write(text)
