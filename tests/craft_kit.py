"""The crafted-capture builders (tests/fixtures/capture/capture_craft.py) as one importable module.

The builders live beside the fixture scripts that also run them by path; tests import them from
here: ``from craft_kit import craft``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "capture_craft", Path(__file__).parent / "fixtures" / "capture" / "capture_craft.py"
)
assert _spec and _spec.loader
craft = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(craft)
