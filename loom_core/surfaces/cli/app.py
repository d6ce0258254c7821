"""The root of the ``loom`` command tree: the typer app, its options (``--version``, ``--server``, ``--debug``
…), bare ``loom`` / ``loom console``, and the ``run`` command's class.

The sub-commands are not registered here: the root group (:class:`.lazy.LazyGroup`) takes them from the
command table (:mod:`.table`) and imports a command's module only when that command is used.
"""

from __future__ import annotations

from typing import Annotated

import typer
import typer.core

from loom_core import __version__
from loom_core.surfaces.cli.lazy import LazyGroup

app = typer.Typer(
    name="loom",
    cls=LazyGroup,
    help="Drive chains of LLM agents through classify → plan → implement → review → validate, "
         "with every step committed to <project>/.loom/state.db.",
    no_args_is_help=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish): typer's own
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loom {__version__}")
        raise typer.Exit(0)


SERVER = typer.Option("--server", help="Attach the console to the plane at this URL (e.g. through an SSH "
                                        "tunnel); default: the plane running on this host, if any.")
TOKEN = typer.Option("--token", help="The plane's bearer token (default: LOOM_SERVER_TOKEN / server.token).")


def _console(server: str | None, token: str | None) -> None:
    from loom_core.surfaces.cli.common import not_a_terminal

    why = not_a_terminal()
    if why:  # a full-screen app would write escape codes into a pipe and wait for keys that never come
        typer.echo(f"loom: the console needs a terminal, but {why}; for scripts use 'loom status', "
                   "'loom run \"<task>\"' or 'loom serve'", err=True)
        raise typer.Exit(2)
    from loom_core.surfaces.cli.attach import plane_to_attach
    from loom_tui.app import run_console  # type: ignore[import-not-found]

    url, token = plane_to_attach(server, token)
    run_console(url, token)


def root(ctx: typer.Context,
         version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False,
         server: Annotated[str | None, SERVER] = None, token: Annotated[str | None, TOKEN] = None,
         debug: Annotated[bool, typer.Option("--debug", help="Write a debug log (engine steps, spawns, errors "
                                             "with tracebacks) to $XDG_STATE_HOME/loom/loom-debug.log; "
                                             "same as LOOM_DEBUG=1.")] = False) -> None:
    """Bare `loom` opens the console (attached to a running plane when there is one)."""
    if debug:
        from loom_core.config.debuglog import enable

        enable()
    if ctx.invoked_subcommand is None:
        try:
            import loom_tui.app  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            typer.echo(ctx.get_help())
            return
        _console(server, token)


app.callback(invoke_without_command=True)(root)


def console(server: Annotated[str | None, SERVER] = None, token: Annotated[str | None, TOKEN] = None) -> None:
    """Open the full-screen console over every project in the catalog (same as bare `loom`)."""
    _console(server, token)


class RunCommand(typer.core.TyperCommand):
    """`loom run --help` ends with every backend and whether it can run here (checked only when help is asked)."""

    def format_help(self, ctx, formatter) -> None:  # noqa: ANN001 - click's types
        from loom_core.surfaces.cli.common import backends_epilog

        self.epilog = backends_epilog()
        super().format_help(ctx, formatter)
