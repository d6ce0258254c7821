"""Fleet view refresh with many projects: time per update on the UI thread.

    python bench/fleet_refresh.py [--projects 200] [--updates 50]

Builds N real project stores (spec-bundle tasks in assorted states) in a temp dir, opens the
console headless at 120x36 with all of them in the catalog and its 2 s poll on, and measures:
- idle CPU: the process's CPU time over ``--idle`` seconds while the console polls unchanged stores;
- frames: status updates posted the way the app posts them (a ``FleetRows`` message; a tenth of the
  projects changed, two of them changing status so the view re-sorts), each driven from the post until the
  screen processed it and composed the frame (``pilot.pause()``). The figure is the event loop's busy time
  over that window: wall time minus the time the loop sat blocked in its selector (``pause()`` itself
  sleeps at least 1/50 s, and again while anything runs, so its wall time has a 20 ms floor; it is shown
  too, as "wall through pause"), plus the loop thread's CPU time;
- the worker-side read (``LocalControl.fleet()``), which runs off the loop.
Last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loom_core.control.catalog import Catalog  # noqa: E402


def build(root: Path, n: int) -> Catalog:
    from loom_core.bundles.spec import BUNDLE
    from loom_core.engine.clock import FixedClock
    from loom_core.engine.engine import Engine
    from loom_core.kernel.types import AgentResult

    cat = Catalog([], root / "workspace.json")
    rng = random.Random(7)
    for i in range(n):
        proj = root / f"project-{i:03d}"
        proj.mkdir()
        depth = rng.randrange(4)
        if depth:
            e = Engine(proj, bundle=BUNDLE, clock=FixedClock())
            r = e.create(f"write the spec for feature {i}")
            if depth >= 2:
                r = e.answer(r.directive.gate_event_id, "accept")
            if depth >= 3:
                (intent,) = r.directive.intents
                e.deliver(AgentResult(intent.agent_run_id, '{"claims": [], "open_questions": []}', tokens_in=900,
                                      tokens_out=300))
            e.close()
        cat.add(proj)
    return cat


class LoopClock:
    """How long the running event loop has sat blocked in its selector (waiting, not working)."""

    def __init__(self) -> None:
        selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
        real, self.waited = selector.select, 0.0

        def select(timeout=None):
            t = time.perf_counter()
            try:
                return real(timeout)
            finally:
                self.waited += time.perf_counter() - t

        selector.select = select

    def mark(self) -> tuple[float, float, float]:
        return time.perf_counter(), self.waited, time.thread_time()


async def measure(cat: Catalog, updates: int, idle_s: float) -> tuple[dict[str, list[float]], list[float], float]:
    """Real frames: each update is posted as the app's own ``FleetRows`` message and timed until the screen
    has processed it and composed the frame (``pilot.pause()`` ends by forcing the screen update)."""
    from loom_tui.app import make_app
    from loom_tui.messages import FleetRows
    from loom_tui.screens.fleet import FleetScreen

    app = make_app(cat, watch=True)
    async with app.run_test(size=(120, 36)) as pilot:
        # idle: the app polls every store on its own timer; nothing changes; how much CPU does it burn?
        await pilot.pause(3.0)  # first poll done, caches warm
        cpu0, t0 = time.process_time(), time.perf_counter()
        await pilot.pause(idle_s)
        idle_cpu = (time.process_time() - cpu0) / (time.perf_counter() - t0)
    app = make_app(cat, watch=False)  # frames: only the updates below reach the screen
    ui: dict[str, list[float]] = {"busy": [], "cpu": [], "wall": []}
    reads = []
    clock = LoopClock()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FleetScreen), screen
        t = time.perf_counter()
        rows = app.control.fleet()
        reads.append(time.perf_counter() - t)
        rng = random.Random(1)
        for u in range(updates):
            # a tenth of the projects progress (elapsed, tokens); two change status (re-sorts the view)
            changed = [dict(r) for r in rows]
            for r in rng.sample(changed, max(1, len(changed) // 10)):
                r["elapsed"] = f"{rng.randrange(1, 59)} min"
                r["tokens"] = {"in": rng.randrange(10_000), "out": rng.randrange(5_000), "cached": 0}
            for r in rng.sample(changed, 2):
                r["status"] = rng.choice(["running", "parked", "stalled", "idle"])
            t, waited, cpu = clock.mark()
            app.post_message(FleetRows(changed))
            await pilot.pause()
            t2, waited2, cpu2 = clock.mark()
            ui["wall"].append(t2 - t)
            ui["busy"].append((t2 - t) - (waited2 - waited))
            ui["cpu"].append(cpu2 - cpu)
            rows = changed
            if u % 10 == 0:
                t = time.perf_counter()
                app.control.fleet()
                reads.append(time.perf_counter() - t)
    return ui, reads, idle_cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--projects", type=int, default=200)
    ap.add_argument("--updates", type=int, default=50)
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of idle polling to measure CPU over")
    ap.add_argument("--build-into", type=Path, help=argparse.SUPPRESS)  # the child that writes the stores
    args = ap.parse_args()
    if args.build_into:
        build(args.build_into, args.projects).save()
        return 0
    root = Path(tempfile.mkdtemp(prefix="loom-fleet-"))
    try:
        t = time.perf_counter()
        # the stores are written by a child process: the console's process holds only what a console holds
        # (the engines' objects would make every full garbage collection in the frames below slower)
        subprocess.run([sys.executable, __file__, "--build-into", str(root), "--projects", str(args.projects)],
                       check=True)
        cat = Catalog.load(root / "workspace.json")
        print(f"built {args.projects} projects in {time.perf_counter() - t:.1f}s under {root}")
        ui, reads, idle_cpu = asyncio.run(measure(cat, args.updates, args.idle))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ms = {k: [x * 1000 for x in v] for k, v in ui.items()}
    read_ms = [x * 1000 for x in reads]
    print(f"event loop busy, message to composed frame per update: median {statistics.median(ms['busy']):.1f} ms, "
          f"max {max(ms['busy']):.1f} ms (loop thread CPU: median {statistics.median(ms['cpu']):.1f} ms, "
          f"max {max(ms['cpu']):.1f} ms)")
    print(f"wall through pilot.pause() (20 ms floor: pause sleeps): median {statistics.median(ms['wall']):.1f} ms, "
          f"max {max(ms['wall']):.1f} ms")
    print(f"worker read of {args.projects} statuses (off the loop, warm): median {statistics.median(read_ms):.0f} ms")
    print(f"idle console polling {args.projects} unchanged stores every 2 s: {idle_cpu * 100:.1f} % of one core")
    print(json.dumps({"projects": args.projects, "updates": args.updates,
                      "frame_ms_median": round(statistics.median(ms["busy"]), 2),
                      "frame_ms_max": round(max(ms["busy"]), 2),
                      "frame_cpu_ms_median": round(statistics.median(ms["cpu"]), 2),
                      "wall_through_pause_ms_median": round(statistics.median(ms["wall"]), 2),
                      "worker_read_ms": round(statistics.median(read_ms), 1),
                      "idle_cpu_percent": round(idle_cpu * 100, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
