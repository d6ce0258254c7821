"""Shell completion: typer's own (``loom --install-completion`` / ``--show-completion``; bash, zsh, fish) with
values filled in: project ids, task ids, agent names, config keys and the fixed words some arguments take.

Every Tab runs ``loom`` once, so a completion must be quick: command names and their help come from the
command table (:mod:`.table`), only the command being completed is built, and nothing here imports the
engine, the ORM or the settings model on a Tab. Project ids come from the catalog file, task ids from the
project's store and history index (plain sqlite3, through the facade's ``task_refs``); config keys and agent
names from the facade's ``completion_words`` (kept under the cache dir: only the first Tab after loom's
settings or bundles changed loads them); policies, sizes and answers are written out below
(tests/cli/test_command_table.py ties each list to its source).
A completion that fails offers nothing rather than printing an error into the shell.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer._click.shell_completion import CompletionItem

# written out (computing them imports the kernel and the code bundle); tests tie them to their sources
POLICIES = ("human", "on-blockers", "auto", "full-supervised", "review-plan-only", "review-final-only",
            "gates-on-blockers", "full-autonomous", "demo-gates")
COMPLEXITIES = ("trivial", "simple", "medium", "complex", "question")
DECISIONS = ("accept", "reject", "abandon", "auto-apply")
RECOVERIES = ("retry", "retry-failed", "cancel-pending", "force-close", "abandon")

Completer = Callable[[Any, Any, str], list[CompletionItem]]


def _words(words: tuple[str, ...]) -> Completer:
    def complete(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
        return [CompletionItem(w) for w in words if w.startswith(incomplete)]
    return complete


def config_keys(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """Every settable key, ``models.<agent>`` spelled out for each agent."""
    from loom_core.surfaces.cli.common import control

    return [CompletionItem(k) for k in control().completion_words()["config_keys"] if k.startswith(incomplete)]


def agents(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """The code bundle's agents (``loom models set AGENT``)."""
    from loom_core.surfaces.cli.common import control

    return [CompletionItem(a) for a in control().completion_words()["agents"] if a.startswith(incomplete)]


def backends(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    from loom_core.control import backend_names  # the registry's names: no backend is imported

    return [CompletionItem(b) for b in backend_names() if b.startswith(incomplete)]


def project_ids(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """The catalog's project ids (the console's projects), each with its name and folder as help."""
    from loom_core.control.catalog import Catalog

    return [CompletionItem(p.id, help=f"{p.name} ({p.dir})") for p in Catalog.load().projects
            if p.id.startswith(incomplete)]


def task_refs(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """The project's task ids (``-C`` if already typed, else the current directory): the live task first,
    then the archived ones, newest first."""
    from loom_core.surfaces.cli.common import control

    project = ctx.params.get("project") if ctx is not None else None
    proj = Path(project) if project else Path.cwd()
    return [CompletionItem(t["ref"], help=t["label"]) for t in control().task_refs(proj)
            if t["ref"].startswith(incomplete)]


# completions by (command path…, parameter name), then by parameter name in every command
BY_COMMAND: dict[tuple[str, ...], Completer] = {
    ("replay", "task_id"): task_refs, ("verify", "task"): task_refs,
    ("answer", "decision"): _words(DECISIONS), ("recover", "choice"): _words(RECOVERIES),
    ("config", "get", "key"): config_keys, ("config", "set", "key"): config_keys,
    ("models", "set", "agent"): agents, ("projects", "remove", "ref"): project_ids,
}
BY_PARAM: dict[str, Completer] = {"policy": _words(POLICIES), "complexity": _words(COMPLEXITIES),
                                  "backend": backends}


def _quiet(fn: Completer) -> Completer:
    def complete(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
        try:
            return fn(ctx, param, incomplete)
        except Exception:  # noqa: BLE001 - a broken catalog or store offers nothing; the shell must not see a traceback
            return []
    complete.__wrapped__ = fn  # type: ignore[attr-defined]
    return complete


def attach(cmd: Any, path: tuple[str, ...]) -> int:
    """Give the parameters of ``cmd`` (named ``path``) and its sub-commands their completions; returns how many."""
    done = 0
    for param in getattr(cmd, "params", ()):
        fn = BY_COMMAND.get((*path, param.name)) or BY_PARAM.get(param.name or "")
        if fn is not None and getattr(param, "_custom_shell_complete", None) is None:
            param._custom_shell_complete = _quiet(fn)
            done += 1
    for name, sub in getattr(cmd, "commands", {}).items():
        done += attach(sub, (*path, name))
    return done


def prepare() -> None:
    """Before typer answers a shell: show help text as written. typer passes zsh's and fish's help through
    rich (~40 ms to import each Tab) to strip markup, which loom's help has none of (and rich would eat a
    bracketed word such as ``[OPTIONS]``)."""
    try:
        import typer._completion_classes as classes
    except ImportError:
        return
    if hasattr(classes, "_sanitize_help_text"):
        classes._sanitize_help_text = lambda text: text
