"""The MCP Inspector CLI (npm, the protocol's own debugging client) against ``loom-mcp``: it lists the tools
and calls one, as any MCP host would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loom_core.config import allowlist

CACHE = Path(os.environ.get("LOOM_TEST_CACHE") or Path.home() / ".cache" / "loom-test") / "inspector"
PACKAGE = "@modelcontextprotocol/inspector"


@pytest.fixture(scope="module")
def inspector() -> list[str]:
    """The Inspector's CLI, installed once into the test cache (``npm i --prefix``)."""
    marker = CACHE / "node_modules" / PACKAGE / "package.json"
    if not marker.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(f"npm is not installed: cannot install {PACKAGE}")
        try:
            cp = subprocess.run([npm, "i", "--prefix", str(CACHE), "--no-audit", "--no-fund", "-s", PACKAGE],
                                capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            pytest.skip(f"npm install of {PACKAGE} timed out (no registry?)")
        if cp.returncode != 0 or not marker.is_file():
            pytest.skip(f"npm install of {PACKAGE} failed: {(cp.stderr or cp.stdout)[-300:]}")
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    main = json.loads(marker.read_text(encoding="utf-8"))["bin"]["mcp-inspector"]
    return [node, str(marker.parent / main), "--cli"]


def server_command() -> list[str]:
    """The installed console script; the module when this checkout was not (re)installed."""
    script = shutil.which("loom-mcp") or str(Path(sys.executable).with_name("loom-mcp"))
    return [script] if Path(script).exists() else [sys.executable, "-m", "loom_core.surfaces.mcp"]


def run(inspector: list[str], *args: str) -> dict:
    cp = subprocess.run([*inspector, *server_command(), *args], capture_output=True, text=True, timeout=90)
    assert cp.returncode == 0, (cp.stdout[-600:], cp.stderr[-600:])
    return json.loads(cp.stdout)


def test_the_inspector_lists_the_tools_and_calls_one(inspector, tmp_path):
    listed = run(inspector, "--method", "tools/list")
    names = {t["name"] for t in listed["tools"]}
    assert {"pipeline_run_task", "pipeline_continue_task", "pipeline_meta", "pipeline_restore"} <= names
    assert len(names) == 11

    allowlist.add(tmp_path)  # the test's own LOOM_USER_DIR, which the server inherits
    got = run(inspector, "--method", "tools/call", "--tool-name", "pipeline_meta", "--tool-arg",
              f"project_dir={tmp_path}")
    assert not got.get("isError") and len(got["content"]) == 1
    meta = json.loads(got["content"][0]["text"])
    assert meta["server"]["name"] == "loom" and meta["providers"]["enabled"] == ["claude-code-shuttle"]
