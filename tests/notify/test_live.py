"""LiveNotifier: a long-running surface picks up changed [notify] settings without a restart."""

from __future__ import annotations

from loom_core.config import paths
from loom_core.config.settings import set_key
from loom_core.surfaces.notify.live import LiveNotifier
from tests.notify.conftest import Receiver

DONE = {"event": "complete", "task_id": "t-1", "verdict": "accepted"}


def test_channels_follow_the_settings_file(receiver):
    other = Receiver()
    try:
        errors: list = []
        set_key("notify.webhook_url", receiver.url("/first"))
        live = LiveNotifier(on_error=lambda ch, msg: errors.append((ch, msg)), min_interval_s=0)
        live.emit(DONE)
        set_key("notify.webhook_url", other.url("/second"))
        set_key("notify.events", "complete,retry")
        live.emit({**DONE, "event": "retry"})
        live.flush(5)
        assert [(p, b["event"]) for p, _, b in receiver.got] == [("/first", "complete")]
        assert [(p, b["event"]) for p, _, b in other.got] == [("/second", "retry")]

        paths.config_path().write_text("[notify\n")  # broken: the current channels stay
        live.emit(DONE)
        live.flush(5)
        assert [p for p, _, _ in other.got] == ["/second", "/second"]
        assert errors and errors[-1][0] == "notify" and "not reloaded" in errors[-1][1]
    finally:
        other.close()


def test_checks_are_rate_limited(receiver):
    set_key("notify.webhook_url", receiver.url("/first"))
    live = LiveNotifier(min_interval_s=3600)
    set_key("notify.webhook_url", receiver.url("/second"))
    live.emit(DONE)
    live.flush(5)
    assert [p for p, _, _ in receiver.got] == ["/first"]
