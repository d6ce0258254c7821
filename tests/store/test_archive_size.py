"""What a finished task costs the disk once archived: a compressed image of the compacted store (a demo
task ≤ 48 KB, a 6-tick spec task ≤ 20 KB), nothing beside it, read by history, verify and replay like the
live store; archives an older loom wrote (plain SQLite files) still read; a kill at any point of archiving
leaves the live store or a complete archive."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from loom_core.engine.replay import replay
from loom_core.engine.verify import verify
from loom_core.errors import StateCorrupt
from loom_core.store import codec, read
from loom_core.store.archive import archive, find_archive, history, history_dir
from loom_core.store.backup import restore_binary
from tests.conftest import ROOT, run_loom
from tests.support.fixtures import finished_task

DEMO_MAX = 48_000
SPEC_MAX = 20_000
NOW = "2026-03-01T10:00:00.000Z"


def isolated_env(tmp: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), "LOOM_HOME": str(tmp / "home"),
            "XDG_CONFIG_HOME": str(tmp / "config"), "LOOM_USER_DIR": str(tmp / "dot-loom"),
            "XDG_STATE_HOME": str(tmp / "state")}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo task (16 agent runs) driven by ``loom run --backend demo`` and archived by ``loom reset``."""
    from loom_core.agents.executors.demo_project import create_demo_project
    from loom_core.engine.runner import demo_task

    tmp = tmp_path_factory.mktemp("demo")
    proj = tmp / "shop"
    create_demo_project(proj)
    env = isolated_env(tmp)
    ran = run_loom("run", demo_task(), "--backend", "demo", "--policy", "auto", cwd=proj, env=env, timeout=180)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    live = proj / ".loom" / "state.db"
    spawns = sqlite3.connect(live).execute("SELECT count(*) FROM transcripts").fetchone()[0]
    live_size = live.stat().st_size
    reset = run_loom("reset", cwd=proj, env=env)
    assert reset.returncode == 0, reset.stdout + reset.stderr
    (entry,) = history(proj)
    return proj, entry["task_id"], env, spawns, live_size


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    """A 6-tick spec-bundle task (4 agent runs), archived."""
    tmp = tmp_path_factory.mktemp("spec")
    proj = tmp / "proj"
    proj.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in isolated_env(tmp).items():
            mp.setenv(key, value)
        outcome = finished_task(proj, script="happy")
        assert outcome.kind == "complete" and outcome.verdict == "accepted"
        ticks = sqlite3.connect(proj / ".loom" / "state.db").execute("SELECT tick_seq FROM driver_state").fetchone()[0]
        dest = archive(proj, reason="test", now=NOW)
    return proj, outcome.task_id, dest, ticks


def test_an_archived_demo_task_is_at_most_48_kb_and_alone_in_the_history(demo):
    proj, task_id, _env, spawns, live_size = demo
    path = find_archive(proj, task_id)
    assert spawns == 16
    assert path == history_dir(proj) / f"{task_id}.db"
    size = path.stat().st_size
    assert size <= DEMO_MAX, f"archived demo task is {size} bytes (live store was {live_size})"
    assert size * 3 < live_size  # compressed: the live store's 1 KiB pages hold mostly slack and schema
    assert sorted(os.listdir(history_dir(proj))) == ["index.jsonl", path.name]  # no -wal, -shm or temp file
    assert not (proj / ".loom" / "state.db").exists()
    assert codec.is_image(path.read_bytes()[:6])


def test_an_archived_six_tick_spec_task_is_at_most_20_kb(spec):
    _proj, _task_id, dest, ticks = spec
    assert ticks == 6
    assert dest.stat().st_size <= SPEC_MAX, dest.stat().st_size


