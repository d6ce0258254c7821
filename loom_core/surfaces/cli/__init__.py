"""The ``loom`` command line.

This module stays light (the standard library only at load): ``loom --help`` prints the cached top-level help
(:mod:`.helpcache`) without importing typer, and every other invocation builds only the root group
(:mod:`.app`) and the one command used (:mod:`.lazy`, from the table in :mod:`.table`). Every command imports
what it needs inside its body and works through the facade (:mod:`loom_core.control`). Errors are printed as
one line (``loom: <message>``) with no traceback. Exit codes: 0 ok/accepted, 1 rejected/failed/error, 2 usage
error, 3 parked at a gate.

The commands live by group: :mod:`.tasks` (run, proceed, answer, recover, reset, demo, init),
:mod:`.reads` (status, gc, history, verify, replay), :mod:`.projects`, :mod:`.settings`
(config, secrets, models); :mod:`.common` holds what they share; :mod:`.complete` completes ids, names and
keys for the shells.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn


def __getattr__(name: str) -> object:
    if name == "app":  # the typer app (built on first use: importing typer costs ~30 ms)
        from loom_core.surfaces.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    args = sys.argv[1:] if argv is None else argv
    bad = _not_utf8(args)
    if bad:
        print(f"loom: {bad}", file=sys.stderr)
        sys.exit(2)
    if args == ["--help"]:
        from loom_core.surfaces.cli import helpcache

        if helpcache.show():
            sys.exit(0)
    if os.environ.get("_LOOM_COMPLETE"):  # a shell asks for completions: see .complete
        from loom_core.surfaces.cli.complete import prepare

        prepare()
    elif args[:1] in (["status"], ["history"], ["verify"]) or args[:2] == ["config", "get"]:  # see .readview
        from loom_core.surfaces.cli.readview import quick

        answer = quick(args)
        if answer is not None:
            try:
                code = answer()
            except Exception as exc:  # noqa: BLE001 - said as the typer path says it
                _fail(exc, debuglog, LoomError)
            except KeyboardInterrupt as exc:
                _fail(exc, debuglog, LoomError)
            sys.exit(code)
    import typer
    from typer import _click as click  # typer bundles its own click
    from typer.exceptions import Abort

    try:
        from typer.main import get_command

        from loom_core.surfaces.cli.app import app
        from loom_core.surfaces.cli.fastargs import lighten

        command = get_command(app)  # the root alone: a command is built when it is used (.lazy)
        lighten(command, deep=False)  # plain values without pydantic (each command is lightened when built)
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
    except Exception as exc:  # noqa: BLE001 - one line each (see _fail)
        _fail(exc, debuglog, LoomError)
    except KeyboardInterrupt as exc:
        _fail(exc, debuglog, LoomError)
    sys.exit(rv if isinstance(rv, int) else 0)


def _fail(exc: BaseException, debuglog: Any, loom_error: type) -> NoReturn:
    """Say what went wrong in one line on stderr and exit: a LoomError (2 for a usage error, else 1), an
    interrupt (130), a system error, a tree too deep, a bug. Called inside the ``except`` that caught
    ``exc``; with LOOM_DEBUG=1 a system error or a bug is raised again (the traceback)."""
    if isinstance(exc, loom_error):
        debuglog.record_error(exc)
        print(f"loom: {exc}", file=sys.stderr)
        sys.exit(2 if getattr(exc, "code", None) == "USAGE" else 1)
    if isinstance(exc, KeyboardInterrupt):
        print("loom: interrupted", file=sys.stderr)
        sys.exit(130)
    debuglog.record_error(exc)
    if debuglog.wanted():
        raise exc
    if isinstance(exc, RecursionError):
        print("loom: a directory tree or document is nested too deeply to process; nothing further was done",
              file=sys.stderr)
    elif isinstance(exc, OSError):
        print(f"loom: {exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}", file=sys.stderr)
    else:
        text = " ".join(str(exc).split())[:300]
        print(f"loom: internal error: {type(exc).__name__}: {text} (run with LOOM_DEBUG=1 for the traceback)",
              file=sys.stderr)
    sys.exit(1)
