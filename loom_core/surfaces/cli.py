"""The ``loom`` command line.

Only typer and the standard library are imported at module load, so ``loom --help`` stays
fast; every command imports the engine parts it needs inside its body. Errors from the engine
are printed as one line (``loom: <message>``) with no traceback. Exit codes: 0 ok/accepted,
1 rejected/failed/error, 2 usage error, 3 parked at a gate.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from loom_core import __version__

app = typer.Typer(
    name="loom",
    help="Drive chains of LLM agents through classify → plan → implement → review → validate, "
         "with every step committed to <project>/.loom/state.db.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

ProjectOpt = Annotated[Path, typer.Option("--project", "-C", help="Project directory (default: current directory).",
                                          exists=True, file_okay=False, resolve_path=True)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _project(path: Path | None) -> Path:
    return (path or Path.cwd()).resolve()


def _now() -> str:
    from loom_core.engine.clock import SystemClock

    return SystemClock().now()


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loom {__version__}")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def root(ctx: typer.Context,
         version: Annotated[bool, typer.Option("--version", "-v", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """Bare `loom` opens the console."""
    if ctx.invoked_subcommand is None:
        try:
            from loom_tui.app import run_console  # type: ignore[import-not-found]
        except ImportError:
            typer.echo(ctx.get_help())
            return
        run_console()


@app.command()
def console() -> None:
    """Open the full-screen console over every project in the catalog (same as bare `loom`)."""
    from loom_tui.app import run_console

    run_console()


@app.command()
def status(project: ProjectOpt = None, as_json: JsonOpt = False,
           stall_minutes: Annotated[float | None, typer.Option(help="Minutes without progress that count as "
                                                               "stalled (default 50, env LOOM_STALL_MINUTES).")]
           = None) -> None:
    """Show the project's task: status, phase, flow, pending gate, spawns, tokens, cost, elapsed."""
    from loom_core.control.status import project_status

    if stall_minutes is not None and not 0 < stall_minutes < 1e6:
        from loom_core.errors import ConfigError

        raise ConfigError(f"--stall-minutes must be more than 0, got {stall_minutes:g}", code="USAGE")
    st = project_status(_project(project), _now(), stall_after_min=stall_minutes, with_sandbox=True)
    if as_json:
        _echo_json(st)
        return
    if not st["task_id"]:
        typer.echo(f"LOST: {st['lost']}" if st.get("lost") else f"no active task in {st['project']}")
        return
    lines = [f"project: {st['name']}  ({st['project']})",
             f"task:    {st['task_id']} — {st['task_short'] or st['task']}"]
    if st["state"] != "in_progress":
        lines.append(f"status:  {st['state']} (verdict {st['verdict']}, work {st['work_result']})")
        lines.append("next:    start another task, or 'loom reset' to archive this one")
    else:
        shown = "stopped — not driven" if st["status"] == "stopped" else st["status"]
        lines.append(f"status:  {shown}   flow: {st['flow']} @ step {st['step']}   phase: {st['phase'] or '-'}")
        if st["gate"]:
            lines.append(f"paused:  awaiting your answer at gate '{st['gate']}' (loom answer accept|reject)")
        elif st["pending"]:
            for p in st["pending"]:
                if st["status"] == "stopped":
                    lines.append(f"interrupted: {p['agent']} ({p['phase']}) started {int(p['age_s'])}s ago, "
                                 "never delivered")
                else:
                    lines.append(f"pending: {p['agent']} ({p['phase']}) for {int(p['age_s'])}s")
        if st["status"] == "stopped":
            lines.append(f"next:    {st['resume']}   (no loom process is driving this task)")
        if st["stalled"]:
            lines.append(f"STALLED: {st['stalled']}")
        if st.get("sandbox"):
            lines.append(f"sandbox: {_size(st['sandbox_bytes'])} at {st['sandbox']}")
    t = st["tokens"]
    cost = f"${st['cost_usd']:.4f}" if st["cost_usd"] is not None else "n/a"
    failed = f" (+{st['failed_attempts']} failed attempt(s))" if st.get("failed_attempts") else ""
    lines.append(f"spawns:  {st['spawns']}{failed}   tokens: {t['in']} in / {t['out']} out / {t['cached']} cached   "
                 f"turns: {st.get('turns', 0)}   cost: {cost}   elapsed: {st['elapsed']}")
    typer.echo("\n".join(lines))


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


