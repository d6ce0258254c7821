"""Whether agents can run in a container here, and with what (surfaces spec §9).

:func:`docker_status` answers the question every surface asks (can ``--docker`` work, and if not, why):
an image is configured, a credential exists, the user is not root, and the engine answers and holds
the image. :func:`decide` turns a run's ``docker`` option (True = required, False = off, None = auto)
into a :class:`ContainerPlan` or nothing plus a notice; a plan sweeps away the containers that an
earlier loom process, killed before it could clean up, left behind (:func:`sweep_orphans`).

Import-light: the ``docker`` SDK is imported only when the engine is asked.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loom_core import procs
from loom_core.errors import ConfigError

TOKEN_ENV = "CLAUDE_CODE_OAUTH_TOKEN"
PASSED_ENV = ("ANTHROPIC_BASE_URL",)  # passed through by name when set (a gateway or a local stub)
PROBE_TIMEOUT_S = 5
LABEL = "loom.owner-pid"  # every agent container carries it (with loom.owner-start, loom.host, loom.project …)
UNAVAILABLE = "DOCKER_UNAVAILABLE"


def credentials_file() -> Path:
    """The Claude Code login on this machine (``$CLAUDE_CONFIG_DIR`` or ``~/.claude``)."""
    base = os.environ.get("CLAUDE_CONFIG_DIR") or str(Path.home() / ".claude")
    return Path(base) / ".credentials.json"


def credential() -> tuple[str | None, str]:
    """``("token", …)`` when ``CLAUDE_CODE_OAUTH_TOKEN`` is set, ``("file", path)`` when the login file
    exists, else ``(None, why)``."""
    if os.environ.get(TOKEN_ENV, "").strip():
        return "token", TOKEN_ENV
    path = credentials_file()
    if path.is_file():
        return "file", str(path)
    return None, (f"no credential: set {TOKEN_ENV} (from `claude setup-token`) or log in with `claude` so that "
                  f"{path} exists")


def local_engine(host: str | None = None) -> bool:
    """Whether ``DOCKER_HOST`` (default: the local socket) names an engine on this machine's filesystem."""
    host = os.environ.get("DOCKER_HOST", "") if host is None else host
    return host == "" or host.startswith("unix://") or host.startswith("npipe://")


@dataclass
class ContainerPlan:
    """Everything a container run needs, settled before the task starts."""

    image: str
    uid: int
    gid: int
    credential: str  # "token" | "file"
    bind_mounts: bool
    network: str = "default"
    memory: str | None = None
    pids: int | None = None
    cpus: float | None = None
    strict_mcp: bool = False
    home: str = "/home/app"
    project: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def user(self) -> str:
        return f"{self.uid}:{self.gid}"

    def describe(self) -> str:
        how = "the sandbox copy mounted" if self.bind_mounts else "the sandbox copy shipped as archives"
        cred = f"${TOKEN_ENV}" if self.credential == "token" else "the Claude Code login file (read-only)"
        return f"agents run in containers of {self.image} as {self.user}, {how}, credential: {cred}"


@dataclass
class DockerStatus:
    available: bool
    reason: str  # why not, or what will run
    image: str | None = None
    credential: str | None = None
    engine: str | None = None  # server version
    plan: ContainerPlan | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"available": self.available, "reason": self.reason, "image": self.image,
                "credential": self.credential, "engine": self.engine}


def client(timeout: int | None = PROBE_TIMEOUT_S) -> Any:
    """The engine ``DOCKER_HOST`` names (the SDK's own rules: unix, tcp with the TLS variables, ssh through
    the system's ``ssh`` client, so ``~/.ssh/config`` applies and paramiko is not needed)."""
    import docker

    ssh = os.environ.get("DOCKER_HOST", "").startswith("ssh://")
    return docker.from_env(timeout=timeout, use_ssh_client=ssh)


def _user(setting: str, image_user: str | None) -> tuple[int, int] | str:
    """The numeric ``(uid, gid)`` the agent runs as, or why it cannot."""
    if setting == "host":
        uid, gid = os.getuid(), os.getgid()
        if uid == 0:
            return ("loom runs as root and docker.user is 'host': set LOOM_DOCKER_USER to a non-root uid:gid "
                    "(agent containers never run as root)")
        return uid, gid
    raw = (image_user or "") if setting == "image" else setting
    uid, _, gid = raw.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        return (f"the image's user '{raw or 'root'}' is not a numeric uid[:gid]; set LOOM_DOCKER_USER to one"
                if setting == "image" else f"docker.user '{raw}' is not host, image or uid[:gid]")
    if int(uid) == 0:
        return "the agent would run as root (uid 0); set LOOM_DOCKER_USER to a non-root uid:gid"
    return int(uid), int(gid or uid)


