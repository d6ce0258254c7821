"""`python -m loom_tui.screenshots [OUT_DIR]`: write an SVG of every console view to
``screenshots/`` (120x36, plus 80x24 for the fleet, the project view, a running task and the gate), from the same scenes the snapshot tests use."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from loom_tui.scenes import ROOT, SCENES, build, make, stop_drives

BOTH = [(120, 36), (80, 24)]
SIZES = {"fleet": BOTH, "project": BOTH, "running": BOTH, "gate": BOTH}


async def _shoot(name: str, size: tuple[int, int], out: Path) -> Path:
    empty, before = SCENES[name]
    catalog = build(ROOT, empty=empty)
    app = make(catalog)
    async with app.run_test(size=size) as pilot:
        await before(pilot)
        suffix = "" if size == (120, 36) else f"-{size[0]}x{size[1]}"
        path = out / f"{name}{suffix}.svg"
        app.save_screenshot(filename=path.name, path=str(out))
    stop_drives(app)
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path(__file__).resolve().parent.parent / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    for name in SCENES:
        for size in SIZES.get(name, [(120, 36)]):
            path = asyncio.run(_shoot(name, size, out))
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
