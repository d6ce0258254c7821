"""Shell completion (typer's own, issue 16): bash, zsh and fish get command names, options and the real ids
of a project made here (task ids, project ids), agent names and config keys; each Tab stays light."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

HEAVY = ("peewee", "pydantic", "pydantic_settings", "keyring", "textual", "docker", "anthropic", "rich")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """A project with one archived task and one parked at a gate."""
    from loom_core.control import LocalControl
    from tests.support.fixtures import finished_task, parked_task

    proj = tmp_path_factory.mktemp("complete") / "proj"
    proj.mkdir()
    finished_task(proj)
    loom = LocalControl()
    loom.reset(proj)
    parked_task(proj)
    archived = [r["ref"] for r in loom.history_index(proj)]
    live = loom.status(proj)["task_id"]
    assert len(archived) == 1 and live and live not in archived
    return {"project": proj, "live": live, "archived": archived[0]}


def _complete(shell: str, line: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """What `loom` answers the shell's completion script for the command line ``line`` (cursor at its end)."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), "_LOOM_COMPLETE": f"complete_{shell}", **env}
    if shell == "bash":  # the script passes the words and the index of the one under the cursor
        words = line.split()
        full.update(COMP_WORDS=line, COMP_CWORD=str(len(words) if line.endswith(" ") else len(words) - 1))
    else:  # zsh and fish pass the line as typed
        full.update(_TYPER_COMPLETE_ARGS=line, _TYPER_COMPLETE_FISH_ACTION="get-args")
    return subprocess.run([sys.executable, "-m", "loom_core.surfaces.cli"], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=60)


def _bash(line: str, cwd: Path) -> list[str]:
    proc = _complete("bash", line, cwd)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout.split()


def test_bash_completes_command_names_and_options(tmp_path):
    assert _bash("loom st", tmp_path) == ["status"]
    assert {"config", "console"} <= set(_bash("loom con", tmp_path))
    assert "mcp" not in _bash("loom m", tmp_path)  # hidden
    assert {"--project", "--json", "--stall-minutes"} <= set(_bash("loom status --", tmp_path))
    assert set(_bash("loom config ", tmp_path)) >= {"get", "set", "keys"}


def test_task_ids_are_the_projects_own(store, tmp_path):
    both = [store["live"], store["archived"]]
    assert _bash("loom replay ", store["project"]) == both  # the live task first, then the archived one
    assert _bash("loom verify --task ", store["project"]) == both
    assert _bash(f"loom replay -C {store['project']} ", tmp_path) == both  # -C typed before: that project
    assert _bash("loom replay ", tmp_path) == []  # no store here: nothing (bash then offers files)
    assert _bash(f"loom replay {store['archived'][:-3]}", store["project"]) == [store["archived"]]


def test_an_archived_tasks_label_says_how_it_ended_in_words(store):
    """What zsh and fish show beside an id: the ending in the words status and history use, never the
    stored tokens (``accepted/None``)."""
    from loom_core.control import LocalControl
    from loom_core.control.words import ended_line

    refs = LocalControl().task_refs(store["project"])
    assert refs[0] == {"ref": store["live"], "label": "the live task"}
    (entry,) = LocalControl().history_index(store["project"])
    label = refs[1]["label"]
    assert label.startswith(ended_line(entry["status"], entry["verdict"], entry.get("work_result")))
    assert "/" not in label.split(" — ")[0] and "None" not in label


def test_project_ids_come_from_the_catalog(store, tmp_path):
    from loom_core.control import LocalControl

    added = LocalControl().add_project(store["project"])
    assert _bash("loom projects remove ", tmp_path) == [added.id]
    assert _bash("loom projects remove zz", tmp_path) == []


def test_agent_names_config_keys_and_fixed_words(tmp_path):
    assert _bash("loom models set impl", tmp_path) == ["implementer", "implementer-escalated"]
    ui = _bash("loom config get ui.", tmp_path)
    assert {"ui.theme", "ui.animation"} <= set(ui) and all(k.startswith("ui.") for k in ui)
    assert "models.planner-deep" in _bash("loom config set models.pl", tmp_path)
    assert _bash("loom answer a", tmp_path) == ["accept", "abandon", "auto-apply"]
    assert _bash("loom recover retry", tmp_path) == ["retry", "retry-failed"]
    assert "full-autonomous" in _bash("loom run --policy f", tmp_path)
    assert "claude-code" in _bash("loom run --backend ", tmp_path)


