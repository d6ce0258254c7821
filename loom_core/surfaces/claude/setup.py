"""``loom setup`` (spec §8.4): make loom usable inside Claude Code.

- registers the stdio MCP server ``loom`` (``mcpServers.loom = {type, command, args}``) in ``~/.claude.json``
  (user scope, the default) or ``./.mcp.json`` (project scope);
- installs the ``/task``, ``/proceed``, ``/done`` command files into ``~/.claude/commands/`` or
  ``./.claude/commands/``;
- allows Claude Code's sub-agents to edit loom's sandbox copies (``<tmpdir>/loom-<uid>``, outside the project):
  ``permissions.additionalDirectories`` in ``~/.claude/settings.json`` or ``./.claude/settings.local.json``
  (the real CLI ignores that key in a project's shared ``settings.json``);
- with ``hooks``: registers the PreToolUse guard and the Stop hint (spec §8.5) in the same settings file.

Idempotent and careful with the user's files: every JSON file is read, changed in memory and written back
whole (other keys kept, pretty JSON, trailing newline, atomic, its mode kept); a file that is not valid JSON
is refused before anything is written. An equal entry or identical command file is left alone; a different
entry or an edited file is skipped unless ``force``. ``dry_run`` writes nothing. Never touches the allowlist.
Standard library only (``loom setup`` must not import the store).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from loom_core.config.paths import atomic_write
from loom_core.errors import LoomError

SERVER = "loom"
MODULE = "loom_core.surfaces.mcp"
COMMANDS = ("task.md", "proceed.md", "done.md")
HOOKS = {"PreToolUse": ("guard.py", "Bash"), "Stop": ("stop_hint.py", None)}
FORCE = "--force replaces it"


@dataclass(frozen=True)
class Target:
    servers: Path  # the JSON file holding mcpServers
    commands: Path  # the folder of command files
    settings: Path  # Claude Code's settings file (hooks)
    personal: Path  # the settings file whose additionalDirectories Claude Code honours (the sandbox folder)


def target(scope: str, *, home: Path | None = None, cwd: Path | None = None) -> Target:
    if scope == "user":
        home = home or Path.home()
        settings = home / ".claude" / "settings.json"
        return Target(home / ".claude.json", home / ".claude" / "commands", settings, settings)
    if scope == "project":
        cwd = cwd or Path.cwd()
        # Claude Code ignores additionalDirectories in a project's shared settings.json (a checked-in file must
        # not open folders outside the repository); the personal settings.local.json is honoured
        return Target(cwd / ".mcp.json", cwd / ".claude" / "commands", cwd / ".claude" / "settings.json",
                      cwd / ".claude" / "settings.local.json")
    raise LoomError(f"unknown scope {scope!r} (user or project)", code="USAGE")


def server_entry() -> dict[str, Any]:
    """How Claude Code starts loom's MCP server: the installed ``loom-mcp`` beside this Python (or on PATH),
    else this Python with ``-m loom_core.surfaces.mcp``."""
    if find_spec(MODULE) is None:
        raise LoomError(f"this loom has no MCP server ({MODULE} is missing); reinstall loom", code="ENTRYPOINT_MISSING")
    beside = Path(sys.executable).parent / "loom-mcp"
    found = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which("loom-mcp")
    if found and "/shims/" not in found:  # a version manager's shim depends on the caller's environment
        return {"type": "stdio", "command": os.path.abspath(found), "args": []}
    return {"type": "stdio", "command": os.path.abspath(sys.executable), "args": ["-m", MODULE]}


def hook_command(script: str) -> str:
    path = resources.files("loom_core.surfaces.claude.hooks").joinpath(script)
    return f"{shlex.quote(os.path.abspath(sys.executable))} {shlex.quote(str(path))}"


def read_json(path: Path) -> dict[str, Any]:
    """The file's object ({} when absent); anything else is refused with a clear error (nothing written)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LoomError(f"cannot read {path}: {exc.strerror or exc}; nothing was changed", code="SETUP_FILE") from None
    try:
        doc = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise LoomError(f"{path} is not valid JSON ({exc}); fix or move it and run loom setup again — nothing "
                        "was changed", code="CORRUPT_JSON") from None
    if not isinstance(doc, dict):
        raise LoomError(f"{path} does not hold a JSON object; fix or move it — nothing was changed",
                        code="CORRUPT_JSON")
    return doc


def _object(doc: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    got = doc.setdefault(key, {})
    if not isinstance(got, dict):
        raise LoomError(f"{path}: {key} is not a JSON object; fix it — nothing was changed", code="CORRUPT_JSON")
    return got


@dataclass
class Plan:
    """What one run does: the lines to print and the writes to make (path → text)."""
    dry_run: bool
    lines: list[str] = field(default_factory=list)
    writes: dict[Path, str] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)  # folders to create (the sandbox root, so Claude Code accepts it)

    def say(self, done: str, would: str) -> None:
        self.lines.append(would if self.dry_run else done)

    def apply(self) -> None:
        if self.dry_run:
            return
        if self.dirs:
            from loom_core.control.hosted import sandbox_root

            sandbox_root(create=True)  # 0700 and yours, as every sandbox makes it
        for path, text in self.writes.items():
            real = Path(os.path.realpath(path))  # a symlinked dotfile stays a symlink
            mode = real.stat().st_mode & 0o777 if real.exists() else (0o600 if path.name == ".claude.json" else None)
            atomic_write(real, text, mode)


def dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _server(plan: Plan, t: Target, force: bool) -> None:
    entry = server_entry()
    doc = read_json(t.servers)
    servers = _object(doc, "mcpServers", t.servers)
    where = f"mcpServers.{SERVER} in {t.servers}"
    have = servers.get(SERVER)
    if have == entry:
        plan.lines.append(f"already registered: {where}")
        return
    if have is not None and not force:
        plan.lines.append(f"skipped: {where} is a different entry ({FORCE})")
        return
    servers[SERVER] = entry
    plan.writes[t.servers] = dump(doc)
    plan.say(f"{'replaced' if have is not None else 'registered'}: {where}  ({' '.join([entry['command'], *entry['args']])})",
             f"would {'replace' if have is not None else 'register'}: {where}")


def _commands(plan: Plan, t: Target, force: bool) -> None:
    pkg = resources.files("loom_core.surfaces.claude.commands")
    for name in COMMANDS:
        want = pkg.joinpath(name).read_bytes()
        dest = t.commands / name
        try:
            have = dest.read_bytes()
        except FileNotFoundError:
            have = None
        if have == want:
            plan.lines.append(f"unchanged: {dest}")
            continue
        if have is not None and not force:
            plan.lines.append(f"skipped: {dest} was edited ({FORCE})")
            continue
        plan.writes[dest] = want.decode("utf-8")
        plan.say(f"{'replaced' if have is not None else 'installed'}: {dest}",
                 f"would {'replace' if have is not None else 'install'}: {dest}")


def _hooks(plan: Plan, t: Target, force: bool, doc: dict[str, Any]) -> bool:
    hooks = _object(doc, "hooks", t.settings)
    changed = False
    for event, (script, matcher) in HOOKS.items():
        cmd = hook_command(script)
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise LoomError(f"{t.settings}: hooks.{event} is not a list; fix it — nothing was changed",
                            code="CORRUPT_JSON")
        ours = [(g, h) for g in groups if isinstance(g, dict) for h in g.get("hooks") or []
                if isinstance(h, dict) and isinstance(h.get("command"), str)
                and h["command"].endswith(f"claude/hooks/{script}")]
        where = f"{event} hook in {t.settings}"
        if any(h["command"] == cmd for _, h in ours):
            plan.lines.append(f"already registered: {where}")
            continue
        if ours and not force:
            plan.lines.append(f"skipped: {where} points elsewhere ({FORCE})")
            continue
        for _, h in ours:  # --force: the stale one is rewritten in place
            h["command"] = cmd
        if not ours:
            group: dict[str, Any] = {"matcher": matcher} if matcher else {}
            group["hooks"] = [{"type": "command", "command": cmd}]
            groups.append(group)
        changed = True
        plan.say(f"{'replaced' if ours else 'registered'}: {where}",
                 f"would {'replace' if ours else 'register'}: {where}")
    return changed


def _sandbox_dir(plan: Plan, path: Path, doc: dict[str, Any]) -> bool:
    """Let Claude Code's sub-agents edit the sandbox copy loom hands them (outside the project): its base
    folder in ``permissions.additionalDirectories`` (appended; the user's own entries kept)."""
    from loom_core.control.hosted import sandbox_root

    root = str(sandbox_root())
    perms = _object(doc, "permissions", path)
    dirs = perms.setdefault("additionalDirectories", [])
    if not isinstance(dirs, list):
        raise LoomError(f"{path}: permissions.additionalDirectories is not a list; fix it — nothing was "
                        "changed", code="CORRUPT_JSON")
    if not os.path.isdir(root):  # Claude Code passes over a folder that is not there when a session starts
        plan.dirs.append(root)
        plan.say(f"created: {root} (loom's sandboxes, private)", f"would create: {root} (loom's sandboxes)")
    where = f"{root} (loom's sandboxes) in permissions.additionalDirectories of {path}"
    if root in dirs:
        plan.lines.append(f"already allowed: {where}")
        return False
    dirs.append(root)
    plan.say(f"allowed: {where}", f"would allow: {where}")
    return True


def _settings(plan: Plan, t: Target, force: bool, hooks: bool) -> None:
    """Claude Code's settings file: the sandbox folder allowed, and with ``hooks`` the hooks; one write."""
    doc = read_json(t.settings)
    personal = doc if t.personal == t.settings else read_json(t.personal)  # both read before any change
    if _sandbox_dir(plan, t.personal, personal):
        plan.writes[t.personal] = dump(personal)
    if hooks and _hooks(plan, t, force, doc):
        plan.writes[t.settings] = dump(doc)


def setup(scope: str = "user", *, dry_run: bool = False, force: bool = False, hooks: bool = False,
          home: Path | None = None, cwd: Path | None = None) -> list[str]:
    """Plan every change (refusing a bad file before any write), make them unless ``dry_run``; the lines to print."""
    t = target(scope, home=home, cwd=cwd)
    plan = Plan(dry_run)
    _server(plan, t, force)
    _commands(plan, t, force)
    _settings(plan, t, force, hooks)
    plan.apply()
    plan.lines.append("next: loom allowlist add <project>  (then /task … inside Claude Code)")
    return plan.lines