@app.command()
def gc(dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed, remove nothing.")]
       = False, as_json: JsonOpt = False) -> None:
    """Remove orphan sandboxes: their project is gone or has no task in progress (a finished, accepted
    task whose branch is not there yet keeps its sandbox), and leftovers of interrupted provisioning."""
    from loom_core.control.status import project_status
    from loom_core.workspace import gc as sandbox_gc

    now = _now()

    def keep(project: Path) -> bool:
        try:
            st = project_status(project, now)
        except Exception:  # an unreadable store: keep the work rather than guess
            return True
        if st.get("state") == "in_progress" or st.get("status") == "lost":
            return True
        if st.get("state") and st.get("verdict") == "accepted" and st.get("task_id"):
            import pygit2

            try:
                return pygit2.Repository(str(project)).references.get(f"refs/heads/loom/{st['task_id']}") is None
            except pygit2.GitError:
                return True
        return False

    removed = sandbox_gc(keep=keep, dry_run=dry_run)
    total = sum(b for _, b in removed)
    if as_json:
        _echo_json({"dry_run": dry_run, "removed": [{"path": str(p), "bytes": b} for p, b in removed],
                    "bytes": total})
        return
    verb = "would remove" if dry_run else "removed"
    for path, size in removed:
        typer.echo(f"{verb} {path} ({_size(size)})")
    typer.echo(f"{verb} {len(removed)} sandbox(es), {_size(total)}" if removed else "no orphan sandboxes")


