"""`loom recover` goes through the facade and takes the project lock; `loom projects remove` says when a
project is not in the catalog."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, run_loom
from tests.support.fixtures import parked_task

HOLD = ("import sys; from pathlib import Path; from loom_core.engine.lock import ProjectLock; "
        "lock = ProjectLock(Path(sys.argv[1])).acquire(); print('held', flush=True); sys.stdin.read()")


def test_recover_refuses_in_one_line_while_another_process_drives(project):
    parked_task(project)
    before = json.loads(run_loom("status", "--json", cwd=project).stdout)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(project)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = run_loom("recover", "abandon", cwd=project)
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[0].startswith("loom: ") and f"is being driven by pid {holder.pid}" in lines[0], lines[0]
        after = json.loads(run_loom("status", "--json", cwd=project).stdout)
        assert (after["state"], after["gate"]) == (before["state"], before["gate"]) == ("in_progress", before["gate"])
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    proc = run_loom("recover", "abandon", cwd=project)  # the holder is gone: the same command goes through
    assert proc.returncode == 0 and proc.stdout.startswith("task ended"), (proc.stdout, proc.stderr)


def test_projects_remove_names_a_project_not_in_the_catalog(tmp_path):
    proj = tmp_path / "p"
    proj.mkdir()
    proc = run_loom("projects", "remove", str(proj), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"no catalog entry for '{proj}'"
    added = run_loom("projects", "add", str(proj), cwd=tmp_path).stdout.split()[1]
    proc = run_loom("projects", "remove", str(proj), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"removed {added}"
    assert run_loom("projects", "list", cwd=tmp_path).stdout.startswith("no projects in the catalog")
