"""The ``loom`` command line.

Only typer and the standard library are imported at module load, so ``loom --help`` stays
fast; every command imports what it needs inside its body and works through the facade
(:mod:`loom_core.control`). Errors are printed as one line (``loom: <message>``) with no
traceback. Exit codes: 0 ok/accepted, 1 rejected/failed/error, 2 usage error, 3 parked at a gate.

The commands live by group: :mod:`.tasks` (run, proceed, answer, recover, reset, demo, init),
:mod:`.reads` (status, gc, history, verify, replay), :mod:`.projects`, :mod:`.settings`
(config, secrets, models); :mod:`.common` holds what they share.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
import typer.core

from loom_core import __version__
from loom_core.surfaces.cli import reads, tasks
from loom_core.surfaces.cli.allowlist import allowlist_app
from loom_core.surfaces.cli.bot import bot_app
from loom_core.surfaces.cli.daemon import daemon_app
from loom_core.surfaces.cli.mcp import mcp_app
from loom_core.surfaces.cli.projects import projects_app
from loom_core.surfaces.cli.serve import serve_app
from loom_core.surfaces.cli.settings import config_app, models_app, secrets_app
from loom_core.surfaces.cli.setup import setup
from loom_core.surfaces.cli.web import up, web

app = typer.Typer(
    name="loom",
    help="Drive chains of LLM agents through classify → plan → implement → review → validate, "
         "with every step committed to <project>/.loom/state.db.",
    no_args_is_help=False,
    add_completion=False,
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


@app.command()
def console(server: Annotated[str | None, SERVER] = None, token: Annotated[str | None, TOKEN] = None) -> None:
    """Open the full-screen console over every project in the catalog (same as bare `loom`)."""
    _console(server, token)


class _RunCommand(typer.core.TyperCommand):
    """`loom run --help` ends with every backend and whether it can run here (checked only when help is asked)."""

    def format_help(self, ctx, formatter) -> None:  # noqa: ANN001 - click's types
        from loom_core.surfaces.cli.common import backends_epilog

        self.epilog = backends_epilog()
        super().format_help(ctx, formatter)


for command in (reads.status, reads.gc, reads.history, tasks.reset, reads.verify, reads.replay, tasks.recover,
                tasks.proceed, tasks.answer, tasks.demo, tasks.init):
    app.command()(command)
app.command(cls=_RunCommand)(tasks.run)
app.add_typer(projects_app, name="projects")
app.add_typer(config_app, name="config")
app.add_typer(secrets_app, name="secrets")
app.add_typer(models_app, name="models")
app.command()(web)
app.command()(up)
app.add_typer(serve_app, name="serve")
app.add_typer(daemon_app, name="daemon")
app.add_typer(allowlist_app, name="allowlist")
app.command()(setup)
app.add_typer(bot_app, name="bot")
app.add_typer(mcp_app, name="mcp", hidden=True)  # `loom mcp serve` = loom-mcp (spec §13)

def _not_utf8(args: list[str]) -> str | None:
    """Why an argument cannot be used (argv bytes that are not UTF-8 arrive as surrogates), or None.
    loom stores text and paths in JSON, SQLite and git, which all need UTF-8; the argument itself is
    never echoed (it may be a secret)."""
    for i, arg in enumerate(args, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as exc:
            byte = arg[exc.start].encode("utf-8", "surrogateescape").hex()
            return f"argument {i} is not valid UTF-8 (byte 0x{byte} at character {exc.start}); loom needs " \
                   "UTF-8 text and paths: write it in UTF-8 or set a UTF-8 locale"
    return None


def main(argv: list[str] | None = None) -> None:
    from loom_core.config.runtime import allow_deep_trees
    from loom_core.errors import LoomError

    allow_deep_trees()
    from loom_core.config import debuglog

    if debuglog.wanted():
        debuglog.enable()
    bad = _not_utf8(sys.argv[1:] if argv is None else argv)
    if bad:
        typer.echo(f"loom: {bad}", err=True)
        sys.exit(2)
    from typer import _click as click  # typer bundles its own click
    from typer.exceptions import Abort

    try:
        from typer.main import get_command

        from loom_core.surfaces.cli.fastargs import lighten

        command = get_command(app)
        lighten(command)  # plain values without pydantic: most of a quick command's start-up otherwise
        rv = command(args=argv, prog_name="loom", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # `loom projects` alone: its help, as before
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # usage errors as one line, like every other error
        where = f" (see '{exc.ctx.command_path} --help')" if getattr(exc, "ctx", None) is not None else ""
        typer.echo(f"loom: {' '.join(exc.format_message().split())}{where}", err=True)
        sys.exit(exc.exit_code)
    except Abort:
        typer.echo("loom: aborted", err=True)
        sys.exit(1)
    except LoomError as exc:
        debuglog.record_error(exc)
        typer.echo(f"loom: {exc}", err=True)
        sys.exit(2 if exc.code == "USAGE" else 1)
    except KeyboardInterrupt:
        typer.echo("loom: interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        debuglog.record_error(exc)
        if debuglog.wanted():
            raise
        typer.echo(f"loom: {exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}", err=True)
        sys.exit(1)
    except RecursionError:
        debuglog.record_error(sys.exc_info()[1])
        if debuglog.wanted():
            raise
        typer.echo("loom: a directory tree or document is nested too deeply to process; nothing further was "
                   "done", err=True)
        sys.exit(1)
    except Exception as exc:  # a bug: still one line; LOOM_DEBUG=1 shows the traceback
        debuglog.record_error(exc)
        if debuglog.wanted():
            raise
        text = " ".join(str(exc).split())[:300]
        typer.echo(f"loom: internal error: {type(exc).__name__}: {text} (run with LOOM_DEBUG=1 for the traceback)",
                   err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
