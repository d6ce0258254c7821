"""A real Docker engine for the container tests: one ``dockerd`` of our own (own data/exec root and
socket, no bridge, no iptables) per test session, started only when ``dockerd`` is installed and we are
root, with a tiny image imported from a busybox rootfs whose ``claude`` is a shell script.

The script reads the prompt on stdin and obeys the markers in its lines: ``@@write PATH TEXT`` writes
/workspace/PATH, ``@@rm PATH`` deletes it, ``@@nap N`` sleeps N seconds, ``@@say TEXT`` prints a line,
``@@git`` asks git for HEAD, ``@@cred`` reads the mounted login file; then it prints one Claude Code result event whose ``result`` says who ran it
(uid, HOME, whether the token arrived). Every test module using it carries
``xdist_group("docker")``, so the whole folder shares one engine on one worker.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

IMAGE = "loom-test/claude:tiny"
USER = "1000:1000"
TOKEN = "sk-ant-oat01-test-token-never-shown"

FAKE_CLAUDE = r"""#!/bin/sh
# a stand-in for the Claude Code CLI: the prompt on stdin says what to do
prompt=$(cat)
printf '%s\n' "$prompt" | while IFS= read -r line; do
  case "$line" in
    *"@@write "*) rest=${line#*@@write }; path=${rest%% *}; text=${rest#* }
                  mkdir -p "$(dirname "/workspace/$path")"; printf '%s\n' "$text" > "/workspace/$path";;
    *"@@rm "*) rm -rf "/workspace/${line#*@@rm }";;
    *"@@nap "*) sleep "${line#*@@nap }";;
    *"@@say "*) printf '%s\n' "${line#*@@say }";;
  esac
done
tok=unset; [ -n "$CLAUDE_CODE_OAUTH_TOKEN" ] && tok=set
git=""
case "$prompt" in *@@git*) git=" git=$(git cat-file -t HEAD 2>&1 | tr -d '\"\\' | head -c 80)";; esac
case "$prompt" in *@@cred*)
  w=no; touch "$HOME/.claude/state" 2>/dev/null && w=yes
  git="$git cred=$(tr -d '\"\\{} ' < "$HOME/.claude/.credentials.json" | head -c 40) claude-dir-writable=$w";; esac
printf '{"type":"result","subtype":"success","is_error":false,"result":"uid=%s gid=%s home=%s token=%s argc=%s%s",' \
  "$(id -u)" "$(id -g)" "$HOME" "$tok" "$#" "$git"
printf '"usage":{"input_tokens":12,"output_tokens":7,"cache_read_input_tokens":3},"total_cost_usd":0.0125,'
printf '"num_turns":2,"duration_ms":40}\n'
"""
TOOLS = ("sh", "cat", "echo", "sleep", "id", "ls", "mkdir", "rm", "printf", "dirname", "env", "true", "tr", "head",
         "touch")


def _skip_reason() -> str | None:
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (apt-get install docker.io)"
    if os.geteuid() != 0:
        return "starting a private dockerd needs root"
    if _busybox() is None:
        return "no static busybox to build the test image from (apt-get install busybox-static)"
    try:
        import docker  # noqa: F401
    except ImportError:
        return "the docker Python package is not installed"
    return None


def _busybox() -> str | None:
    for path in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                head = f.read(1 << 16)
            if b"ld-linux" not in head:  # a dynamic busybox cannot run in an empty rootfs
                return path
    return None


def _git_files() -> dict[str, str]:
    """The host's git and the shared libraries it loads (image path → host file), so git in the test
    image reads the sandbox's borrowed object store; empty when that cannot be worked out."""
    git = shutil.which("git")
    if git is None or shutil.which("ldd") is None:
        return {}
    out = subprocess.run(["ldd", git], capture_output=True, text=True).stdout
    files = {"usr/bin/git": git}
    for line in out.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else (parts[0] if parts and parts[0].startswith("/")
                                                                   else None)
        if path and path.startswith("/"):
            files[path.lstrip("/")] = os.path.realpath(path)
    return files


