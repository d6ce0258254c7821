"""One plane driving many projects at once: errors, `GET /projects` latency under load, plane memory.

    python bench/plane.py [--projects 50] [--permits 4] [--delay 0.0] [--timeout 600] [--wake 5]

Creates N demo projects in a temp dir, starts `loom serve` as its own process (loopback, a token, a
private loom home and state dir), submits the demo task to every project over HTTP (backend demo,
policy auto, so each runs to its end with nobody answering), and while they run polls `GET /projects`
back to back (on its own connection, from the first submit until every task ended), timing each call. Reports: submits accepted, busy/locked errors (HTTP 409s, and
BUSY/LOCKED lines in the supervisors' logs), tasks finished and their verdicts, `GET /projects` p50/p99,
the plane's RSS (current and peak, from /proc), and the cross-process gate wake latency (``--wake``
gates answered by a separate ``loom answer`` process, see :func:`measure_wake`). Last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from loom_core.control import create_demo_project, demo_task  # noqa: E402

TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields.get("VmRSS", "0 kB").split()[0]), int(fields.get("VmHWM", "0 kB").split()[0])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure_wake(root: Path, env: dict[str, str], n: int) -> list[float]:
    """A fresh plane supervises ``n`` demo tasks parked at their plan gate; each is answered by a separate
    ``loom answer accept`` process. Latency: from that process's exit (the answer is committed by then)
    until the plane's supervisor drives again (the project is ``running``, or has moved past the gate)."""
    projects = [root / f"gate-{i}" for i in range(n)]
    for p in projects:
        create_demo_project(p)
    port = free_port()
    env = {**env, "LOOM_SERVER_STATE_DIR": str(root / "server-wake")}
    plane = subprocess.Popen([sys.executable, "-m", "loom_core.surfaces.cli", "serve", "--port", str(port)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    out = []
    try:
        wait_up(c, plane)
        for p in projects:
            pid = c.post("/submit", json={"project": str(p), "task": demo_task(), "backend": "demo",
                                          "policy_preset": "demo-gates", "demo_delay_s": 0.2}).json()["id"]
            gate = None
            while not gate:
                gate = c.get(f"/projects/{pid}").json()["status"]["parked_gate"]
                time.sleep(0.02)
            subprocess.run([sys.executable, "-m", "loom_core.surfaces.cli", "answer", "accept", "-C", str(p)],
                           env=env, check=True, capture_output=True)
            answered = time.perf_counter()
            while True:
                st = c.get(f"/projects/{pid}").json()["status"]
                moved = st["parked_gate"] and st["parked_gate"]["gate_event_id"] != gate["gate_event_id"]
                if st["state"] == "running" or moved or st["status"] == "completed":
                    out.append((time.perf_counter() - answered) * 1000)
                    break
                time.sleep(0.005)
    finally:
        c.close()
        plane.terminate()
        plane.wait(30)
    return out


def wait_up(c: httpx.Client, plane: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if c.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or plane.poll() is not None:
            raise SystemExit("the plane did not start")
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--projects", type=int, default=50)
    ap.add_argument("--permits", type=int, default=4)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds each demo agent takes")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--wake", type=int, default=5, help="gates answered from another process (0 = skip)")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="loom-bench-plane-"))
    env = {**os.environ, "LOOM_HOME": str(root / "home"), "TMPDIR": str(root / "tmp"),
           "LOOM_SERVER_STATE_DIR": str(root / "server"), "LOOM_SERVER_TOKEN": TOKEN,
           "LOOM_SERVER__SPAWN_PERMITS": str(args.permits)}
    (root / "tmp").mkdir()
    t0 = time.monotonic()
    projects = [root / f"shop-{i:03d}" for i in range(args.projects)]
    for p in projects:
        create_demo_project(p)
    made_s = time.monotonic() - t0

    port = free_port()
    plane = subprocess.Popen([sys.executable, "-m", "loom_core.surfaces.cli", "serve", "--port", str(port)],
                             env=env, stdout=subprocess.DEVNULL, stderr=open(root / "plane.err", "wb"))  # noqa: SIM115
    c = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    try:
        wait_up(c, plane)

        statuses: dict[int, int] = {}
        codes: dict[str, int] = {}
        lat: list[float] = []
        finished: dict[str, str] = {}
        rss_samples: list[int] = []
        done = threading.Event()

        def poll() -> None:  # GET /projects back to back from the first submit until every task ended
            nonlocal finished
            with httpx.Client(base_url=c.base_url, headers=c.headers, timeout=30) as poller:
                while not done.is_set():
                    t = time.perf_counter()
                    rows = poller.get("/projects").json()
                    lat.append((time.perf_counter() - t) * 1000)
                    if len(lat) % 20 == 0:
                        rss_samples.append(rss_kb(plane.pid)[0])
                    finished = {r["id"]: r["status"]["verdict"] for r in rows if r["status"]["status"] == "completed"}
                    if len(finished) == len(projects):
                        done.set()

        poller = threading.Thread(target=poll, daemon=True)
        t_submit = time.monotonic()
        poller.start()
        for p in projects:
            r = c.post("/submit", json={"project": str(p), "task": demo_task(), "backend": "demo",
                                        "policy_preset": "auto", "demo_delay_s": args.delay})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code != 200:
                code = r.json()["error"]["code"]
                codes[code] = codes.get(code, 0) + 1
        submit_s = time.monotonic() - t_submit
        done.wait(args.timeout)
        done.set()
        poller.join(30)
        run_s = time.monotonic() - t_submit
        rss, peak = rss_kb(plane.pid)
    finally:
        c.close()
        plane.terminate()
        try:
            plane.wait(30)
        except subprocess.TimeoutExpired:
            plane.kill()

    wake = measure_wake(root, env, args.wake) if args.wake else []
    log_errors = 0
    for p in projects:
        log = p / ".loom" / "daemon" / "log.jsonl"
        if log.exists():
            log_errors += sum(1 for line in log.read_text().splitlines()
                              if "BUSY" in line or "LOCKED" in line or "locked" in line)
    verdicts: dict[str, int] = {}
    for v in finished.values():
        verdicts[str(v)] = verdicts.get(str(v), 0) + 1
    result = {
        "projects": len(projects), "permits": args.permits, "demo_delay_s": args.delay,
        "accepted_submits": statuses.get(200, 0), "submit_errors": codes,
        "busy_or_locked_errors": codes.get("PROJECT_LOCKED", 0) + log_errors,
        "finished": len(finished), "verdicts": verdicts,
        "get_projects_ms": {"n": len(lat), "p50": round(pct(lat, 50), 1), "p99": round(pct(lat, 99), 1),
                            "max": round(max(lat), 1), "mean": round(statistics.mean(lat), 1)},
        "plane_rss_mb": round(rss / 1024, 1), "plane_peak_rss_mb": round(peak / 1024, 1),
        "plane_rss_mb_mean_while_driving": round(statistics.mean(rss_samples) / 1024, 1) if rss_samples else None,
        "gate_wake_ms": ({"n": len(wake), "p50": round(pct(wake, 50)), "max": round(max(wake))} if wake else None),
        "seconds": {"create_projects": round(made_s, 1), "submit_all": round(submit_s, 1),
                    "submit_to_all_done": round(run_s, 1)},
    }
    print(f"{len(projects)} projects, {args.permits} permits: {result['accepted_submits']} submits accepted, "
          f"{result['finished']} finished {verdicts}, {result['busy_or_locked_errors']} busy/locked errors")
    print(f"GET /projects while driving: p50 {result['get_projects_ms']['p50']} ms, "
          f"p99 {result['get_projects_ms']['p99']} ms over {len(lat)} calls")
    print(f"plane RSS {result['plane_rss_mb']} MB (peak {result['plane_peak_rss_mb']} MB)")
    if wake:
        print(f"cross-process gate wake: p50 {result['gate_wake_ms']['p50']} ms, max {result['gate_wake_ms']['max']} ms "
              f"over {len(wake)} answers")
    print(json.dumps(result))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
