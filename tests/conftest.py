from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The slowest tests (call + setup, measured on 2 cores), longest first. xdist (--dist loadgroup) hands tests
# out in collection order after the xdist_groups, so these start at once instead of leaving one worker with
# a long tail at the end. A prefix names a test (all its parameters) or a whole module.
SLOW_FIRST = (
    "tests/tui/test_snapshots.py",  # xdist_group("loom-scenes"): ~1 min on one worker
    "tests/engine/test_crash_matrix.py::test_crash_matrix",
    "tests/docker/",  # xdist_group("docker"): one dockerd
    "tests/agents/test_pathguard.py::test_guard_ok_means_inside_root",
    "tests/e2e/test_backends.py::test_a_stored_secret_never_appears",
    "tests/engine/test_crash_matrix.py",
    "tests/e2e/test_real_repo.py",
    "tests/e2e/test_user_work.py::test_loom_folder_never_shows_in_git_status",
    "tests/agents/test_roles.py::test_real_claude_code_read_only_roles_cannot_edit",
    "tests/e2e/test_demo.py::test_run_without_tty_parks",
    "tests/web/test_web.py::test_in_a_real_browser",
    "tests/tui/test_full_flow.py",
    "tests/agents/test_agents_see.py",
    "tests/mcp/test_drive_over_mcp.py",
    "tests/kernel/test_parse.py::test_numbers_of_any_size",
    "tests/e2e/test_backends.py",
    "tests/daemon/test_daemon_cli.py",
    "tests/tui/test_console_terminal.py",
    "tests/tui/test_console_safety.py",
    "tests/cli/test_plain_words.py",
    "tests/mcp/test_host_driven.py",
    "tests/workspace/test_checks_env.py",
    "tests/cli/test_budget_cli.py",
    "tests/claude/test_task_in_claude_code.py",
    "tests/tui/test_project_gate.py",
    "tests/agents/test_orphans.py",
    "tests/e2e/test_user_work.py",
    "tests/e2e/test_landing.py",
    "tests/engine/test_replay_verify.py",
    "tests/cli/test_bad_input.py",
)


# Modules whose module-scoped fixture is a whole task or a server: all their tests on one worker, so it is
# built once per run instead of once per worker that happens to get one of them.
ONE_WORKER = (
    "tests/agents/test_agents_see.py",
    "tests/mcp/test_drive_over_mcp.py",
    "tests/mcp/test_tools.py",
    "tests/engine/test_replay_verify.py",
    "tests/tui/test_history_settings.py",
    "tests/workspace/test_checks_env.py",  # a venv with a real editable install per build backend
    "tests/e2e/test_landing.py",
)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    """Known-slow tests first (stable otherwise), so no worker is left alone with a long one at the end."""
    def rank(item) -> int:
        nodeid = item.nodeid
        return next((i for i, prefix in enumerate(SLOW_FIRST) if nodeid.startswith(prefix)), len(SLOW_FIRST))

    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if module in ONE_WORKER and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(module.rsplit("/", 1)[-1].removesuffix(".py")))
    items.sort(key=rank)


@pytest.fixture(scope="session")
def _shared_cache(tmp_path_factory):
    """One cache folder per test worker (the checks' baseline and mypy caches stay warm between tests)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch, _shared_cache):
    """Never read or write the developer's own loom home, state (debug log) or cache."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LOOM_HOME", str(home / "loom"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("LOOM_USER_DIR", str(home / "dot-loom"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(_shared_cache))
    monkeypatch.delenv("LOOM_DEBUG", raising=False)
    monkeypatch.delenv("LOOM_CRASH_AT", raising=False)
    for name in [n for n in os.environ if n.startswith("LOOM_DOCKER")]:  # containers only where a test asks
        monkeypatch.delenv(name)


@pytest.fixture
def no_keyring():
    """No usable system keyring (a headless server): secrets go to the 0600 file."""
    import keyring
    from keyring.backends import fail

    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)


@pytest.fixture
def clock():
    from loom_core.engine.clock import FixedClock

    return FixedClock()


@pytest.fixture
def project(tmp_path) -> Path:
    p = tmp_path / "proj"
    p.mkdir()
    return p


@pytest.fixture
def engine(project, clock):
    from loom_core.bundles.spec import BUNDLE
    from loom_core.engine.engine import Engine

    e = Engine(project, bundle=BUNDLE, clock=clock)
    yield e
    e.close()


def run_loom(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m loom_core.surfaces.cli`` of this checkout (never an installed copy) in ``cwd``."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full_env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "loom_core.surfaces.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
