"""Whole-process start-up of the quick ``loom`` commands, interleaved with ``python -c pass``.

    python bench/startup.py [--rounds N] [--warmup W] [--loom PATH] [--src DIR] [--dir D] [--keep]

Sets up a private loom home and a demo project with one archived task and one parked at a gate (so
``status``, ``history`` and ``verify`` read a real store), then runs every command once per round in a
shuffled order together with the reference ``python -c pass``, timing each whole process from outside
(wall: monotonic clock around start and reap; cpu: the child's user + system from ``wait4``). Prints
a table of medians and each command's median ratio to the reference taken round by round; the last
line is JSON with the same figures. Bytecode is written (to a cache in the temporary directory), as an
installed loom's is, even when ``PYTHONDONTWRITEBYTECODE`` is set. The code measured is this checkout's (``PYTHONPATH`` is set to ``--src``,
default the repository this script is in), whatever copy of loom the interpreter has installed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {"--help": ["--help"], "status": ["status"], "history": ["history"], "verify": ["verify"],
            "config get": ["config", "get", "ui.theme"]}
GOALS_MS = {"--help": 80, "status": 80, "history": 120, "verify": 120, "config get": 120}
REF = "python -c pass"


def _loom_path(given: str | None) -> str:
    """The console script itself (not a pyenv shim, which adds a bash and a second Python)."""
    if given:
        return given
    beside = Path(sys.executable).parent / "loom"
    return str(beside) if beside.exists() else (shutil.which("loom") or "loom")


def _env(home: Path, src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOM_", "XDG_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: compiled once, not on every start
    env.update(PYTHONPATH=str(src), LOOM_HOME=str(home / "loom"), LOOM_USER_DIR=str(home / "user"),
               XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_STATE_HOME=str(home / "state"), TMPDIR=str(home / "tmp"), PYTHONPYCACHEPREFIX=str(home / "pyc"))
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def _setup(loom: str, root: Path, env: dict[str, str]) -> Path:
    """A demo project: one finished task archived into history, one parked at its first gate."""
    project = root / "demo"

    def run(*args: str, cwd: Path) -> None:
        proc = subprocess.run([loom, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=300)
        if proc.returncode not in (0, 3):
            sys.exit(f"set-up failed: loom {' '.join(args)} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}")

    run("demo", "--plain", "--policy", "auto", str(project), cwd=root)
    run("reset", cwd=project)
    run("run", "--backend", "demo", "--policy", "human", "reject discount percentages outside 0-100", cwd=project)
    return project


def _time(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """(wall ms, cpu ms, exit code) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, proc.returncode


def measure(loom: str, project: Path, env: dict[str, str], rounds: int, warmup: int) -> dict[str, dict]:
    argvs = {REF: [sys.executable, "-c", "pass"], **{name: [loom, *args] for name, args in COMMANDS.items()}}
    walls: dict[str, list[float]] = {n: [] for n in argvs}
    cpus: dict[str, list[float]] = {n: [] for n in argvs}
    ratios: dict[str, list[float]] = {n: [] for n in COMMANDS}
    for i in range(warmup + rounds):
        order = list(argvs)
        random.shuffle(order)
        got = {}
        for name in order:
            wall, cpu, code = _time(argvs[name], project, env)
            if code != 0:
                sys.exit(f"{name} exited {code} (run it by hand in {project})")
            got[name] = (wall, cpu)
        if i < warmup:
            continue
        for name, (wall, cpu) in got.items():
            walls[name].append(wall)
            cpus[name].append(cpu)
            if name != REF:
                ratios[name].append(wall / got[REF][0])
    out = {}
    for name in argvs:
        out[name] = {"wall_ms": round(statistics.median(walls[name]), 1),
                     "wall_min_ms": round(min(walls[name]), 1), "wall_max_ms": round(max(walls[name]), 1),
                     "cpu_ms": round(statistics.median(cpus[name]), 1)}
        if name != REF:
            out[name]["ratio"] = round(statistics.median(ratios[name]), 2)
            out[name]["over_ref_ms"] = round(statistics.median(
                [w - r for w, r in zip(walls[name], walls[REF], strict=True)]), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--loom", help="the loom executable (default: the console script beside this Python)")
    parser.add_argument("--src", default=str(Path(__file__).resolve().parent.parent),
                        help="the loom source tree to measure (default: this checkout)")
    parser.add_argument("--dir", help="where the temporary home and project go (default: the system's temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    loom = _loom_path(args.loom)
    root = Path(tempfile.mkdtemp(prefix="loom-startup-", dir=args.dir))
    try:
        env = _env(root / "home", Path(args.src).resolve())
        project = _setup(loom, root, env)
        res = measure(loom, project, env, args.rounds, args.warmup)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{loom} on {args.src}, {args.rounds} rounds, {os.cpu_count()} cores; medians (min–max) of whole processes")
    print(f"{'command':<16}{'wall ms':>9}{'min–max':>15}{'cpu ms':>9}{'× ref':>8}{'+ms':>8}{'goal':>7}")
    for name, r in res.items():
        spread = f"{r['wall_min_ms']:.0f}–{r['wall_max_ms']:.0f}"
        extra = f"{r['ratio']:>8.2f}{r['over_ref_ms']:>8.1f}{GOALS_MS[name]:>7}" if name != REF else ""
        print(f"{name:<16}{r['wall_ms']:>9.1f}{spread:>15}{r['cpu_ms']:>9.1f}{extra}")
    print(json.dumps({"rounds": args.rounds, **res}))


if __name__ == "__main__":
    main()
