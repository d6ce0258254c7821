"""Commands that read (and gc, which only removes orphan sandboxes): status, gc, history, verify, replay."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loom_core.surfaces.cli.common import JsonOpt, ProjectOpt, control, echo_json, project_dir, size


def status(project: ProjectOpt = None, as_json: JsonOpt = False,
           stall_minutes: Annotated[float | None, typer.Option(help="Minutes without progress that count as "
                                                               "stalled (default 50, env LOOM_STALL_MINUTES).")]
           = None) -> None:
    """Show the project's task: status, phase, flow, pending gate, spawns, tokens, cost, elapsed."""
    if stall_minutes is not None and not 0 < stall_minutes < 1e6:
        from loom_core.errors import ConfigError

        raise ConfigError(f"--stall-minutes must be more than 0, got {stall_minutes:g}", code="USAGE")
    st = control().status(project_dir(project), stall_after_min=stall_minutes, with_sandbox=True)
    if as_json:
        echo_json(st)
        return
    if not st["task_id"]:
        typer.echo(f"LOST: {st['lost']}" if st.get("lost") else f"no active task in {st['project']}")
        return
    lines = [f"project: {st['name']}  ({st['project']})",
             f"task:    {st['task_id']} — {st['task_short'] or st['task']}"]
    if st["state"] != "in_progress":
        from loom_core.control import words

        lines.append(f"status:  ended — {words.ended_line(st['state'], st['verdict'], st['work_result'])}")
        lines.append("next:    start another task, or 'loom reset' to archive this one")
    else:
        shown = {"stopped": "stopped — not driven", "over-budget": "over budget — stopped before a spawn",
                 "host-driven": st.get("driven_by") or "driven elsewhere"}.get(st["status"], st["status"])
        lines.append(f"status:  {shown}   flow: {st['flow']} @ step {st['step']}   phase: {st['phase'] or '-'}")
        if st["gate"]:
            lines.append(f"paused:  awaiting your answer at gate '{st['gate']}' (loom answer accept|reject)")
        elif st["pending"]:
            for p in st["pending"]:
                if st["status"] == "over-budget":
                    lines.append(f"next:    {p['agent']} ({p['phase']}), not started: over budget")
                elif st["status"] == "stopped":
                    lines.append(f"interrupted: {p['agent']} ({p['phase']}) started {int(p['age_s'])}s ago, "
                                 "never delivered")
                else:
                    lines.append(f"pending: {p['agent']} ({p['phase']}) for {int(p['age_s'])}s")
        if st["status"] == "stopped":
            lines.append(f"next:    {st['resume']}   (no loom process is driving this task)")
        if st.get("host"):
            lines.append(f"driven:  from {st['host']['label']}, which runs its agents — continue there with "
                         "/proceed, or here with 'loom proceed --take-over'")
        if st["stalled"]:
            lines.append(f"STALLED: {st['stalled']}")
        if st["status"] == "over-budget":
            lines.append(f"BUDGET_EXCEEDED: {st['stopped']}")
        if st.get("sandbox"):
            lines.append(f"sandbox: {size(st['sandbox_bytes'])} at {st['sandbox']}")
    t = st["tokens"]
    cost = f"${st['cost_usd']:.4f}" if st["cost_usd"] is not None else "n/a"
    failed = f" (+{st['failed_attempts']} failed attempt(s))" if st.get("failed_attempts") else ""
    lines.append(f"spawns:  {st['spawns']}{failed}   tokens: {t['in']} in / {t['out']} out / {t['cached']} cached   "
                 f"turns: {st.get('turns', 0)}   cost: {cost}   elapsed: {st['elapsed']}")
    if st.get("budget"):
        lines.append(f"budget:  {st['budget']['text']} spent")
    typer.echo("\n".join(lines))


def gc(dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed, remove nothing.")]
       = False, as_json: JsonOpt = False) -> None:
    """Remove orphan sandboxes: their project is gone or has no task in progress (a finished, accepted
    task whose branch is not there yet keeps its sandbox), and leftovers of interrupted provisioning."""
    removed = control().gc(dry_run=dry_run)
    total = sum(b for _, b in removed)
    if as_json:
        echo_json({"dry_run": dry_run, "removed": [{"path": str(p), "bytes": b} for p, b in removed],
                   "bytes": total})
        return
    verb = "would remove" if dry_run else "removed"
    for path, n in removed:
        typer.echo(f"{verb} {path} ({size(n)})")
    typer.echo(f"{verb} {len(removed)} sandbox(es), {size(total)}" if removed else "no orphan sandboxes")


def history(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List archived tasks of the project."""
    proj = project_dir(project)
    rows = control().history_index(proj)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo(f"no archived tasks in {proj}")
        return
    from loom_core.control import words

    for r in rows:
        if "raw" in r:
            typer.echo(r["raw"])
            continue
        label = str(r.get("task_short") or r.get("task") or "")[:72]
        typer.echo(f"{r.get('archived_at')}  {r.get('ref') or r.get('task_id')}  "
                   f"{words.ended(r.get('status'), r.get('verdict')):<12}  {label}")


def verify(project: ProjectOpt = None,
           task: Annotated[str | None, typer.Option("--task", help="An archived task id (default: the live store).")]
           = None) -> None:
    """Check the tamper-evident audit chain of the live store or an archived task: the chain, its anchors,
    the state tables against the last tick, the history index entry, and the audit head on loom/<task>."""
    proj = project_dir(project)
    loom = control()
    report = loom.verify(proj, task)
    path = loom.store_of(proj, task) or proj
    typer.echo(report.line(str(path.relative_to(proj)) if path.is_relative_to(proj) else str(path)))
    raise typer.Exit(0 if report.ok else 1)


def replay(task_id: Annotated[str, typer.Argument(help="Task id (archived, or the live task).")],
           project: ProjectOpt = None,
           invariants: Annotated[str | None, typer.Option(
               "--invariants", help="module:attr naming an Invariant or a list of them to add to the rules.")] = None,
           as_json: JsonOpt = False) -> None:
    """Re-run a recorded task through the kernel; report whether it is identical, or where
    a changed rule set would have stopped it."""
    from loom_core.control import load_invariants

    proj = project_dir(project)
    extra = load_invariants(invariants, Path.cwd()) if invariants else []
    report = control().replay(proj, task_id, extra_invariants=extra)
    if as_json:
        echo_json({"ticks": report.ticks, "replayed": report.replayed, "identical": report.identical,
                   "divergence": report.divergence, "stopped": report.stopped})
    else:
        for line in report.lines():
            typer.echo(line)
    if report.stopped:
        raise typer.Exit(1)
    raise typer.Exit(0 if report.identical else 1)
