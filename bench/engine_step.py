"""Engine step benchmark: ms per engine call against a raw-sqlite floor.

    python bench/engine_step.py [--steps N] [--dir D] [--warmup W]

One "step" is one Engine call (create / answer / deliver), i.e. exactly one ``BEGIN IMMEDIATE``
... ``COMMIT`` on the real store (WAL, synchronous=FULL). An instant executor drives the spec
bundle end to end (6 steps per task); when a task completes the engine is closed, the state
files are deleted and a fresh task starts -- that setup/teardown is not timed, only the step
calls are.

The floor is a bare ``sqlite3`` loop doing the minimum a step must do: BEGIN IMMEDIATE, one
single-row UPDATE, one ledger INSERT, one audit INSERT, COMMIT, on a WAL file with
synchronous=FULL in the same directory.

Floor and engine run interleaved (``--rounds``, alternating which side goes first) so that load from
other processes falls on both alike. The last line of output is JSON:
    {"engine_ms_per_step": ..., "floor_ms_per_step": ..., "ratio": ..., "median_ratio": ..., "steps": N, "rounds": R}
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from loom_core.bundles.spec import BUNDLE  # noqa: E402
from loom_core.engine.clock import FixedClock  # noqa: E402
from loom_core.engine.engine import Engine  # noqa: E402
from loom_core.kernel.types import AgentResult  # noqa: E402
from loom_core.store import db as dbmod  # noqa: E402

REVIEWERS = ("spec-reviewer", "testability-reviewer")
REVIEW_OK = '{"verdict":"APPROVE","findings":[]}'
RESEARCH_OK = '{"claims":[],"open_questions":[]}'
SPEC_TEXT = "# Spec\n\nThe system shall do the thing.\n"


# --------------------------------------------------------------------------- engine
def _output_for(agent: str) -> str:
    if agent in REVIEWERS:
        return REVIEW_OK
    if agent == "researcher":
        return RESEARCH_OK
    return SPEC_TEXT


def _next_call(engine: Engine, response):
    """The call (label, thunk) answering ``response``'s directive, or None when the task is over."""
    d = response.directive
    if d is None:
        raise RuntimeError(f"unexpected replayed response: {response.wire}")
    if d.kind == "ask-user":
        return "answer", lambda: engine.answer(d.gate_event_id, "accept")
    if d.kind == "shuttle":
        results = [AgentResult(i.agent_run_id, _output_for(i.agent)) for i in d.intents]
        if len(results) == 1:
            return "deliver", lambda: engine.deliver(results[0])
        return "deliver-fanout", lambda: engine.deliver(results)
    if d.kind == "complete":
        return None
    raise RuntimeError(f"engine returned {d.kind!r}: {response.wire}")


class TxCounter:
    """sqlite3 trace callback counting write-transaction boundaries (used during warm-up only)."""

    def __init__(self) -> None:
        self.begins = 0
        self.commits = 0

    def __call__(self, sql: str) -> None:
        s = sql.lstrip().upper()
        if s.startswith("BEGIN IMMEDIATE"):
            self.begins += 1
        elif s.startswith("COMMIT"):
            self.commits += 1


def _tally(info: dict, calls: int, counter: TxCounter) -> None:
    c, b, m = info["tx_check"] or (0, 0, 0)
    info["tx_check"] = (c + calls, b + counter.begins, m + counter.commits)


def run_engine(project: Path, steps: int, warmup: int, profiler=None) -> tuple[list[float], dict[str, list[float]], dict]:
    """Drive ``warmup + steps`` engine calls; return per-step seconds of the timed ones.

    ``profiler`` (a cProfile.Profile) is enabled around the timed step calls only."""
    state_db = dbmod.state_path(project)
    timings: list[float] = []
    by_kind: dict[str, list[float]] = {}
    info = {"tasks": 0, "setup_s": 0.0, "tx_check": None}
    done = 0  # calls made, warm-up included
    total = warmup + steps
    perf = time.perf_counter

    def fresh_engine() -> Engine:
        t0 = perf()
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(state_db) + suffix)
            if p.exists():
                p.unlink()
        e = Engine(project, bundle=BUNDLE, clock=FixedClock())
        info["setup_s"] += perf() - t0
        return e

    while done < total:
        engine = fresh_engine()
        info["tasks"] += 1
        counter = TxCounter() if done < warmup else None
        if counter is not None:
            engine.store.conn.set_trace_callback(counter)
        calls_here = 0
        label, call = "create", (lambda e=engine, n=info["tasks"]: e.create(f"benchmark task {n}: spec a widget"))
        while True:
            prof = profiler if profiler is not None and done >= warmup else None
            if prof is not None:
                prof.enable()
            t0 = perf()
            response = call()
            dt = perf() - t0
            if prof is not None:
                prof.disable()
            if done >= warmup:
                timings.append(dt)
                by_kind.setdefault(label, []).append(dt)
            done += 1
            if counter is not None:
                calls_here += 1
                if done >= warmup:  # stop tracing before any timed call
                    engine.store.conn.set_trace_callback(None)
                    _tally(info, calls_here, counter)
                    counter = None
            if done >= total:
                break
            nxt = _next_call(engine, response)
            if nxt is None:
                break
            label, call = nxt
        if counter is not None:
            engine.store.conn.set_trace_callback(None)
            _tally(info, calls_here, counter)
        t0 = perf()
        engine.close()
        info["setup_s"] += perf() - t0
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(state_db) + suffix)
        if p.exists():
            p.unlink()
    return timings, by_kind, info


