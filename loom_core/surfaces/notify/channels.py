"""The delivery channels. Each ``send(event, text)`` delivers one event within ``timeout_s`` or raises
:class:`DeliveryError` (the notifier reports it; nothing here retries)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from typing import Any


class DeliveryError(Exception):
    """One delivery failed (the message says why, without secrets)."""


class _Http:
    """A channel that POSTs JSON with httpx (imported on first use, so loading loom stays light)."""

    name = "http"

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._client: Any = None

    @property
    def shown(self) -> str:
        """The URL without its path (webhook paths carry secrets)."""
        head, _, rest = self.url.partition("://")
        return f"{head}://{rest.split('/', 1)[0]}"

    def _post(self, body: dict[str, Any]) -> Any:
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=httpx.Timeout(self.timeout_s), follow_redirects=False)
        try:
            response = self._client.post(self.url, json=body)
        except httpx.TimeoutException:
            raise DeliveryError(f"no answer from {self.shown} within {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"cannot reach {self.shown}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 300:
            raise DeliveryError(f"{self.shown} answered HTTP {response.status_code}: {response.text[:200]}")
        return response

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class Webhook(_Http):
    """POST the whole event as JSON."""

    name = "webhook"

    def send(self, event: dict[str, Any], text: str) -> None:
        self._post(event)


class Slack(_Http):
    """A Slack incoming webhook: ``{"text": line}``."""

    name = "slack"

    def send(self, event: dict[str, Any], text: str) -> None:
        self._post({"text": text})


class Telegram(_Http):
    """The Bot API's ``sendMessage`` to one chat."""

    name = "telegram"

    def __init__(self, token: str, chat: str, api_url: str, timeout_s: float) -> None:
        super().__init__(f"{api_url.rstrip('/')}/bot{token}/sendMessage", timeout_s)
        self.token = token
        self.chat = chat

    @property
    def shown(self) -> str:
        return super().shown + " (Telegram)"

    def send(self, event: dict[str, Any], text: str) -> None:
        chat: int | str = int(self.chat) if self.chat.lstrip("-").isdigit() else self.chat
        response = self._post({"chat_id": chat, "text": text})
        try:
            ok = response.json().get("ok")
        except ValueError:
            ok = False
        if not ok:
            raise DeliveryError(f"Telegram refused sendMessage: {response.text[:200]}")


class Script:
    """Run a command per event: the event JSON on stdin and in ``$LOOM_NOTIFY_EVENT``; its whole process
    group is killed when it outlives the timeout."""

    name = "script"

    def __init__(self, command: str, timeout_s: float) -> None:
        self.argv = [os.path.expanduser(a) for a in shlex.split(command)]
        self.timeout_s = timeout_s

    def send(self, event: dict[str, Any], text: str) -> None:
        payload = json.dumps(event, ensure_ascii=False)
        env = {**os.environ, "LOOM_NOTIFY_EVENT": payload, "LOOM_NOTIFY_TEXT": text}
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, env=env, start_new_session=True)
        except OSError as exc:
            raise DeliveryError(f"cannot start {self.argv[0]}: {exc.strerror or exc}") from None
        try:
            _, err = proc.communicate(payload.encode(), timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise DeliveryError(f"{self.argv[0]} still running after {self.timeout_s:g} s; killed") from None
        if proc.returncode != 0:
            tail = err.decode("utf-8", "replace").strip()[-200:]
            raise DeliveryError(f"{self.argv[0]} exited with {proc.returncode}" + (f": {tail}" if tail else ""))

    def close(self) -> None:
        pass


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.communicate()


__all__ = ["DeliveryError", "Webhook", "Slack", "Telegram", "Script"]