@app.command()
def history(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List archived tasks of the project."""
    from loom_core.store.archive import history as read_history

    proj = _project(project)
    rows = read_history(proj)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        typer.echo(f"no archived tasks in {proj}")
        return
    for r in rows:
        if "raw" in r:
            typer.echo(r["raw"])
            continue
        label = str(r.get("task_short") or r.get("task") or "")[:72]
        typer.echo(f"{r.get('archived_at')}  {r.get('ref') or r.get('task_id')}  [{r.get('status')}/{r.get('verdict')}]"
                   f"  {label}")


@app.command()
def reset(project: ProjectOpt = None,
          force: Annotated[bool, typer.Option("--force", help="Archive even a task still in progress.")] = False,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would happen, change nothing.")]
          = False) -> None:
    """Archive the project's task into .loom/history and clear the slot."""
    from loom_core.control.status import project_status
    from loom_core.store.archive import archive

    proj = _project(project)
    now = _now()
    st = project_status(proj, now)
    if not st["task_id"]:
        typer.echo(f"no active task in {proj}; nothing to reset")
        return
    active = st["state"] == "in_progress"
    if dry_run:
        if active and not force:
            typer.echo(f"would refuse: task {st['task_id']} is in progress (add --force to discard it)")
        else:
            typer.echo(f"would archive {st['task_id']} to .loom/history/{st['task_id']}.db and clear the slot")
        return
    dest = archive(proj, reason="force-reset" if force else "reset", now=now, force=force)
    typer.echo(f"archived {st['task_id']} → {dest}")
    from loom_core.workspace import Workspace
    from loom_core.workspace.sandbox import remove_sandbox

    sandbox = Workspace.sandbox_path(proj)
    if os.path.lexists(sandbox):
        remove_sandbox(sandbox)  # renamed aside first: a kill never leaves a half-deleted sandbox in place
        typer.echo(f"removed the task's sandbox copy {sandbox}")
    typer.echo("slot cleared; the next 'loom run' starts a fresh task")


@app.command()
def verify(project: ProjectOpt = None,
           task: Annotated[str | None, typer.Option("--task", help="An archived task id (default: the live store).")]
           = None) -> None:
    """Check the tamper-evident audit chain of the live store or an archived task: the chain, its anchors,
    the state tables against the last tick, the history index entry, and the audit head on loom/<task>."""
    from loom_core.engine.verify import verify as verify_store
    from loom_core.store.locate import task_store

    proj = _project(project)
    path = task_store(proj, task)
    report = verify_store(proj, path)
    typer.echo(report.line(str(path.relative_to(proj)) if path.is_relative_to(proj) else str(path)))
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def replay(task_id: Annotated[str, typer.Argument(help="Task id (archived, or the live task).")],
           project: ProjectOpt = None,
           invariants: Annotated[str | None, typer.Option(
               "--invariants", help="module:attr naming an Invariant or a list of them to add to the rules.")] = None,
           as_json: JsonOpt = False) -> None:
    """Re-run a recorded task through the kernel; report whether it is identical, or where
    a changed rule set would have stopped it."""
    from loom_core.bundles import load_ref
    from loom_core.engine.replay import replay as do_replay
    from loom_core.errors import ConfigError
    from loom_core.kernel.types import Invariant
    from loom_core.store.locate import task_store

    proj = _project(project)
    extra: list[Invariant] = []
    if invariants:
        sys.path.insert(0, str(Path.cwd()))
        try:
            obj = load_ref(invariants)
        except ConfigError as exc:
            raise ConfigError(f"--invariants: {exc}", code="USAGE") from None
        except Exception as exc:  # the user's module failed while importing
            raise ConfigError(f"--invariants: importing {invariants.partition(':')[0]} failed: "
                              f"{type(exc).__name__}: {exc}", code="USAGE") from None
        items = obj if isinstance(obj, (list, tuple)) else [obj]
        for it in items:
            if not isinstance(it, Invariant):
                raise ConfigError(f"--invariants: {invariants} must be an Invariant or a list of Invariants",
                                  code="USAGE")
            extra.append(it)
    path = task_store(proj, task_id)
    report = do_replay(path, extra_invariants=extra)
    if as_json:
        _echo_json({"ticks": report.ticks, "replayed": report.replayed, "identical": report.identical,
                    "divergence": report.divergence, "stopped": report.stopped})
    else:
        for line in report.lines():
            typer.echo(line)
    if report.stopped:
        raise typer.Exit(1)
    raise typer.Exit(0 if report.identical else 1)


@app.command()
def recover(choice: Annotated[str, typer.Argument(help="retry | retry-failed | cancel-pending | force-close | abandon")],
            project: ProjectOpt = None) -> None:
    """Recover a wedged or failed task: re-run failed spawns, drop them, or end the task."""
    from loom_core.engine.engine import Engine
    from loom_core.errors import ConfigError

    if choice not in ("retry", "retry-failed", "cancel-pending", "force-close", "abandon"):
        raise ConfigError(f"expected retry, retry-failed, cancel-pending, force-close or abandon, got '{choice}'",
                          code="USAGE")
    engine = Engine(_project(project), create=False)
    try:
        resp = engine.recover(choice)
    finally:
        engine.close()
    d = resp.wire["directive"]
    if d["kind"] == "complete":
        typer.echo(f"task ended — {d['verdict']}: {d['summary']}")
    else:
        typer.echo(f"recovered ({choice}); next: {d['kind']} — continue with 'loom proceed'")


def _run_options(backend: str, policy: str | None, complexity: str | None, fast: bool, replace: bool,
                 max_spawns: int | None, bundle: str = "code"):
    from loom_core.engine.runner import RunOptions

    opts = RunOptions(bundle=bundle, backend=backend, policy=policy, complexity=complexity, fast=fast,
                      replace=replace, max_spawns=max_spawns)
    opts.validate()
    return opts


def _confirm_in_place(proj: Path, *, interactive: bool) -> bool:
    """On a terminal, a non-git directory with no task yet asks before agents edit it in place."""
    if not interactive or not proj.is_dir():
        return False
    from loom_core.engine.runner import in_place_warning
    from loom_core.store import db as dbmod
    from loom_core.workspace import discover

    if discover(proj) is not None or dbmod.state_path(proj).exists():
        return False
    return typer.confirm(f"{in_place_warning(proj)}. Run there anyway?", default=False)


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


def _require_task(proj: Path) -> None:
    """``proceed`` / ``answer`` with no task say so first, before options or backends are looked at."""
    from loom_core.control.status import project_status
    from loom_core.errors import NoActiveTask

    st = project_status(proj, _now())
    if not st.get("task_id"):
        raise NoActiveTask(st.get("lost") or f"no active task in {proj} (start one with 'loom run')")


def _drive_plain(project: Path, runner_call, *, interactive: bool, as_json: bool):
    """Run, and at a human gate on a terminal ask accept / reject / view diff, then go on."""
    from rich.console import Console

    from loom_core.engine.drive import UsageTotal
    from loom_core.engine.runner import TaskRunner
    from loom_core.surfaces import plain

    # piped or logged output is never hard-wrapped (lines stay greppable)
    console = Console(stderr=as_json, highlight=False, soft_wrap=not plain.is_tty())
    sink = plain.PlainSink(console)
    runner, result = runner_call(sink)
    total = UsageTotal()
    total.merge(result.outcome.usage)
    while result.outcome.kind == "paused" and interactive:
        decision, note = plain.ask_gate(console, project, result.outcome)
        runner.answer(decision, note)
        result = TaskRunner(project, runner.opts, sink=sink).proceed()
        total.merge(result.outcome.usage)
    result.outcome.usage = total  # the drive total covers every drive this command made, gates between
    if as_json:
        typer.echo(plain.outcome_json(result))
    else:
        plain.print_outcome(console, result, project)
    raise typer.Exit(result.exit_code)


BackendOpt = Annotated[str, typer.Option("--backend", "-b", help="Model backend: demo (offline, scripted) or "
                                                                  "auto.")]
PolicyOpt = Annotated[str | None, typer.Option("--policy", "-p", help="Gate policy for every gate: human, "
                                               "on-blockers (default) or auto; or a preset (full-supervised, "
                                               "review-plan-only, review-final-only, full-autonomous).")]
ComplexityOpt = Annotated[str | None, typer.Option("--complexity", "-c", help="Pin the flow: trivial, simple, "
                                                   "medium, complex or question (skips the classifier).")]
FastOpt = Annotated[bool, typer.Option("--fast", help="The single-pass fast lane (= --complexity trivial).")]
MaxSpawnsOpt = Annotated[int | None, typer.Option("--max-spawns", help="Cap on agent runs in this drive (default "
                                                  "40, env LOOM_MAX_SPAWNS; 0 = off).")]


@app.command()
def run(task: Annotated[list[str], typer.Argument(help="What to do, in plain words.")],
        project: ProjectOpt = None, backend: BackendOpt = "auto", policy: PolicyOpt = None,
        complexity: ComplexityOpt = None, fast: FastOpt = False,
        replace: Annotated[bool, typer.Option("--replace", help="Discard a task still in progress and start this "
                                                                "one.")] = False,
        max_spawns: MaxSpawnsOpt = None,
        bundle: Annotated[str, typer.Option(help="Bundle: code (default) or spec.")] = "code",
        in_place: Annotated[bool, typer.Option("--in-place", help="In a directory that is not a git repository, "
                                               "let agents edit its files directly (no isolation, no diff "
                                               "review, no branch).")] = False,
        as_json: JsonOpt = False) -> None:
    """Drive a task to its end in the terminal. Stops at human gates: on a terminal it asks;
    without one it parks (exit 3) and prints the command to answer."""
    from loom_core.engine.runner import TaskRunner
    from loom_core.surfaces import plain

    proj = _project(project)
    text = _task_text(task)
    opts = _run_options(backend, policy, complexity, fast, replace, max_spawns, bundle)
    opts.in_place = in_place or _confirm_in_place(proj, interactive=plain.is_tty() and not as_json)

    def call(sink):
        r = TaskRunner(proj, opts, sink=sink)
        return r, r.start(text)

    _drive_plain(proj, call, interactive=plain.is_tty() and not as_json, as_json=as_json)


@app.command()
def proceed(project: ProjectOpt = None,
            backend: Annotated[str | None, typer.Option("--backend", "-b", help="Override the backend the task "
                                                        "was started with.")] = None,
            as_json: JsonOpt = False) -> None:
    """Re-drive a parked or interrupted task from where it stopped."""
    from loom_core.engine.runner import TaskRunner, load_exec
    from loom_core.surfaces import plain

    proj = _project(project)
    _require_task(proj)
    opts = load_exec(proj)
    if backend:
        opts.backend = backend
        opts.validate()

    def call(sink):
        r = TaskRunner(proj, opts, sink=sink)
        return r, r.proceed()

    _drive_plain(proj, call, interactive=plain.is_tty() and not as_json, as_json=as_json)


@app.command()
def answer(decision: Annotated[str, typer.Argument(help="accept | reject | abandon | auto-apply")],
           project: ProjectOpt = None,
           note: Annotated[str | None, typer.Option("--note", "-m", help="What to change (required to reject).")]
           = None) -> None:
    """Answer the gate the project's task is parked at (then run 'loom proceed')."""
    from loom_core.engine.runner import TaskRunner, load_exec

    proj = _project(project)
    _require_task(proj)
    res = TaskRunner(proj, load_exec(proj)).answer(decision, note)
    if res["next"] == "complete":
        typer.echo(f"answered gate '{res['gate']}': {decision}; the task ended ({res['verdict']}). "
                   "Run 'loom proceed' to land accepted work on its loom/<task> branch")
    else:
        typer.echo(f"answered gate '{res['gate']}': {decision}; continue with 'loom proceed'")


@app.command()
def demo(directory: Annotated[Path | None, typer.Argument(help="Where to create the demo project (default: "
                                                          "./loom-demo).", file_okay=False, resolve_path=True)]
         = None,
         plain_mode: Annotated[bool, typer.Option("--plain", help="Stay in the terminal (no console).")] = False,
         policy: PolicyOpt = None, as_json: JsonOpt = False) -> None:
    """Make a small Python git repository with a real test suite and drive a real task on it
    with the offline demo backend: no key, no network."""
    from loom_core.engine.runner import RunOptions, TaskRunner, demo_task
    from loom_core.surfaces import plain
    from loom_core.workspace.demo_project import create_demo_project

    target = directory or (Path.cwd() / "loom-demo")
    created = create_demo_project(target)
    # without --policy the demo stops at the plan and final gates, so you see what a gate is
    opts = RunOptions(backend="demo", policy=policy or "demo-gates")
    opts.validate()
    if not plain_mode:
        try:
            from loom_tui.app import run_demo_console  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:
            run_demo_console(target, opts)
            return
    if not as_json:
        typer.echo(f"{'created' if created else 'reusing'} demo project {target}")

    def call(sink):
        r = TaskRunner(target, opts, sink=sink)
        return r, r.start(demo_task())

    _drive_plain(target, call, interactive=plain.is_tty() and not as_json, as_json=as_json)


@app.command()
def init(project: ProjectOpt = None) -> None:
    """Create the project's .loom directory (state, history and transcripts live there)."""
    from loom_core.store.loomdir import ensure_for

    d = ensure_for(_project(project))
    if not (d / ".gitignore").exists():
        (d / ".gitignore").write_text("*\n", encoding="utf-8")
    typer.echo(f"ready — loom state lives in {d}")


projects_app = typer.Typer(help="The project catalog the console shows (add, list, remove).", no_args_is_help=True)
app.add_typer(projects_app, name="projects")


@projects_app.command("add")
def projects_add(path: Annotated[Path | None, typer.Argument(help="Project directory (default: current).")] = None,
                 label: Annotated[str | None, typer.Option("--label", help="Display name (default: the folder "
                                                           "name).")] = None) -> None:
    """Add a project to the catalog (re-adding keeps it and updates the label)."""
    from loom_core.control.catalog import Catalog

    proj = Catalog.load().add(path or Path.cwd(), label=label, now=_now())
    typer.echo(f"added {proj.id}  {proj.dir}" + (f"  ({proj.label})" if proj.label else ""))


@projects_app.command("list")
def projects_list(as_json: JsonOpt = False) -> None:
    """List catalog projects with their task status."""
    from loom_core.control.catalog import Catalog
    from loom_core.control.status import project_status
    from loom_core.errors import LoomError

    cat = Catalog.load()
    now = _now()
    rows = []
    for p in cat.projects:
        try:
            st = project_status(p.dir, now)
        except LoomError as exc:
            st = {"status": "unavailable", "error": str(exc)}
        rows.append({"id": p.id, "dir": p.dir, "name": p.name, "label": p.label, **{
            k: st.get(k) for k in ("status", "task_id", "state", "verdict", "flow", "step", "gate", "error")}})
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        typer.echo("no projects in the catalog (add one with 'loom projects add [path]')")
        return
    for r in rows:
        label = f"  ({r['label']})" if r["label"] else ""
        typer.echo(f"{r['id']}  {r['dir']}{label}")
        if r.get("error"):
            typer.echo(f"    status: unavailable ({r['error']})")
        elif not r.get("task_id"):
            typer.echo("    status: LOST (see loom status)" if r["status"] == "lost" else "    status: no active task")
        else:
            extra = f"  parked@{r['gate']}" if r.get("gate") else ""
            typer.echo(f"    task: {r['task_id']}  {r['state']}/{r['verdict']}  flow {r['flow']}#{r['step']}{extra}"
                       + {"stalled": "  STALLED", "stopped": "  STOPPED (not driven: loom proceed)"}.get(r["status"], ""))


@projects_app.command("remove")
def projects_remove(ref: Annotated[str, typer.Argument(help="Project id or path.")]) -> None:
    """Remove a project from the catalog (nothing on disk is touched)."""
    from loom_core.control.catalog import Catalog

    proj = Catalog.load().remove(ref)
    if proj is None:
        typer.echo(f"no catalog entry for '{ref}'")
        return
    typer.echo(f"removed {proj.id}")


config_app = typer.Typer(help="Settings (TOML in the loom home; LOOM_… environment variables override).",
                         no_args_is_help=True)
secrets_app = typer.Typer(help="Secrets: stored in the system keyring when usable, else a 0600 file; never "
                               "printed.", no_args_is_help=True)
models_app = typer.Typer(help="Which model each agent runs on.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(secrets_app, name="secrets")
app.add_typer(models_app, name="models")


@config_app.command("get")
def config_get(key: Annotated[str | None, typer.Argument(help="Dotted key, e.g. general.max_spawns.")] = None,
               as_json: JsonOpt = False) -> None:
    """Show all settings, or one key's effective value."""
    from loom_core.config import settings as cfg

    if key is None:
        data = cfg.load_settings().model_dump(mode="json")
        if as_json:
            _echo_json(data)
        else:
            typer.echo(cfg.to_toml(data).rstrip())
        return
    value = cfg.get_key(key)
    typer.echo(json.dumps(value) if as_json else f"{key} = {value if value is not None else '(unset)'}")


@config_app.command("set")
def config_set(key: Annotated[str, typer.Argument(help="Dotted key (see 'loom config keys').")],
               value: Annotated[list[str], typer.Argument(help="New value (empty string resets to default).")]
               ) -> None:
    """Set one key in the config file (validated before anything is written)."""
    from loom_core.config import settings as cfg

    raw = " ".join(value)
    cfg.set_key(key, raw)
    typer.echo(f"set {key} = {cfg.get_key(key)}")


@config_app.command("keys")
def config_keys() -> None:
    """List the settable keys."""
    from loom_core.config.settings import valid_keys

    for k in valid_keys():
        typer.echo(k)


@secrets_app.command("set")
def secrets_set(name: Annotated[str, typer.Argument(help="Secret name, e.g. anthropic.")],
                value: Annotated[str | None, typer.Argument(help="The value (omit to be prompted without echo).")]
                = None) -> None:
    """Store a secret; reference it from settings as secret:<name>."""
    from loom_core.config.secrets import SecretStore, mask

    if value is None:
        value = typer.prompt(f"value for '{name}'", hide_input=True)
    store = SecretStore()
    store.set(name, value)
    typer.echo(f"stored secret '{name}' ({mask(value)}) in {store.describe()}; use it as secret:{name}")


@secrets_app.command("list")
def secrets_list() -> None:
    """Names of stored secrets with masked values."""
    from loom_core.config.secrets import SecretStore, mask

    store = SecretStore()
    names = sorted(store.names())
    if not names:
        typer.echo(f"no secrets stored ({store.describe()})")
        return
    for n in names:
        typer.echo(f"{n}  {mask(store.get(n) or '')}")


@secrets_app.command("unset")
def secrets_unset(name: Annotated[str, typer.Argument(help="Secret name.")]) -> None:
    """Delete a stored secret."""
    from loom_core.config.secrets import SecretStore

    removed = SecretStore().unset(name)
    typer.echo(f"removed secret '{name}'" if removed else f"no secret named '{name}'")


def _agent_models(bundle_name: str = "code"):
    from loom_core.bundles import load_bundle
    from loom_core.config.settings import load_settings

    bundle = load_bundle(bundle_name)
    s = load_settings()
    rows = []
    for name, agent in bundle.agents.items():
        if name in s.models:
            ref, source = s.models[name], "override"
        else:
            ref, source = agent.default_model, "bundle-default"
        model = bundle.default_model_tiers.get(ref, ref)
        rows.append({"agent": name, "ref": ref, "model": model, "source": source,
                     "fallbacks": s.fallbacks.get(name, [])})
    return rows


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Each agent's effective model and where it came from."""
    rows = _agent_models()
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        fb = f"  fallbacks: {', '.join(r['fallbacks'])}" if r["fallbacks"] else ""
        typer.echo(f"{r['agent']} = {r['ref']} → {r['model']}  [{r['source']}]{fb}")


@models_app.command("set")
def models_set(agent: Annotated[str, typer.Argument(help="Agent name (see 'loom models list').")],
               ref: Annotated[str, typer.Argument(help="provider:model, a tier (fast, balanced, premium), or '' "
                                                        "to reset.")]) -> None:
    """Pin an agent to a model."""
    from loom_core.bundles import load_bundle
    from loom_core.config import settings as cfg
    from loom_core.errors import ConfigError

    roster = load_bundle("code").agents
    if agent not in roster:
        raise ConfigError(f"unknown agent '{agent}'; agents: {', '.join(sorted(roster))}", code="USAGE")
    cfg.set_key(f"models.{agent}", ref)
    typer.echo(f"set code/{agent} → {ref or '(bundle default)'}")


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
    bad = _not_utf8(sys.argv[1:] if argv is None else argv)
    if bad:
        typer.echo(f"loom: {bad}", err=True)
        sys.exit(2)
    from typer import _click as click  # typer bundles its own click
    from typer.exceptions import Abort

    try:
        rv = app(args=argv, prog_name="loom", standalone_mode=False)
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
        typer.echo(f"loom: {exc}", err=True)
        sys.exit(2 if exc.code == "USAGE" else 1)
    except KeyboardInterrupt:
        typer.echo("loom: interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        if os.environ.get("LOOM_DEBUG"):
            raise
        typer.echo(f"loom: {exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}", err=True)
        sys.exit(1)
    except RecursionError:
        if os.environ.get("LOOM_DEBUG"):
            raise
        typer.echo("loom: a directory tree or document is nested too deeply to process; nothing further was "
                   "done", err=True)
        sys.exit(1)
    except Exception as exc:  # a bug: still one line; LOOM_DEBUG=1 shows the traceback
        if os.environ.get("LOOM_DEBUG"):
            raise
        text = " ".join(str(exc).split())[:300]
        typer.echo(f"loom: internal error: {type(exc).__name__}: {text} (run with LOOM_DEBUG=1 for the traceback)",
                   err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
