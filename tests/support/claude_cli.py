"""The real Claude Code CLI for tests: installed once into the test cache (``npm i --prefix``), shared by the
executor tests (tests/agents) and the `/task` end-to-end test (tests/claude). Skips, with the reason, when npm
is missing, the install fails or the binary does not run."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from loom_core.agents.executors.claude_code import ClaudeCodeExecutor, excerpt

# computed at import: the autouse fixtures may point HOME-derived paths elsewhere later
CACHE = Path(os.environ.get("LOOM_TEST_CACHE") or Path.home() / ".cache" / "loom-test") / "claude-code"


@pytest.fixture(scope="session")
def claude_bin() -> str:
    """The path of the real ``claude`` binary."""
    binary = CACHE / "node_modules" / ".bin" / "claude"
    npm = shutil.which("npm")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # xdist workers install once
        if not binary.exists():
            if npm is None:
                pytest.skip("npm is not installed: cannot install @anthropic-ai/claude-code")
            cp = subprocess.run([npm, "i", "--prefix", str(CACHE), "--no-audit", "--no-fund",
                                 "@anthropic-ai/claude-code"], capture_output=True, text=True, timeout=600)
            if cp.returncode != 0 or not binary.exists():
                pytest.skip(f"npm install of @anthropic-ai/claude-code failed: {excerpt(cp.stderr, 300, 300)}")
    ClaudeCodeExecutor._available.pop(str(binary), None)
    ok, why = ClaudeCodeExecutor.available(str(binary))
    if not ok:
        pytest.skip(f"Claude Code CLI does not run: {why}")
    return str(binary)
