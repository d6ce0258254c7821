"""The README's "## Reference" names every command and every environment variable loom reads: a new one
fails here until it is documented."""

from __future__ import annotations

import re

from loom_core.config.sections import SHORT_ENV
from tests.conftest import ROOT

# read by loom but not loom's to document: the system's own, or set by another program for loom
NOT_LOOMS = {
    "PATH", "PYTHONPATH",            # where the checks look for an interpreter
    "DISPLAY", "WAYLAND_DISPLAY",    # whether `loom web` can open a browser
    "USERNAME",                      # the sandbox folder's owner on Windows
    "TEXTUAL_DRIVER",                # set by textual-serve for the browser console
    "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",  # git's own identity, passed on
    "CLAUDE_PROJECT_DIR",            # set by Claude Code for its hooks
    "_LOOM_COMPLETE",                # set by the shell completion script loom installs
}
READS = re.compile(
    r"""(?:environ\.get|getenv|environ\.pop|environ\.setdefault)\(\s*["']([A-Z_][A-Z0-9_]*)["']"""
    r"""|environ\[\s*["']([A-Z_][A-Z0-9_]*)["']\s*\]"""
    r"""|["']([A-Z_][A-Z0-9_]*)["']\s+(?:not\s+)?in\s+os\.environ"""
    r"""|resolve_ref\([^)]*?,\s*["']([A-Z_][A-Z0-9_]*)["']\)""")
TUPLES = re.compile(r"""^[A-Z_]+_VARS\s*=\s*\(([^)]*)\)""", re.M)  # PAGER_VARS = ("LOOM_PAGER", "PAGER")
PER_HARNESS = re.compile(r"""environ\.get\(f["']LOOM_\{kind\.upper\(\)\}_BIN["']""")


def reference() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## Reference\n" in text
    return text.split("\n## Reference\n", 1)[1].split("\n## ", 1)[0]


def env_read_in_code() -> set[str]:
    from loom_core.agents.executors.harness_config import HARNESSES

    names = set(SHORT_ENV)
    for path in [*(ROOT / "loom_core").rglob("*.py"), *(ROOT / "loom_tui").rglob("*.py")]:
        src = path.read_text(encoding="utf-8")
        for m in READS.finditer(src):
            names.add(next(g for g in m.groups() if g))
        for m in TUPLES.finditer(src):
            names.update(re.findall(r"""["']([A-Z_][A-Z0-9_]*)["']""", m.group(1)))
        if PER_HARNESS.search(src):
            names.update(f"LOOM_{h.upper()}_BIN" for h in HARNESSES)
    return names


def test_the_scan_finds_what_it_must():
    found = env_read_in_code()
    for name in ("LOOM_HOME", "LOOM_USER_DIR", "LOOM_CLAUDE_BIN", "LOOM_DEBUG", "LOOM_FS_ROOT", "LOOM_THEME",
                 "LOOM_AIDER_BIN", "LOOM_PAGER", "ANTHROPIC_API_KEY", "XDG_STATE_HOME", "LOOM_MAX_SPAWNS"):
        assert name in found, name


def test_every_environment_variable_loom_reads_is_in_the_readme_reference():
    ref = reference()
    missing = sorted(n for n in env_read_in_code() - NOT_LOOMS if not re.search(rf"`[^`]*\b{n}\b", ref))
    assert not missing, f"document these in README.md's ## Reference (or add them to NOT_LOOMS with why): {missing}"
    assert "`LOOM_HARNESS`" in ref  # a settings field with its own name, not read through os.environ


def test_every_command_is_in_the_readme_reference():
    from typer._click import Context
    from typer.main import get_command

    from loom_core.surfaces.cli.app import app

    ref = reference()
    missing = []

    def walk(group, path):
        ctx = Context(group)
        for name in group.list_commands(ctx):
            sub = group.get_command(ctx, name)
            if sub is None:
                continue
            words = [*path, name]
            if not re.search(r"`loom " + r"[ `\\|a-z-]*".join(map(re.escape, words[1:])), ref):
                missing.append(" ".join(words))
            if hasattr(sub, "list_commands"):
                walk(sub, words)

    walk(get_command(app), ["loom"])
    assert not missing, f"add these to README.md's ## Reference: {missing}"


def test_the_reference_says_where_files_live_and_explains_init_and_auto_apply():
    ref = reference()
    for what in ("state.db", ".loom/history", "config.toml", "secrets-index.json", "loom-debug.log",
                 "$XDG_CACHE_HOME/loom", "projects.allow", "`loom init`", "`auto-apply`"):
        assert what in ref, what
