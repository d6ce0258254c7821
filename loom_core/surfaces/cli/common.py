"""What the command modules share: option types, the project path, the facade, JSON and size output.

Only typer and the standard library at module load (``loom --help`` stays light).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loom_core.surfaces.cli.readview import size  # noqa: F401 - shared by the commands

if TYPE_CHECKING:
    from loom_core.control.local import LocalControl

ProjectOpt = Annotated[Path, typer.Option("--project", "-C", help="Project directory (default: current directory).",
                                          exists=True, file_okay=False, resolve_path=True)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
# written out (reading the registry costs every command ~1.5 ms); tests/cli/test_help_names.py ties it to it
BACKEND_HELP = ("Model backend: auto, demo, claude-code, anthropic, openrouter, ollama. auto = use the first backend "
                "that works on this machine; demo = offline and scripted.")
BackendOpt = Annotated[str, typer.Option("--backend", "-b", help=BACKEND_HELP)]
PolicyOpt = Annotated[str | None, typer.Option("--policy", "-p", help="Gate policy for every gate: human, "
                                               "on-blockers (default) or auto; or a preset (full-supervised, "
                                               "review-plan-only, review-final-only, gates-on-blockers, "
                                               "full-autonomous, demo-gates).")]
ComplexityOpt = Annotated[str | None, typer.Option("--complexity", "-c", help="Pin the flow: trivial, simple, "
                                                   "medium, complex or question (skips the classifier).")]
FastOpt = Annotated[bool, typer.Option("--fast", help="The single-pass fast lane (= --complexity trivial).")]
MaxSpawnsOpt = Annotated[int | None, typer.Option("--max-spawns", help="Cap on agent runs in this drive (default "
                                                  "40, env LOOM_MAX_SPAWNS; 0 = off).")]
MaxCostOpt = Annotated[float | None, typer.Option("--max-cost", metavar="USD", help="Cost budget of the task in US "
                                                  "dollars: it stops before a spawn that could pass it (default "
                                                  "general.max_cost_usd, env LOOM_MAX_COST_USD; 0 = none).")]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", metavar="N", help="Token budget of the task (input "
                                                  "+ output): it stops before a spawn that could pass it (default "
                                                  "general.max_tokens, env LOOM_MAX_TOKENS; 0 = none).")]


def with_budget(opts: Any, proj: Path, max_cost: float | None, max_tokens: int | None) -> Any:
    """``opts`` with ``--max-cost`` / ``--max-tokens`` set (None: the task's own options, so only its budgets
    change); unchanged when neither was given. A negative budget is a usage error."""
    if max_cost is None and max_tokens is None:
        return opts
    opts = opts if opts is not None else control().run_options(proj)
    if max_cost is not None:
        opts.max_cost_usd = max_cost
    if max_tokens is not None:
        opts.max_tokens = max_tokens
    opts.validate()
    return opts


def budget_flags(max_cost: float | None, max_tokens: int | None) -> list[str]:
    """The budget flags again, for a command line started from this one (``--detach``)."""
    return [w for flag, v in (("--max-cost", max_cost), ("--max-tokens", max_tokens)) if v is not None
            for w in (flag, str(v))]


DockerOpt = Annotated[bool, typer.Option("--docker", help="Run the agents in containers (refused, saying why, when "
                                         "that cannot work here).")]
NoDockerOpt = Annotated[bool, typer.Option("--no-docker", help="Run the agents in a sandbox copy, never a container "
                                           "(default: containers when Docker answers, an image is configured "
                                           "and a credential exists).")]


def docker_choice(docker: bool, no_docker: bool) -> bool | None:
    """``--docker`` → True, ``--no-docker`` → False, neither → None (auto); both → a usage error."""
    if docker and no_docker:
        from loom_core.errors import ConfigError

        raise ConfigError("--docker and --no-docker cannot be combined", code="USAGE")
    return True if docker else (False if no_docker else None)


def with_docker(opts: Any, proj: Path, choice: bool | None) -> Any:
    """``opts`` with the container choice set (None: the task's own options); unchanged without a flag.
    ``--docker`` that cannot work here is refused now, in one line, not by the supervisor later."""
    if choice is None:
        return opts
    if choice:
        status = control().docker_status(fresh=True)
        if not status["available"]:
            from loom_core.errors import ConfigError

            raise ConfigError(f"--docker requires container isolation, but {status['reason']}",
                              code="DOCKER_UNAVAILABLE")
    opts = opts if opts is not None else control().run_options(proj)
    opts.docker = choice
    return opts


def docker_flags(choice: bool | None) -> list[str]:
    """The container flag again, for a command line started from this one (``--detach``)."""
    return {True: ["--docker"], False: ["--no-docker"]}.get(choice, [])


def project_dir(path: Path | None) -> Path:
    return (path or Path.cwd()).resolve()


def control(**kwargs: Any) -> LocalControl:
    """The facade every command goes through (in-process; built per command, cheap)."""
    from loom_core.control import LocalControl

    return LocalControl(**kwargs)


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def not_a_terminal() -> str | None:
    """Why a full-screen console cannot run here (stdin or stdout is not a terminal), or None. A console served
    to a browser (``loom web``: Textual's web driver speaks over the pipe) needs no terminal."""
    import os
    import sys

    if "web_driver" in os.environ.get("TEXTUAL_DRIVER", ""):
        return None
    if not sys.stdout.isatty():
        return "standard output is not one (a pipe or a file)"
    if not sys.stdin.isatty():
        return "standard input is not one"
    return None


def backends_epilog() -> str:
    """Every backend and whether it can run here, one line each (for `loom run --help`)."""
    try:
        rows = control().backends(check=True)
    except Exception as exc:  # noqa: BLE001 - help must print whatever the machine looks like
        return f"Backends: could not check this machine ({exc})."
    lines = ["Backends on this machine:"]
    for row in rows:
        if row.get("name") == "auto":
            continue
        state = "usable" if row.get("usable") else f"not usable: {row.get('why') or 'unavailable'}"
        lines.append(f"  {row['name']:<12} {state}")
    return "\b\n" + "\n".join(lines)  # \b: click keeps the lines as they are