def _rootfs_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "workspace", "home", "etc"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", Path(_busybox()).read_bytes())
        for tool in TOOLS:
            link = tarfile.TarInfo(f"bin/{tool}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        add_file("bin/claude", FAKE_CLAUDE.encode())
        made = {"bin", "workspace", "home", "etc", "tmp"}
        for name, host in _git_files().items():
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                if "/".join(parts[:i]) not in made:
                    made.add("/".join(parts[:i]))
                    add_dir("/".join(parts[:i]))
            add_file(name, Path(host).read_bytes())
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
    return buf.getvalue()


@dataclass
class Engine:
    host: str
    image: str
    root: Path

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.host, timeout=60)


@pytest.fixture(scope="session")
def docker_engine():
    """Our own dockerd (started once, stopped by its pidfile at the end) with the tiny image imported."""
    why = _skip_reason()
    if why:
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="ldk-", dir="/tmp"))  # short: containerd's socket paths live under it
    sock, pidfile = root / "d.sock", root / "dockerd.pid"
    log = open(root / "dockerd.log", "wb")
    proc = subprocess.Popen(["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "x"),
                             "-H", f"unix://{sock}", "--pidfile", str(pidfile), "--bridge=none",
                             "--iptables=false", "--ip6tables=false", "--ip-masq=false"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    engine = Engine(f"unix://{sock}", IMAGE, root)
    try:
        import docker

        deadline, cli, last = time.monotonic() + 40, None, None
        while time.monotonic() < deadline and proc.poll() is None:
            if sock.exists():
                try:
                    cli = engine.client()
                    cli.ping()
                    break
                except docker.errors.DockerException as exc:
                    last, cli = exc, None
            time.sleep(0.2)
        if cli is None:
            tail = (root / "dockerd.log").read_text(errors="replace")[-600:]
            pytest.skip(f"our dockerd did not answer within 40 s ({last}); log tail: {tail}")
        repo, tag = IMAGE.split(":")
        cli.api.import_image_from_data(_rootfs_tar(), repository=repo, tag=tag, changes=["WORKDIR /workspace"])
        cli.close()
        yield engine
    finally:
        _stop(proc, pidfile)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _stop(proc: subprocess.Popen, pidfile: Path) -> None:
    """Stop our dockerd, and only it: the pid in its own pidfile (the one we started, if it never wrote one)."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        pid = proc.pid
    if pid != proc.pid:  # the pidfile names someone else: never signal a stranger
        pid = proc.pid
    try:
        os.kill(pid, signal.SIGTERM)
        proc.wait(20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.kill(pid, signal.SIGKILL)
        proc.wait(10)


@pytest.fixture
def docker_env(docker_engine, monkeypatch):
    """loom pointed at our engine and image: a non-root uid, no network, a token in the environment."""
    monkeypatch.setenv("DOCKER_HOST", docker_engine.host)
    monkeypatch.setenv("LOOM_DOCKER_IMAGE", docker_engine.image)
    monkeypatch.setenv("LOOM_DOCKER_USER", USER)
    monkeypatch.setenv("LOOM_DOCKER_NETWORK", "none")
    monkeypatch.setenv("LOOM_DOCKER__MEMORY", "256m")
    monkeypatch.setenv("LOOM_DOCKER__PIDS", "64")
    monkeypatch.setenv("LOOM_DOCKER__CPUS", "0.5")
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", TOKEN)
    return docker_engine


def containers(engine, **labels) -> list:
    """The containers carrying ``labels`` (each inspected; one removed meanwhile is left out)."""
    import docker

    cli = engine.client()
    try:
        flt = [f"{k}={v}" for k, v in labels.items()] or ["loom.owner-pid"]
        found = []
        for row in cli.api.containers(all=True, filters={"label": flt}):
            try:
                found.append(cli.containers.get(row["Id"]))
            except docker.errors.NotFound:
                pass
        return found
    finally:
        cli.close()


def wait_for(fn, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out waiting")
