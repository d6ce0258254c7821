"""Sandbox creation and merge-back on a big generated repository, against git's own tools.

    python bench/workspace.py [--dir D] [--history-mb 300] [--commits 3000] [--files 4000] [--rounds 5]

Generates (or reuses, with ``--dir`` pointing at an earlier run) a repository whose ``.git`` holds about
``--history-mb`` of incompressible blobs over ``--commits`` commits, with a ``.venv``-like ignored folder,
then measures, interleaved over ``--rounds`` rounds:

- **create**: ``Workspace.provision(fresh=True)`` vs ``git worktree add --detach`` (removed after);
- **disk**: bytes each holds on disk (``du``-like: allocated blocks, symlinks not followed);
- **merge**: ``merge_back`` of a one-line change vs ``git fetch`` of the same commit from the sandbox into a
  ``--shared`` clone of the user repository, and the bytes ``merge_back`` added to the user's ``.git``.

Prints a table (min / median / max) and, as its last line, JSON.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GIT_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}


def git(cwd: Path, *args: str, **kw) -> str:
    return subprocess.run(["git", "-c", "core.hooksPath=/dev/null", *args], cwd=cwd, env=GIT_ENV, check=True,
                          capture_output=True, text=True, **kw).stdout.strip()


def _text(rng: random.Random, size: int) -> bytes:
    """Source-like lines of random hex: about as incompressible as text gets."""
    raw = rng.randbytes(size // 2).hex()
    return "\n".join(raw[i:i + 64] for i in range(0, len(raw), 64)).encode() + b"\n"


def generate(repo: Path, *, history_mb: int, commits: int, files: int, seed: int = 7) -> None:
    """A repository built with ``git fast-import``: ``files`` text files in 50 folders, 200 binary assets;
    every commit rewrites two text files and one asset so the history reaches ``history_mb``."""
    rng = random.Random(seed)
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    texts = [f"pkg{i % 50:02d}/mod_{i:05d}.py" for i in range(files)]
    assets = [f"assets/blob_{i:03d}.bin" for i in range(200)]
    asset_size = max(1024, history_mb * 1024 * 1024 // max(commits, 1))
    proc = subprocess.Popen(["git", "fast-import", "--quiet", "--done"], cwd=repo, env=GIT_ENV,
                            stdin=subprocess.PIPE)
    out = proc.stdin
    assert out is not None

    def blob(path: str, data: bytes) -> None:
        out.write(b"M 100644 inline %s\n" % path.encode())
        out.write(b"data %d\n" % len(data))
        out.write(data)
        out.write(b"\n")

    when = 1_600_000_000
    for n in range(commits):
        msg = f"commit {n}\n".encode()
        out.write(b"commit refs/heads/main\n")
        out.write(b"committer bench <bench@localhost> %d +0000\n" % (when + n * 60))
        out.write(b"data %d\n%s" % (len(msg), msg))
        if n == 0:
            for path in texts:
                blob(path, _text(rng, rng.randrange(2000, 6000)))
            for path in assets:
                blob(path, rng.randbytes(asset_size))
            blob(".gitignore", b".venv/\n__pycache__/\n")
        else:
            for path in rng.sample(texts, 2):
                blob(path, _text(rng, rng.randrange(2000, 6000)))
            blob(assets[n % len(assets)], rng.randbytes(asset_size))
        out.write(b"\n")
    out.write(b"done\n")
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    git(repo, "checkout", "-q", "-f", "main")
    venv = repo / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11\n")
    for i in range(2000):
        p = venv / "lib" / "python3.11" / "site-packages" / f"dep{i // 40:02d}" / f"m{i}.py"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(_text(rng, 4000))
    git(repo, "status", "--porcelain")  # a user's index is refreshed: status costs a stat per file


def du(path: Path) -> int:
    from loom_core.workspace import disk_usage_of

    return disk_usage_of(path)


def timed(fn, *args, **kw):
    """``(seconds, result)`` of one call."""
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def stats(xs: list[float]) -> tuple[float, float, float]:
    return min(xs), statistics.median(xs), max(xs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, help="work dir; a repository generated there earlier is reused")
    ap.add_argument("--history-mb", type=int, default=300)
    ap.add_argument("--commits", type=int, default=3000)
    ap.add_argument("--files", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the generated repository (default with --dir)")
    args = ap.parse_args(argv)
    from loom_core.workspace import Workspace

    work = args.dir or Path(tempfile.mkdtemp(prefix="loom-bench-ws-", dir=Path.cwd()))
    work.mkdir(parents=True, exist_ok=True)
    repo = work / "repo"
    if not (repo / ".git").is_dir():
        t = time.perf_counter()
        generate(repo, history_mb=args.history_mb, commits=args.commits, files=args.files)
        print(f"generated {repo} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    git_mb = du(repo / ".git") / 1e6
    tracked = len(git(repo, "ls-files").splitlines())
    print(f"repository: {repo}  .git {git_mb:.0f} MB, {tracked} tracked files, "
          f"{git(repo, 'rev-list', '--count', 'HEAD')} commits, .venv {du(repo / '.venv') / 1e6:.0f} MB")
    base = work / "sandboxes"
    wt = work / "worktree"
    fetch_clone = work / "fetch-into"
    if not fetch_clone.exists():
        git(work, "clone", "-q", "--shared", "--no-checkout", str(repo), str(fetch_clone))

    create_ws, create_wt, create_wtp, merge, fetch, added, disk_ws, disk_wt = [], [], [], [], [], [], [], []
    for r in range(args.rounds):
        ws = None
        order = ("ws", "wt", "wtp")
        for step in order[r % 3:] + order[:r % 3]:  # interleaved: no side always runs first
            os.sync()  # no side pays for another's (or the last round's) pending writeback
            if step == "ws":
                secs, ws = timed(Workspace.provision, repo, fresh=True, base_dir=base)
                create_ws.append(secs)
            elif step == "wt":
                create_wt.append(timed(git, repo, "worktree", "add", "-q", "--detach", str(wt), "HEAD")[0])
            else:  # the same with parallel checkout, as the sandbox checks out
                create_wtp.append(timed(git, repo, "-c", "checkout.workers=0", "worktree", "add", "-q", "--detach",
                                        str(wt) + "-p", "HEAD")[0])
                git(repo, "worktree", "remove", "--force", str(wt) + "-p")
        assert ws is not None
        disk_ws.append(ws.disk_usage())
        disk_wt.append(du(wt))
        git(repo, "worktree", "remove", "--force", str(wt))

        target = ws.root / "pkg00" / "mod_00000.py"
        target.write_bytes(target.read_bytes() + f"# round {r}\n".encode())
        before = du(repo / ".git")
        secs, result = timed(ws.merge_back, f"bench-{os.getpid()}-{r}")
        merge.append(secs)
        assert result.status == "merged", result
        added.append(du(repo / ".git") - before)
        fetch.append(timed(git, fetch_clone, "fetch", "-q", str(ws.copy_root), f"+{result.commit}:refs/x")[0])
        git(repo, "branch", "-q", "-D", result.branch)
        ws.discard()

    rows = [("create: Workspace.provision", create_ws), ("create: git worktree add", create_wt),
            ("create: worktree add, parallel", create_wtp),
            ("merge-back (one line)", merge), ("git fetch of the same", fetch)]
    print(f"\n{'seconds':34} {'min':>8} {'median':>8} {'max':>8}   ({args.rounds} rounds)")
    for label, xs in rows:
        lo, med, hi = stats(xs)
        print(f"{label:34} {lo:8.3f} {med:8.3f} {hi:8.3f}")
    print(f"\n{'disk (MB)':34} {'min':>8} {'median':>8} {'max':>8}")
    for label, xs in (("sandbox", disk_ws), ("git worktree", disk_wt), ("added to user .git by merge", added)):
        lo, med, hi = stats([x / 1e6 for x in xs])
        print(f"{label:34} {lo:8.3f} {med:8.3f} {hi:8.3f}")
    res = {"git_mb": round(git_mb, 1), "tracked_files": tracked, "rounds": args.rounds,
           "create_s": round(statistics.median(create_ws), 4), "worktree_s": round(statistics.median(create_wt), 4),
           "create_ratio": round(statistics.median(create_ws) / statistics.median(create_wt), 3),
           "worktree_parallel_s": round(statistics.median(create_wtp), 4),
           "create_ratio_parallel": round(statistics.median(create_ws) / statistics.median(create_wtp), 3),
           "disk_bytes": int(statistics.median(disk_ws)), "worktree_bytes": int(statistics.median(disk_wt)),
           "disk_ratio": round(statistics.median(disk_ws) / statistics.median(disk_wt), 3),
           "merge_s": round(statistics.median(merge), 4), "fetch_s": round(statistics.median(fetch), 4),
           "merge_added_bytes": int(statistics.median(added))}
    if not (args.dir or args.keep):
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
