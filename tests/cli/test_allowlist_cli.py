"""`loom allowlist add|list|remove` and `loom init`: what a user sees, what lands in the file, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_loom


def loom(*args: str, cwd) -> subprocess.CompletedProcess:
    return run_loom(*args, cwd=cwd, env={"PYTHONPATH": str(ROOT)})


def allow_file():
    from loom_core.config import allowlist

    return allowlist.allowlist_path()


def test_add_list_remove_round_trip(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    real = os.path.realpath(proj)
    got = loom("allowlist", "list", cwd=proj)
    assert got.returncode == 0 and got.stdout.strip() == f"no projects allowlisted ({allow_file()})"

    got = loom("allowlist", "add", "--dry-run", cwd=proj)
    assert got.returncode == 0 and got.stdout.startswith(f"would allowlist: {real}")
    assert not allow_file().exists()  # a dry run writes nothing

    got = loom("allowlist", "add", cwd=proj)
    assert got.returncode == 0 and got.stdout.strip() == f"allowlisted: {real}  ({allow_file()})"
    assert allow_file().read_text().splitlines()[-1] == real
    assert loom("allowlist", "add", str(proj), cwd=tmp_path).stdout.strip() == f"already allowlisted: {real}"
    assert loom("allowlist", "list", cwd=tmp_path).stdout.splitlines() == [real]

    got = loom("allowlist", "remove", str(proj), cwd=tmp_path)
    assert got.returncode == 0 and got.stdout.startswith(f"removed from the allowlist: {real}")
    assert loom("allowlist", "remove", str(proj), cwd=tmp_path).stdout.strip() == f"not allowlisted: {real}"
    assert real not in allow_file().read_text()


def test_a_missing_path_is_exit_1_and_changes_nothing(tmp_path):
    got = loom("allowlist", "add", str(tmp_path / "nope"), cwd=tmp_path)
    assert got.returncode == 1 and "does not exist" in got.stderr and not got.stdout
    assert not allow_file().exists()


def test_init_creates_loom_and_enrolls_the_project(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    real = os.path.realpath(proj)
    dry = loom("init", "--dry-run", cwd=proj)
    assert dry.returncode == 0 and "would create" in dry.stdout and "would allowlist" in dry.stdout
    assert not (proj / ".loom").exists() and not allow_file().exists()

    got = loom("init", cwd=proj)
    assert got.returncode == 0, got.stderr
    assert (proj / ".loom").is_dir() and (proj / ".loom" / ".gitignore").read_text() == "*\n"
    assert f"allowlisted: {real}" in got.stdout and "ready — run /task" in got.stdout
    from loom_core.config import allowlist

    assert allowlist.is_allowed(proj)
    again = loom("init", cwd=proj)
    assert again.returncode == 0 and f"already allowlisted: {real}" in again.stdout
    assert allowlist.entries() == [real]


@pytest.mark.parametrize("argv", [["allowlist", "list"], ["setup", "--dry-run", "--hooks"]])
def test_allowlist_and_setup_import_no_store(argv, tmp_path):
    code = (f"import sys\nfrom loom_core.surfaces import cli\ntry:\n    cli.main({argv!r})\n"
            "except SystemExit:\n    pass\nimport json; print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "HOME": str(tmp_path)})
    mods = json.loads(out.stdout.strip().splitlines()[-1])
    assert not [m for m in mods if m.startswith(("loom_core.store", "loom_core.engine", "peewee", "mcp"))]
