"""Several processes on one store: fresh opens race safely; a second writer gets StateBusy."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

OPEN_AND_CREATE = textwrap.dedent("""
    import sys, time
    from loom_core.store.state import StateStore
    start = float(sys.argv[2])
    while time.time() < start:
        pass
    s = StateStore.for_project(sys.argv[1])
    print(s.state().exists)
    s.close()
""")

HOLD_WRITE_LOCK = textwrap.dedent("""
    import sys, time
    from loom_core.store.state import StateStore
    s = StateStore.for_project(sys.argv[1])
    with s.write() as conn:
        conn.execute("UPDATE driver_state SET step_index = step_index WHERE id = 1")
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    print("released", flush=True)
""")

TRY_WRITE = textwrap.dedent("""
    import sys, time
    from loom_core.errors import StateBusy
    from loom_core.bundles.spec import BUNDLE
    from loom_core.engine.engine import Engine
    e = Engine(sys.argv[1], bundle=BUNDLE, busy_ms=int(sys.argv[2]))
    t0 = time.monotonic()
    try:
        e.create("a second task")
    except StateBusy as exc:
        print("BUSY", round(time.monotonic() - t0, 2), exc, flush=True)
    else:
        print("WROTE", flush=True)
""")


def _py(code: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_two_processes_open_a_fresh_store_at_once(tmp_path):
    import time

    for round_ in range(3):
        proj = tmp_path / f"p{round_}"
        proj.mkdir()
        start = str(time.time() + 0.6)
        procs = [_py(OPEN_AND_CREATE, str(proj), start) for _ in range(2)]
        outs = [p.communicate(timeout=30) for p in procs]
        for p, (out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err
            assert out.strip() == "False"
        import sqlite3

        conn = sqlite3.connect(proj / ".loom" / "state.db")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM kernel_schema_versions").fetchone()[0] == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


def test_second_writer_gets_state_busy_and_nothing_is_corrupted(tmp_path, engine, project):
    engine.create("spec it")
    engine.close()
    holder = _py(HOLD_WRITE_LOCK, str(project), "2.0")
    assert holder.stdout.readline().strip() == "locked"
    writer = _py(TRY_WRITE, str(project), "300")
    out, err = writer.communicate(timeout=30)
    assert out.startswith("BUSY"), (out, err)
    waited = float(out.split()[1])
    assert 0.25 <= waited < 1.9  # it waited for the busy timeout, not for the holder
    assert "busy" in out
    hout, herr = holder.communicate(timeout=30)
    assert holder.returncode == 0 and "released" in hout, herr
    from loom_core.store.state import StateStore

    s = StateStore.for_project(project)
    assert s.state().status == "in_progress"
    assert s.verify_chain().ok
    assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    s.close()
