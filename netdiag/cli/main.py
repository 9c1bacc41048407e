"""The `netdiag` command: one typer app whose subcommands are imported only when used.

``COMMANDS`` names every subcommand's module and function; the app's group lists them all (for
``--help`` and for suggestions on a typo) but imports a module and builds its click command only
when that subcommand is run or its help is shown, the pattern click documents as a "LazyGroup".
Running one subcommand therefore costs neither the other modules' imports nor their commands.
"""

from __future__ import annotations

import os

# numpy's OpenBLAS starts a pool of threads that spin for a while on every core at start-up,
# although netdiag never multiplies matrices: a tenth of a CPU second taken from the reader's
# own two threads (netdiag.capture.readahead). Set before anything imports numpy; a value the
# user set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import atexit  # noqa: E402
import importlib  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable, Iterator, MutableMapping  # noqa: E402
from typing import Any  # noqa: E402

import typer  # noqa: E402
from typer.core import TyperCommand, TyperGroup

from netdiag import __version__

#: subcommand name -> (module of netdiag.cli, its command function); explicit, like every
#: registry here, and in the order ``netdiag --help`` lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info", "info_command"),
    "packets": ("packets", "packets_command"),
    "flows": ("flows", "flows_command"),
    "facts": ("facts", "facts_command"),
    "analyze": ("analyze", "analyze_command"),
    "rules": ("rules", "rules_command"),
    "rule": ("rules", "rule_command"),
    "scan": ("scan", "scan_command"),
    "scan-report": ("scan", "scan_report_command"),
    "show": ("show", "show_command"),
}


def command_function(name: str) -> Callable[..., Any]:
    """The function behind subcommand ``name`` (imports its module)."""
    module_name, function_name = COMMANDS[name]
    module = importlib.import_module(f"netdiag.cli.{module_name}")
    function: Callable[..., Any] = getattr(module, function_name)
    return function


class _LazyCommands(MutableMapping[str, Any]):
    """A group's name -> click command map whose commands are built on first access."""

    def __init__(self, build: Callable[[str], Any], built: dict[str, Any]) -> None:
        self._build = build
        self._built = built

    def __getitem__(self, name: str) -> Any:
        command = self._built.get(name)
        if command is None:
            if name not in COMMANDS:
                raise KeyError(name)
            command = self._built[name] = self._build(name)
        return command

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMANDS, *self._built]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*COMMANDS, *self._built]))


class _PlainValues:
    """Commands whose string and flag values skip typer's pydantic coercion (see
    ``_take_values_as_they_are``), the help option included."""

    params: list[Any]

    def _plain_values(self) -> None:
        for param in self.params:
            _take_values_as_they_are(param)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            _take_values_as_they_are(option)
        return option


class PlainCommand(_PlainValues, TyperCommand):
    """A subcommand (see ``_PlainValues``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plain_values()


class LazyGroup(_PlainValues, TyperGroup):
    """The root group: every name of ``COMMANDS`` listed, each command built when asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands(self._build, dict(self.commands))
        self._plain_values()

    def _build(self, name: str) -> Any:
        info = typer.models.CommandInfo(
            name=name, callback=command_function(name), cls=PlainCommand
        )
        return typer.main.get_command_from_info(
            info,
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=self.rich_markup_mode,
        )


def _take_values_as_they_are(param: Any) -> None:
    """Give a ``str``, ``list[str]`` or ``bool`` parameter a coercion that passes such values
    through as they are.

    typer (0.29) checks every value through a pydantic TypeAdapter it builds on first use,
    which imports pydantic: about 0.08 s, a twentieth of ``netdiag flows`` on 1M packets, to
    turn the strings the command line gave into the same strings. Every other value (and any
    value of another type reaching these parameters) still goes through typer's own coercion.
    This leans on typer's private coercion hook; if a typer release drops it, nothing changes.
    """
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
    except ImportError:
        return
    descriptor = getattr(param, "type_descriptor", None)
    if (
        descriptor is None
        or getattr(param, "_runtime_param", False) is not None
        or descriptor.file_annotation is not None
        or descriptor.parameter_info.parser is not None
        or descriptor.annotation not in _PLAIN_ANNOTATIONS
    ):
        return

    class AsTheyAre(RuntimeParam):  # type: ignore[misc]
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            annotation = self.annotation
            if annotation in (str, bool) and type(value) is annotation:
                return value
            if (
                annotation == list[str]
                and isinstance(value, (list, tuple))
                and all(type(item) is str for item in value)
            ):
                return list(value)
            typer_own = build_runtime_param(param.type_descriptor)
            return typer_own._coerce_value(value, param=param, ctx=ctx)

    try:
        param._runtime_param = AsTheyAre(
            parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
        )
    except TypeError:  # the hook's interface changed: leave typer's coercion alone
        return


_PLAIN_ANNOTATIONS = (str, bool, list[str])


app = typer.Typer(
    name="netdiag",
    cls=LazyGroup,
    help="Find known network failure patterns in packet captures and topology facts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"netdiag {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Find known network failure patterns in packet captures and topology facts."""


def main() -> None:
    # Reading a capture runs two threads of numpy calls (netdiag.capture.readahead); one that
    # comes back from a call that released the GIL waits for the other to let it go. A shorter
    # switch interval than Python's 5 ms makes that wait shorter (~3 % on 1M packets).
    sys.setswitchinterval(0.0005)
    app()


def run() -> None:
    """The `netdiag` program (console script, `python -m netdiag`): ``main()``, then leave
    without the interpreter's teardown.

    Freeing every module and object one by one after a big capture takes ~0.02 s that the
    kernel's end of the process makes pointless. Exit handlers (``atexit``) still run and the
    standard streams are flushed; commands close their own files. With another thread still
    alive (none of netdiag's, which are joined) the ordinary exit runs instead.
    """
    try:
        main()
    except SystemExit as done:
        code = done.code
    else:
        code = 0
    if not isinstance(code, int) or threading.active_count() > 1:
        raise SystemExit(code)  # the ordinary exit: it prints a text code, waits for threads
    atexit._run_exitfuncs()  # noqa: SLF001 - what Py_Finalize would run first
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a reader that went away: the output is gone either way
        pass
    os._exit(code)
