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


def test_status_converts_its_arguments_without_pydantic_and_still_checks_them(tmp_path):
    """typer would build a pydantic adapter per argument (~60 ms a process); plain values skip it."""
    code = ("import sys\nfrom loom_core.surfaces import cli\n"
            f"try:\n    cli.main(['status', '-C', {str(tmp_path)!r}, '--stall-minutes', '5'])\n"
            "except SystemExit:\n    pass")
    mods = _modules_after(code)
    assert not [m for m in mods if m.split(".")[0] in ("pydantic", "pydantic_settings", "keyring")]
    bad = run_loom("status", "--stall-minutes", "soon", cwd=tmp_path)
    assert bad.returncode == 2 and "'soon' is not a valid number" in bad.stderr
    missing = run_loom("status", "-C", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_status_history_and_verify_read_without_the_orm_or_settings(tmp_path):
    """The read commands open the store with plain sqlite3: no peewee, pydantic or keyring to load."""
    from tests.support.fixtures import parked_task

    parked_task(tmp_path)
    for verb in ("status", "history", "verify"):
        code = ("import sys\nfrom loom_core.surfaces import cli\n"
                f"try:\n    cli.main([{verb!r}, '-C', {str(tmp_path)!r}])\nexcept SystemExit as e:\n"
                "    assert not e.code, e.code\n")
        mods = _modules_after(code)
        heavy = sorted(m for m in mods if m.split(".")[0] in ("peewee", "pydantic", "pydantic_settings", "keyring"))
        assert heavy == [], (verb, heavy)
