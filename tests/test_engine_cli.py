"""`netdiag analyze`, `netdiag rules`, `netdiag rule`: exit codes, formats, the JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from netdiag.cli.main import app

REPO = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO / "docs" / "findings-schema.json").read_text())
FAULTY = REPO / "samples" / "lb-hairpin" / "faulty-l4" / "backend1-any.pcap"
HEALTHY = REPO / "samples" / "lb-hairpin" / "healthy-l7" / "backend1-any.pcap"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def samples() -> None:
    if not FAULTY.is_file() or not HEALTHY.is_file():
        pytest.skip("lb-hairpin samples not built")


def test_analyze_exit_1_on_findings_and_0_when_clean(samples: None) -> None:
    code, out, _ = _run("analyze", str(FAULTY))
    assert code == 1
    assert "LB001 error" in out and "10.10.1.11 -> 10.10.0.100:80" in out
    code, out, _ = _run("analyze", str(HEALTHY))
    assert code == 0
    assert "0 findings" in out


@pytest.mark.parametrize(
    ("fail_on", "expected"), [("info", 1), ("warning", 1), ("error", 1), ("never", 0)]
)
def test_fail_on(samples: None, fail_on: str, expected: int) -> None:
    assert _run("analyze", str(FAULTY), "--fail-on", fail_on)[0] == expected


def test_select_and_ignore_on_the_command_line(samples: None) -> None:
    code, out, _ = _run("analyze", str(FAULTY), "--ignore", "LB")
    assert code == 0 and "LB001" not in out.split("rules:")[0]
    code, out, _ = _run("analyze", str(FAULTY), "--select", "lb001")
    assert code == 1 and "rules: 1 ran" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("analyze",), "nothing to analyze"),
        (("analyze", "/nonexistent/x.pcap"), "/nonexistent/x.pcap"),
        (("analyze", "x.pcap", "--format", "xml"), "--format must be one of"),
        (("analyze", "x.pcap", "--fail-on", "sometimes"), "--fail-on must be one of"),
        (("analyze", "x.pcap", "--select", "QQ"), "no rule matches 'QQ'"),
        (("rule", "QQ999"), "no rule 'QQ999'"),
    ],
)
def test_usage_and_input_errors_exit_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    code, _, err = _run(*args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("netdiag: error:")


def test_not_a_capture_is_an_input_error(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.pcap"
    bogus.write_text("this is not a capture\n")
    code, _, err = _run("analyze", str(bogus))
    assert code == 2 and str(bogus) in err


def test_json_report_follows_the_schema(samples: None, tmp_path: Path) -> None:
    out_file = tmp_path / "report.json"
    code, stdout, _ = _run("analyze", str(FAULTY), str(HEALTHY), "-f", "json", "-o", str(out_file))
    assert code == 1 and stdout == ""
    report = json.loads(out_file.read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["schema_version"].startswith("1.")
    assert [c["packets"] > 0 for c in report["captures"]] == [True, True]
    assert "LB001" in report["rules"]["ran"]
    finding = report["findings"][0]
    assert finding["code"] == "LB001" and finding["evidence_total"] >= len(finding["evidence"]) > 0
    assert all(e["frame"] >= 1 for e in finding["evidence"])
    assert report["summary"]["by_severity"]["error"] == len(report["findings"])


def test_json_output_is_deterministic(samples: None) -> None:
    first = _run("analyze", str(FAULTY), "-f", "json")[1]
    second = _run("analyze", str(FAULTY), "-f", "json")[1]
    assert first == second
    assert json.loads(first)["findings"][0]["first_ts"].endswith("Z")


def test_rules_lists_and_rule_documents() -> None:
    code, out, _ = _run("rules")
    assert code == 0
    assert any(line.startswith("LB001 ") for line in out.splitlines())
    code, out, _ = _run("rule", "lb001")
    assert code == 0
    for heading in (
        "What it detects",
        "Why it matters",
        "Evidence",
        "Remediation",
        "False positives",
        "References",
    ):
        assert f"\n{heading}\n" in out


def test_facts_alone_audit_the_configuration() -> None:
    facts = REPO / "samples" / "nat-gateway" / "faulty-ip-forward" / "facts"
    if not facts.is_dir():
        pytest.skip("nat-gateway samples not built")
    code, out, _ = _run("analyze", "--facts", str(facts), "-f", "json")
    assert code == 1
    report = json.loads(out)
    jsonschema.validate(report, SCHEMA)
    assert report["captures"] == []
    skipped = {s["code"]: s["reason"] for s in report["rules"]["skipped"]}
    assert skipped["LB001"] == "no capture" and skipped["ARP002"] == "no capture with ARP"
    assert [(f["code"], f["confidence"]) for f in report["findings"]] == [("NAT002", "low")]


def test_missing_facts_path_is_an_input_error() -> None:
    code, _, err = _run("analyze", "--facts", "/nonexistent/facts")
    assert code == 2 and "/nonexistent/facts" in err


def test_text_report_colours_only_on_request(samples: None) -> None:
    import io

    from netdiag.engine.analysis import analyze
    from netdiag.render import RENDERERS

    analysis = analyze([str(FAULTY)], select=["LB001"])
    plain, coloured = io.StringIO(), io.StringIO()
    RENDERERS["text"](analysis, plain, False)
    RENDERERS["text"](analysis, coloured, True)
    assert "\x1b[" not in plain.getvalue()
    assert "\x1b[" in coloured.getvalue()
    assert "LB001 error (medium confidence)" in plain.getvalue()