def docker_status(settings: Any = None, *, probe_engine: bool = True) -> DockerStatus:
    """Can agents run in a container here? Cheap checks first (image, credential, user), then the engine
    (it answers and holds the image). ``reason`` names the first missing piece."""
    if settings is None:
        from loom_core.config.settings import load_settings

        settings = load_settings()
    d = settings.docker
    if not d.image:
        return DockerStatus(False, "no image is configured (set LOOM_DOCKER_IMAGE; see docker/README.md)")
    kind, where = credential()
    if kind is None:
        return DockerStatus(False, where, image=d.image)
    bind = {"on": True, "off": False}.get(d.bind_mounts, local_engine())
    if kind == "file" and not bind:
        return DockerStatus(False, f"the engine is remote (bind mounts off), so the login file cannot be mounted: "
                                   f"set {TOKEN_ENV} instead", image=d.image, credential=kind)
    if d.user not in ("host", "image"):
        early = _user(d.user, None)
        if isinstance(early, str):
            return DockerStatus(False, early, image=d.image, credential=kind)
    elif d.user == "host" and isinstance(_user("host", None), str):
        return DockerStatus(False, str(_user("host", None)), image=d.image, credential=kind)
    if not probe_engine:
        return DockerStatus(True, "not probed", image=d.image, credential=kind)
    try:
        import docker

        eng = client()
        try:
            version = eng.version().get("Version", "?")
            img = eng.images.get(d.image)
        finally:
            eng.close()
    except ImportError:
        return DockerStatus(False, "the docker Python package is not installed", image=d.image, credential=kind)
    except docker.errors.ImageNotFound:
        return DockerStatus(False, f"the engine has no image {d.image} (build it: see docker/README.md)",
                            image=d.image, credential=kind)
    except Exception as exc:  # noqa: BLE001  (any failure to reach the engine is the answer "unavailable")
        where_ = os.environ.get("DOCKER_HOST") or "the local socket"
        return DockerStatus(False, f"the Docker engine at {where_} does not answer ({str(exc)[:160]})",
                            image=d.image, credential=kind)
    ids = _user(d.user, (img.attrs.get("Config") or {}).get("User"))
    if isinstance(ids, str):
        return DockerStatus(False, ids, image=d.image, credential=kind, engine=version)
    if bind and os.geteuid() != 0 and ids[0] != os.getuid():
        return DockerStatus(False, f"docker.user {ids[0]} is not loom's own uid ({os.getuid()}), so the mounted "
                                   "sandbox copy would not be writable; use 'host' or turn bind mounts off",
                            image=d.image, credential=kind, engine=version)
    plan = ContainerPlan(image=d.image, uid=ids[0], gid=ids[1], credential=kind, bind_mounts=bind, network=d.network,
                         memory=d.memory, pids=d.pids, cpus=d.cpus, strict_mcp=d.strict_mcp, home=d.home)
    return DockerStatus(True, plan.describe(), image=d.image, credential=kind, engine=version, plan=plan)


def decide(requested: bool | None, backend: str, project: Path | str, settings: Any = None
           ) -> tuple[ContainerPlan | None, str | None]:
    """A run's containers: ``(plan, notice)``. ``requested`` True and impossible → ConfigError
    ``DOCKER_UNAVAILABLE`` naming why; None (auto) and impossible → no plan and a notice naming the
    missing piece; False → neither. Only the Claude Code CLI runs in a container."""
    if requested is False:
        return None, None
    if settings is None:
        from loom_core.config.settings import load_settings

        settings = load_settings()
    name = settings.backend if backend == "auto" else backend
    if name not in ("auto", "claude-code"):
        if requested:
            raise ConfigError(f"--docker requires container isolation, but the container runs the Claude Code CLI "
                              f"and the backend is {name}", code=UNAVAILABLE)
        return None, None
    from loom_core.workspace import discover

    if discover(Path(project)) is None:  # no sandbox copy to mount: agents would edit the project itself
        if requested:
            raise ConfigError(f"--docker requires container isolation, but {project} is not a git repository "
                              "(a container works on a sandbox copy)", code="CONTAINER_PROVISION_FAILED")
        return None, None
    st = docker_status(settings)
    if st.plan is None:
        if requested:
            raise ConfigError(f"--docker requires container isolation, but {st.reason}", code=UNAVAILABLE)
        return None, f"agents run in a sandbox copy, not a container: {st.reason} (--no-docker silences this)"
    st.plan.project = str(project)
    st.plan.labels = owner_labels(str(project))
    try:
        swept = sweep_orphans()
    except Exception:  # noqa: BLE001  (a sweep that fails leaves the orphans for the next start)
        swept = 0
    notice = st.reason + (f"; removed {swept} container(s) left by a loom that was killed" if swept else "")
    return st.plan, notice


def owner_labels(project: str) -> dict[str, str]:
    """Labels naming this loom process (pid + start time, host) and the project, on every container."""
    pid = os.getpid()
    return {"loom.project": project, LABEL: str(pid), "loom.owner-start": procs.start_token(pid) or "",
            "loom.host": socket.gethostname()}


def sweep_orphans(eng: Any = None) -> int:
    """Remove the agent containers whose loom process (on this host) is gone; how many were removed.
    Containers of a live loom, or of another host sharing the engine, are left alone."""
    own = eng is None
    eng = eng or client()
    removed = 0
    try:
        import docker

        for row in eng.api.containers(all=True, filters={"label": LABEL}):
            labels = row.get("Labels") or {}
            if labels.get("loom.host") != socket.gethostname():
                continue
            pid = labels.get(LABEL, "")
            if pid.isdigit() and procs.alive(int(pid), labels.get("loom.owner-start") or None):
                continue
            try:
                eng.api.remove_container(row["Id"], force=True, v=True)
                removed += 1
            except docker.errors.NotFound:
                pass  # removed meanwhile (its own loom, or another sweep)
    finally:
        if own:
            eng.close()
    return removed