# --------------------------------------------------------------------------- floor
FLOOR_SCHEMA = """
CREATE TABLE driver_state (id INTEGER PRIMARY KEY CHECK (id = 1), step_index INTEGER NOT NULL, scratch TEXT NOT NULL);
CREATE TABLE ledger (key TEXT PRIMARY KEY, ts TEXT NOT NULL, response TEXT);
CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, type TEXT NOT NULL,
                    payload TEXT NOT NULL, hash TEXT NOT NULL);
INSERT INTO driver_state (id, step_index, scratch) VALUES (1, 0, '{}');
"""


def _json200(i: int, kind: str) -> str:
    """A ~200-byte JSON object that differs per step."""
    obj = {"kind": kind, "seq": i, "agent_run_id": f"run-{i:08d}", "verdict": "APPROVE",
           "findings": [], "phase": "review-spec", "ts": f"2026-01-01T00:00:{i % 60:02d}.000Z", "pad": ""}
    text = json.dumps(obj, separators=(",", ":"))
    obj["pad"] = "x" * max(0, 200 - len(text))
    return json.dumps(obj, separators=(",", ":"))


def run_floor(directory: Path, steps: int, warmup: int) -> list[float]:
    path = directory / "floor.db"
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("PRAGMA synchronous=FULL")
        # match the store's checkpoint cadence so checkpoints don't dominate either side
        conn.execute("PRAGMA wal_autocheckpoint=4000")
        conn.executescript(FLOOR_SCHEMA)
        perf = time.perf_counter
        timings: list[float] = []
        prev = "0" * 64
        for i in range(warmup + steps):
            ts = f"2026-01-01T00:00:00.{i % 1000:03d}Z"
            response = _json200(i, "response")
            payload = _json200(i, "tick")
            scratch = f'{{"step":{i}}}'
            t0 = perf()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE driver_state SET step_index=?, scratch=? WHERE id=1", (i, scratch))
            conn.execute("INSERT INTO ledger (key, ts, response) VALUES (?, ?, ?)", (f"agent-result:run-{i}", ts, response))
            prev = hashlib.sha256((prev + payload).encode()).hexdigest()
            conn.execute("INSERT INTO audit (ts, type, payload, hash) VALUES (?, ?, ?, ?)", (ts, "tick", payload, prev))
            conn.execute("COMMIT")
            dt = perf() - t0
            if i >= warmup:
                timings.append(dt)
        n = conn.execute("SELECT count(*) FROM audit").fetchone()[0]
        assert n == warmup + steps, n
    finally:
        conn.close()
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            p.unlink()
    return timings


# --------------------------------------------------------------------------- report
def _mount_of(path: Path) -> str:
    """'<device> <fstype> on <mountpoint>' for the filesystem holding ``path`` (Linux; best effort)."""
    try:
        best = None
        real = os.path.realpath(path)
        with open("/proc/mounts", encoding="utf-8") as fh:
            for line in fh:
                dev, mnt, fstype = line.split()[:3]
                mnt = mnt.replace("\\040", " ")
                if real == mnt or real.startswith(mnt.rstrip("/") + "/"):
                    if best is None or len(mnt) >= len(best[1]):
                        best = (dev, mnt, fstype)
        if best:
            return f"{best[0]} {best[2]} on {best[1]}"
    except OSError:
        pass
    return "unknown filesystem"


def _stats(ts: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in ts)
    n = len(ms)
    return {"n": n, "total_s": sum(ms) / 1000, "mean": sum(ms) / n, "median": statistics.median(ms),
            "p95": ms[min(n - 1, int(n * 0.95))], "p99": ms[min(n - 1, int(n * 0.99))], "max": ms[-1]}


