"""The keyring is touched only to store a secret or to read one it holds: an ordinary run never probes it
(a probe costs ~100 ms and spawns ldconfig/gcc on Linux), yet a keyring secret that reaches an agent is
still redacted."""

from __future__ import annotations

from loom_core.agents.executors.demo_project import create_demo_project
from loom_core.config import secrets as secmod
from loom_core.config.redact import Redactor
from loom_core.config.secrets import SecretStore
from tests.conftest import ROOT, run_loom
from tests.support.tattle_keyring import Keyring as Tattle

BACKEND = "tests.support.tattle_keyring.Keyring"


def test_a_demo_run_status_and_secret_listing_never_probe_the_keyring(tmp_path):
    proj = tmp_path / "p"
    create_demo_project(proj)
    mark = tmp_path / "probes"
    env = {"PYTHONPATH": str(ROOT), "PYTHON_KEYRING_BACKEND": BACKEND, "LOOM_TATTLE": str(mark)}
    for args in (("run", "--backend", "demo", "--policy", "auto", "--fast", "add a greeting"), ("status",),
                 ("history",), ("config", "get", "backend")):
        cp = run_loom(*args, cwd=proj, env=env)
        assert cp.returncode == 0, (args, cp.stderr)
        assert not mark.exists(), f"loom {' '.join(args)} probed the keyring"
    # (from outside the project: `python -m` there would import the demo project's own `tests` package)
    cp = run_loom("secrets", "set", "tg", "123456:AAsecretsecretsecret", cwd=tmp_path, env=env)
    assert mark.exists(), cp.stderr  # storing a secret chooses the backend


def test_names_and_file_secrets_need_no_keyring_but_keyring_secrets_still_resolve(tmp_path):
    kr = Tattle()
    SecretStore(keyring_backend=kr).set("anthropic", "kr-held-value-1234")
    SecretStore(use_keyring=False).set("plain", "file-held-value-5678")

    lazy = SecretStore(keyring_backend=None, use_keyring=False)  # a store that must not reach a keyring
    assert lazy.names() == ["anthropic", "plain"]  # the index and the file say which exist
    assert lazy.get("plain") == "file-held-value-5678"
    assert SecretStore(keyring_backend=kr).resolve("secret:anthropic") == "kr-held-value-1234"


def test_a_resolved_keyring_secret_is_redacted_by_a_redactor_made_before_it(monkeypatch):
    monkeypatch.setattr(secmod, "_resolved", set())
    red = Redactor.from_environment(SecretStore(use_keyring=False))
    kr = Tattle()
    store = SecretStore(keyring_backend=kr)
    kr.set_password("loom", "late", "resolved-later-value-9")
    store._write_index(["late"])
    assert red.redact("key resolved-later-value-9 here") == "key resolved-later-value-9 here"  # not handed out
    store.resolve("secret:late")
    assert red.redact("key resolved-later-value-9 here") == "key [redacted] here"
