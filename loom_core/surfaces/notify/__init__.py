"""Notifications (spec §4.8): one event fans out to every configured channel (webhook, Slack, Telegram,
script), best-effort.

``Notifier.from_settings()`` builds the channels from the ``[notify]`` settings (``secret:<name>``
references resolved through the secret store); ``emit(event)`` never raises and returns at once: each
channel has its own daemon thread and queue, so a dead receiver delays only itself, by at most the
timeout per event. Failures go to ``on_error(channel, message)`` (default: the ``loom.notify`` logger).
``flush(timeout_s)`` waits for what is queued (tests, shutdown). Text fields of an event and every
error message pass through the redactor (stored secrets, conventional key variables, key shapes, and the
channels' own URLs and tokens) before they leave.

Event: ``{event, task_id, project_id?, verdict?, gate?, code?, branch?, message?, ts}`` with ``event``
one of :data:`EVENTS`; events outside the allowlist are dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from loom_core.config.sections import NOTIFY_EVENTS as EVENTS
from loom_core.surfaces.notify.channels import DeliveryError, Script, Slack, Telegram, Webhook
from loom_core.surfaces.notify.text import format_text

DEFAULT_EVENTS = frozenset({"complete", "parked", "failed"})
QUEUE_MAX = 100  # events waiting per channel; more are dropped (and reported)
log = logging.getLogger("loom.notify")


def _log_error(channel: str, message: str) -> None:
    log.warning("notify %s: %s", channel, message)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Lane:
    """One channel's queue and the daemon thread that delivers from it, started on the first event."""

    def __init__(self, channel: Any, notifier: Notifier) -> None:
        self.channel = channel
        self.notifier = notifier
        self.queue: queue.Queue[tuple[dict[str, Any], str] | None] = queue.Queue(QUEUE_MAX)
        self.thread: threading.Thread | None = None

    def put(self, item: tuple[dict[str, Any], str] | None) -> bool:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name=f"loom-notify-{self.channel.name}", daemon=True)
            self.thread.start()
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                self.channel.close()
                return
            event, text = item
            try:
                self.channel.send(event, text)
            except DeliveryError as exc:
                self.notifier._report(self.channel.name, str(exc))
            except Exception as exc:  # a bug in a channel must not stop the others
                self.notifier._report(self.channel.name, f"{type(exc).__name__}: {exc}")
            finally:
                self.notifier._done()


def _redactor(store: Any, channels: list[Any]) -> Callable[[str], str]:
    from loom_core.config.redact import Redactor

    known = Redactor.from_environment(store)
    own = Redactor([getattr(c, "url", "") for c in channels] + [getattr(c, "token", "") for c in channels],
                   shapes=False)
    return lambda text: own.redact(known.redact(text))


class Notifier:
    """Fan-out of events to channels; see the module docstring."""

    def __init__(self, channels: list[Any], *, events: frozenset[str] | set[str] = DEFAULT_EVENTS,
                 on_error: Callable[[str, str], None] | None = None, clock: Callable[[], str] = _now,
                 redact: Callable[[str], str] | None = None) -> None:
        self.events = frozenset(events)
        self.redact = redact or (lambda text: text)
        self.on_error = on_error or _log_error
        self.clock = clock
        self._lanes = [_Lane(c, self) for c in channels]
        self._pending = 0
        self._cond = threading.Condition()

    @classmethod
    def from_settings(cls, settings: Any = None, *, secrets: Any = None,
                      on_error: Callable[[str, str], None] | None = None) -> Notifier:
        """Channels from ``settings.notify`` (loaded when None); a channel whose secret cannot be resolved is
        left out and reported through ``on_error``."""
        from loom_core.config.secrets import SecretStore
        from loom_core.config.settings import load_settings

        report = on_error or _log_error
        cfg = (settings if settings is not None else load_settings()).notify
        store = secrets if secrets is not None else SecretStore()
        timeout_s = cfg.timeout_ms / 1000

        def resolve(channel: str, ref: str | None) -> str | None:
            if not ref:
                return None
            try:
                value = store.resolve(ref)
            except Exception as exc:
                report(channel, f"cannot read {ref}: {exc}")
                return None
            if not value:
                report(channel, f"{ref} is not stored (loom secrets set {ref.removeprefix('secret:')} …); "
                                "channel off")
            return value

        channels: list[Any] = []
        if url := resolve("webhook", cfg.webhook_url):
            channels.append(Webhook(url, timeout_s))
        if url := resolve("slack", cfg.slack_url):
            channels.append(Slack(url, timeout_s))
        if cfg.telegram_token and not cfg.telegram_chat:
            report("telegram", "a bot token needs a chat id too (notify.telegram_chat); channel off")
        elif cfg.telegram_chat and not cfg.telegram_token:
            report("telegram", "a chat id needs a bot token too (notify.telegram_token); channel off")
        elif token := resolve("telegram", cfg.telegram_token):
            channels.append(Telegram(token, str(cfg.telegram_chat), cfg.telegram_api_url, timeout_s))
        if cfg.script:
            try:
                channels.append(Script(cfg.script, timeout_s))
            except ValueError as exc:
                report("script", f"cannot parse the command line: {exc}; channel off")
        return cls(channels, events=cfg.event_names(), on_error=on_error, redact=_redactor(store, channels))

    @property
    def channels(self) -> list[str]:
        return [lane.channel.name for lane in self._lanes]

    def wants(self, kind: str) -> bool:
        return bool(self._lanes) and kind in self.events

    def emit(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for every channel when its kind is allowed; never raises, never waits."""
        try:
            kind = str(event.get("event", ""))
            if not self.wants(kind):
                return
            event = {k: self.redact(v) if isinstance(v, str) else v for k, v in event.items()}
            event = {"task_id": None, **event, "ts": event.get("ts") or self.clock()}
            text = format_text(event)
            for lane in self._lanes:
                with self._cond:
                    self._pending += 1
                if not lane.put((event, text)):
                    self._done()
                    self._report(lane.channel.name, f"{QUEUE_MAX} events already waiting; '{kind}' dropped")
        except Exception as exc:  # the caller is a drive loop: nothing may escape
            self._report("notify", f"{type(exc).__name__}: {exc}")

    def flush(self, timeout_s: float) -> None:
        """Wait until every queued delivery is done, or ``timeout_s`` has passed."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def close(self) -> None:
        """Stop the lanes once what is queued has been tried (no waiting here)."""
        for lane in self._lanes:
            if lane.thread is not None:
                try:
                    lane.queue.put_nowait(None)
                except queue.Full:
                    pass

    def _done(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def _report(self, channel: str, message: str) -> None:
        try:
            self.on_error(channel, self.redact(message))
        except Exception:
            log.exception("notify on_error callback failed")


__all__ = ["Notifier", "EVENTS", "DEFAULT_EVENTS", "DeliveryError", "format_text"]
