"""Every JSON report the tests make follows the published schema (docs/findings-schema.json)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest
from report_kit import REPO, hairpin_analysis, validate_report_json, write_hostile_case

from netdiag.engine.analysis import analyze
from netdiag.redact import Redactor
from netdiag.render import json as json_render
from netdiag.render.document import write_redacted

SAMPLES = REPO / "samples"
CASES = [
    "lvs-dr-arp/faulty-arp-ignore",
    "ipsec-selector-gap/faulty",
    "nat-gateway/healthy-lvs-nat",
]


def _analysis(case: str):  # type: ignore[no-untyped-def]
    folder = SAMPLES / case
    captures = sorted(str(p) for p in folder.glob("*.pcap*"))
    return analyze(captures, [str(folder / "facts")])


def test_schema_is_a_valid_json_schema() -> None:
    schema = json.loads((REPO / "docs" / "findings-schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)


def test_hairpin_json_and_its_redacted_form_follow_the_schema() -> None:
    data = json.loads(json_render.render(hairpin_analysis()))
    validate_report_json(data)
    out = io.StringIO()
    write_redacted("json", hairpin_analysis(), out, Redactor(b"schema"))
    redacted = json.loads(out.getvalue())
    validate_report_json(redacted)
    assert redacted["findings"][0]["code"] == "LB001"
    assert redacted["findings"][0]["fingerprint"] != data["findings"][0]["fingerprint"]


@pytest.mark.parametrize("case", CASES)
def test_sample_reports_follow_the_schema(case: str) -> None:
    validate_report_json(json.loads(json_render.render(_analysis(case))))


def test_facts_only_and_hostile_reports_follow_the_schema(tmp_path: Path) -> None:
    capture, facts = write_hostile_case(tmp_path)
    validate_report_json(json.loads(json_render.render(analyze([str(capture)], [str(facts)]))))
    audit = analyze([], [str(SAMPLES / "lb-hairpin" / "faulty-l4" / "facts")])
    validate_report_json(json.loads(json_render.render(audit)))


def test_schema_rejects_what_it_should() -> None:
    data = json.loads(json_render.render(hairpin_analysis()))
    data["findings"][0]["severity"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        validate_report_json(data)
