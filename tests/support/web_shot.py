"""`python -m tests.support.web_shot [OUT_DIR]`: the console served by `loom web`, in headless Chromium,
photographed to ``screenshots/web.png`` (the browser test uses the same steps).

Steps: a scene fleet (the same demo projects as the SVG screenshots: one parked at its plan gate, one
finished, one idle) in a fresh loom home, `loom web --port 0` on it, then ``web_shot.cjs`` (Playwright)
loads the page, waits for the fleet in the terminal's stream, presses Enter on the parked project and
waits for the project view. Needs node, Chromium (``/usr/bin/chromium`` or ``$CHROMIUM``) and
playwright-core, which is installed once with npm into the test cache."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCRIPT = HERE / "web_shot.cjs"
CACHE = Path(os.environ.get("LOOM_TEST_CACHE") or Path.home() / ".cache" / "loom-test") / "playwright"
MARKS = {"fleet": ["shop", "billing", "docs-site", "gate-plan"], "project": ["classifier", "planner"]}


def chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def missing() -> str | None:
    """Why the browser run cannot happen here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (the browser is driven by playwright-core)"
    if chromium() is None:
        return "chromium is not installed (apt-get install chromium)"
    return None


def playwright_core() -> Path:
    """The playwright-core package, installed once into the test cache (``npm i --prefix``)."""
    package = CACHE / "node_modules" / "playwright-core"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers install once
        if not (package / "package.json").exists():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("npm is not installed: cannot install playwright-core")
            cp = subprocess.run([npm, "i", "--prefix", str(CACHE), "--no-audit", "--no-fund", "playwright-core"],
                                capture_output=True, text=True, timeout=600)
            if cp.returncode != 0 or not package.exists():
                raise RuntimeError(f"npm install of playwright-core failed: {cp.stderr[-400:]}")
    return package


def build_fleet(root: Path) -> dict[str, str]:
    """The scene fleet under ``root`` (built in a child: scenes set process-wide variables); the
    environment a `loom` process needs to see it."""
    code = "import sys; from pathlib import Path; from loom_tui.scenes import build; build(Path(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", code, str(root)], check=True, cwd=REPO, timeout=300,
                   capture_output=True)
    return {"LOOM_HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), "TZ": "UTC", "HOME": str(root)}


class WebServer:
    """`loom web --port 0` as a child process; ``url`` once it printed it; ``stop()`` sends SIGTERM."""

    def __init__(self, env: dict[str, str], *args: str, command: str = "web") -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "loom_core.surfaces.cli", command, "--port", "0", *args],
                                     env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, cwd=env.get("HOME", str(REPO)), start_new_session=True)
        self.lines: list[str] = []
        self.url = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if "the console is at " in line:
                self.url = line.split("the console is at ", 1)[1].split()[0]
                break
        if not self.url:
            self.stop()
            raise RuntimeError("loom web did not start:\n" + "\n".join(self.lines))

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        rest = self.proc.stdout.read() if self.proc.stdout else ""
        self.lines += rest.splitlines()
        return self.proc.returncode


def browse(url: str, out_dir: Path, marks: dict[str, list[str]] = MARKS) -> dict[str, Any]:
    """Run ``web_shot.cjs`` against ``url``; its JSON report (screenshots in ``out_dir``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PLAYWRIGHT_CORE": str(playwright_core()), "CHROMIUM": chromium() or ""}
    cp = subprocess.run(["node", str(SCRIPT), url, str(out_dir), json.dumps(marks)], capture_output=True, text=True,
                        timeout=180, env=env)
    lines = cp.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"error": f"exit {cp.returncode}: {cp.stdout[-500:]} {cp.stderr[-1500:]}"}


def shoot(out_dir: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="loom-web-") as tmp:
        env = build_fleet(Path(tmp))
        server = WebServer(env)
        try:
            return browse(server.url, out_dir)
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else REPO / "screenshots"
    why = missing()
    if why:
        print(f"cannot take the web screenshot: {why}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as shots:
        report = shoot(Path(shots))
        if report.get("error") or not (report.get("fleet") and report.get("project")):
            print(f"the browser run failed: {report}", file=sys.stderr)
            return 1
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(shots) / "web.png", out / "web.png")
    print(f"wrote {out / 'web.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
