"""The [notify] settings: short environment names, validation, and the console's settings form."""

from __future__ import annotations

import asyncio

import pytest

from loom_core.config.settings import load_settings, set_key
from loom_core.errors import ConfigError


def test_short_environment_names(monkeypatch):
    for name, value in {"WEBHOOK_URL": "https://example.invalid/h", "SLACK_URL": "secret:slack",
                        "TELEGRAM_TOKEN": "secret:tg", "TELEGRAM_CHAT": "-1001", "SCRIPT": "notify-me --loud",
                        "EVENTS": "complete, retry", "TIMEOUT_MS": "2s"}.items():
        monkeypatch.setenv(f"LOOM_NOTIFY_{name}", value)
    cfg = load_settings().notify
    assert (cfg.webhook_url, cfg.slack_url, cfg.telegram_token, cfg.telegram_chat, cfg.script) == (
        "https://example.invalid/h", "secret:slack", "secret:tg", "-1001", "notify-me --loud")
    assert cfg.events == "complete,retry" and cfg.event_names() == {"complete", "retry"}
    assert cfg.timeout_ms == 2000


def test_defaults():
    cfg = load_settings().notify
    assert cfg.event_names() == {"complete", "parked", "failed"} and cfg.timeout_ms == 10_000
    assert cfg.webhook_url is None and cfg.telegram_api_url == "https://api.telegram.org"


@pytest.mark.parametrize("env, value, words", [
    ("LOOM_NOTIFY_EVENTS", "complete,nap", "unknown event 'nap'"),
    ("LOOM_NOTIFY_WEBHOOK_URL", "hooks.example/x", "http(s):// URL"),
    ("LOOM_NOTIFY_TIMEOUT_MS", "soon", "LOOM_NOTIFY_TIMEOUT_MS must be"),
])
def test_bad_values_are_named(monkeypatch, env, value, words):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert words in str(err.value)


def test_config_set_writes_the_section():
    set_key("notify.slack_url", "secret:slack")
    set_key("notify.events", "complete,failed")
    cfg = load_settings().notify
    assert cfg.slack_url == "secret:slack" and cfg.event_names() == {"complete", "failed"}


def test_the_settings_screen_shows_the_notify_fields(tmp_path):
    from textual.widgets import Input, Static

    from loom_core.control.catalog import Catalog
    from loom_tui.app import make_app
    from loom_tui.screens.settings import SettingsScreen

    async def go():
        app = make_app(Catalog([], tmp_path / "workspace.json"), watch=False)
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            await pilot.press("s")
            for _ in range(10):
                await pilot.pause(0.05)
                if isinstance(app.screen, SettingsScreen):
                    break
            screen = app.screen
            assert isinstance(screen, SettingsScreen)
            for field in ("webhook_url", "slack_url", "telegram_token", "telegram_chat", "script", "events",
                          "timeout_ms"):
                screen.query_one(f"#cfg-notify--{field}", Input)
            help_text = str(screen.query_one("#cfg-notify--script-help", Static).render())
            assert "$LOOM_NOTIFY_EVENT" in help_text
            assert screen.query_one("#cfg-notify--events", Input).value == "complete,parked,failed"

    asyncio.run(go())
