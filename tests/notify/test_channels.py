"""Every channel against a real receiver on loopback: webhook and Slack shapes over HTTP, Telegram's
sendMessage against the Bot API stub, a script fed on stdin; dead and stalled receivers cost the caller
nothing and flush() stops at its timeout."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from loom_core.config.secrets import SecretStore
from loom_core.config.settings import LoomSettings
from loom_core.surfaces.notify import Notifier

DONE = {"event": "complete", "task_id": "t-1", "project_id": "shop", "verdict": "accepted", "branch": "loom/t-1",
        "ts": "2026-11-20T09:00:00.000Z"}
PARKED = {"event": "parked", "task_id": "t-2", "gate": "gate-plan", "message": "review the plan\nplease"}


def notifier(errors: list | None = None, **notify) -> Notifier:
    sink = errors if errors is not None else []
    return Notifier.from_settings(LoomSettings(notify=notify), on_error=lambda ch, msg: sink.append((ch, msg)))


def test_webhook_gets_the_whole_event_and_slack_one_line(receiver):
    errors: list = []
    n = notifier(errors, webhook_url=receiver.url("/hook"), slack_url=receiver.url("/slack"))
    assert n.channels == ["webhook", "slack"]
    n.emit(DONE)
    n.emit(PARKED)
    n.flush(10)
    assert errors == []
    by_path: dict[str, list] = {}
    for path, headers, body in receiver.got:
        assert headers["Content-Type"] == "application/json"
        by_path.setdefault(path, []).append(body)
    assert by_path["/hook"][0] == DONE  # the event as given, ts kept
    parked = by_path["/hook"][1]
    assert parked["gate"] == "gate-plan" and parked["task_id"] == "t-2" and parked["ts"].endswith("Z")
    assert by_path["/slack"] == [{"text": "✅ shop/t-1 complete — accepted → loom/t-1"},
                                 {"text": "⏸️ t-2 parked at gate-plan: review the plan please — resume to continue"}]


def test_telegram_send_message_with_a_secret_token(telegram, no_keyring):
    SecretStore().set("tg-bot", "123456:ABC-token")
    errors: list = []
    n = notifier(errors, telegram_token="secret:tg-bot", telegram_chat="42", telegram_api_url=telegram.url)
    assert n.channels == ["telegram"]
    n.emit({"event": "failed", "task_id": "t-3", "code": "PROVIDER_AUTH", "message": "key refused"})
    n.flush(10)
    assert errors == []
    seen = telegram.get("/_fake/wait?method=sendMessage&count=1&timeout=10")
    assert seen["ok"]
    (call,) = seen["calls"]
    assert call["params"] == {"chat_id": 42, "text": "❌ t-3 failed [PROVIDER_AUTH]: key refused"}
    (message,) = telegram.get("/_fake/messages")
    assert message["chat"]["id"] == 42 and message["text"].startswith("❌ t-3 failed")


def test_an_unstored_secret_leaves_the_channel_off_and_says_so(no_keyring, receiver):
    errors: list = []
    n = notifier(errors, slack_url="secret:nowhere", webhook_url=receiver.url())
    assert n.channels == ["webhook"]
    assert errors and errors[0][0] == "slack" and "secret:nowhere is not stored" in errors[0][1]


def test_script_gets_the_event_on_stdin_and_in_the_environment(tmp_path):
    out = tmp_path / "out"
    script = tmp_path / "hook.py"
    script.write_text("import json, os, sys\n"
                      f"open({str(out)!r}, 'a').write(json.dumps([sys.stdin.read(), os.environ['LOOM_NOTIFY_EVENT']])"
                      " + '\\n')\n")
    errors: list = []
    n = notifier(errors, script=f"{sys.executable} {script}")
    n.emit(DONE)
    n.flush(10)
    assert errors == []
    (line,) = out.read_text().splitlines()
    stdin, env = json.loads(line)
    assert json.loads(stdin) == DONE and json.loads(env) == DONE


def test_a_script_past_the_timeout_is_killed_with_its_children(tmp_path):
    pids = tmp_path / "pids"
    script = tmp_path / "slow.sh"
    script.write_text(f"#!/bin/sh\nsleep 60 &\necho $$ $! > {pids}\nwait\n")
    script.chmod(0o755)
    errors: list = []
    n = notifier(errors, script=str(script), timeout_ms=400)
    t0 = time.monotonic()
    n.emit(DONE)
    n.flush(5)
    assert time.monotonic() - t0 < 3
    assert errors and errors[0][0] == "script" and "killed" in errors[0][1]
    for pid in map(int, pids.read_text().split()):
        assert not alive(pid), f"pid {pid} outlived the timeout"


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_dead_and_stalled_receivers_do_not_hold_the_caller(dead_url, stalled, receiver, tmp_path):
    errors: list = []
    out = tmp_path / "out"
    script = tmp_path / "hook.py"
    script.write_text(f"import sys\nopen({str(out)!r}, 'w').write(sys.stdin.read())\n")
    n = notifier(errors, webhook_url=dead_url, slack_url=stalled.url(), script=f"{sys.executable} {script}",
                 timeout_ms=500)
    t0 = time.monotonic()
    for _ in range(3):
        n.emit(DONE)
    assert time.monotonic() - t0 < 0.1  # emit only queues
    t1 = time.monotonic()
    n.flush(0.5 + 1.0)
    assert time.monotonic() - t1 < 0.5 + 1.5  # flush stops at its own limit, stalled lane or not
    assert json.loads(out.read_text()) == DONE  # the healthy channel was not held up by the others
    assert any(ch == "webhook" and "cannot reach http://127.0.0.1" in msg for ch, msg in errors)
    n.flush(3)
    assert any(ch == "slack" and "no answer" in msg and "within 0.5 s" in msg for ch, msg in errors)
    assert all("/hook" not in msg for _, msg in errors)  # webhook paths (secrets) are not repeated


def test_an_http_error_status_is_reported(receiver):
    receiver.status = 500
    errors: list = []
    n = notifier(errors, webhook_url=receiver.url())
    n.emit(DONE)
    n.flush(5)
    assert errors == [("webhook", f"http://127.0.0.1:{receiver.server.server_address[1]} answered HTTP 500: ok")]


def test_only_allowed_events_go_out(receiver, monkeypatch):
    n = notifier(webhook_url=receiver.url())
    for kind in ("complete", "parked", "failed", "rate-limit-wait", "watch-park", "retry", "bogus"):
        n.emit({"event": kind, "task_id": "t"})
    n.flush(5)
    assert [b["event"] for _, _, b in receiver.got] == ["complete", "parked", "failed"]
    receiver.got.clear()
    monkeypatch.setenv("LOOM_NOTIFY_EVENTS", "retry,watch-park")
    monkeypatch.setenv("LOOM_NOTIFY_WEBHOOK_URL", receiver.url())
    n = Notifier.from_settings()
    for kind in ("complete", "watch-park", "retry"):
        n.emit({"event": kind, "task_id": "t"})
    n.flush(5)
    assert sorted(b["event"] for _, _, b in receiver.got) == ["retry", "watch-park"]


def test_nothing_configured_is_a_no_op():
    n = notifier()
    assert n.channels == []
    n.emit(DONE)
    t0 = time.monotonic()
    n.flush(5)
    assert time.monotonic() - t0 < 0.1


def test_emit_survives_a_bad_event_and_a_raising_callback(receiver):
    def boom(channel, message):
        raise RuntimeError("callback broke")

    n = Notifier.from_settings(LoomSettings(notify={"webhook_url": receiver.url()}), on_error=boom)
    n.emit({"event": "complete", "task_id": object()})  # not JSON-serialisable: fails in the lane, reported
    n.emit(None)  # type: ignore[arg-type]
    n.flush(5)
    n.emit(DONE)
    n.flush(5)
    assert receiver.got[-1][2] == DONE


def test_secrets_never_leave_in_an_event_or_an_error(receiver, no_keyring, monkeypatch):
    SecretStore().set("deploy", "hunter2-deploy-password")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-" + "k" * 30)
    errors: list = []
    n = notifier(errors, slack_url=receiver.url("/slack"), webhook_url=receiver.url("/hook"),
                 telegram_token="999:TOKENVALUE", telegram_chat="42", telegram_api_url="http://127.0.0.1:1")
    leaky = ("push failed: hunter2-deploy-password rejected; key sk-ant-api03-" + "k" * 30
             + f"; bot 123456789:AA{'x' * 32}; via {receiver.url('/hook')} and 999:TOKENVALUE")
    n.emit({"event": "failed", "task_id": "t", "code": "PUSH", "message": leaky})
    n.flush(10)
    bodies = {path: body for path, _, body in receiver.got}
    for sent in (bodies["/hook"]["message"], bodies["/slack"]["text"], *(m for _, m in errors)):
        for secret in ("hunter2", "sk-ant-api03", "AAxxxx", "/hook", "TOKENVALUE"):
            assert secret not in sent, sent
    assert bodies["/hook"]["message"].count("[redacted]") == 5
    assert errors and errors[0][0] == "telegram"  # nobody listens on port 1
