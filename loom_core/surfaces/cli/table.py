"""Every top-level ``loom`` command: where it lives and its one-line help.

The root group (:mod:`.lazy`) lists commands, prints the top-level help and completes command names from
this table alone, and imports a command's module only when that command runs (or its help is asked for).
tests/cli/test_command_table.py ties each line to the real command, so a changed docstring or a new
command fails there until this table says the same. Pure data: nothing is imported.
"""

from __future__ import annotations

CLI = "loom_core.surfaces.cli"


class Entry:
    """One command: ``target`` is ``module:attribute`` of a command function (``group`` False) or of a
    typer sub-app (``group`` True); ``help`` is the first sentence of its help, as click shortens it;
    ``cls`` is ``module:attribute`` of a click command class other than typer's."""

    __slots__ = ("name", "target", "help", "group", "hidden", "cls")

    def __init__(self, name: str, target: str, help: str, *, group: bool = False, hidden: bool = False,  # noqa: A002
                 cls: str | None = None) -> None:
        self.name, self.target, self.help = name, target, help
        self.group, self.hidden, self.cls = group, hidden, cls


def _cmd(name: str, module: str, help: str, **kw: object) -> Entry:  # noqa: A002
    return Entry(name, f"{CLI}.{module}:{name}", help, **kw)  # type: ignore[arg-type]


def _app(name: str, module: str, attr: str, help: str, **kw: object) -> Entry:  # noqa: A002
    return Entry(name, f"{CLI}.{module}:{attr}", help, group=True, **kw)  # type: ignore[arg-type]


# in the order `loom --help` lists them (commands first, then groups, as typer orders them)
COMMANDS: tuple[Entry, ...] = (
    _cmd("console", "app", "Open the full-screen console over every project in the catalog (same as bare `loom`)."),
    _cmd("status", "reads", "Show the project's task: status, phase, flow, pending gate, spawns, tokens, cost, "
                            "elapsed."),
    _cmd("gc", "reads", "Remove orphan sandboxes: their project is gone or has no task in progress (a finished, "
                        "accepted task whose branch is not there yet keeps its sandbox), and leftovers of interrupted "
                        "provisioning."),
    _cmd("history", "reads", "List archived tasks of the project."),
    _cmd("reset", "tasks", "Archive the project's task into .loom/history and clear the slot."),
    _cmd("verify", "reads", "Check the tamper-evident audit chain of the live store or an archived task: the chain, "
                            "its anchors, the state tables against the last tick, the history index entry, and the "
                            "audit head on loom/<task>."),
    _cmd("replay", "reads", "Re-run a recorded task through the kernel; report whether it is identical, or where a "
                            "changed rule set would have stopped it."),
    _cmd("recover", "tasks", "Recover a wedged or failed task: re-run failed spawns, drop them, or end the task."),
    _cmd("proceed", "tasks", "Re-drive a parked or interrupted task from where it stopped (a task stopped by its "
                             "budget goes on once --max-cost / --max-tokens raise it)."),
    _cmd("answer", "tasks", "Answer the gate the project's task is parked at (then run 'loom proceed')."),
    _cmd("demo", "tasks", "Make a small Python git repository with a real test suite and drive a real task on it "
                          "with the offline demo backend: no key, no network."),
    _cmd("init", "tasks", "Create the project's .loom directory (state, history and transcripts live there) and "
                          "allowlist the project, so /task inside Claude Code may drive it."),
    _cmd("run", "tasks", "Drive a task to its end in the terminal.", cls=f"{CLI}.app:RunCommand"),
    _cmd("web", "web", "Serve the console in a browser through textual-serve; prints the URL to open."),
    _cmd("up", "web", "One command: the HTTP plane in the background, the console in a browser, the browser "
                      "opened."),
    _cmd("setup", "setup", "Use loom inside Claude Code: register the `loom` MCP server, install /task, /proceed, "
                           "/done, and let its sub-agents edit loom's sandbox copies "
                           "(permissions.additionalDirectories)."),
    _app("projects", "projects", "projects_app", "The project catalog the console shows (add, list, remove)."),
    _app("config", "settings", "config_app", "Settings (TOML in the loom home; LOOM_… environment variables "
                                             "override)."),
    _app("secrets", "settings", "secrets_app", "Secrets: stored in the system keyring when usable, else a 0600 "
                                               "file; never printed."),
    _app("models", "settings", "models_app", "Which model each agent runs on."),
    _app("serve", "serve", "serve_app", "Serve the HTTP control plane (JSON API + live status) for remote surfaces."),
    _app("daemon", "daemon", "daemon_app", "Supervise a project's task in the background: start, stop, status."),
    _app("allowlist", "allowlist", "allowlist_app", "Projects the MCP server (/task in Claude Code) and an "
                                                    "un-tokened plane may drive."),
    _app("bot", "bot", "bot_app", "Chat bots that answer gates, submit and ship through the plane."),
    _app("mcp", "mcp", "mcp_app", "loom's MCP server (stdio) for Claude Code and other MCP hosts.", hidden=True),
)

BY_NAME = {e.name: e for e in COMMANDS}
