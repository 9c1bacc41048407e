"""Runs every case of every rules/<CODE>-<name>/cases.yaml against its pinned expected findings.

A case names captures and facts (paths relative to the rule folder, else to the repository) and
says whether the rule must fire (positive) or stay silent (negative). The findings are compared
with ``expected/<case>.json`` in the rule folder, rewritten only by ``pytest --update-expected``
(review the diff). On a sample with an expected.yaml, the evidence shown must be decisive frames;
with tshark, each finding's Wireshark filter must select its evidence frames.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from netdiag.engine.analysis import analyze
from netdiag.engine.registry import rules_root

REPO = Path(__file__).resolve().parent.parent
RULES = rules_root()
SCHEMA = json.loads((REPO / "docs" / "findings-schema.json").read_text())


def _cases() -> list[Any]:
    params = []
    for folder in sorted(p for p in RULES.iterdir() if (p / "cases.yaml").is_file()):
        spec = yaml.safe_load((folder / "cases.yaml").read_text()) or {}
        for case in spec.get("cases", []):
            marks = []
            if case.get("xfail"):
                marks.append(pytest.mark.xfail(strict=True, reason=case["xfail"]))
            params.append(
                pytest.param(
                    folder, case, id=f"{folder.name.split('-')[0]}-{case['name']}", marks=marks
                )
            )
    return params


def _resolve(folder: Path, path: str) -> Path:
    local = folder / path
    return local if local.exists() else REPO / path


def _normalized(finding: dict[str, Any]) -> dict[str, Any]:
    """What is pinned of a finding: everything but absolute paths (captures as repo-relative)."""
    out = dict(finding)
    out["evidence"] = [
        {k: e[k] for k in ("capture", "frame", "ts", "role", "summary", "note")}
        for e in finding["evidence"]
    ]
    return out


@pytest.mark.parametrize(("folder", "case"), _cases())
def test_rule_case(folder: Path, case: dict[str, Any], update_expected: bool) -> None:
    code = folder.name.split("-", 1)[0]
    captures = [_resolve(folder, p) for p in case.get("captures", [])]
    facts = [_resolve(folder, p) for p in case.get("facts", [])]
    missing = [str(p) for p in captures + facts if not p.exists()]
    if missing:
        pytest.skip(f"input not built yet: {', '.join(missing)}")
    from netdiag.render.json import report

    cwd = os.getcwd()
    os.chdir(REPO)  # paths in the report are relative to the repository
    try:
        analysis = analyze([str(p) for p in captures], [str(p) for p in facts], select=[code])
        data = report(analysis, base=str(REPO))
    finally:
        os.chdir(cwd)
    assert not data["rules"]["errored"], data["rules"]["errored"]
    jsonschema.validate(data, SCHEMA)
    findings = [f for f in data["findings"] if f["code"] == code]
    if case["expect"] == "positive":
        assert findings, f"{code} did not fire on {case['name']}"
        for key, value in (case.get("assert") or {}).items():
            assert [f[key] for f in findings] == value, key
    else:
        assert not findings, (
            f"{code} fired on negative case {case['name']}: {findings[0]['message']}"
        )

    _check_decisive(code, findings, captures, _frame_times(analysis))
    pinned = folder / "expected" / f"{case['name']}.json"
    got = json.dumps([_normalized(f) for f in findings], indent=2, sort_keys=True) + "\n"
    if update_expected:
        pinned.parent.mkdir(exist_ok=True)
        pinned.write_text(got)
    else:
        assert pinned.is_file(), (
            f"no pinned findings {pinned}: run pytest --update-expected and review"
        )
        assert json.loads(got) == json.loads(pinned.read_text())

    if findings and shutil.which("tshark"):
        _check_wireshark_filters(findings)


def _frame_times(analysis: Any) -> dict[str, dict[int, int]]:
    """capture file name -> frame -> ts_ns of the packets the analysis kept."""
    return {
        Path(c.path).name: dict(
            zip(c.packets["frame"].tolist(), c.packets["ts_ns"].tolist(), strict=True)
        )
        for c in analysis.context.captures
    }


def _check_decisive(
    code: str,
    findings: list[dict[str, Any]],
    captures: list[Path],
    times: dict[str, dict[int, int]],
) -> None:
    """The evidence shown must include the decisive frames of the sample's expected.yaml.

    The evidence is capped (10 frames) while a sample may list many decisive frames, so: when the
    sample is about this rule alone, its first decisive frame is shown and no decisive frame inside the
    time span of the frames shown is skipped; otherwise some shown frame is decisive.
    """
    if not findings:
        return
    for capture in captures:
        truth = capture.parent / "expected.yaml"
        if not truth.is_file():
            continue
        spec = yaml.safe_load(truth.read_text()) or {}
        decisive = {
            d["frame"]
            for c in spec.get("captures", [])
            if c.get("file") == capture.name
            for d in c.get("decisive") or []
        }
        shown = {
            e["frame"]
            for f in findings
            for e in f["evidence"]
            if Path(e["capture"]).name == capture.name
        }
        if not shown or not decisive:
            continue
        if (spec.get("rules") or []) != [code]:
            # the sample is about another rule, or several whose decisive frames are not told
            # apart: the evidence must still be among its key frames
            assert shown & decisive, f"no evidence frame is decisive in {truth}"
            continue
        assert min(decisive) in shown, f"first decisive frame {min(decisive)} of {truth} not shown"
        ts = times.get(capture.name, {})
        shown_ts = [ts[f] for f in shown if f in ts]
        within = {f for f in decisive if f in ts and min(shown_ts) <= ts[f] <= max(shown_ts)}
        assert within <= shown, f"decisive frames skipped in {truth}: {sorted(within - shown)}"


def _check_wireshark_filters(findings: list[dict[str, Any]]) -> None:
    for f in findings:
        by_capture: dict[str, set[int]] = {}
        for e in f["evidence"]:
            by_capture.setdefault(e["capture"], set()).add(e["frame"])
        for capture, frames in by_capture.items():
            out = subprocess.run(
                [
                    "tshark",
                    "-n",
                    "-r",
                    str(REPO / capture),
                    "-Y",
                    f["wireshark_filter"],
                    "-T",
                    "fields",
                    "-e",
                    "frame.number",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            selected = {int(x) for x in out.split()}
            assert frames <= selected, (
                f"{f['code']} filter misses frames {sorted(frames - selected)}"
            )
