"""Auditing the configuration alone: `netdiag analyze --facts DIR` without a capture.

ARP001, NAT001, NAT002, NAT003 and RT001 report, from facts alone, what the configuration proves
will break: low confidence, no frames, the configuration lines used. With a capture, the rules
work from the packets as before and these audits stay silent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from netdiag.cli.main import app
from netdiag.engine.analysis import analyze

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
SCHEMA = json.loads((REPO / "docs" / "findings-schema.json").read_text())
DR_FAULTY = SAMPLES / "lvs-dr-arp" / "faulty-arp-ignore" / "facts"
DR_HEALTHY = SAMPLES / "lvs-dr-arp" / "healthy" / "facts"

#: each sample's facts folder -> the findings the audit gives (code, subject)
AUDITS = {
    "lvs-dr-arp/faulty-arp-ignore": [("ARP001", "VIP 10.30.0.100")],
    "lvs-dr-arp/healthy": [],
    "nat-gateway/faulty-rs-gateway": [("NAT001", "192.168.1.190 replies for 198.51.100.131:80")],
    "nat-gateway/faulty-ip-forward": [("NAT002", "director does not forward")],
    "nat-gateway/faulty-missing-snat": [("NAT003", "10.2.0.0/24 not translated")],
    "nat-gateway/healthy-lvs-nat": [],
    "nat-gateway/healthy-egress-snat": [],
    "docker0-route-hijack/faulty": [("RT001", "route 172.17.0.0/16 dev docker0 on ecs3")],
    "docker0-route-hijack/healthy": [],
    "docker0-route-hijack/healthy-specific-route": [],
    "combined/faulty": [("RT001", "route 172.17.0.0/16 dev docker0 on vpngw")],
    "lb-hairpin/faulty-l4": [],
    "ipsec-selector-gap/faulty": [],
}


def _need(path: Path) -> None:
    if not path.is_dir():
        pytest.skip(f"sample not built: {path}")


def _json(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["analyze", *args, "-f", "json"])
    return result.exit_code, json.loads(result.stdout)


def test_cli_faulty_dr_facts_exit_1_with_arp001() -> None:
    _need(DR_FAULTY)
    code, report = _json("--facts", str(DR_FAULTY))
    assert code == 1
    jsonschema.validate(report, SCHEMA)
    assert report["captures"] == []
    assert "ARP001" in report["rules"]["ran"]
    [finding] = report["findings"]
    assert (finding["code"], finding["subject"], finding["confidence"]) == (
        "ARP001",
        "VIP 10.30.0.100",
        "low",
    )
    assert finding["evidence"] == [] and finding["evidence_total"] == 0
    assert finding["first_ts"] is None and finding["wireshark_filter"] == ""
    used = {u["source"].rsplit("/", 1)[-1]: u["text"] for u in finding["facts_used"]}
    assert used["rs1.txt:39"] == "net.ipv4.conf.all.arp_ignore = 0"
    assert used["rs1.txt:47"] == "net.ipv4.conf.eth0.arp_ignore = 0"
    assert "10.30.0.100/32 scope global lo:0" in used["rs1.txt:3"]
    assert not any(k.startswith("rs2.txt") for k in used)  # rs2 is configured correctly
    for line in (
        "net.ipv4.conf.all.arp_ignore = 1",
        "net.ipv4.conf.eth0.arp_ignore = 1",
        "net.ipv4.conf.all.arp_announce = 2",
        "net.ipv4.conf.eth0.arp_announce = 2",
    ):
        assert line in finding["remediation"].splitlines()
    assert "rs1" in finding["message"] and "rs2" not in finding["message"]


def test_cli_healthy_dr_facts_exit_0() -> None:
    _need(DR_HEALTHY)
    code, report = _json("--facts", str(DR_HEALTHY))
    assert code == 0
    assert report["findings"] == []
    assert {"ARP001", "NAT001", "NAT003", "RT001"} <= set(report["rules"]["ran"])


def test_installed_command_exit_codes() -> None:
    """The real process (not the test runner): exit 1 with ARP001, exit 0 on the healthy facts."""
    _need(DR_FAULTY)
    _need(DR_HEALTHY)
    command = [sys.executable, "-m", "netdiag"] if not shutil.which("netdiag") else ["netdiag"]
    faulty = subprocess.run(
        [*command, "analyze", "--facts", str(DR_FAULTY)], capture_output=True, text=True
    )
    assert faulty.returncode == 1, faulty.stderr
    assert "ARP001 error (low confidence)" in faulty.stdout
    healthy = subprocess.run(
        [*command, "analyze", "--facts", str(DR_HEALTHY)], capture_output=True, text=True
    )
    assert healthy.returncode == 0, healthy.stderr
    assert "0 findings" in healthy.stdout


@pytest.mark.parametrize("sample", sorted(AUDITS))
def test_every_sample_audit(sample: str) -> None:
    """Faulty variants give their pattern's finding from facts alone, healthy ones nothing."""
    facts = SAMPLES / sample / "facts"
    _need(facts)
    analysis = analyze([], [str(facts)])
    assert not analysis.result.errored
    got = [(f.code, f.subject) for f in analysis.result.findings]
    assert got == AUDITS[sample]
    for finding in analysis.result.findings:
        assert finding.confidence == "low" and not finding.evidence
        assert finding.facts_used and all(":" in u.source for u in finding.facts_used)
        assert finding.remediation


