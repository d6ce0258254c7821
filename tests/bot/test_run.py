"""Starting and stopping the bot: the refusals of `loom bot telegram` (no token, nobody allowed, a plane that
refuses its token), a clean stop on SIGTERM, a plane or Telegram that is down at first (backed off, then
recovered), `--detach`, and `loom serve --telegram` (the bot beside the plane, stopped with it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.bot.conftest import ME, PLANE_TOKEN, PlaneProc, free_port, wait_for


def bot_cli(env: dict[str, str], *args: str, **kw) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("LOOM_TG_", "LOOM_SERVER_"))}
    return subprocess.Popen([sys.executable, "-m", "loom_core.surfaces.cli", "bot", "telegram", *args],
                            env={**full, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def refused(env: dict[str, str], rc: int = 1) -> list[str]:
    proc = bot_cli(env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == rc, (out, err)
    return err.strip().splitlines()


@pytest.fixture
def refused_here(monkeypatch, capsys):
    """``loom bot telegram`` through the CLI's entry point in this process (its exit code and stderr lines)."""
    from loom_core.surfaces.cli import main

    def run(env: dict[str, str], rc: int = 1) -> list[str]:
        with monkeypatch.context() as m:
            for key in [k for k in os.environ if k.startswith(("LOOM_TG_", "LOOM_SERVER_"))]:
                m.delenv(key)
            for key, value in env.items():
                m.setenv(key, value)
            capsys.readouterr()
            with pytest.raises(SystemExit) as exc:
                main(["bot", "telegram"])
        assert exc.value.code == rc, capsys.readouterr()
        return capsys.readouterr().err.strip().splitlines()

    return run


def test_refuses_to_start_without_a_token_or_anyone_allowed(stub, plane, refused_here, no_keyring):
    refused = refused_here
    lines = refused({"LOOM_TG_ALLOWED_USERS": "42"})
    assert lines[0] == "loom: no Telegram bot token" and lines[1].startswith("hint:") and "BotFather" in lines[1]
    lines = refused({"LOOM_TG_BOT_TOKEN": "secret:nosuch", "LOOM_TG_ALLOWED_USERS": "42"})
    assert "secret:nosuch is not in the secret store" in lines[0]
    lines = refused({"LOOM_TG_BOT_TOKEN": "123:TEST"})
    assert lines[0].startswith("loom: no Telegram user is allowed") and "allowed_users" in lines[1]
    lines = refused({"LOOM_TG_BOT_TOKEN": "123:TEST", "LOOM_TG_ALLOWED_USERS": "42,bob"}, rc=2)  # a usage error
    assert len(lines) == 1 and "LOOM_TG_ALLOWED_USERS" in lines[0] and "'bob'" in lines[0]

    # a plane with a token the bot lacks: one clear error, before Telegram is even asked
    lines = refused({"LOOM_TG_BOT_TOKEN": "123:TEST", "LOOM_TG_ALLOWED_USERS": "42", "LOOM_TG_API_URL": stub.url,
                     "LOOM_SERVER_URL": plane.url})
    assert lines == [f"loom: the plane at {plane.url} refused the bot's token",
                     "hint: set the plane's token with telegram.server_token or LOOM_SERVER_TOKEN (a secret:<name> "
                     "reference works)"]
    assert stub.calls() == []


def test_runs_and_stops_cleanly_on_sigterm(stub, plane):
    proc = bot_cli({"LOOM_TG_BOT_TOKEN": "123:TEST", "LOOM_TG_ALLOWED_USERS": "42", "LOOM_TG_API_URL": stub.url,
                    "LOOM_SERVER_URL": plane.url, "LOOM_SERVER_TOKEN": PLANE_TOKEN})
    try:
        got = stub.http.get("/_fake/wait", params={"method": "getUpdates", "count": 1, "timeout": 30}).json()
        assert got["ok"]
        getme = stub.calls("getUpdates")[0]["params"]
        assert getme["allowed_updates"] == ["message", "callback_query"] and getme["timeout"] == 25
        stub.say("/help")
        stub.message("/projects — pick the project")
        pidfile = wait_for(lambda: next((p for p in (os.environ["LOOM_HOME"] + "/bot/telegram.pid",)
                                         if os.path.exists(p)), None))
        assert json.loads(open(pidfile).read())["pid"] == proc.pid
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Telegram bot polling" in err and err.strip().endswith("loom: the Telegram bot stopped")
    assert "Traceback" not in err and not os.path.exists(pidfile)
    assert took < 10, took


