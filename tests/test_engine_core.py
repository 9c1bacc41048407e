"""The rule engine: registry checks, runner outcomes (ran/skipped/errored), selection, documentation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from netdiag.engine import AnalysisContext, Rule, RuleLoadError, discover, run_rules, select_rules
from netdiag.engine.registry import load_rule
from netdiag.engine.rule import DOC_HEADINGS
from netdiag.engine.selection import parse_codes
from netdiag.errors import NetdiagError

DOC = '''"""Test rule.

What it detects
---------------
x

Why it matters
--------------
x

Evidence
--------
x

Remediation
-----------
x

False positives
---------------
x

References
----------
x
"""'''


def _write_rule(root: Path, folder: str, body: str) -> Path:
    path = root / folder
    path.mkdir(parents=True)
    (path / "rule.py").write_text(textwrap.dedent(body))
    return path


def _rule_source(cls: str, code: str, name: str, check: str = "return []", extra: str = "") -> str:
    return (
        "from netdiag.engine import Rule\n\n"
        f"class {cls}(Rule):\n"
        + textwrap.indent(DOC, "    ")
        + f"\n    code = {code!r}\n    name = {name!r}\n    title = 't'\n{extra}"
        + f"    def check(self, ctx):\n        {check}\n"
    )


# --- registry -----------------------------------------------------------------------------------
def test_registry_loads_a_well_formed_folder(tmp_path: Path) -> None:
    _write_rule(tmp_path, "XY001-some-problem", _rule_source("A", "XY001", "some-problem"))
    rules = discover(tmp_path)
    assert list(rules) == ["XY001"]
    assert rules["XY001"].name == "some-problem"


@pytest.mark.parametrize(
    ("folder", "code", "name", "message"),
    [
        ("XY001-some-problem", "XY002", "some-problem", "its folder is XY001-some-problem"),
        ("XY001-some-problem", "XY001", "other-name", "its folder is XY001-some-problem"),
        ("XY001_some_problem", "XY001", "some-problem", "must be named <CODE>-<kebab-name>"),
        ("XY001-Some", "XY001", "Some", "must be named"),
    ],
)
def test_registry_rejects_disagreeing_names(
    tmp_path: Path, folder: str, code: str, name: str, message: str
) -> None:
    path = _write_rule(tmp_path, folder, _rule_source("A", code, name))
    with pytest.raises(RuleLoadError, match=message):
        load_rule(path)


def test_registry_wants_exactly_one_rule_per_folder(tmp_path: Path) -> None:
    two = _rule_source("A", "XY001", "p") + "\n" + _rule_source("B", "XY001", "p").split("\n", 2)[2]
    path = _write_rule(tmp_path, "XY001-p", two)
    with pytest.raises(RuleLoadError, match="exactly one Rule subclass, found 2"):
        load_rule(path)
    empty = _write_rule(tmp_path, "XY002-q", "x = 1\n")
    with pytest.raises(RuleLoadError, match="found 0"):
        load_rule(empty)


def test_registry_reports_a_rule_that_does_not_import(tmp_path: Path) -> None:
    path = _write_rule(tmp_path, "XY001-p", "import no_such_module_here\n")
    with pytest.raises(RuleLoadError, match="import failed: ModuleNotFoundError"):
        load_rule(path)


def test_shipped_rules_load_and_agree_with_their_folders() -> None:
    rules = discover()
    assert "LB001" in rules
    for code, rule in rules.items():
        assert rule.code == code
        assert rule.title and rule.category, code
        assert rule.needs | rule.needs_any, f"{code} declares no input"


@pytest.mark.parametrize("code", list(discover()))
def test_rule_documentation_has_every_heading(code: str) -> None:
    """Each rule's docstring is its documentation: all fixed headings, none empty."""
    sections = discover()[code].doc_sections()
    missing = [h for h in DOC_HEADINGS if h not in sections]
    assert not missing, f"{code} docstring lacks {missing}"
    empty = [h for h in DOC_HEADINGS if not sections[h].strip()]
    assert not empty, f"{code} docstring has empty {empty}"


def test_documentation_check_catches_a_missing_or_empty_heading() -> None:
    class Bad(Rule):
        """Bad.

        What it detects
        ---------------
        something

        Why it matters
        --------------

        Evidence
        --------
        x
        """

    sections = Bad.doc_sections()
    assert sections["What it detects"] == "something"
    assert sections["Why it matters"] == ""
    assert "Remediation" not in sections


# --- runner -------------------------------------------------------------------------------------
class _Raises(Rule):
    code, name, title = "ZZ001", "raises", "raises"
    needs = frozenset()
    needs_any = frozenset()

    def check(self, ctx):  # type: ignore[no-untyped-def]
        raise ValueError("boom happened\nsecond line")


