"""The bot's link to the plane: :class:`~loom_core.control.http.HttpControl` plus the few documented routes of
spec §5.2 the bot reads as they are (the workspace rows, a submit with ``docker``, ship results, the docker
signal of ``/providers``). Every call is synchronous; the bot runs them off its event loop."""

from __future__ import annotations

from typing import Any

from loom_core.control.http import HttpControl
from loom_core.errors import LoomError

PLAN_DOC = ".loom/work/plan.md"


class PlaneLink(HttpControl):
    """One plane, as the bot sees it."""

    def check(self) -> None:
        """Reach the plane with the bot's token: unreachable raises ``PLANE_UNREACHABLE``, a refused token
        ``PLANE_UNAUTHORIZED`` (with a hint)."""
        try:
            self._call("GET", "/workspace")
        except LoomError as exc:
            if exc.code == "UNAUTHORIZED":
                raise unauthorized(self.url) from None
            raise

    def workspace(self) -> list[dict[str, Any]]:
        """The catalog's projects with their status (``GET /workspace``)."""
        return list(self._call("GET", "/workspace").get("projects") or [])

    def project_row(self, pid: str) -> dict[str, Any]:
        """``{id, dir, supervised, status: read-model}`` (``GET /projects/:id``)."""
        return self._call("GET", f"/projects/{pid}")

    def submit_task(self, pid: str, task: str, *, complexity: str | None, docker: bool | None) -> dict[str, Any]:
        doc: dict[str, Any] = {"project": pid, "task": task}
        if complexity:
            doc["complexity"] = complexity
        if docker is not None:
            doc["docker"] = docker
        return self._call("POST", "/submit", body=doc)

    def decide(self, pid: str, gate_event_id: str, decision: str, note: str | None = None) -> dict[str, Any]:
        """Answer that gate (``accept``, ``reject`` = revise with ``note``, ``abandon``); a gate answered before
        raises :class:`~loom_core.errors.GateAlreadyAnswered` from the plane's envelope."""
        return self.answer(pid, decision, note, gate_event_id=gate_event_id)

    def ship(self, pid: str, verb: str) -> dict[str, Any]:
        """``push`` or ``merge`` (squash): ``{pushed|merged, branch, message, reason}``; a refusal is an outcome."""
        return self._call("POST", f"/projects/{pid}/{verb}")

    def docker_available(self) -> bool:
        """Whether the plane says it can run a task in Docker (``/providers``' ``docker.available``); a plane
        that does not say is taken as no."""
        try:
            doc = self._call("GET", "/providers")
        except LoomError:
            return False
        docker = doc.get("docker") if isinstance(doc, dict) else None
        return bool(isinstance(docker, dict) and docker.get("available"))

    def plan(self, pid: str) -> tuple[str, str] | None:
        """``(path, text)`` of the task's plan: ``.loom/work/plan.md``, else a plan-like working document, else
        the first one; ``None`` when there is none."""
        docs = [d.get("path", "") for d in self.artifacts(pid)]
        if not docs:
            return None
        pick = PLAN_DOC if PLAN_DOC in docs else next((d for d in docs if "plan" in d.rsplit("/", 1)[-1]), docs[0])
        got = self.artifact(pid, pick)
        return got.get("path", pick), got.get("content") or ""


def unauthorized(url: str) -> LoomError:
    return LoomError(f"the plane at {url} refused the bot's token", code="PLANE_UNAUTHORIZED",
                     hint="set the plane's token with telegram.server_token or LOOM_SERVER_TOKEN "
                          "(a secret:<name> reference works)")
