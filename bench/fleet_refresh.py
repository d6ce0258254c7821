"""Fleet view refresh with many projects: time per update on the UI thread.

    python bench/fleet_refresh.py [--projects 200] [--updates 50]

Builds N real project stores (spec-bundle tasks in assorted states) in a temp dir, opens the
console headless at 120x36 with all of them in the catalog, then applies status updates the
way the app does (a fresh row set from the worker, about a tenth of the projects changed)
and times ``FleetScreen.apply_rows`` on the event loop. It also times the worker-side read
(``LocalControl.fleet()``), which runs off the loop. The UI figure is the event-loop work of one
update: ``apply_rows`` plus painting the table's visible rows (``render_lines``), measured
directly so frame pacing does not count. Last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loom_core.bundles.spec import BUNDLE  # noqa: E402
from loom_core.control.catalog import Catalog  # noqa: E402
from loom_core.engine.clock import FixedClock  # noqa: E402
from loom_core.engine.engine import Engine  # noqa: E402
from loom_core.kernel.types import AgentResult  # noqa: E402


def build(root: Path, n: int) -> Catalog:
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


async def measure(cat: Catalog, updates: int) -> tuple[list[float], list[float]]:
    from textual.geometry import Region

    from loom_tui.app import make_app
    from loom_tui.screens.fleet import FleetScreen, FleetTable

    app = make_app(cat, watch=False)
    ui, reads = [], []
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FleetScreen), screen
        t = time.perf_counter()
        rows = app.control.fleet()
        reads.append(time.perf_counter() - t)
        screen.apply_rows(rows)
        table = screen.query_one(FleetTable)
        await pilot.pause()
        rng = random.Random(1)
        for u in range(updates):
            t = time.perf_counter()
            fresh = app.control.fleet() if u % 10 == 0 else None
            if fresh is not None:
                reads.append(time.perf_counter() - t)
                rows = fresh
            # a tenth of the projects progress (elapsed, tokens); two change status (re-sorts the view)
            changed = [dict(r) for r in rows]
            for r in rng.sample(changed, max(1, len(changed) // 10)):
                r["elapsed"] = f"{rng.randrange(1, 59)} min"
                r["tokens"] = {"in": rng.randrange(10_000), "out": rng.randrange(5_000), "cached": 0}
            for r in rng.sample(changed, 2):
                r["status"] = rng.choice(["running", "parked", "stalled", "idle"])
            t = time.perf_counter()
            screen.apply_rows(changed)
            table.render_lines(Region(0, 0, table.size.width, table.size.height))  # paint the visible rows
            ui.append(time.perf_counter() - t)
            await pilot.pause()
            rows = changed
    return ui, reads


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--projects", type=int, default=200)
    ap.add_argument("--updates", type=int, default=50)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="loom-fleet-"))
    try:
        t = time.perf_counter()
        cat = build(root, args.projects)
        print(f"built {args.projects} projects in {time.perf_counter() - t:.1f}s under {root}")
        ui, reads = asyncio.run(measure(cat, args.updates))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ui_ms = [x * 1000 for x in ui]
    read_ms = [x * 1000 for x in reads]
    print(f"UI thread, apply + paint per update: mean {statistics.mean(ui_ms):.1f} ms, "
          f"median {statistics.median(ui_ms):.1f} ms, max {max(ui_ms):.1f} ms")
    print(f"worker read of {args.projects} statuses (off the loop): mean {statistics.mean(read_ms):.0f} ms")
    print(json.dumps({"projects": args.projects, "updates": args.updates,
                      "refresh_ms_per_update": round(statistics.median(ui_ms), 2),
                      "refresh_ms_max": round(max(ui_ms), 2),
                      "worker_read_ms": round(statistics.mean(read_ms), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
