"""What a task costs the disk, counted with strace: one sync per committed tick, plus one to make a fresh
store durable and one to close it; archiving costs two; nothing is left beside an archive."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess

import pytest

from loom_core.agents.executors.demo_project import create_demo_project
from tests.conftest import ROOT, run_loom

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (.ci/run installs it)")


def syncs(cmd: list[str], cwd, out) -> dict[str, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cp = subprocess.run(["strace", "-f", "-y", "-e", "trace=fsync,fdatasync", "-o", str(out), *cmd], cwd=cwd,
                        env=env, capture_output=True, text=True, timeout=180)
    assert cp.returncode in (0, 3), cp.stderr[-2000:]
    counts: dict[str, int] = {}
    for line in out.read_text().splitlines():
        m = re.search(r"(fsync|fdatasync)\(\d+<([^>]*)>\)", line)
        if m and "/.loom" in m.group(2) and "/.loom/work/" not in m.group(2):
            name = re.sub(r".*/\.loom", ".loom", m.group(2))
            counts[name] = counts.get(name, 0) + 1
    return counts


def test_a_demo_task_syncs_once_per_tick_plus_creation_and_close(tmp_path):
    proj = tmp_path / "shop"
    create_demo_project(proj)
    loom = ["python", "-m", "loom_core.surfaces.cli"]
    counts = syncs([*loom, "run", "--backend", "demo", "--policy", "auto", "add a greeting"], proj,
                   tmp_path / "run.trace")
    ticks = sqlite3.connect(proj / ".loom" / "state.db").execute("SELECT tick_seq FROM driver_state").fetchone()[0]
    assert ticks >= 10
    assert counts.get(".loom/state.db-wal", 0) == ticks, counts  # one per committed tick, transcripts included
    assert counts.get(".loom/state.db", 0) == 2, counts  # made durable once when fresh, once on close
    assert sum(counts.values()) <= ticks + 3, counts  # + SQLite's one directory sync for the new WAL

    counts = syncs([*loom, "reset"], proj, tmp_path / "reset.trace")
    hist = proj / ".loom" / "history"
    archived = [p for p in hist.iterdir() if p.suffix == ".db"]
    assert len(archived) == 1 and sum(counts.values()) <= 3, counts
    assert sorted(p.name for p in hist.iterdir()) == sorted(["index.jsonl", archived[0].name])  # no -wal/-shm/tmp
    assert run_loom("history", cwd=proj).stdout.count("accepted") == 1
