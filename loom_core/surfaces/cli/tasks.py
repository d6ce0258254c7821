"""Commands that change a project's task: run, proceed, answer, recover, reset, demo, init.

Each goes through the facade (:class:`~loom_core.control.local.LocalControl`); the verbs that drive
print through plain mode (:mod:`loom_core.surfaces.plain`) and ask at a human gate on a terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loom_core.surfaces.cli.common import (
    BackendOpt,
    ComplexityOpt,
    DockerOpt,
    FastOpt,
    JsonOpt,
    MaxCostOpt,
    MaxSpawnsOpt,
    MaxTokensOpt,
    NoDockerOpt,
    PolicyOpt,
    ProjectOpt,
    control,
    docker_choice,
    not_a_terminal,
    project_dir,
    with_budget,
)

if TYPE_CHECKING:
    from loom_core.control import LocalControl, RunOptions, RunResult


def _run_options(backend: str, policy: str | None, complexity: str | None, fast: bool, replace: bool,
                 max_spawns: int | None, bundle: str = "code", *, push: bool = False,
                 squash_merge: bool = False) -> RunOptions:
    from loom_core.control import RunOptions

    opts = RunOptions(bundle=bundle, backend=backend, policy=policy, complexity=complexity, fast=fast,
                      replace=replace, max_spawns=max_spawns, push=push, squash_merge=squash_merge)
    opts.validate()
    return opts


def _confirm_in_place(proj: Path, *, interactive: bool) -> bool:
    """On a terminal, a non-git directory with no task yet asks before agents edit it in place."""
    if not interactive or not proj.is_dir():
        return False
    question = control().in_place_question(proj)
    return question is not None and typer.confirm(f"{question}. Run there anyway?", default=False)


def _task_text(words: list[str]) -> str:
    """The task text from argv. Bytes that are not UTF-8 (argv decodes them as surrogates) are refused
    here, before a task exists: the store, the task id and the commit message all need real text."""
    text = " ".join(words)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        from loom_core.errors import ConfigError

        bad = text[exc.start].encode("utf-8", "surrogateescape")
        raise ConfigError(f"the task text is not valid UTF-8 (byte 0x{bad.hex()} at character {exc.start}); "
                          "write it in UTF-8 or set a UTF-8 locale", code="USAGE") from None
    return text


def _require_task(proj: Path) -> dict[str, Any]:
    """``proceed`` / ``answer`` / ``recover`` / ``reset`` with no task say so first, before options, backends
    or the lock are looked at (a store that cannot be read is refused here, and nothing is created)."""
    from loom_core.errors import NoActiveTask

    st = control().status(proj)
    if not st.get("task_id"):
        raise NoActiveTask(st.get("lost") or f"no active task in {proj} (start one with 'loom run')")
    return st


def drive_plain(project: Path, drive: Callable[[LocalControl], RunResult], *, interactive: bool, as_json: bool,
                opts: RunOptions | None = None) -> None:
    """Drive (``drive(control)``), and at a human gate on a terminal ask accept / reject / view diff, answer
    through the facade and go on with ``opts`` (None: the options the task was started with)."""
    from rich.console import Console

    from loom_core.control import UsageTotal
    from loom_core.surfaces import plain

    # piped or logged output is never hard-wrapped (lines stay greppable)
    console = Console(stderr=as_json, highlight=False, soft_wrap=not plain.is_tty())
    sink = plain.PlainSink(console)
    loom = control(sink_for=lambda _pid: sink)
    try:
        result = drive(loom)
    finally:
        sink.idle()  # the live line goes before anything else is printed or asked
    total = UsageTotal()
    total.merge(result.outcome.usage)
    while result.outcome.kind == "paused" and interactive:
        decision, note = plain.ask_gate(console, project, result.outcome)
        loom.answer(project, decision, note, gate_event_id=result.outcome.gate_event_id)
        try:
            result = loom.proceed(project, opts)
        finally:
            sink.idle()
        total.merge(result.outcome.usage)
    result.outcome.usage = total  # the drive total covers every drive this command made, gates between
    if as_json:
        typer.echo(plain.outcome_json(result))
    else:
        plain.print_outcome(console, result, project)
    _ship_on_accept(loom, project, result, opts, console)
    raise typer.Exit(result.exit_code)


def _ship_on_accept(loom: LocalControl, project: Path, result: RunResult, opts: RunOptions | None, console) -> None:
    """``--push`` / ``--squash-merge``: ship the branch an accepted task just landed on (spec §4.9)."""
    from loom_core.errors import LoomError

    merge, o = result.merge, result.outcome
    if opts is None or o.kind != "complete" or o.verdict != "accepted" or getattr(merge, "status", None) != "merged":
        return
    for wanted, verb, what in ((opts.push, loom.push, "push"), (opts.squash_merge, loom.merge, "squash-merge")):
        if wanted:
            try:
                console.print(f"{what}: {verb(project, merge.branch)}", markup=False)
            except LoomError as exc:
                console.print(f"{what} failed: {exc}", markup=False)


def run(task: Annotated[list[str], typer.Argument(help="What to do, in plain words.")],
        project: ProjectOpt = None, backend: BackendOpt = "auto", policy: PolicyOpt = None,
        complexity: ComplexityOpt = None, fast: FastOpt = False,
        replace: Annotated[bool, typer.Option("--replace", help="Discard a task still in progress and start this "
                                                                "one.")] = False,
        max_spawns: MaxSpawnsOpt = None, max_cost: MaxCostOpt = None, max_tokens: MaxTokensOpt = None,
        bundle: Annotated[str, typer.Option(help="Bundle: code (default) or spec.")] = "code",
        in_place: Annotated[bool, typer.Option("--in-place", help="In a directory that is not a git repository, "
                                               "let agents edit its files directly (no isolation, no diff "
                                               "review, no branch).")] = False,
        push: Annotated[bool, typer.Option("--push", help="Ship on accept: a supervisor (loom daemon, the plane) "
                                           "that finishes the task pushes loom/<task>.")] = False,
        squash_merge: Annotated[bool, typer.Option("--squash-merge", help="Ship on accept: a supervisor that "
                                                   "finishes the task squash-merges loom/<task>.")] = False,
        docker: DockerOpt = False, no_docker: NoDockerOpt = False,
        as_json: JsonOpt = False,
        demo_delay: Annotated[float, typer.Option("--demo-delay", hidden=True, help="Seconds each demo agent "
                                                  "takes (tests).")] = 0.0) -> None:
    """Drive a task to its end in the terminal. Stops at human gates: on a terminal it asks;
    without one it parks (exit 3) and prints the command to answer."""
    from loom_core.surfaces import plain

    proj = project_dir(project)
    text = _task_text(task)
    opts = _run_options(backend, policy, complexity, fast, replace, max_spawns, bundle, push=push,
                        squash_merge=squash_merge)
    opts = with_budget(opts, proj, max_cost, max_tokens)
    opts.docker = docker_choice(docker, no_docker)
    if demo_delay:
        opts.demo_delay_s = demo_delay
        opts.validate()
    opts.in_place = in_place or _confirm_in_place(proj, interactive=plain.is_tty() and not as_json)
    drive_plain(proj, lambda loom: loom.submit(proj, text, opts), interactive=plain.is_tty() and not as_json,
                as_json=as_json, opts=opts)


def proceed(project: ProjectOpt = None,
            backend: Annotated[str | None, typer.Option("--backend", "-b", help="Override the backend the task "
                                                        "was started with.")] = None,
            max_cost: MaxCostOpt = None, max_tokens: MaxTokensOpt = None,
            take_over: Annotated[bool, typer.Option("--take-over", help="Drive here a task Claude Code drives "
                                                    "(started with /task): loom runs its agents from now on.")]
            = False,
            as_json: JsonOpt = False) -> None:
    """Re-drive a parked or interrupted task from where it stopped (a task stopped by its budget goes on
    once --max-cost / --max-tokens raise it)."""
    from loom_core.surfaces import plain

    proj = project_dir(project)
    st = _require_task(proj)
    if st.get("state") == "abandoned":
        from loom_core.errors import LoomError

        raise LoomError(f"task {st['task_id']} was abandoned; there is nothing to continue (start another with "
                        "'loom run', which archives this one)", code="TASK_ABANDONED")
    if take_over and st.get("state") == "in_progress":
        took = control().take_over(proj)
        if took["host"] and not as_json:
            typer.echo(f"took task {took['task_id']} over from {took['host']['label']}: loom drives it now "
                       "(/proceed there hands it back)", err=True)
    opts = None  # the options the task was started with
    if backend:
        opts = control().run_options(proj)
        opts.backend = backend
        opts.validate()
    opts = with_budget(opts, proj, max_cost, max_tokens)
    drive_plain(proj, lambda loom: loom.proceed(proj, opts), interactive=plain.is_tty() and not as_json,
                as_json=as_json, opts=opts)


def answer(decision: Annotated[str, typer.Argument(help="accept | reject | abandon | auto-apply")],
           project: ProjectOpt = None,
           note: Annotated[str | None, typer.Option("--note", "-m", help="What to change (required to reject).")]
           = None) -> None:
    """Answer the gate the project's task is parked at (then run 'loom proceed')."""
    proj = project_dir(project)
    st = _require_task(proj)
    res = control().answer(proj, decision, note)
    from loom_core.surfaces.daemon.status import owner_running, read_status

    daemon = read_status(proj)
    if owner_running(daemon) and not st.get("host"):  # a parked supervisor wakes on the answer and goes on by itself
        typer.echo(f"answered gate '{res['gate']}': {decision}; the daemon (pid {daemon['pid']}) continues the task")
    elif res["next"] == "complete":
        from loom_core.control import words

        word = words.ended(None, res["verdict"])  # what status and history will say
        land = ". Run 'loom proceed' to land the work on its loom/<task> branch" if res["verdict"] == "accepted" else ""
        typer.echo(f"answered gate '{res['gate']}': {decision}; the task ended ({word}){land}")
    elif st.get("host"):
        typer.echo(f"answered gate '{res['gate']}': {decision}; continue in {st['host']['label']} with /proceed "
                   "(or here with 'loom proceed --take-over')")
    else:
        typer.echo(f"answered gate '{res['gate']}': {decision}; continue with 'loom proceed'")


