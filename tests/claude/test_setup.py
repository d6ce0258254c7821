"""`loom setup` as a user runs it (a real subprocess with a temp HOME): what it registers and installs, that a
second run changes nothing, that the user's own files, edits and other keys survive, --dry-run, --force."""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_loom

COMMANDS = ("task.md", "proceed.md", "done.md")


@pytest.fixture
def home(tmp_path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def tmpdir(home: Path) -> Path:
    """The test's own temp folder (where loom's sandboxes go), beside the temp HOME."""
    tmp = home.parent / "tmp"
    tmp.mkdir(exist_ok=True)
    return tmp


def sandbox_root(home: Path) -> Path:
    return tmpdir(home) / f"loom-{os.getuid()}"


def setup(home: Path, *args: str, cwd: Path | None = None):
    return run_loom("setup", *args, cwd=cwd or home, env={"HOME": str(home), "PYTHONPATH": str(ROOT),
                                                          "TMPDIR": str(tmpdir(home))})


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root: its bytes and mtime (ns)."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_user_scope_registers_and_installs_and_a_second_run_changes_nothing(home):
    first = setup(home, "--hooks")
    assert first.returncode == 0, first.stderr
    doc = json.loads((home / ".claude.json").read_text())
    entry = doc["mcpServers"]["loom"]
    assert entry["type"] == "stdio" and os.path.isabs(entry["command"])
    assert entry["args"] in ([], ["-m", "loom_core.surfaces.mcp"])
    assert os.access(entry["command"], os.X_OK)
    for name in COMMANDS:
        want = resources.files("loom_core.surfaces.claude.commands").joinpath(name).read_bytes()
        assert (home / ".claude" / "commands" / name).read_bytes() == want
    settings = json.loads((home / ".claude" / "settings.json").read_text())
    assert settings["permissions"]["additionalDirectories"] == [str(sandbox_root(home))]  # sub-agents edit there
    assert sandbox_root(home).is_dir() and sandbox_root(home).stat().st_mode & 0o777 == 0o700
    assert settings["hooks"]["PreToolUse"][0]["matcher"] == "Bash"
    assert settings["hooks"]["Stop"][0]["hooks"][0]["command"].endswith("stop_hint.py")
    lines = first.stdout.splitlines()
    assert lines[0].startswith("registered: mcpServers.loom") and lines[-1].startswith("next: loom allowlist add")
    assert (home / ".claude.json").read_text().endswith("}\n")

    before = snapshot(home)
    second = setup(home, "--hooks")
    assert second.returncode == 0, second.stderr
    assert snapshot(home) == before  # not one byte, not one mtime
    assert all(ln.startswith(("already registered:", "unchanged:", "already allowed:", "next:"))
               for ln in second.stdout.splitlines())


def test_other_servers_and_keys_are_kept(home):
    mine = {"numStartups": 7, "theme": "dark", "oauthAccount": {"emailAddress": "me@example.test"},
            "mcpServers": {"other": {"type": "stdio", "command": "/bin/other", "args": ["--x"], "env": {"A": "1"}}},
            "projects": {"/work/a": {"allowedTools": ["Bash"], "history": [{"display": "ünïcode"}]}}}
    f = home / ".claude.json"
    f.write_text(json.dumps(mine, indent=2, ensure_ascii=False) + "\n")
    f.chmod(0o600)
    assert setup(home).returncode == 0
    after = json.loads(f.read_text())
    assert list(after) == list(mine)  # key order kept
    assert {k: v for k, v in after.items() if k != "mcpServers"} == {k: v for k, v in mine.items() if k != "mcpServers"}
    assert after["mcpServers"]["other"] == mine["mcpServers"]["other"] and set(after["mcpServers"]) == {"other", "loom"}
    assert "ünïcode" in f.read_text()  # not escaped
    assert f.stat().st_mode & 0o777 == 0o600  # its mode kept


def test_an_edited_command_file_is_skipped_unless_forced(home):
    assert setup(home).returncode == 0
    task = home / ".claude" / "commands" / "task.md"
    task.write_text(task.read_text() + "\nmy own line\n")
    got = setup(home)
    assert got.returncode == 0 and f"skipped: {task} was edited (--force replaces it)" in got.stdout
    assert "my own line" in task.read_text()
    got = setup(home, "--force")
    assert got.returncode == 0 and f"replaced: {task}" in got.stdout
    assert "my own line" not in task.read_text()


def test_a_different_server_entry_is_skipped_unless_forced(home):
    theirs = {"mcpServers": {"loom": {"type": "stdio", "command": "/opt/old/loom-mcp", "args": []}}}
    (home / ".claude.json").write_text(json.dumps(theirs))
    got = setup(home)
    assert got.returncode == 0 and "skipped: mcpServers.loom" in got.stdout and "--force" in got.stdout
    assert json.loads((home / ".claude.json").read_text()) == theirs
    got = setup(home, "--force")
    assert got.returncode == 0 and "replaced: mcpServers.loom" in got.stdout
    assert json.loads((home / ".claude.json").read_text())["mcpServers"]["loom"]["command"] != "/opt/old/loom-mcp"


def test_dry_run_writes_nothing(home):
    got = setup(home, "--dry-run", "--hooks")
    assert got.returncode == 0 and got.stdout.startswith("would register: mcpServers.loom")
    assert "would install:" in got.stdout and "would register: PreToolUse hook" in got.stdout
    assert list(home.iterdir()) == []
    assert setup(home).returncode == 0
    (home / ".claude" / "commands" / "done.md").write_text("mine\n")
    before = snapshot(home)
    assert setup(home, "--dry-run", "--force", "--hooks").returncode == 0
    assert snapshot(home) == before


def test_a_corrupt_json_file_is_refused_and_nothing_is_written(home):
    f = home / ".claude.json"
    f.write_text('{"mcpServers": {"other": ')
    got = setup(home)
    assert got.returncode == 1 and "is not valid JSON" in got.stderr and str(f) in got.stderr
    assert f.read_text() == '{"mcpServers": {"other": '
    assert not (home / ".claude").exists()  # the command files were not installed either


def test_project_scope_and_one_scope_only(home, tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    got = setup(home, "--project", cwd=proj)
    assert got.returncode == 0, got.stderr
    assert "loom" in json.loads((proj / ".mcp.json").read_text())["mcpServers"]
    # the folder goes to the personal settings.local.json: Claude Code ignores it in the shared settings.json
    settings = json.loads((proj / ".claude" / "settings.local.json").read_text())
    assert settings == {"permissions": {"additionalDirectories": [str(sandbox_root(home))]}}
    assert not (proj / ".claude" / "settings.json").exists()  # no hooks asked for: the shared file is not made
    assert sorted(p.name for p in (proj / ".claude" / "commands").iterdir()) == sorted(COMMANDS)
    assert list(home.iterdir()) == []  # the user's files untouched
    both = setup(home, "--user", "--project", cwd=proj)
    assert both.returncode == 1 and "one scope" in both.stderr


def test_the_server_entry_falls_back_to_this_python_without_loom_mcp(home, tmp_path):
    """A Python whose bin folder has no loom-mcp (a bare venv) and no loom-mcp on PATH: `python -m`."""
    venv = tmp_path / "bin"
    venv.mkdir()
    py = venv / "python"
    py.symlink_to(os.path.realpath(shutil.which("python3") or "/usr/bin/python3"))
    import subprocess

    code = "from loom_core.surfaces.claude.setup import server_entry; import json; print(json.dumps(server_entry()))"
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={"PATH": str(venv), "PYTHONPATH": str(ROOT), "HOME": str(home)})
    entry = json.loads(out.stdout)
    assert entry == {"type": "stdio", "command": str(py), "args": ["-m", "loom_core.surfaces.mcp"]}


def test_the_command_files_are_package_data_routers():
    pkg = resources.files("loom_core.surfaces.claude.commands")
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "*.md" in data["*"]  # so a wheel carries them
    for name in COMMANDS:
        text = pkg.joinpath(name).read_text()
        assert text.startswith("---\ndescription: ") and "\n---\n" in text[4:]
        assert "mcp__loom__pipeline_" in text  # routes to the tools
        lowered = text.lower()
        assert not any(w in lowered for w in ("accept", "reject", "auto-apply"))  # no gate vocabulary
    assert "$ARGUMENTS" in pkg.joinpath("task.md").read_text()


def test_the_sandbox_folder_joins_the_users_own_settings_once(home):
    """Claude Code's sub-agents edit loom's sandbox copy, outside the project: its base folder is added to
    permissions.additionalDirectories beside the user's own entries and keys, once; --dry-run writes nothing."""
    f = home / ".claude" / "settings.json"
    f.parent.mkdir()
    mine = {"model": "opus", "permissions": {"allow": ["Bash(ls:*)"], "additionalDirectories": ["/srv/shared"],
                                             "defaultMode": "acceptEdits"}, "env": {"A": "1"}}
    f.write_text(json.dumps(mine, indent=4) + "\n")
    before = f.read_bytes()
    dry = setup(home, "--dry-run")
    assert dry.returncode == 0 and f.read_bytes() == before and not sandbox_root(home).exists()
    assert f"would allow: {sandbox_root(home)} (loom's sandboxes) in permissions.additionalDirectories of {f}" \
        in dry.stdout.splitlines()
    assert f"would create: {sandbox_root(home)} (loom's sandboxes)" in dry.stdout.splitlines()

    got = setup(home)
    assert got.returncode == 0, got.stderr
    assert f"allowed: {sandbox_root(home)} (loom's sandboxes) in permissions.additionalDirectories of {f}" \
        in got.stdout.splitlines()
    after = json.loads(f.read_text())
    assert list(after) == list(mine) and after["model"] == "opus" and after["env"] == {"A": "1"}
    assert after["permissions"] == {**mine["permissions"],
                                    "additionalDirectories": ["/srv/shared", str(sandbox_root(home))]}
    once = f.read_bytes()
    again = setup(home)
    assert again.returncode == 0 and f.read_bytes() == once  # byte for byte: the folder is there already
    assert f"already allowed: {sandbox_root(home)} (loom's sandboxes) in permissions.additionalDirectories of {f}" \
        in again.stdout.splitlines()


def test_additional_directories_that_is_not_a_list_is_refused_and_nothing_is_written(home):
    f = home / ".claude" / "settings.json"
    f.parent.mkdir()
    f.write_text('{"permissions": {"additionalDirectories": "/srv/shared"}}')
    got = setup(home)
    assert got.returncode == 1 and "permissions.additionalDirectories is not a list" in got.stderr
    assert f.read_text() == '{"permissions": {"additionalDirectories": "/srv/shared"}}'
    assert not (home / ".claude.json").exists() and not (home / ".claude" / "commands").exists()
