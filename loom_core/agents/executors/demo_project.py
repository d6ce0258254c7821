"""Create the demo project `loom demo` works on: a git repository with a real test suite."""

from __future__ import annotations

from pathlib import Path

from loom_core.agents.executors.demo import PRICING, write_demo_project
from loom_core.errors import ConfigError


def is_demo_project(project: Path) -> bool:
    """True when ``project`` is a loom demo project (its pricing module with ``apply_discount``)."""
    try:
        return "def apply_discount" in (Path(project) / PRICING).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def require_demo_project(project: Path) -> None:
    """The demo backend's agents are scripted for the demo project only: refuse any other one."""
    if not is_demo_project(project):
        raise ConfigError(f"the demo backend only works on loom's demo project, not {project}: create one with "
                          "`loom demo [DIR]`, or pick a real backend (--backend claude-code|anthropic|openrouter"
                          "|ollama)", code="DEMO_FOREIGN_PROJECT")


def create_demo_project(target: Path) -> bool:
    """Create (True) or reuse (False) a demo project at ``target``. Refuses a non-empty
    directory that is not a loom demo project."""
    import pygit2

    target = Path(target)
    if target.exists() and any(target.iterdir()):
        if (target / PRICING).is_file() and (target / ".git").exists():
            return False
        raise ConfigError(f"{target} exists and is not empty; choose a new directory for the demo")
    target.mkdir(parents=True, exist_ok=True)
    write_demo_project(target)
    repo = pygit2.init_repository(str(target), initial_head="main")
    repo.index.add_all()
    repo.index.write()
    tree = repo.index.write_tree()
    sig = pygit2.Signature("loom demo", "demo@loom.invalid")
    repo.create_commit("HEAD", sig, sig, "demo shop: initial version", tree, [])
    return True