def recover(choice: Annotated[str, typer.Argument(help="retry | retry-failed | cancel-pending | force-close | abandon")],
            project: ProjectOpt = None) -> None:
    """Recover a wedged or failed task: re-run failed spawns, drop them, or end the task."""
    from loom_core.control import RECOVERIES
    from loom_core.errors import ConfigError

    if choice not in RECOVERIES:
        raise ConfigError(f"expected {', '.join(RECOVERIES[:-1])} or abandon, got '{choice}'", code="USAGE")
    proj = project_dir(project)
    st = _require_task(proj)
    from loom_core.control import words

    if st.get("state") not in (None, "in_progress"):
        why = f"task {st['task_id']} already ended ({words.ended(st['state'], st.get('verdict'))})"
        if choice in ("abandon", "force-close"):  # ending an ended task changes nothing, as before
            typer.echo(f"{why}; nothing changed")
            return
        from loom_core.errors import LoomError

        raise LoomError(f"{why}; there is nothing to recover (start another with 'loom run')",
                        code="RECOVERY_TERMINAL")
    d = control().recover(proj, choice)  # under the project lock: refused while another process drives
    if d["next"] == "complete":
        word = "abandoned" if choice == "abandon" else words.ended(None, d["verdict"])
        rest = words.summary(d["summary"])
        typer.echo(f"task ended — {word}{': ' + rest if rest else ''}")
    else:
        typer.echo(f"{choice}: done; {words.next_step(d['next'])} — continue with 'loom proceed'")


