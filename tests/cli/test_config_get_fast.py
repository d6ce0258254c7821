"""`loom config get KEY` remembers the effective settings (issue 15: ≤ 120 ms): after the first read it loads
neither pydantic nor the settings model, yet always says what the model would — after `config set`, a hand
edit, a bad file, a settings variable, a code change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_loom


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "loom" / "settings.json"


def _get(key: str, cwd: Path, env: dict | None = None) -> str:
    proc = run_loom("config", "get", key, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _modules(argv: list[str], cwd: Path) -> set[str]:
    code = ("import sys\nfrom loom_core.surfaces import cli\n"
            f"try:\n    cli.main({argv!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "import json\nprint(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _config_file() -> Path:
    return Path(os.environ["LOOM_HOME"]) / "config.toml"


def test_the_second_read_loads_no_settings_model_and_says_the_same(tmp_path, cache):
    first = _get("general.max_spawns", tmp_path)
    assert first == "general.max_spawns = 40" and cache.exists()
    assert cache.stat().st_mode & 0o077 == 0  # private, like the secrets file
    mods = _modules(["config", "get", "general.max_spawns"], tmp_path)
    assert not [m for m in mods if m.split(".")[0] in ("pydantic", "pydantic_settings", "keyring")]
    assert "loom_core.config.settings" not in mods
    assert _get("general.max_spawns", tmp_path) == first
    assert _get("models.planner", tmp_path) == "models.planner = (unset)"
    bad = run_loom("config", "get", "general.nope", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown setting 'general.nope'" in bad.stderr


def test_a_changed_file_is_read_again(tmp_path, cache):
    assert _get("ui.theme", tmp_path) == "ui.theme = dark"
    assert run_loom("config", "set", "ui.theme", "light", cwd=tmp_path).returncode == 0
    assert _get("ui.theme", tmp_path) == "ui.theme = light"
    text = _config_file().read_text(encoding="utf-8")
    _config_file().write_text(text.replace('"light"', '"dark"'), encoding="utf-8")  # a hand edit
    assert _get("ui.theme", tmp_path) == "ui.theme = dark"
    _config_file().write_text("[general\nmax_spawns = ", encoding="utf-8")
    broken = run_loom("config", "get", "ui.theme", cwd=tmp_path)
    assert broken.returncode != 0 and "not valid TOML" in broken.stderr  # the model's own error, not a memory
    _config_file().unlink()
    assert _get("ui.theme", tmp_path) == "ui.theme = dark"


def test_settings_variables_win_and_are_never_written_down(tmp_path, cache):
    assert _get("general.max_spawns", tmp_path) == "general.max_spawns = 40"
    assert _get("general.max_spawns", tmp_path, {"LOOM_MAX_SPAWNS": "7"}) == "general.max_spawns = 7"
    assert _get("general.max_spawns", tmp_path, {"loom_general__max_spawns": "9"}) == "general.max_spawns = 9"
    assert _get("general.max_spawns", tmp_path, {"LOOM_GENERAL": '{"max_spawns": 5}'}) == "general.max_spawns = 5"
    cache.unlink()
    assert _get("server.token", tmp_path, {"LOOM_SERVER_TOKEN": "sekrit-value"}) == "server.token = sekrit-value"
    assert not cache.exists()  # a value from the environment (maybe a credential) is not kept on disk
    bad = run_loom("config", "get", "ui.theme", cwd=tmp_path, env={"LOOM_MAX_SPAWNS": "many"})
    assert bad.returncode == 2 and "LOOM_MAX_SPAWNS" in bad.stderr


def test_a_code_change_or_a_damaged_cache_loads_the_model_again(tmp_path, cache):
    assert _get("ui.theme", tmp_path) == "ui.theme = dark"
    memo = json.loads(cache.read_text(encoding="utf-8"))
    assert any(f.endswith(os.path.join("config", "settings.py")) for f in memo["files"])
    memo["dump"]["ui"]["theme"] = "remembered"
    cache.write_text(json.dumps(memo), encoding="utf-8")
    assert _get("ui.theme", tmp_path) == "ui.theme = remembered"  # (the memory is what answers)
    memo["stamps"][0] = "0:0"  # as if a loom module had changed since
    cache.write_text(json.dumps(memo), encoding="utf-8")
    assert _get("ui.theme", tmp_path) == "ui.theme = dark"
    cache.write_text("{not json", encoding="utf-8")
    assert _get("ui.theme", tmp_path) == "ui.theme = dark"


def test_all_settings_are_printed_from_the_same_memory(tmp_path, cache):
    first = run_loom("config", "get", cwd=tmp_path)
    assert first.returncode == 0 and 'theme = "dark"' in first.stdout
    mods = _modules(["config", "get"], tmp_path)
    assert not [m for m in mods if m.split(".")[0] in ("pydantic", "pydantic_settings")]
    assert run_loom("config", "get", cwd=tmp_path).stdout == first.stdout
    assert run_loom("config", "set", "ui.theme", "light", cwd=tmp_path).returncode == 0
    assert 'theme = "light"' in run_loom("config", "get", cwd=tmp_path).stdout
    as_json = json.loads(run_loom("config", "get", "--json", cwd=tmp_path, env={"LOOM_UI__THEME": "dark"}).stdout)
    assert as_json["ui"]["theme"] == "dark"
