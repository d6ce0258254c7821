"""Settings: env over file over defaults, TOML round trip, one-line errors naming the key;
secrets never in the config file, a 0600 file when no keyring is usable."""

from __future__ import annotations

import stat
import tomllib

import pytest
from keyring.backends import fail

from loom_core.config import paths
from loom_core.config.secrets import SecretStore, mask, usable_keyring
from loom_core.config.settings import (
    LoomSettings,
    get_key,
    load_settings,
    save_settings,
    set_key,
    to_toml,
    valid_keys,
)
from loom_core.errors import ConfigError
from tests.support.tattle_keyring import MemoryKeyring


def test_defaults_and_every_field_has_help():
    s = load_settings()
    assert s.backend == "auto" and s.general.max_spawns == 40 and s.general.max_concurrent == 4
    assert s.general.default_policy == "on-blockers" and s.ui.theme == "dark" and s.ui.animation is False
    schema = LoomSettings.model_json_schema()
    defs = schema["$defs"]

    def walk(props):
        for name, p in props.items():
            assert p.get("description"), f"{name} has no help text"
            if "$ref" in p:
                walk(defs[p["$ref"].rsplit("/", 1)[1]]["properties"])

    walk(schema["properties"])


def test_env_overrides_file_and_nests(monkeypatch):
    paths.config_path().parent.mkdir(parents=True, exist_ok=True)
    paths.config_path().write_text('backend = "ollama"\n[general]\nmax_spawns = 7\nstall_minutes = 5.5\n')
    s = load_settings()
    assert (s.backend, s.general.max_spawns, s.general.stall_minutes) == ("ollama", 7, 5.5)
    monkeypatch.setenv("LOOM_GENERAL__MAX_SPAWNS", "12")
    monkeypatch.setenv("LOOM_BACKEND", "demo")
    s = load_settings()
    assert (s.backend, s.general.max_spawns, s.general.stall_minutes) == ("demo", 12, 5.5)
    assert get_key("general.max_spawns") == 12
    assert LoomSettings(backend="anthropic").backend == "anthropic"  # init wins over env


def test_toml_round_trip():
    s = LoomSettings.model_validate({
        "backend": "openrouter",
        "general": {"max_spawns": 0, "stall_minutes": 1.25, "max_concurrent": 8, "default_policy": "human"},
        "ui": {"theme": "light", "animation": True},
        "models": {"planner": "anthropic:claude-opus-4", "code-analyzer": "fast",
                   "odd agent": "openrouter:meta/llama:70b"},
        "providers": {"openrouter": {"base_url": 'https://x.test/"q"\\', "api_key": "secret:or-key"},
                      "ollama": {"host": "http://gpu:11434"}},
        "checks": {"test": "pytest -q\t-x", "lint": "ruff check ."},
    })
    save_settings(s)
    text = paths.config_path().read_text()
    tomllib.loads(text)  # well-formed
    assert load_settings() == s
    assert stat.S_IMODE(paths.config_path().stat().st_mode) & 0o077 in (0, 0o044, 0o004, 0o040)
    assert to_toml({}) == ""


def test_set_key_validates_and_writes():
    set_key("general.max_spawns", "9")
    set_key("ui.animation", "true")
    set_key("models.planner", "anthropic:claude-x")
    data = tomllib.loads(paths.config_path().read_text())
    assert data["general"] == {"max_spawns": 9}
    assert data["ui"] == {"animation": True} and data["models"] == {"planner": "anthropic:claude-x"}
    set_key("models.planner", "")  # empty clears
    assert "models" not in tomllib.loads(paths.config_path().read_text())
    assert get_key("general.max_spawns") == 9


def test_bad_key_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        set_key("general.max_spawn", "3")
    msg = str(err.value)
    assert "general.max_spawn'" in msg and "general.max_spawns" in msg and "\n" not in msg
    assert "general.max_spawns" in valid_keys() and "models.<agent>" in valid_keys()


