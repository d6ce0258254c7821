"""Secrets stay secret: a widened secrets file is made private again on every read (with a notice), an
invalid credential value is never echoed, and a key pasted into the task text reaches neither the store,
the task id, the branch name nor the commit message — whatever its case."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess

import pytest

from loom_core.config import secrets as secmod
from loom_core.config.redact import Redactor
from loom_core.config.secrets import SecretStore
from tests.conftest import ROOT, run_loom

KEY = "sk-ant-api03-Zq7RtY0uXw3VbN5mKp9LhJ2sDfGh"


def cli(*args: str, cwd, env: dict | None = None):
    return run_loom(*args, cwd=cwd, env={"PYTHONPATH": str(ROOT), **(env or {})})


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_world_readable_secrets_file_is_made_private_with_a_notice_on_every_read(tmp_path, no_keyring):
    store = SecretStore(tmp_path, use_keyring=False)
    store.set("anthropic", KEY)
    assert mode(store.file_path) == 0o600
    notices: list[str] = []
    remove = secmod.on_notice(notices.append)
    try:
        for widened in (0o644, 0o604, 0o640):
            os.chmod(store.file_path, widened)
            assert store.get("anthropic") == KEY
            assert mode(store.file_path) == 0o600
            assert notices and f"mode {widened:04o}" in notices[-1] and "0600" in notices[-1]
            assert KEY not in notices[-1]
        count = len(notices)
        store.names()
        assert len(notices) == count  # a private file is read silently
    finally:
        remove()


def test_the_cli_says_it_made_the_secrets_file_private(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    path = home / "secrets.json"
    path.write_text(json.dumps({"anthropic": KEY}))
    os.chmod(path, 0o644)
    proc = cli("secrets", "list", cwd=tmp_path, env={"LOOM_HOME": str(home), "PYTHON_KEYRING_BACKEND":
                                                     "keyring.backends.fail.Keyring"})
    assert proc.returncode == 0, proc.stderr
    assert "made it private (0600)" in proc.stderr and "mode 0644" in proc.stderr
    assert mode(path) == 0o600
    assert KEY not in proc.stdout + proc.stderr


@pytest.mark.parametrize("key", ["providers.anthropic.api_key", "providers.openrouter.api_key",
                                 "providers.anthropic.base_url"])
def test_an_invalid_credential_value_is_never_echoed(tmp_path, key):
    home = tmp_path / "home"
    proc = cli("config", "set", key, KEY, cwd=tmp_path, env={"LOOM_HOME": str(home)})
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith(f"loom: {key} = (the value is not shown) is not valid")
    out = (proc.stdout + proc.stderr).lower()
    assert KEY.lower() not in out and KEY[-8:].lower() not in out
    assert not (home / "config.toml").exists() or KEY not in (home / "config.toml").read_text()


def test_redaction_ignores_case_and_knows_key_shapes():
    r = Redactor(["MySecretValue123"])
    assert r.redact("a mysecretvalue123 b MYSECRETVALUE123 c") == "a [redacted] b [redacted] c"
    assert r.redact(f"key {KEY} and {KEY.upper()} and {KEY.lower()}") == \
        "key [redacted] and [redacted] and [redacted]"  # stored nowhere: known by its shape
    assert r.redact("disk-cleanup-of-the-old-temporary-files-and-more-of-them") == \
        "disk-cleanup-of-the-old-temporary-files-and-more-of-them"  # "sk-" inside a word is not a key


def test_a_key_pasted_into_the_task_reaches_no_id_branch_commit_or_store(tmp_path):
    from loom_core.agents.executors.demo_project import create_demo_project
    from loom_core.engine.runner import demo_task

    proj = tmp_path / "shop"
    create_demo_project(proj)
    secret = "Xy7-Unshaped-Secret-Value-42"  # known only because it is stored: no key shape helps here
    env = {"LOOM_HOME": str(tmp_path / "home"), "OPENAI_API_KEY": secret}
    text = f"{secret.upper()} {demo_task()} (my key is {secret}, also {KEY})"
    proc = cli("run", "--backend", "demo", "--policy", "auto", "--fast", text, cwd=proj, env=env)
    assert proc.returncode == 0, (proc.stdout[-600:], proc.stderr[-600:])
    git = ["git", "-C", str(proj)]
    branches = subprocess.run([*git, "branch", "--list", "loom/*", "--format=%(refname:short)"], check=True,
                              capture_output=True, text=True).stdout.split()
    assert len(branches) == 1
    message = subprocess.run([*git, "log", "-1", "--format=%B", branches[0]], check=True, capture_output=True,
                             text=True).stdout
    conn = sqlite3.connect(proj / ".loom" / "state.db")
    task_id, task = conn.execute("SELECT task_id, task FROM pipeline_state WHERE id = 1").fetchone()
    audit = " ".join(p for (p,) in conn.execute("SELECT payload FROM audit"))
    conn.close()
    assert "[redacted]" in task and "redacted" in task_id
    for where in (branches[0], message, task_id, task, audit, proc.stdout, proc.stderr):
        low = where.lower()
        assert secret.lower() not in low and KEY.lower() not in low, where[:300]
