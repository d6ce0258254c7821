"""What a container is asked for, and when containers are refused — no engine needed: the container spec
built from the settings (credential by name or as a read-only file, strict MCP, network, limits) and the
reasons docker_status gives before it ever asks the engine."""

from __future__ import annotations

import os

import pytest

from loom_core.agents.executors.container import ContainerExecutor
from loom_core.agents.executors.container_plan import ContainerPlan, docker_status
from loom_core.config.settings import load_settings
from loom_core.errors import ConfigError
from loom_core.kernel.types import Intent
from loom_core.workspace.container_io import Layout

pytestmark = pytest.mark.xdist_group("docker")


def spec(plan: ContainerPlan, *, edits: bool = True, tmp_path=None) -> dict:
    it = Intent("planner", "ar-9", "plan", "claude-sonnet-4-5", "p", extras={"edits_files": edits} if edits else {})
    return ContainerExecutor(plan).create_kwargs(it, Layout(tmp_path, "sub"))


def plan(**kw) -> ContainerPlan:
    base = dict(image="img:1", uid=1000, gid=1000, credential="token", bind_mounts=True, project="/p",
                labels={"loom.owner-pid": "1"})
    return ContainerPlan(**{**base, **kw})


def test_the_token_goes_by_name_into_the_environment_never_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "tok-123")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/")
    kw = spec(plan(), tmp_path=tmp_path)
    assert kw["environment"]["CLAUDE_CODE_OAUTH_TOKEN"] == "tok-123"
    assert kw["environment"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9/" and kw["environment"]["HOME"] == "/home/app"
    assert "tok-123" not in repr(kw["command"]) + repr(kw["labels"])
    assert kw["command"][:2] == ["claude", "-p"] and "bypassPermissions" in kw["command"]
    assert kw["working_dir"] == "/workspace/sub" and kw["volumes"][str(tmp_path)]["bind"] == "/workspace"
    assert kw["init"] is True and kw["user"] == "1000:1000" and kw["tmpfs"] == {"/home/app": "rw,mode=1777"}
    assert "network_mode" not in kw  # default: the engine's network
    assert not {"mem_limit", "pids_limit", "nano_cpus"} & set(kw)  # no limits asked, none set


def test_the_login_file_is_mounted_read_only_and_no_token_is_passed(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_CODE_OAUTH_TOKEN", raising=False)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "cc"))
    kw = spec(plan(credential="file", network="none", memory="512m", pids=32, cpus=1.5, strict_mcp=True,
                   home="/home/agent"), tmp_path=tmp_path)
    assert kw["volumes"][str(tmp_path / "cc" / ".credentials.json")] == {
        "bind": "/home/agent/.claude/.credentials.json", "mode": "ro"}
    assert "CLAUDE_CODE_OAUTH_TOKEN" not in kw["environment"]
    assert kw["tmpfs"] == {"/home/agent": "rw,mode=1777", "/home/agent/.claude": "rw,mode=1777"}
    assert (kw["network_mode"], kw["mem_limit"], kw["pids_limit"], kw["nano_cpus"]) == ("none", "512m", 32,
                                                                                       1_500_000_000)
    assert kw["command"].count("--strict-mcp-config") == 1
    ro = spec(plan(strict_mcp=True), edits=False, tmp_path=tmp_path)["command"]  # read-only roles have it already
    assert ro.count("--strict-mcp-config") == 1 and "--tools" in ro


def test_without_bind_mounts_nothing_is_mounted(tmp_path):
    kw = spec(plan(bind_mounts=False), tmp_path=tmp_path)
    assert kw["volumes"] == {}


def test_refusals_before_the_engine_is_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")  # never reached by these answers
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "cc"))
    monkeypatch.delenv("CLAUDE_CODE_OAUTH_TOKEN", raising=False)
    assert docker_status(load_settings()).reason.startswith("no image is configured")
    monkeypatch.setenv("LOOM_DOCKER_IMAGE", "img:1")
    assert docker_status(load_settings()).reason.startswith("no credential: set CLAUDE_CODE_OAUTH_TOKEN")
    (tmp_path / "cc").mkdir()
    (tmp_path / "cc" / ".credentials.json").write_text("{}")
    monkeypatch.setenv("LOOM_DOCKER_BIND_MOUNTS", "off")
    st = docker_status(load_settings())
    assert not st.available and "login file cannot be mounted: set CLAUDE_CODE_OAUTH_TOKEN" in st.reason
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "t")
    monkeypatch.setenv("LOOM_DOCKER_USER", "host")
    if os.getuid() == 0:
        assert "loom runs as root and docker.user is 'host'" in docker_status(load_settings()).reason
    monkeypatch.setenv("LOOM_DOCKER_USER", "1000:1000")
    st = docker_status(load_settings())
    assert not st.available and "does not answer" in st.reason  # only now is the engine asked
    monkeypatch.setenv("LOOM_DOCKER_USER", "0:0")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "LOOM_DOCKER_USER" in str(info.value) and "root" in str(info.value)


def test_a_remote_engine_means_archives_not_bind_mounts(tmp_path, monkeypatch):
    from loom_core.agents.executors.container_plan import local_engine

    assert local_engine("") and local_engine("unix:///run/docker.sock")
    assert not local_engine("tcp://build-box:2376") and not local_engine("ssh://me@build-box")
    monkeypatch.setenv("LOOM_DOCKER_IMAGE", "img:1")
    monkeypatch.setenv("LOOM_DOCKER_USER", "1000")
    monkeypatch.delenv("CLAUDE_CODE_OAUTH_TOKEN", raising=False)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path))
    (tmp_path / ".credentials.json").write_text("{}")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # auto: a tcp engine gets no bind mounts…
    assert "the engine is remote (bind mounts off)" in docker_status(load_settings()).reason
    monkeypatch.setenv("LOOM_DOCKER_BIND_MOUNTS", "on")  # …unless the user says the paths are shared
    assert "does not answer" in docker_status(load_settings()).reason
