"""Checks runner: detection, real subprocess runs in throwaway repos, envelope, failures file, executor."""

from __future__ import annotations

import importlib.util
import json
import shutil
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from loom_core.agents.executors.checks import ChecksExecutor
from loom_core.errors import ExecutorError
from loom_core.kernel.types import Intent
from loom_core.workspace import checks
from loom_core.workspace.checks import (
    CheckResult,
    CheckSpec,
    Location,
    detect_checks,
    envelope,
    parse_locations,
    run_checks,
    write_failures,
)

FAST_PYTEST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # inner pytest runs skip the outer env's plugins


@pytest.fixture(autouse=True)
def _fresh_probe_cache():
    checks.detect._tool_runs.cache_clear()
    yield
    checks.detect._tool_runs.cache_clear()


def write(root: Path, rel: str, text: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def fake_bin(tmp_path: Path, *names: str) -> Path:
    """A PATH dir of stand-in tools that answer anything with exit 0."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir(exist_ok=True)
    for n in names:
        p = bindir / n
        p.write_text("#!/bin/sh\nexit 0\n")
        p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bindir


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def intent() -> Intent:
    return Intent(agent="checks-runner", agent_run_id="ar-1", phase="checks", model="", prompt="")


needs_pytest = pytest.mark.skipif(importlib.util.find_spec("pytest") is None, reason="pytest not importable")


# ------------------------------------------------------------------ 1. pytest
@needs_pytest
def test_python_repo_passing_and_failing(tmp_path, monkeypatch):
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)  # an activated venv would be the project's environment
    repo = tmp_path / "repo"
    write(repo, "tests/test_a.py", "def test_ok():\n    assert 1 + 1 == 2\n")
    specs = detect_checks(repo)
    assert list(specs) == ["typecheck", "lint", "test"]
    assert specs["lint"] is None and specs["typecheck"] is None
    spec = specs["test"]
    # the interpreter on PATH (outside version-manager shims), whole suite, every failure listed (no -x)
    assert spec is not None and spec.argv[1:] == ["-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider"]
    assert "shims" not in Path(spec.argv[0]).parts and spec.reason.startswith("pytest (PATH")
    assert "tests/" in spec.reason
    logs: list[str] = []
    res = by_name(run_checks(repo, specs, log=logs.append, env=FAST_PYTEST))
    assert res["test"].status == "ok" and res["test"].exit_code == 0
    assert "1 passed" in res["test"].output_tail
    assert any(line.startswith("running test: ") for line in logs)
    assert any(line.startswith("test: ok (") for line in logs)
    assert not (repo / ".pytest_cache").exists()

    write(repo, "tests/test_a.py", "def test_ok():\n    x = 1\n    assert x == 2\n")
    logs.clear()
    res = by_name(run_checks(repo, detect_checks(repo), log=logs.append, env=FAST_PYTEST))
    t = res["test"]
    assert t.status == "fail" and t.exit_code == 1
    assert Location("tests/test_a.py", 3, "AssertionError") in t.locations
    assert "test: FAILED exit 1" in " ".join(logs)


def test_pytest_needs_python_evidence(tmp_path):
    # a tests/ dir of non-Python files (a Rust or JS repo) is not a pytest suite
    write(tmp_path, "tests/integration.rs", "#[test] fn t() {}\n")
    assert detect_checks(tmp_path)["test"] is None


# ------------------------------------------------------------------ 2. ruff
@pytest.mark.skipif(not (shutil.which("ruff") or importlib.util.find_spec("ruff")), reason="ruff not installed")
def test_ruff_detected_and_locates_unused_import(tmp_path):
    write(tmp_path, "pyproject.toml", "[project]\nname = 'x'\nversion = '0'\n\n[tool.ruff]\nline-length = 100\n")
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/mod.py", "import os\n\n\ndef f():\n    return 1\n")
    specs = detect_checks(tmp_path)
    lint = specs["lint"]
    assert lint is not None and lint.argv is not None and "ruff" in " ".join(lint.argv)
    assert lint.argv[-6:] == ["check", "--no-fix", "--no-cache", "--output-format", "concise", "."]
    assert "[tool.ruff]" in lint.reason
    r = by_name(run_checks(tmp_path, specs))["lint"]
    assert r.status == "fail" and r.exit_code == 1
    loc = next(loc for loc in r.locations if loc.file == "pkg/mod.py")
    assert loc.line == 1 and "F401" in loc.message
    assert not (tmp_path / ".ruff_cache").exists()

    write(tmp_path, "pkg/mod.py", "def f():\n    return 1\n")
    assert by_name(run_checks(tmp_path, specs))["lint"].status == "ok"


def test_ruff_not_detected_without_config(tmp_path):
    write(tmp_path, "pyproject.toml", "[project]\nname = 'x'\n")
    write(tmp_path, "mod.py", "import os\n")
    assert detect_checks(tmp_path)["lint"] is None


# ------------------------------------------------------------------ 3. configured commands
def test_configured_command_wins(tmp_path):
    write(tmp_path, "tests/test_a.py", "def test_ok():\n    pass\n")
    specs = detect_checks(tmp_path, {"test": "echo configured && exit 3", "lint": ""})
    spec = specs["test"]
    assert spec is not None and spec.argv is None and spec.shell == "echo configured && exit 3"
    assert spec.reason == "configured: checks.test"
    r = by_name(run_checks(tmp_path, specs))["test"]
    assert r.status == "fail" and r.exit_code == 3 and "configured" in r.output_head
    assert r.command == "echo configured && exit 3"


def test_configured_missing_command_fails_clearly(tmp_path):
    specs = detect_checks(tmp_path, {"lint": "loom-no-such-tool-xyz --check"})
    r = by_name(run_checks(tmp_path, specs))["lint"]
    assert r.status == "fail" and r.exit_code == 127
    assert "command not found" in r.reason
    assert "loom-no-such-tool-xyz" in r.output_head

    spec = CheckSpec("test", ["/nonexistent/loom-tool"], reason="test")
    r = run_checks(tmp_path, {"test": spec})[0]
    assert r.status == "fail" and r.exit_code == 127
    assert r.reason == "command not found: /nonexistent/loom-tool"


def test_missing_root_is_an_executor_error(tmp_path):
    with pytest.raises(ExecutorError):
        run_checks(tmp_path / "gone", {"test": CheckSpec("test", ["true"])})


# ------------------------------------------------------------------ 4. nothing to detect
def test_empty_repo_skips_everything(tmp_path):
    specs = detect_checks(tmp_path)
    assert specs == {"typecheck": None, "lint": None, "test": None}
    results = run_checks(tmp_path, specs)
    assert [r.name for r in results] == ["typecheck", "lint", "test"]
    assert all(r.status == "skipped" and r.exit_code is None for r in results)
    assert by_name(results)["test"].reason == "no test command found"
    data = json.loads(envelope(results))
    assert [c["status"] for c in data["checks"]] == ["skipped"] * 3
    assert set(data["checks"][0]) == {"name", "status", "exit_code", "command", "output_head", "output_tail",
                                      "reason", "locations", "new_failures", "preexisting", "scope", "cached", "expected"}
    assert data["tree_changes"] == [] and data["disabled"] is False and data["environment"]["verified"] is None


# ------------------------------------------------------------------ 5. timeout and cancel
def test_timeout_kills_the_group(tmp_path):
    started = time.monotonic()
    r = run_checks(tmp_path, detect_checks(tmp_path, {"test": "sleep 30"}), timeout_s=0.5)[2]
    assert time.monotonic() - started < 6
    assert r.status == "fail" and r.exit_code is None and r.reason == "timed out after 0.5 s"
    assert "timed out after 0.5 s" in r.output_tail and "SIGTERM" in r.output_tail


def test_sigkill_after_grace_when_sigterm_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setattr(checks.run, "KILL_GRACE_S", 0.3)
    started = time.monotonic()
    r = run_checks(tmp_path, {"test": CheckSpec("test", None, shell="trap '' TERM; echo armed; sleep 30")},
                   timeout_s=0.5)[0]
    assert time.monotonic() - started < 4
    assert r.status == "fail" and r.exit_code is None
    assert "SIGKILL" in r.output_tail and "armed" in r.output_head


def test_background_leftovers_do_not_hang(tmp_path):
    started = time.monotonic()
    r = run_checks(tmp_path, {"test": CheckSpec("test", None, shell="sleep 30 & echo done")})[0]
    assert time.monotonic() - started < 4
    assert r.status == "ok" and "done" in r.output_head


def test_cancel_stops_the_running_check_and_skips_the_rest(tmp_path):
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    results = run_checks(tmp_path, detect_checks(tmp_path, {"typecheck": "sleep 30", "test": "echo hi"}),
                         cancel=cancel)
    assert time.monotonic() - started < 6
    res = by_name(results)
    assert res["typecheck"].status == "fail" and res["typecheck"].exit_code is None
    assert res["typecheck"].reason == "cancelled" and "cancelled" in res["typecheck"].output_tail
    assert res["lint"].status == "skipped" and res["lint"].reason == "no lint command found"
    assert res["test"].status == "skipped" and res["test"].reason == "cancelled before it ran"


# ------------------------------------------------------------------ output capture
def test_head_and_tail_are_bounded(tmp_path):
    cmd = "head -c 100000 /dev/zero | tr '\\0' a; echo; echo THE-END; exit 1"
    r = run_checks(tmp_path, {"test": CheckSpec("test", None, shell=cmd)})[0]
    assert len(r.output_head) == 32 * 1024 and set(r.output_head) == {"a"}
    assert len(r.output_tail) == 16 * 1024 and r.output_tail.rstrip().endswith("THE-END")


def test_signal_death_reported_like_a_shell(tmp_path):
    r = run_checks(tmp_path, {"test": CheckSpec("test", None, shell="kill -SEGV $$")})[0]
    assert r.status == "fail" and r.exit_code == 139 and r.reason == "killed by SIGSEGV"


# ------------------------------------------------------------------ location parsing
def test_parse_locations_formats(tmp_path):
    for rel in ("a.py", "pkg/mod.py", "main.go", "src/main.rs", "src/a.ts", "tests/test_x.py"):
        write(tmp_path, rel, "x\n")
    outside = tmp_path.parent / "outside.py"
    outside.write_text("x\n")
    text = "\n".join([
        "\x1b[31ma.py:4: error: Incompatible return value  [return-value]\x1b[0m",  # mypy (+ colour)
        "pkg/mod.py:3:1: F401 [*] `os` imported but unused",  # ruff concise
        "# example\nvet: ./main.go:5:2: unreachable code",  # go vet
        "error[E0425]: cannot find value `y` in this scope",  # rust / ruff full
        "  --> src/main.rs:2:5",
        "src/a.ts(3,5): error TS2322: Type 'string' is not assignable to type 'number'.",  # tsc
        f'  File "{tmp_path}/tests/test_x.py", line 7, in test_it',  # python traceback, absolute
        f"{outside}:1: not under root",
        "missing.py:9: no such file",
        "FAILED tests/test_x.py::test_it - assert 1 == 2",
        "pkg/mod.py:3:10: E501 a second rule on the same line",
        "a.py:4: error: Incompatible return value  [return-value]",  # exact repeat: dropped
        "12:30:45 a timestamp",
    ])
    locs = parse_locations(tmp_path, text)
    assert [(loc.file, loc.line) for loc in locs] == [
        ("a.py", 4), ("pkg/mod.py", 3), ("main.go", 5), ("src/main.rs", 2), ("src/a.ts", 3), ("tests/test_x.py", 7),
        ("pkg/mod.py", 3)]
    assert locs[0].message == "error: Incompatible return value  [return-value]"
    assert locs[1].message.startswith("F401")
    assert locs[3].message.startswith("error[E0425]")
    assert locs[4].message.startswith("error TS2322")
    assert locs[5].message == "in test_it"


def test_parse_locations_bounded(tmp_path):
    write(tmp_path, "a.py", "x\n")
    text = "\n".join(f"a.py:{i}: {'m' * 500}" for i in range(1, 50))
    locs = parse_locations(tmp_path, text)
    assert len(locs) == 20 and all(len(loc.message) == 200 for loc in locs)


# ------------------------------------------------------------------ 6. failures file
def test_write_failures_writes_then_deletes(tmp_path):
    path = tmp_path / ".loom" / "work" / "check-failures.txt"
    failed = CheckResult("test", "fail", "pytest -q", 1, "HEAD-START\n", "x" * 20000 + "TAIL-END\n",
                         locations=[Location("tests/test_a.py", 3, "AssertionError")])
    ok = CheckResult("lint", "ok", "ruff check .", 0, "", "")
    write_failures(tmp_path, [ok, failed])
    text = path.read_text()
    assert "== test: FAILED ==" in text and "command: pytest -q" in text and "exit: 1" in text
    assert "HEAD-START" in text and "TAIL-END" in text and "tests/test_a.py:3: AssertionError" in text
    assert "lint" not in text
    assert text.count("x") < 8 * 1024 + 200  # the tail is cut to <= 8 KB
    write_failures(tmp_path, [ok, CheckResult("test", "skipped", "", None, "", "", reason="none")])
    assert not path.exists()
    write_failures(tmp_path, [ok])  # deleting twice is fine
    assert not path.exists()


def test_write_failures_short_output_not_duplicated(tmp_path):
    out = "boom\n"
    write_failures(tmp_path, [CheckResult("test", "fail", "false", 1, out, out)])
    assert (tmp_path / ".loom" / "work" / "check-failures.txt").read_text().count("boom") == 1


# ------------------------------------------------------------------ 7. executor
def test_checks_executor_returns_envelope(tmp_path):
    ex = ChecksExecutor(lambda: tmp_path, configured={"test": "echo all good"}, timeout_s=30)
    assert (ex.name, ex.idempotent) == ("checks", True)
    logs: list[str] = []
    result = ex.execute(intent(), threading.Event(), logs.append)
    data = json.loads(result.output)
    statuses = {c["name"]: c["status"] for c in data["checks"]}
    assert statuses == {"typecheck": "skipped", "lint": "skipped", "test": "ok"}
    assert "all good" in data["checks"][2]["output_head"]
    assert result.usage.tokens_in == 0 and result.usage.duration_ms is not None
    assert logs and not (tmp_path / ".loom" / "work" / "check-failures.txt").exists()

    ex = ChecksExecutor(lambda: tmp_path, configured={"lint": "echo bad; exit 2"})
    data = json.loads(ex.execute(intent(), threading.Event(), logs.append).output)
    assert data["checks"][1]["status"] == "fail" and data["checks"][1]["exit_code"] == 2
    assert "exit: 2" in (tmp_path / ".loom" / "work" / "check-failures.txt").read_text()


def test_checks_executor_cancelled_raises(tmp_path):
    cancel = threading.Event()
    cancel.set()
    ex = ChecksExecutor(lambda: tmp_path, configured={"test": "echo hi"})
    with pytest.raises(ExecutorError) as err:
        ex.execute(intent(), cancel, lambda _line: None)
    assert err.value.code == "CHECKS_CANCELLED"


# ------------------------------------------------------------------ 8. node / go / rust / mypy detection
def test_package_json_scripts(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    write(repo, "package.json", json.dumps({"scripts": {"test": "node -e 0", "lint": "eslint .", "build": "tsc"}}))
    monkeypatch.setenv("PATH", str(fake_bin(tmp_path, "npm", "yarn")))
    specs = detect_checks(repo)
    assert specs["test"] is not None and specs["test"].argv == ["npm", "run", "test"]
    assert specs["lint"] is not None and specs["lint"].argv == ["npm", "run", "lint"]
    assert specs["typecheck"] is None

    (repo / "yarn.lock").write_text("")
    assert detect_checks(repo)["test"].argv == ["yarn", "run", "test"]
    (repo / "pnpm-lock.yaml").write_text("")  # pnpm wins the lockfile order, but is not installed
    assert detect_checks(repo)["test"] is None

    write(repo, "package.json", json.dumps({"scripts": {"test": 'echo "Error: no test specified" && exit 1'}}))
    assert detect_checks(repo)["test"] is None  # npm init's placeholder


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")
def test_package_json_script_runs_with_npm(tmp_path):
    write(tmp_path, "package.json", json.dumps({"name": "x", "version": "0.0.0",
                                                "scripts": {"test": "echo npm-script-ran"}}))
    specs = detect_checks(tmp_path)
    assert specs["test"] is not None and specs["test"].argv == ["npm", "run", "test"]
    r = by_name(run_checks(tmp_path, specs, env={"npm_config_update_notifier": "false"}))["test"]
    assert r.status == "ok" and "npm-script-ran" in r.output_head


def test_go_and_rust_detection(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(fake_bin(tmp_path, "go", "cargo")))
    go = tmp_path / "go"
    write(go, "go.mod", "module x\n")
    specs = detect_checks(go)
    assert specs["test"].argv == ["go", "test", "./..."] and specs["lint"].argv == ["go", "vet", "./..."]
    rust = tmp_path / "rust"
    write(rust, "Cargo.toml", "[package]\nname = 'x'\n")
    write(rust, "tests/it.rs", "")
    specs = detect_checks(rust)
    assert specs["test"].argv == ["cargo", "test"]
    assert specs["lint"].argv == ["cargo", "clippy", "-q"]  # the fake cargo answers `clippy --version`


def test_mypy_only_when_configured_and_only_from_the_environment(tmp_path, monkeypatch):
    # a mypy on PATH is not the project's: it would not see the project's dependencies
    monkeypatch.setenv("PATH", f"{fake_bin(tmp_path, 'mypy')}:{Path(sys.executable).parent}")
    repo = tmp_path / "repo"
    write(repo, "pyproject.toml", "[project]\nname = 'x'\n")
    assert detect_checks(repo)["typecheck"] is None
    write(repo, "pyproject.toml", "[project]\nname = 'x'\n\n[tool.mypy]\nstrict = true\n")
    spec = detect_checks(repo)["typecheck"]
    if importlib.util.find_spec("mypy") is None:
        assert spec is not None and spec.argv is None
        assert spec.skip is not None and spec.skip.startswith("mypy is not installed in ")
        return
    assert spec is not None and spec.argv[1:3] == ["-m", "mypy"] and spec.argv[-1] == "."
    write(repo, "pyproject.toml", "[tool.mypy]\nfiles = ['src']\n")
    assert detect_checks(repo)["typecheck"].argv[-1] != "."
