"""Renderers of an analysis: format name -> function(analysis, out, color) writing the report."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from netdiag.render import json as json_render
from netdiag.render import text as text_render

if TYPE_CHECKING:
    from netdiag.engine.analysis import Analysis

Renderer = Callable[["Analysis", IO[str], bool], None]


def _json(analysis: Analysis, out: IO[str], color: bool) -> None:
    out.write(json_render.render(analysis))


def _markdown(analysis: Analysis, out: IO[str], color: bool) -> None:
    from netdiag.render import markdown

    markdown.write(analysis, out, color)


def _html(analysis: Analysis, out: IO[str], color: bool) -> None:
    from netdiag.render import html

    html.write(analysis, out, color)


#: format name -> renderer (explicit, like every registry of netdiag)
RENDERERS: dict[str, Renderer] = {
    "text": text_render.write,
    "json": _json,
    "md": _markdown,
    "html": _html,
}