class _Finds(Rule):
    code, name, title, severity = "ZZ002", "finds", "finds", "warning"
    needs = frozenset()

    def check(self, ctx):  # type: ignore[no-untyped-def]
        yield self.finding(ctx, subject="s", message="m", confidence="low")


class _NeedsArp(Rule):
    code, name, title = "ZZ003", "needs-arp", "t"
    needs = frozenset({"arp"})


class _NeedsFacts(Rule):
    code, name, title = "ZZ004", "needs-facts", "t"
    needs = frozenset({"facts"})


class _NeedsPacketsOrFacts(Rule):
    code, name, title = "ZZ005", "either", "t"
    needs = frozenset()
    needs_any = frozenset({"packets", "facts"})


def test_errored_rule_is_reported_and_the_run_goes_on() -> None:
    result = run_rules(AnalysisContext(), [_Raises, _Finds])
    assert [(e.code, e.reason) for e in result.errored] == [("ZZ001", "ValueError: boom happened")]
    assert result.ran == ["ZZ002"]
    assert [f.code for f in result.findings] == ["ZZ002"]
    finding = result.findings[0]
    assert finding.severity == "warning" and len(finding.fingerprint) == 16


def test_rule_with_missing_inputs_is_skipped_with_the_reason() -> None:
    result = run_rules(AnalysisContext(), [_NeedsArp, _NeedsFacts, _NeedsPacketsOrFacts])
    assert [(s.code, s.reason) for s in result.skipped] == [
        ("ZZ003", "no capture with ARP"),
        ("ZZ004", "no facts"),
        ("ZZ005", "no facts and no capture"),
    ]
    assert result.ran == [] and result.findings == []


def test_fail_on_thresholds() -> None:
    result = run_rules(AnalysisContext(), [_Finds])
    assert result.fails("info") and result.fails("warning")
    assert not result.fails("error") and not result.fails("never")


# --- selection ----------------------------------------------------------------------------------
class _Exp(Rule):
    code, name, title, status = "AB002", "exp", "t", "experimental"


class _A1(Rule):
    code, name, title = "AB001", "a", "t"


class _C1(Rule):
    code, name, title = "CD001", "c", "t"


class _C2(Rule):
    code, name, title = "CD002", "c2", "t"


RULESET = {r.code: r for r in (_A1, _Exp, _C1, _C2)}


@pytest.mark.parametrize(
    ("select", "ignore", "expected"),
    [
        ([], [], ["AB001", "CD001", "CD002"]),  # experimental rules need an explicit code
        (["AB002"], [], ["AB002"]),
        (["AB"], [], ["AB001"]),
        (["CD"], ["CD002"], ["CD001"]),
        (["CD002"], ["CD"], ["CD002"]),  # the more specific wins, as in ruff
        ([], ["CD"], ["AB001"]),
        (["ALL"], ["AB"], ["CD001", "CD002"]),
    ],
)
def test_select_and_ignore_like_ruff(
    select: list[str], ignore: list[str], expected: list[str]
) -> None:
    assert [r.code for r in select_rules(RULESET, select, ignore)] == expected


def test_unknown_code_is_a_usage_error() -> None:
    with pytest.raises(NetdiagError, match="no rule matches 'XX'"):
        select_rules(RULESET, ["XX"], [])


def test_parse_codes_splits_commas_and_upper_cases() -> None:
    assert parse_codes(["lb,ARP001", " rt "]) == ["LB", "ARP001", "RT"]


def test_rules_are_packaged_as_netdiag_rules(tmp_path: Path) -> None:
    """setup.py + pyproject.toml put every rule folder into the wheel as package netdiag_rules."""
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    src = tmp_path / "src"  # a copy, so that setuptools' egg-info lands there, not in the checkout
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(repo / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "expected")
    shutil.copytree(repo / "netdiag", src / "netdiag", ignore=ignore)
    shutil.copytree(repo / "rules", src / "rules", ignore=ignore)
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path / "lib")],
        cwd=src,
        check=True,
        capture_output=True,
    )
    shipped = tmp_path / "lib" / "netdiag_rules"
    for code in discover():
        folder = next(shipped.glob(f"{code}-*"))
        assert (folder / "rule.py").is_file() and (folder / "cases.yaml").is_file()
    assert discover(shipped).keys() == discover().keys()


def test_findings_doc_lists_every_rule() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "findings.md").read_text()
    for code, rule in discover().items():
        assert f"| {code} | {rule.name} | {rule.severity} |" in doc, (
            f"docs/findings.md lacks {code}"
        )


def test_rule_infos_read_from_sources_agree_with_the_loaded_rules() -> None:
    """The scan's catalogue identity reads rules without importing them: same codes, names, status."""
    from netdiag.engine.registry import discover, rule_infos

    infos, rules = rule_infos(), discover()
    assert list(infos) == list(rules)
    for code, rule in rules.items():
        assert (infos[code].name, infos[code].status) == (rule.name, rule.status)
        assert (infos[code].folder / "rule.py").is_file()
