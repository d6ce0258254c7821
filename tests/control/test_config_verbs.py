"""The facade's settings, secrets and models verbs over a real settings file in a tmp loom home."""

from __future__ import annotations

import stat
import tomllib

import pytest

from loom_core.config import paths
from loom_core.control import ControlClient, LocalControl, backend_names, complexity_names, policy_names
from loom_core.control.catalog import Catalog
from loom_core.errors import ConfigError

SECRET = "sk-TOPSECRET-0123456789"


@pytest.fixture
def control(tmp_path):
    return LocalControl(Catalog([], tmp_path / "workspace.json"))


def _file() -> dict:
    return tomllib.loads(paths.config_path().read_text())


def test_local_control_is_a_control_client_with_the_config_verbs(control):
    assert isinstance(control, ControlClient)
    for verb in ("config", "config_get", "config_set", "config_keys", "config_check", "config_save", "secrets",
                 "set_secret", "unset_secret", "models", "set_model", "backends", "policies", "complexities"):
        assert callable(getattr(control, verb)), verb


def test_config_set_writes_the_file_and_get_reads_the_effective_value(control, monkeypatch):
    assert control.config_get("general.max_spawns") == 40
    assert control.config_set("general.max_spawns", "12") == 12
    assert _file() == {"general": {"max_spawns": 12}}
    monkeypatch.setenv("LOOM_GENERAL__MAX_SPAWNS", "7")
    assert control.config_get("general.max_spawns") == 7  # the environment wins over the file
    assert control.config(file_only=True)["general"]["max_spawns"] == 12
    assert control.config()["general"]["max_spawns"] == 7
    assert "max_spawns = 7" in control.config_text()
    assert control.config_set("general.max_spawns", "") == 7  # reset in the file; env still acts
    assert "general" not in _file()


def test_config_set_refuses_an_unknown_key_or_bad_value_and_writes_nothing(control):
    with pytest.raises(ConfigError) as info:
        control.config_set("general.nope", "1")
    assert info.value.code == "USAGE" and "general.max_spawns" in str(info.value)
    with pytest.raises(ConfigError) as info:
        control.config_set("general.max_spawns", "-3")
    assert info.value.code == "USAGE" and "general.max_spawns" in str(info.value)
    assert not paths.config_path().exists()
    assert "general.max_spawns" in control.config_keys() and "models.<agent>" in control.config_keys()


def test_config_check_and_save_a_document_keep_the_maps_on_disk(control):
    control.set_model("planner", "fast")
    doc = control.config(file_only=True)
    doc["general"]["max_spawns"] = -1
    doc["ui"]["theme"] = "purple"
    errors = control.config_check(doc)
    assert set(errors) == {"general.max_spawns", "ui.theme"}
    with pytest.raises(ConfigError) as info:
        control.config_save(doc)
    assert info.value.detail["errors"] == errors
    assert _file() == {"models": {"planner": "fast"}}  # nothing written
    doc["general"]["max_spawns"], doc["ui"]["theme"] = 9, "light"
    doc["models"] = {}  # a stale map from the form: the file's wins
    assert control.config_check(doc) == {}
    saved = control.config_save(doc)
    assert saved["general"]["max_spawns"] == 9 and saved["models"] == {"planner": "fast"}
    assert _file() == {"general": {"max_spawns": 9}, "ui": {"theme": "light"}, "models": {"planner": "fast"}}
    assert "properties" in control.config_schema() and control.config_path() == paths.config_path()


def test_secrets_go_in_and_only_masks_come_out(control, no_keyring):
    stored = control.set_secret("anthropic", SECRET)
    assert stored["name"] == "anthropic" and SECRET not in str(stored) and stored["masked"].endswith("6789")
    listing = control.secrets()
    assert listing["secrets"] == [("anthropic", stored["masked"])] and SECRET not in str(listing)
    assert "0600" in listing["where"]
    store = control.secret_store()
    assert store.get("anthropic") == SECRET and stat.S_IMODE(store.file_path.stat().st_mode) == 0o600
    assert not paths.config_path().exists()  # a secret never goes into the settings file
    assert control.unset_secret("anthropic") is True and control.unset_secret("anthropic") is False
    assert control.secrets()["secrets"] == []


def test_models_rows_overrides_and_unknown_agents(control):
    rows = {r["agent"]: r for r in control.models()}
    planner = rows["planner"]
    assert planner["override"] is None and planner["source"] == "bundle-default"
    assert planner["ref"] == planner["default"]
    row = control.set_model("planner", "anthropic:claude-opus-4")
    assert (row["override"], row["ref"], row["model"], row["source"]) == (
        "anthropic:claude-opus-4", "anthropic:claude-opus-4", "anthropic:claude-opus-4", "override")
    assert control.set_model("planner", "fast")["model"] == "haiku"  # a tier through the bundle's table
    with pytest.raises(ConfigError, match="unknown agent 'ghost'"):
        control.set_model("ghost", "fast")
    with pytest.raises(ConfigError, match="unknown provider"):
        control.set_model("planner", "acme:big")
    paths.config_path().write_text('[models]\nghost = "balanced"\n')  # written by hand, or an old bundle
    assert "ghost" not in {r["agent"] for r in control.models()}
    stray = [r for r in control.models(stray=True) if r["agent"] == "ghost"]
    assert stray == [{"agent": "ghost", "default": None, "override": "balanced", "ref": "balanced",
                      "model": "sonnet", "source": "unknown-agent", "fallbacks": []}]
    assert control.set_model("ghost", "")["override"] is None  # clearing a stray override is allowed
    assert "models" not in _file()


def test_backends_say_which_can_run_here_and_why_not(control, monkeypatch, no_keyring):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    rows = {r["name"]: r for r in control.backends()}
    assert [r["name"] for r in control.backends()] == list(backend_names())
    assert rows["auto"]["usable"] and rows["demo"]["usable"]
    assert not rows["anthropic"]["usable"] and "loom secrets set anthropic" in rows["anthropic"]["why"]
    assert rows["anthropic"]["needs_key"] and not rows["ollama"]["needs_key"]
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    assert {r["name"]: r for r in control.backends()}["anthropic"]["usable"]
    table = control.backends(check=False)  # the table alone: nothing checked, nothing started
    assert [r["name"] for r in table] == list(backend_names())
    assert all(r["usable"] is None for r in table[1:]) and table[2]["label"] == "Claude Code CLI"


def test_policies_and_complexities_come_from_the_kernel_and_the_bundle(control):
    from loom_core.bundles import load_bundle
    from loom_core.kernel.gates import BUILTIN_POLICIES, PRESETS

    assert control.policies() == policy_names() == tuple(BUILTIN_POLICIES) + tuple(PRESETS)
    assert control.complexities() == complexity_names("code") == tuple(load_bundle("code").complexity_flows.map)
    assert "question" in control.complexities() and complexity_names("spec") == ()