def test_zsh_and_fish_get_values_with_their_help(store):
    zsh = _complete("zsh", "loom replay ", store["project"])
    assert zsh.returncode == 0 and zsh.stdout.startswith("_arguments '*: :((")
    assert f'"{store["live"]}":"the live task"' in zsh.stdout
    fish = _complete("fish", "loom st", store["project"])
    assert fish.returncode == 0
    assert fish.stdout.splitlines() == ["status\tShow the project's task: status, phase, flow, pending gate, spawns, "
                                        "tokens, cost, elapsed."]
    none = _complete("zsh", "loom config get nope.", store["project"])
    assert none.stdout.strip() == "_files"


def test_a_broken_catalog_offers_nothing_and_prints_no_error(tmp_path):
    home = Path(os.environ["LOOM_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "workspace.json").write_text("{not json", encoding="utf-8")
    proc = _complete("bash", "loom projects remove ", tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "" and proc.stderr == ""


def test_a_tab_loads_neither_the_engine_nor_the_settings_model(store):
    """Each Tab runs loom once: completing task ids reads the store with plain sqlite3."""
    code = ("import sys\nfrom loom_core.surfaces import cli\ntry:\n    cli.main([])\nexcept SystemExit:\n    pass\n"
            "import json\nprint(json.dumps(sorted(sys.modules)))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "_LOOM_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "loom replay "}
    out = subprocess.run([sys.executable, "-c", code], cwd=store["project"], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert store["live"] in out
    mods = set(json.loads(out.strip().splitlines()[-1]))
    assert sorted(m for m in mods if m.split(".")[0] in HEAVY) == []
    assert not [m for m in mods if m.startswith(("loom_core.engine.engine", "loom_core.kernel.fsm", "loom_core.agents."
                                                 "spawn", "loom_core.surfaces.cli.tasks", "loom_core.surfaces.cli."
                                                 "settings"))]


def _loom_on_path(tmp_path: Path) -> dict[str, str]:
    """A `loom` on PATH that runs this checkout (the completion script calls `loom` by name)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "loom"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -m loom_core.surfaces.cli \"$@\"\n", encoding="utf-8")
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
            "HOME": str(tmp_path / "home")}


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
def test_real_bash_sources_the_script_and_completes_task_ids(store, tmp_path):
    env = _loom_on_path(tmp_path)
    shown = subprocess.run(["bash", "-c", "loom --show-completion; true"], env=env, capture_output=True, text=True,
                           timeout=60, cwd=store["project"])
    assert "complete -o default -F _loom_completion loom" in shown.stdout, shown.stderr
    (tmp_path / "loom.bash").write_text(shown.stdout, encoding="utf-8")
    script = (f"source {tmp_path / 'loom.bash'}\ncomplete -p loom\n"
              "COMP_WORDS=(loom replay ''); COMP_CWORD=2; _loom_completion loom\n"
              "printf 'got:%s\\n' \"${COMPREPLY[@]}\"\n")
    proc = subprocess.run(["bash", "--norc", "-c", script], env=env, capture_output=True, text=True, timeout=60,
                          cwd=store["project"])
    assert proc.returncode == 0, proc.stderr
    assert "complete -o default -F _loom_completion loom" in proc.stdout
    assert [line[4:] for line in proc.stdout.splitlines() if line.startswith("got:")] == \
        [store["live"], store["archived"]]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
def test_install_completion_writes_the_script_and_sources_it_from_bashrc(tmp_path):
    env = _loom_on_path(tmp_path)
    (tmp_path / "home").mkdir()
    proc = subprocess.run(["bash", "-c", "loom --install-completion; true"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert "bash completion installed in" in proc.stdout, proc.stdout + proc.stderr
    home = tmp_path / "home"
    script = home / ".bash_completions" / "loom.sh"
    assert "_LOOM_COMPLETE=complete_bash" in script.read_text(encoding="utf-8")
    assert str(script.relative_to(home)) in (home / ".bashrc").read_text(encoding="utf-8")


def test_config_keys_and_agents_are_kept_in_the_cache_after_the_first_tab(tmp_path, monkeypatch):
    """Loading the settings model costs ~0.3 s: the first Tab stores the words, later ones read them back, and
    a cache written for other code (a different stamp) is rebuilt."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ui = _bash("loom config get ui.", tmp_path)
    assert {"ui.theme", "ui.animation"} <= set(ui)
    cached = tmp_path / "cache" / "loom" / "completion-words.json"
    data = json.loads(cached.read_text(encoding="utf-8"))
    assert "implementer" in data["agents"]

    code = ("import sys\nfrom loom_core.surfaces import cli\ntry:\n    cli.main([])\nexcept SystemExit:\n    pass\n"
            "import json\nprint(json.dumps(sorted(sys.modules)))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "_LOOM_COMPLETE": "complete_zsh",
           "_TYPER_COMPLETE_ARGS": "loom models set impl"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert '"implementer"' in out
    mods = set(json.loads(out.strip().splitlines()[-1]))
    assert sorted(m for m in mods if m.split(".")[0] in HEAVY) == []

    cached.write_text(json.dumps({**data, "config_keys": ["ui.from-the-cache"]}), encoding="utf-8")
    assert _bash("loom config get ui.", tmp_path) == ["ui.from-the-cache"]
    cached.write_text(json.dumps({**data, "stamp": "older code", "config_keys": ["ui.stale"]}), encoding="utf-8")
    assert _bash("loom config get ui.", tmp_path) == ui
    assert json.loads(cached.read_text(encoding="utf-8"))["stamp"] == data["stamp"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (.ci/run installs it)")
def test_real_fish_completes_with_the_script_loom_shows(store, tmp_path):
    env = _loom_on_path(tmp_path)
    shown = subprocess.run(["fish", "-c", "loom --show-completion"], env=env, capture_output=True, text=True,
                           timeout=60, cwd=store["project"])
    assert "complete --command loom" in shown.stdout, shown.stderr
    (tmp_path / "loom.fish").write_text(shown.stdout, encoding="utf-8")
    script = f"source {tmp_path / 'loom.fish'}; complete -C 'loom replay '; echo SEP; complete -C 'loom st'"
    proc = subprocess.run(["fish", "--no-config", "-c", script], env=env, capture_output=True, text=True,
                          timeout=60, cwd=store["project"])
    ids, _, names = proc.stdout.partition("SEP\n")
    assert sorted(line.split("\t")[0] for line in ids.splitlines()) == sorted([store["live"], store["archived"]]), \
        proc.stderr  # (fish sorts them)
    assert names.splitlines() == ["status\tShow the project's task: status, phase, flow, pending gate, spawns, "
                                  "tokens, cost, elapsed."]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (.ci/run installs it)")
def test_real_zsh_registers_the_script_and_its_function_offers_task_ids(store, tmp_path):
    env = _loom_on_path(tmp_path)
    shown = subprocess.run(["zsh", "-fc", "loom --show-completion; true"], env=env, capture_output=True, text=True,
                           timeout=60, cwd=store["project"])
    assert "compdef _loom_completion loom" in shown.stdout, shown.stderr
    (tmp_path / "loom.zsh").write_text(shown.stdout, encoding="utf-8")
    # outside an interactive completion widget _arguments cannot draw a menu: a stand-in prints what it got
    script = (f"autoload -U compinit; compinit -u -D; source {tmp_path / 'loom.zsh'}\n"
              "print -r -- \"comp=$_comps[loom]\"\n"
              "_arguments() { print -r -- \"$@\" }\n"
              "words=(loom replay ''); CURRENT=3; _loom_completion\n")
    proc = subprocess.run(["zsh", "-fc", script], env=env, capture_output=True, text=True, timeout=60,
                          cwd=store["project"])
    assert proc.returncode == 0, proc.stderr
    assert "comp=_loom_completion" in proc.stdout
    assert f'"{store["live"]}":"the live task"' in proc.stdout and f'"{store["archived"]}":' in proc.stdout