def test_a_plane_that_is_down_is_backed_off_and_recovered(stub, start_bot, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    state = tmp_path / "bot" / "telegram.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"chats": {str(ME): {"active_project": {"id": "gone", "name": "gone"}}}}))
    rb = start_bot(url, "tok")
    stub.say("/projects")
    stub.message("⚠️ PLANE_UNREACHABLE")
    wait_for(lambda: len(rb.bot.watch_delays) >= 2, timeout_s=10)
    assert rb.bot.watch_delays[:2] == [1.0, 2.0]

    plane = PlaneProc(tmp_path / "late", port=port, token="tok")
    try:
        pid, _ = plane.demo("late")
        stub.say("/projects")
        pick = stub.message("Pick the project", timeout_s=15)
        assert "late" in pick["text"]
        seen = len(rb.bot.watch_delays)
        time.sleep(1.0)  # the beat is back to normal: no further back-off
        assert len(rb.bot.watch_delays) == seen <= 3
    finally:
        plane.close()


def test_detach_returns_once_polling_and_a_second_bot_is_refused(stub, plane):
    env = {"LOOM_TG_BOT_TOKEN": "123:TEST", "LOOM_TG_ALLOWED_USERS": "42", "LOOM_TG_API_URL": stub.url,
           "LOOM_SERVER_URL": plane.url, "LOOM_SERVER_TOKEN": PLANE_TOKEN}
    proc = bot_cli(env, "--detach")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.startswith("loom: Telegram bot polling (pid ")
    info = json.loads(open(os.environ["LOOM_HOME"] + "/bot/telegram.pid").read())
    try:
        stub.say("/help")
        stub.message("/projects — pick the project")
        lines = refused(env)
        assert lines[0] == f"loom: a Telegram bot already runs (pid {info['pid']})"
    finally:
        os.kill(info["pid"], signal.SIGTERM)
    wait_for(lambda: not os.path.exists(os.environ["LOOM_HOME"] + "/bot/telegram.pid"), timeout_s=15)
    log = open(os.environ["LOOM_HOME"] + "/bot/telegram.out").read()
    assert log.strip().endswith("loom: the Telegram bot stopped")


def test_serve_with_telegram_runs_the_bot_beside_the_plane(stub, tmp_path):
    env = {"LOOM_TG_BOT_TOKEN": "123:TEST", "LOOM_TG_ALLOWED_USERS": "42", "LOOM_TG_API_URL": stub.url,
           "LOOM_SERVER_STATE_DIR": str(tmp_path / "server")}
    full = {k: v for k, v in os.environ.items() if not k.startswith(("LOOM_TG_", "LOOM_SERVER_"))}
    proc = subprocess.Popen([sys.executable, "-m", "loom_core.surfaces.cli", "serve", "--port", "0", "--token",
                             "tok", "--telegram"], env={**full, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    pidfile = os.environ["LOOM_HOME"] + "/bot/telegram.pid"
    bot_pid = None
    try:
        assert stub.http.get("/_fake/wait", params={"method": "getUpdates", "count": 1, "timeout": 30}).json()["ok"]
        stub.say("/projects")  # the bot reaches this plane with its token
        stub.message("No projects in the plane's catalog yet")
        bot_pid = json.loads(open(pidfile).read())["pid"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if bot_pid and os.path.exists(pidfile):  # a failed stop: do not leave the bot running
            os.kill(bot_pid, signal.SIGTERM)
    assert proc.returncode == 0, err
    assert "loom: the Telegram bot stopped" in err and not os.path.exists(pidfile)
    assert json.loads((tmp_path / "server" / "server.json").read_text())["phase"] == "stopped"  # its own stop ran
    with pytest.raises(ProcessLookupError):
        os.kill(bot_pid, 0)


def test_telegram_unreachable_at_start_is_retried_until_it_answers(plane, tmp_path, caplog):
    from loom_core.surfaces.bot.plane import PlaneLink
    from loom_core.surfaces.bot.state import BotState
    from loom_core.surfaces.bot.telegram import TelegramBot
    from tests.bot.conftest import RunningBot, Stub

    port = free_port()
    bot = TelegramBot(token="123:TEST", allowed=frozenset({ME}), link=PlaneLink(plane.url, PLANE_TOKEN),
                      state=BotState(tmp_path / "telegram.json"), api_url=f"http://127.0.0.1:{port}",
                      watch_period_s=0.25, poll_timeout_s=2.0)
    caplog.set_level("WARNING", logger="loom.bot")
    rb = RunningBot(bot)
    stub = None
    try:
        wait_for(lambda: "Telegram is not reachable" in caplog.text, timeout_s=10)
        stub = Stub(port=port)
        assert stub.http.get("/_fake/wait", params={"method": "getUpdates", "count": 1, "timeout": 20}).json()["ok"]
        stub.say("/help")
        stub.message("/projects — pick the project")
    finally:
        rb.stop()
        if stub is not None:
            stub.close()
    assert rb.error is None