@pytest.mark.parametrize("key,value,needle", [
    ("general.max_spawns", "-1", "general.max_spawns"),
    ("general.max_concurrent", "9", "general.max_concurrent"),
    ("general.stall_minutes", "0", "general.stall_minutes"),
    ("general.max_spawns", "many", "general.max_spawns"),
    ("backend", "gpt", "backend"),
    ("providers.anthropic.api_key", "sk-ant-123456", "secret:<name>"),
    ("models.planner", "acme:big", "unknown provider"),
])
def test_bad_value_is_a_one_line_error_and_writes_nothing(key, value, needle):
    with pytest.raises(ConfigError) as err:
        set_key(key, value)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert not paths.config_path().exists()


def test_malformed_file_names_the_key_or_file():
    paths.config_path().parent.mkdir(parents=True, exist_ok=True)
    paths.config_path().write_text("[general]\nmax_spawns = -4\n")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "general.max_spawns" in str(err.value)
    paths.config_path().write_text("[general\nmax_spawns = 4\n")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "not valid TOML" in str(err.value) and str(paths.config_path()) in str(err.value)


def test_secrets_file_is_0600_without_a_keyring(no_keyring):
    store = SecretStore()
    assert not store.uses_keyring
    store.set("anthropic", "sk-ant-abcdef123456")
    assert stat.S_IMODE(store.file_path.stat().st_mode) == 0o600
    assert store.get("anthropic") == "sk-ant-abcdef123456"
    assert store.names() == ["anthropic"]
    assert store.masked() == [("anthropic", "*" * 15 + "3456")]
    assert store.resolve("secret:anthropic") == "sk-ant-abcdef123456"
    store.set("anthropic", "new-value-9999")
    assert stat.S_IMODE(store.file_path.stat().st_mode) == 0o600
    assert store.unset("anthropic") and not store.unset("anthropic") and store.names() == []
    with pytest.raises(ConfigError):
        store.set("bad name", "x")
    # the config file only ever holds references
    save_settings(load_settings())
    assert not paths.config_path().exists() or "sk-ant" not in paths.config_path().read_text()


def test_secrets_use_a_usable_keyring_with_a_names_only_index():
    kr = MemoryKeyring()
    store = SecretStore(keyring_backend=kr)
    assert store.uses_keyring
    store.set("openrouter", "or-secret-value-42")
    assert kr.store[("loom", "openrouter")] == "or-secret-value-42"
    assert store.names() == ["openrouter"] and store.get("openrouter") == "or-secret-value-42"
    assert "or-secret" not in store.index_path.read_text()
    assert not store.file_path.exists()
    store.unset("openrouter")
    assert store.names() == [] and ("loom", "openrouter") not in kr.store
    assert usable_keyring(fail.Keyring()) is None


def test_resolve_falls_back_to_the_environment(no_keyring, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", "from-env")
    assert SecretStore().resolve("secret:MY_TOKEN") == "from-env"
    assert SecretStore().resolve("literal") == "literal" and SecretStore().resolve("") is None


def test_mask_shows_at_most_four_characters():
    assert mask("") == "" and mask("abc") == "***" and mask("abcd") == "****"
    assert mask("abcdefgh") == "****efgh" and mask("abcdefghijkl") == "********ijkl"


def test_the_quick_reader_agrees_with_the_model_and_errs_like_it(monkeypatch):
    from loom_core.config import quick

    assert quick.stall_minutes() == load_settings().general.stall_minutes == quick.STALL_MINUTES
    paths.config_path().parent.mkdir(parents=True, exist_ok=True)
    paths.config_path().write_text("[general]\nstall_minutes = 12.5\n")
    assert quick.stall_minutes() == load_settings().general.stall_minutes == 12.5
    monkeypatch.setenv("LOOM_STALL_MINUTES", "7")
    assert quick.stall_minutes() == 7
    monkeypatch.setenv("LOOM_GENERAL__STALL_MINUTES", "9")
    assert quick.stall_minutes() == load_settings().general.stall_minutes == 9  # the nested name wins
    monkeypatch.setenv("LOOM_GENERAL__STALL_MINUTES", "-1")
    with pytest.raises(ConfigError) as quick_err:
        quick.stall_minutes()
    with pytest.raises(ConfigError) as model_err:
        load_settings()
    assert str(quick_err.value) == str(model_err.value)