def reset(project: ProjectOpt = None,
          force: Annotated[bool, typer.Option("--force", help="Archive even a task still in progress.")] = False,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would happen, change nothing.")]
          = False) -> None:
    """Archive the project's task into .loom/history and clear the slot."""
    proj = project_dir(project)
    loom = control()
    st = loom.status(proj)  # read first: an unreadable store is refused before the lock file is made
    if not st["task_id"]:
        typer.echo(f"no active task in {proj}; nothing to reset")
        return
    if dry_run:
        if st["state"] == "in_progress" and not force:
            typer.echo(f"would refuse: task {st['task_id']} is in progress (add --force to discard it)")
        else:
            typer.echo(f"would archive {st['task_id']} to .loom/history/{st['task_id']}.db and clear the slot")
        return
    done = loom.reset(proj, force=force)
    if not done["task_id"]:
        typer.echo(f"no active task in {proj}; nothing to reset")
        return
    typer.echo(f"archived {done['task_id']} → {done['archive']}")
    if done["sandbox"]:
        typer.echo(f"removed the task's sandbox copy {done['sandbox']}")
    typer.echo("slot cleared; the next 'loom run' starts a fresh task")


def demo(directory: Annotated[Path | None, typer.Argument(help="Where to create the demo project (default: "
                                                          "./loom-demo).", file_okay=False, resolve_path=True)]
         = None,
         plain_mode: Annotated[bool, typer.Option("--plain", help="Stay in the terminal (no console).")] = False,
         policy: PolicyOpt = None, as_json: JsonOpt = False) -> None:
    """Make a small Python git repository with a real test suite and drive a real task on it
    with the offline demo backend: no key, no network."""
    from loom_core.control import RunOptions, create_demo_project, demo_task
    from loom_core.surfaces import plain

    target = directory or (Path.cwd() / "loom-demo")
    created = create_demo_project(target)
    # without --policy the demo stops at the plan and final gates, so you see what a gate is
    opts = RunOptions(backend="demo", policy=policy or "demo-gates")
    opts.validate()
    why = None if plain_mode or as_json else not_a_terminal()
    if why:
        typer.echo(f"loom demo: no console here ({why}); running plain", err=True)
    if not plain_mode and not as_json and not why:
        try:
            from loom_tui.app import run_demo_console  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:
            run_demo_console(target, opts)
            return
    if not as_json:
        typer.echo(f"{'created' if created else 'reusing'} demo project {target}")
    drive_plain(target, lambda loom: loom.submit(target, demo_task(), opts),
                interactive=plain.is_tty() and not as_json, as_json=as_json, opts=opts)


def init(project: ProjectOpt = None,
         dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be done; write nothing.")] = False
         ) -> None:
    """Create the project's .loom directory (state, history and transcripts live there) and allowlist the
    project, so /task inside Claude Code may drive it."""
    from loom_core.surfaces.cli.allowlist import enroll

    where = project_dir(project)
    if dry_run:
        typer.echo(f"would create {where / '.loom'}" if not (where / ".loom").is_dir() else
                   f"loom state lives in {where / '.loom'}")
    else:
        typer.echo(f"loom state lives in {control().init(where)}")
    enroll(where, dry_run=dry_run)
    if not dry_run:
        typer.echo("ready — run /task <what to do> inside Claude Code (once: loom setup)")