def test_history_verify_and_replay_read_the_compressed_archive(demo):
    proj, task_id, env, _spawns, _size = demo
    hist = run_loom("history", cwd=proj, env=env)
    assert hist.returncode == 0 and task_id in hist.stdout and "accepted" in hist.stdout, hist.stdout + hist.stderr
    ver = run_loom("verify", "--task", task_id, cwd=proj, env=env)
    assert ver.returncode == 0 and ver.stdout.startswith("audit chain intact:"), ver.stdout + ver.stderr
    assert f"matches the signed audit head on loom/{task_id}" in ver.stdout  # the chain read out of the archive
    rep = run_loom("replay", task_id, cwd=proj, env=env, timeout=120)
    assert rep.returncode == 0 and "replay identical" in rep.stdout, rep.stdout + rep.stderr
    chain = read.chain(find_archive(proj, task_id))
    assert chain.task.task_id == task_id and len(chain.runs) == 16
    detail = read.run(find_archive(proj, task_id), chain.runs[0].agent_run_id)
    assert detail.prompt and detail.output  # transcripts read back as text
    assert sorted(os.listdir(history_dir(proj)))[0] == "index.jsonl" and len(os.listdir(history_dir(proj))) == 2


def test_an_archive_an_older_loom_wrote_still_reads(spec, tmp_path):
    """An uncompressed SQLite archive (what archives were before) reads through the same calls."""
    src, task_id, dest, _ticks = spec
    proj = tmp_path / "proj"
    shutil.copytree(src, proj)
    path = find_archive(proj, task_id)
    path.write_bytes(codec.unpack_image(path.read_bytes()))
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"
    assert read.task_id(path) == task_id and read.chain_report(path).ok
    assert verify(proj, path).ok and replay(path).identical
    assert sorted(os.listdir(path.parent)) == ["index.jsonl", path.name]  # reading left no side files


def test_a_damaged_archive_is_a_typed_error_naming_the_file(spec, tmp_path):
    src, task_id, _dest, _ticks = spec
    proj = tmp_path / "proj"
    shutil.copytree(src, proj)
    path = find_archive(proj, task_id)
    path.write_bytes(path.read_bytes()[:-40])  # cut short
    with pytest.raises(StateCorrupt) as exc:
        read.chain_report(path)
    assert path.name in str(exc.value) and "compressed" in str(exc.value)


def test_an_archive_can_be_restored_as_the_live_store(spec, tmp_path):
    src, task_id, _dest, _ticks = spec
    proj = tmp_path / "proj"
    shutil.copytree(src, proj)
    live = proj / ".loom" / "state.db"
    restore_binary(live, find_archive(proj, task_id))
    assert read.task_id(live) == task_id and read.chain_report(live).ok


ARCHIVE = """
import sys
from pathlib import Path
from loom_core.store.archive import archive
archive(Path(sys.argv[1]), reason="test", now="2026-03-01T10:00:00.000Z")
"""


@pytest.mark.parametrize("point", ["archive-packed", "archive-written", "archive-renamed", "archive-indexed"])
def test_a_kill_while_archiving_leaves_the_live_store_or_a_complete_archive(spec, tmp_path, point):
    src, task_id, dest, _ticks = spec
    proj = tmp_path / "proj"
    shutil.copytree(src, proj)
    hist = history_dir(proj)
    shutil.rmtree(hist)
    shutil.copyfile(dest, tmp_path / "archived.db")
    restore_binary(proj / ".loom" / "state.db", tmp_path / "archived.db")  # the finished task, live again
    env = {**os.environ, **isolated_env(tmp_path), "LOOM_CRASH_AT": point}
    killed = subprocess.run([sys.executable, "-c", ARCHIVE, str(proj)], env=env, capture_output=True, text=True,
                            timeout=60)
    assert killed.returncode == -9, killed.stderr
    live = proj / ".loom" / "state.db"
    archived = [p for p in hist.iterdir() if p.suffix == ".db"] if hist.exists() else []
    readable = [p for p in archived if read.task_id(p) == task_id and read.chain_report(p).ok]
    assert read.task_id(live) == task_id or readable, (point, os.listdir(hist))
    assert readable == archived  # nothing half-written ever carries an archive's name

    env.pop("LOOM_CRASH_AT")
    again = subprocess.run([sys.executable, "-c", ARCHIVE, str(proj)], env=env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    assert not any(p.exists() for p in proj.glob(".loom/state.db*"))
    names = sorted(os.listdir(hist))
    assert not [n for n in names if ".tmp" in n or n.endswith(("-wal", "-shm"))], names
    assert names == ["index.jsonl", f"{task_id}.db"]  # an archive the kill left is taken, not copied again
    (entry,) = history(proj)
    assert entry["task_id"] == task_id and entry["db_file"] == f".loom/history/{task_id}.db"
    assert read.chain_report(hist / f"{task_id}.db").ok