def _row(name: str, s: dict[str, float]) -> str:
    return (f"{name:<22} {s['n']:>6} {s['total_s']:>9.3f} {s['mean']:>9.4f} {s['median']:>9.4f} "
            f"{s['p95']:>9.4f} {s['p99']:>9.4f} {s['max']:>9.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="timed steps for each side (default 2000)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="parent directory for the temp dirs (default: a temp dir under the current directory)")
    ap.add_argument("--warmup", type=int, default=12, help="untimed warm-up steps per side (default 12)")
    ap.add_argument("--rounds", type=int, default=10,
                    help="interleave floor and engine in this many rounds, alternating which goes first, so "
                         "load from other processes falls on both sides alike (default 10)")
    ap.add_argument("--keep", action="store_true", help="do not remove the temp dir afterwards")
    ap.add_argument("--profile", type=int, default=0, metavar="K",
                    help="cProfile only the timed engine calls and print the top K loom_core functions by cumtime "
                         "(timings are then inflated by the profiler)")
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error("--steps must be >= 1")

    parent = args.dir if args.dir is not None else Path(os.getcwd())
    parent.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="loom-bench-", dir=str(parent))).resolve()
    print(f"temp dir:   {base}")
    print(f"filesystem: {_mount_of(base)}")
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}; steps={args.steps} warmup={args.warmup}")
    try:
        project = base / "project"
        project.mkdir()
        floor_dir = base / "floor"
        floor_dir.mkdir()

        profiler = cProfile.Profile() if args.profile else None
        rounds = max(1, min(args.rounds, args.steps))
        floor: list[float] = []
        engine: list[float] = []
        by_kind: dict[str, list[float]] = {}
        info = {"tasks": 0, "setup_s": 0.0, "tx_check": None}
        walls = {"floor": 0.0, "engine": 0.0}
        for r in range(rounds):
            n = args.steps // rounds + (1 if r < args.steps % rounds else 0)
            warm = args.warmup if r == 0 else min(args.warmup, 3)
            for side in (("floor", "engine") if r % 2 == 0 else ("engine", "floor")):
                t0 = time.perf_counter()
                if side == "floor":
                    floor += run_floor(floor_dir, n, warm)
                else:
                    ts, kinds, got = run_engine(project, n, args.warmup if r == 0 else 0, profiler)
                    engine += ts
                    for kind, v in kinds.items():
                        by_kind.setdefault(kind, []).extend(v)
                    info["tasks"] += got["tasks"]
                    info["setup_s"] += got["setup_s"]
                    info["tx_check"] = info["tx_check"] or got["tx_check"]
                walls[side] += time.perf_counter() - t0
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    fs, es = _stats(floor), _stats(engine)
    print()
    print(f"{'ms per step':<22} {'steps':>6} {'total s':>9} {'mean':>9} {'median':>9} {'p95':>9} {'p99':>9} {'max':>9}")
    print(_row("floor (raw sqlite3)", fs))
    print(_row("engine (all calls)", es))
    for kind in ("create", "answer", "deliver", "deliver-fanout"):
        if kind in by_kind:
            print(_row(f"  engine {kind}", _stats(by_kind[kind])))
    ratio = es["mean"] / fs["mean"] if fs["mean"] else float("inf")
    print()
    print(f"engine overhead over floor: {es['mean'] - fs['mean']:.4f} ms/step (ratio {ratio:.2f}x); "
          f"by median: {es['median'] - fs['median']:.4f} ms/step (ratio {es['median'] / fs['median']:.2f}x)")
    print(f"engine tasks run: {info['tasks']} (untimed setup/teardown {info['setup_s']:.2f} s); "
          f"wall: floor {walls['floor']:.2f} s, engine {walls['engine']:.2f} s; {rounds} interleaved round(s)")
    if info["tx_check"]:
        calls, begins, commits = info["tx_check"]
        ok = "ok" if calls == begins == commits else "MISMATCH"
        print(f"warm-up check: {calls} engine call(s) -> {begins} BEGIN IMMEDIATE / {commits} COMMIT ({ok})")
    if not args.keep:
        print(f"removed {base}")
    if profiler is not None:
        print(f"\nprofile of the timed engine calls only (top {args.profile} loom_core functions by cumtime):")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats("loom_core", args.profile)
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip() and "function calls" not in line
                        and not line.startswith(("   Ordered by", "   List reduced"))))
    print(json.dumps({"engine_ms_per_step": round(es["mean"], 4), "floor_ms_per_step": round(fs["mean"], 4),
                      "ratio": round(ratio, 4), "median_ratio": round(es["median"] / fs["median"], 4),
                      "steps": args.steps, "rounds": rounds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
