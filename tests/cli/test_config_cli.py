"""What a user of terminal tools expects from `loom config` and the version flag: every key explained,
where a value comes from, `-V` for the version."""

from __future__ import annotations

import json

from tests.conftest import run_loom


def test_V_prints_the_version_like_version(tmp_path):
    short, long = run_loom("-V", cwd=tmp_path), run_loom("--version", cwd=tmp_path)
    assert short.returncode == long.returncode == 0
    assert short.stdout == long.stdout and short.stdout.startswith("loom ")


def test_config_keys_says_what_each_key_does(tmp_path):
    lines = run_loom("config", "keys", cwd=tmp_path).stdout.splitlines()
    keys = json.loads(run_loom("config", "keys", "--json", cwd=tmp_path).stdout)
    assert len(lines) == len(keys) >= 40
    assert all(doc for doc in keys.values()), [k for k, doc in keys.items() if not doc]  # none undocumented
    line = next(x for x in lines if x.startswith("general.max_spawns "))
    assert "agent runs" in line and keys["general.max_spawns"] in line


def test_config_get_source_names_the_default_the_file_and_the_environment(tmp_path):
    def source(env=None):
        out = run_loom("config", "get", "general.max_spawns", "--source", "--json", cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    assert source() == {"key": "general.max_spawns", "value": 40, "source": "default"}
    assert run_loom("config", "set", "general.max_spawns", "12", cwd=tmp_path).returncode == 0
    got = source()
    assert got["value"] == 12 and got["source"].startswith("file ") and got["source"].endswith("config.toml")
    assert source({"LOOM_MAX_SPAWNS": "7"}) == {"key": "general.max_spawns", "value": 7,
                                                "source": "env LOOM_MAX_SPAWNS"}
    assert source({"LOOM_GENERAL__MAX_SPAWNS": "9"})["source"] == "env LOOM_GENERAL__MAX_SPAWNS"
    plain = run_loom("config", "get", "general.max_spawns", "--source", cwd=tmp_path)
    assert plain.stdout.strip().startswith("general.max_spawns = 12  (file ")
    assert run_loom("config", "get", "--source", cwd=tmp_path).returncode == 2  # a key is needed


def test_run_help_lists_every_backend_and_whether_it_runs_here(tmp_path):
    plain = run_loom("run", "--help", cwd=tmp_path, env={"ANTHROPIC_API_KEY": "", "LOOM_CLAUDE_BIN": "/nonexistent"})
    assert plain.returncode == 0
    tail = plain.stdout.split("Backends on this machine:")[1].splitlines()
    rows = {line.split()[0]: line for line in tail if line.strip()}
    assert {"demo", "claude-code", "anthropic", "openrouter", "ollama"} <= set(rows)
    assert "usable" in rows["demo"] and "not usable" not in rows["demo"]
    assert "not usable: needs a key" in rows["anthropic"] and "loom secrets set anthropic" in rows["anthropic"]
    keyed = run_loom("run", "--help", cwd=tmp_path, env={"ANTHROPIC_API_KEY": "sk-ant-test-key-0000000000"})
    line = next(x for x in keyed.stdout.splitlines() if x.strip().startswith("anthropic "))
    assert line.split()[1] == "usable"
