"""Environment overrides go through the settings (LOOM_MAX_SPAWNS, LOOM_STALL_MINUTES, LOOM_HARNESS), a bad
value is a one-line ConfigError naming the variable; backend and policy names come from the registries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loom_core.agents import registry
from loom_core.config import paths
from loom_core.config.settings import LoomSettings, load_settings, set_key
from loom_core.errors import ConfigError
from loom_core.kernel.gates import BUILTIN_POLICIES, PRESETS

ROOT = Path(__file__).resolve().parents[2]


def test_loom_max_spawns_sets_the_cap_over_the_file_and_under_the_nested_name(monkeypatch):
    set_key("general.max_spawns", "12")
    monkeypatch.setenv("LOOM_MAX_SPAWNS", "7")
    assert load_settings().general.max_spawns == 7
    monkeypatch.setenv("LOOM_GENERAL__MAX_SPAWNS", "9")
    assert load_settings().general.max_spawns == 9


@pytest.mark.parametrize("value", ["many", "-1", "10001"])
def test_a_bad_loom_max_spawns_is_a_usage_error_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("LOOM_MAX_SPAWNS", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.code == "USAGE" and str(info.value).startswith("LOOM_MAX_SPAWNS must be")
    assert f"'{value}'" in str(info.value) and "\n" not in str(info.value)


def test_loom_stall_minutes_sets_the_status_threshold(monkeypatch):
    from loom_core.control.status import stall_minutes

    assert stall_minutes() == 50.0
    set_key("general.stall_minutes", "20")
    assert stall_minutes() == 20.0  # the setting acts (it was read by nothing before)
    monkeypatch.setenv("LOOM_STALL_MINUTES", "5.5")
    assert stall_minutes() == 5.5


@pytest.mark.parametrize("value", ["soon", "0"])
def test_a_bad_loom_stall_minutes_is_refused_not_ignored(monkeypatch, value):
    from loom_core.control.status import stall_minutes

    monkeypatch.setenv("LOOM_STALL_MINUTES", value)
    with pytest.raises(ConfigError) as info:
        stall_minutes()
    assert info.value.code == "USAGE" and str(info.value).startswith("LOOM_STALL_MINUTES must be")


def test_loom_harness_is_the_harness_setting(monkeypatch):
    from loom_core.agents.backends import Resolver

    monkeypatch.setenv("LOOM_HARNESS", "Aider")
    assert load_settings().harness == "aider"
    assert Resolver(load_settings(), secrets=object()).harness_name() == "aider"
    monkeypatch.setenv("LOOM_HARNESS", "cursor")
    with pytest.raises(ConfigError, match=r"harness: unknown harness 'cursor' \(known: aider, opencode\)"):
        load_settings()


def test_nothing_else_reads_these_variables_by_hand():
    pattern = re.compile(r"environ[^\n]*LOOM_(MAX_SPAWNS|STALL_MINUTES|HARNESS)|getenv\(\s*['\"]LOOM_(MAX_SPAWNS|"
                         r"STALL_MINUTES|HARNESS)")
    found = [str(p.relative_to(ROOT)) for p in (ROOT / "loom_core").rglob("*.py") if pattern.search(p.read_text())]
    assert found == []


def test_the_backend_setting_knows_the_registry_and_says_what_it_knows():
    assert LoomSettings.model_json_schema()["properties"]["backend"]["enum"] == list(registry.choices())
    for name in registry.choices():
        assert LoomSettings(backend=name).backend == name
    paths.config_path().parent.mkdir(parents=True, exist_ok=True)
    paths.config_path().write_text('backend = "gpt"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert f"backend: unknown backend 'gpt' (known: {', '.join(registry.choices())})" in str(info.value)


def test_default_policy_takes_the_kernels_policies_and_presets_and_acts_only_when_named():
    known = tuple(BUILTIN_POLICIES) + tuple(PRESETS)
    assert load_settings().general.policy_if_set() is None  # unset: the bundle's own gate defaults
    set_key("general.default_policy", "review-plan-only")
    assert load_settings().general.policy_if_set() == "review-plan-only"
    with pytest.raises(ConfigError, match=f"unknown policy 'sometimes' \\(known: {', '.join(known)}\\)"):
        set_key("general.default_policy", "sometimes")


# ---------------------------------------------------------------------- the settings act where they say
def test_a_run_takes_its_cap_concurrency_and_policy_from_the_settings_unless_given(monkeypatch):
    from loom_core.engine.options import RunOptions

    opts = RunOptions()
    assert (opts.spawn_cap(), opts.concurrency(), opts.gate_policies()) == (40, 4, {})
    set_key("general.max_concurrent", "2")
    set_key("general.default_policy", "human")
    monkeypatch.setenv("LOOM_MAX_SPAWNS", "3")
    assert (opts.spawn_cap(), opts.concurrency()) == (3, 2)
    assert opts.gate_policies() == {"classify": "human", "plan": "human", "final": "human"}
    set_key("general.default_policy", "review-final-only")
    assert opts.gate_policies() == dict(PRESETS["review-final-only"])
    given = RunOptions(policy="auto", max_spawns=9, max_concurrent=1)
    given.validate()
    assert (given.spawn_cap(), given.concurrency(), given.gate_policies()["plan"]) == (9, 1, "auto")


def test_a_runs_complexities_and_policies_come_from_its_bundle_and_the_kernel():
    from loom_core.engine.options import RunOptions

    with pytest.raises(ConfigError, match="--complexity must be one of trivial, simple, medium, complex, question"):
        RunOptions(complexity="huge").validate()
    with pytest.raises(ConfigError, match="spec bundle has no complexities"):
        RunOptions(bundle="spec", complexity="medium").validate()
    with pytest.raises(ConfigError, match=f"--policy must be one of {', '.join(tuple(BUILTIN_POLICIES) + tuple(PRESETS))}"):
        RunOptions(policy="sometimes").validate()
    with pytest.raises(ConfigError, match=f"--backend must be one of {', '.join(registry.choices())}, got 'gpt'"):
        RunOptions(backend="gpt").validate()


@pytest.mark.parametrize("animation, level", [(False, "none"), (True, "full")])
def test_ui_animation_sets_the_consoles_animation_level(tmp_path, animation, level):
    import asyncio

    from loom_core.control.catalog import Catalog
    from loom_tui.app import make_app

    set_key("ui.animation", str(animation).lower())

    async def go():
        catalog = Catalog([], tmp_path / "workspace.json")
        catalog.add(tmp_path)
        app = make_app(catalog, watch=False)
        async with app.run_test(size=(80, 24)):
            assert app.animation_level == level

    asyncio.run(go())


def test_a_named_default_policy_governs_a_real_run_started_without_policy(tmp_path):
    from loom_core.agents.executors.demo_project import create_demo_project
    from loom_core.engine.runner import demo_task
    from tests.conftest import run_loom

    unset, named = tmp_path / "unset", tmp_path / "named"
    for proj in (unset, named):
        create_demo_project(proj)
    proc = run_loom("run", "--backend", "demo", demo_task(), cwd=unset, timeout=120)
    assert proc.returncode == 0 and "parked" not in proc.stdout  # the bundle's own gates: nothing blocks
    set_key("general.default_policy", "human")  # the run below names no --policy
    proc = run_loom("run", "--backend", "demo", demo_task(), cwd=named, timeout=120)
    assert proc.returncode == 3, proc.stderr[-400:]  # parked: a person decides at the first gate
    assert "parked at gate 'gate-classify'" in proc.stdout
