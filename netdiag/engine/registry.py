"""Rule discovery: one rule per ``rules/<CODE>-<name>/rule.py``, checked and keyed by code.

The ``rules/`` folder is shipped in the wheel as the package ``netdiag_rules`` (see
pyproject.toml); in a source checkout it is found beside the ``netdiag`` package. Each rule.py is
loaded from its file (the folder names are not Python identifiers) and must define exactly one
:class:`Rule` subclass whose ``code`` and ``name`` spell the folder's name.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from netdiag.engine.rule import CODE_RE, NAME_RE, Rule
from netdiag.errors import NetdiagError

FOLDER_RE = re.compile(r"^(?P<code>[A-Z]{2,4}[0-9]{3})-(?P<name>[a-z0-9]+(?:-[a-z0-9]+)*)$")


class RuleLoadError(NetdiagError):
    """A rule folder is malformed: wrong name, no or several rules, an import that fails."""


def rules_root() -> Path:
    """Where the rule folders are: the installed ``netdiag_rules`` package, else the checkout."""
    try:
        from importlib.resources import files

        root = Path(str(files("netdiag_rules")))
        if root.is_dir():
            return root
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent.parent / "rules"


def rule_folders(root: Path) -> list[Path]:
    """Folders under ``root`` that hold a rule.py (sorted by name)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "rule.py").is_file())


def load_rule(folder: Path) -> type[Rule]:
    """The Rule subclass of one folder, checked against the folder's name."""
    match = FOLDER_RE.match(folder.name)
    if match is None:
        raise RuleLoadError(
            str(folder), "rule folder must be named <CODE>-<kebab-name>, e.g. LB001-l4-hairpin"
        )
    module_name = f"netdiag_rule_{folder.name.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, folder / "rule.py")
    if spec is None or spec.loader is None:
        raise RuleLoadError(str(folder / "rule.py"), "cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a broken rule must name itself, not crash the listing
        sys.modules.pop(module_name, None)
        raise RuleLoadError(
            str(folder / "rule.py"), f"import failed: {type(exc).__name__}: {exc}"
        ) from None
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Rule)
        and obj is not Rule
        and obj.__module__ == module_name
    ]
    if len(found) != 1:
        raise RuleLoadError(
            str(folder / "rule.py"), f"must define exactly one Rule subclass, found {len(found)}"
        )
    rule = found[0]
    code, name = match.group("code"), match.group("name")
    if not CODE_RE.match(rule.code or ""):
        raise RuleLoadError(str(folder / "rule.py"), f"code {rule.code!r} is not like LB001")
    if not NAME_RE.match(rule.name or ""):
        raise RuleLoadError(str(folder / "rule.py"), f"name {rule.name!r} is not kebab-case")
    if (rule.code, rule.name) != (code, name):
        raise RuleLoadError(
            str(folder / "rule.py"),
            f"{rule.__name__} says {rule.code}-{rule.name} but its folder is {folder.name}",
        )
    if rule.severity not in ("info", "warning", "error"):
        raise RuleLoadError(str(folder / "rule.py"), f"unknown severity {rule.severity!r}")
    if rule.status not in ("stable", "experimental"):
        raise RuleLoadError(str(folder / "rule.py"), f"unknown status {rule.status!r}")
    return rule


_CACHE: dict[Path, dict[str, type[Rule]]] = {}


def discover(root: Path | None = None) -> dict[str, type[Rule]]:
    """All rules under ``root`` (default: the shipped rules), keyed by code, sorted by code."""
    root = (root or rules_root()).resolve()
    cached = _CACHE.get(root)
    if cached is not None:
        return cached
    rules: dict[str, type[Rule]] = {}
    for folder in rule_folders(root):
        rule = load_rule(folder)
        if rule.code in rules:
            raise RuleLoadError(str(folder), f"code {rule.code} is used by two folders")
        rules[rule.code] = rule
    result = dict(sorted(rules.items()))
    _CACHE[root] = result
    return result


@dataclass(frozen=True)
class RuleInfo:
    """What the registry knows of a rule without importing it (and so without pandas)."""

    code: str
    name: str
    status: str
    folder: Path


def rule_infos(root: Path | None = None) -> dict[str, RuleInfo]:
    """Code, name and status of every rule, read from the rule.py sources, sorted by code.

    Used where importing every rule would cost more than the work itself (a resumed scan needs
    only the rules' identity). A value that is not a plain string literal falls back to the
    folder's name, or to the base class's default status.
    """
    infos: dict[str, RuleInfo] = {}
    for folder in rule_folders((root or rules_root()).resolve()):
        match = FOLDER_RE.match(folder.name)
        if match is None:
            continue
        found = {"code": match["code"], "name": match["name"], "status": Rule.status}
        tree = ast.parse((folder / "rule.py").read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
                if (
                    isinstance(target, ast.Name)
                    and target.id == "status"
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                ):
                    found["status"] = value.value
        infos[found["code"]] = RuleInfo(found["code"], found["name"], found["status"], folder)
    return dict(sorted(infos.items()))


def rule_folder(code: str, root: Path | None = None) -> Path | None:
    """The folder of the rule with this code, if any."""
    for folder in rule_folders((root or rules_root()).resolve()):
        if folder.name.split("-", 1)[0] == code:
            return folder
    return None
