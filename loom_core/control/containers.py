"""The container verb (surfaces spec §9): can agents run in Docker containers here, and if not, why.
:class:`ContainerVerbs` is mixed into :class:`~loom_core.control.local.LocalControl`, so surfaces (the
CLI, the console's submit form, the plane's providers route) ask it without importing ``docker``."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

CACHE_S = 10.0  # an unreachable remote engine takes seconds to answer "no": a form asks once


class ContainerVerbs:
    _docker_cache: dict[str, tuple[float, dict[str, Any]]] = {}
    _docker_lock = threading.Lock()

    def docker_status(self, *, fresh: bool = False) -> dict[str, Any]:
        """``{available, reason, image, credential, engine}``: ``available`` when an image is configured, a
        credential exists, the user is not root and the engine answers holding the image; ``reason`` names
        the first missing piece (or what will run). The same settings and engine are asked again only after
        a few seconds, unless ``fresh``."""
        from loom_core.agents.executors.container_plan import credential, docker_status
        from loom_core.config.settings import load_settings

        settings = load_settings()
        key = "|".join((settings.docker.model_dump_json(), os.environ.get("DOCKER_HOST", ""), str(credential()),
                        str(os.getuid())))
        with ContainerVerbs._docker_lock:
            cached = ContainerVerbs._docker_cache.get(key)
            if not fresh and cached is not None and time.monotonic() - cached[0] < CACHE_S:
                return dict(cached[1])
        answer = docker_status(settings).as_dict()
        with ContainerVerbs._docker_lock:
            ContainerVerbs._docker_cache = {key: (time.monotonic(), answer)}
        return dict(answer)
