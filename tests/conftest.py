from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
