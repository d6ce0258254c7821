"""`loom --help` and `loom status` stay light: no heavy library is imported to print help."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, run_loom

HEAVY = ("textual", "peewee", "anthropic", "docker", "pygit2", "telegram", "mcp")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_imports_no_heavy_library():
    mods = _modules_after("import sys\nsys.argv=['loom','--help']\nfrom loom_core.surfaces import cli\n"
                          "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass")
    loaded = sorted(m for m in mods if m.split(".")[0] in HEAVY)
    assert loaded == []


def test_help_and_version_exit_zero(tmp_path):
    proc = run_loom("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "status" in proc.stdout and "replay" in proc.stdout
    proc = run_loom("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("loom ")


def test_status_without_a_store_creates_nothing(tmp_path):
    proc = run_loom("status", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("no active task")
    assert not (tmp_path / ".loom").exists()