def test_with_a_capture_the_audit_does_not_run() -> None:
    """Packets decide when there are captures: the healthy capture with the faulty facts."""
    capture = SAMPLES / "lvs-dr-arp" / "healthy" / "segment.pcapng"
    if not capture.is_file():
        pytest.skip("lvs-dr-arp samples not built")
    _need(DR_FAULTY)
    analysis = analyze([str(capture)], [str(DR_FAULTY)], select=["ARP001"])
    assert analysis.result.ran == ["ARP001"]
    assert analysis.result.findings == []


def _copy_facts(tmp_path: Path, edits: dict[str, str | None]) -> Path:
    """The faulty DR facts with some rs1.txt lines replaced (None: removed)."""
    _need(DR_FAULTY)
    folder = tmp_path / "facts"
    shutil.copytree(DR_FAULTY, folder)
    rs1 = folder / "rs1.txt"
    lines = []
    for line in rs1.read_text().splitlines():
        key = line.split(" = ")[0]
        if key in edits:
            if edits[key] is None:
                continue
            line = f"{key} = {edits[key]}"
        lines.append(line)
    rs1.write_text("\n".join(lines) + "\n")
    return folder


def test_only_the_wrong_sysctl_is_reported(tmp_path: Path) -> None:
    """arp_ignore fixed on eth0 (max(all, eth0) = 1): only arp_announce remains to set."""
    folder = _copy_facts(tmp_path, {"net.ipv4.conf.eth0.arp_ignore": "1"})
    [finding] = analyze([], [str(folder)], select=["ARP001"]).result.findings
    fix = finding.remediation.splitlines()
    assert "net.ipv4.conf.eth0.arp_announce = 2" in fix
    assert not any("arp_ignore" in line for line in fix)


def test_a_lower_bound_proves_nothing(tmp_path: Path) -> None:
    """Without the interface's own values, all = 0 is only a lower bound: no finding."""
    folder = _copy_facts(
        tmp_path,
        {"net.ipv4.conf.eth0.arp_ignore": None, "net.ipv4.conf.eth0.arp_announce": None},
    )
    assert analyze([], [str(folder)], select=["ARP001"]).result.findings == []


def test_an_address_on_lo_that_is_no_vip_is_left_alone(tmp_path: Path) -> None:
    """Without the director's service and with no other holder, 10.30.0.100 on lo is rs1's own."""
    folder = _copy_facts(tmp_path, {})
    for name in ("ipvsadm.txt", "keepalived.conf", "rs2.txt", "director.txt"):
        (folder / name).unlink()
    assert analyze([], [str(folder)], select=["ARP001"]).result.findings == []
