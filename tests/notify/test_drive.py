"""Notifications from a real supervised drive: a demo task parks at its plan gate and finishes; the
Telegram stub and a Slack receiver get one line each, while a stalled webhook costs the drive nothing."""

from __future__ import annotations

import tempfile
import threading
import time

from loom_core.config.settings import LoomSettings
from loom_core.control import LocalControl, RunOptions, create_demo_project, demo_task
from loom_core.surfaces.daemon import Supervisor
from loom_core.surfaces.notify import Notifier

TIMEOUT_MS = 20_000  # a delivery that waited on the stalled webhook would show in the drive's time


def test_a_supervised_drive_notifies_and_a_stalled_receiver_does_not_hold_it(tmp_path, monkeypatch, telegram,
                                                                           receiver, stalled):
    base = tmp_path / "tmpdir"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    monkeypatch.setattr(tempfile, "tempdir", str(base))  # gettempdir() caches; the sandbox base uses it
    proj = tmp_path / "shop"
    create_demo_project(proj)
    control = LocalControl()
    pid = control.add_project(proj).id
    errors: list = []
    notifier = Notifier.from_settings(LoomSettings(notify={
        "webhook_url": stalled.url(), "slack_url": receiver.url("/slack"), "telegram_token": "123:abc",
        "telegram_chat": "42", "telegram_api_url": telegram.url, "timeout_ms": TIMEOUT_MS}),
        on_error=lambda ch, msg: errors.append((ch, msg)))
    sup = Supervisor(control, proj, task=demo_task(), opts=RunOptions(backend="demo", policy="demo-gates"),
                     notifier=notifier)
    got: dict = {}
    runner = threading.Thread(target=lambda: got.setdefault("result", sup.run()))
    started = time.monotonic()
    runner.start()
    deadline = time.monotonic() + 30
    for gate in ("gate-plan", "gate-final"):
        while (control.gate(proj) or {}).get("gate") != gate:
            assert time.monotonic() < deadline, f"never parked at {gate}"
            time.sleep(0.05)
        control.answer(proj, "accept")
    runner.join(60)
    took = time.monotonic() - started
    assert got["result"] == "accepted"
    assert took < TIMEOUT_MS / 1000 - 5, f"the drive took {took:.1f} s: it waited on the stalled webhook"

    task_id = control.status(proj)["task_id"]
    seen = telegram.get("/_fake/wait?method=sendMessage&count=3&timeout=15")
    assert seen["ok"], seen
    texts = [c["params"]["text"] for c in seen["calls"]]
    assert texts[0].startswith(f"⏸️ {pid}/{task_id} parked at gate-plan") and texts[0].endswith("resume to continue")
    assert texts[1].startswith(f"⏸️ {pid}/{task_id} parked at gate-final")
    assert texts[-1] == f"✅ {pid}/{task_id} complete — accepted → loom/{task_id}"
    t0 = time.monotonic()
    notifier.flush(1.0)  # the stalled webhook still holds its lane; flush gives up on time
    assert time.monotonic() - t0 < 2.0
    deadline = time.monotonic() + 10
    while len(receiver.got) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [b["text"] for _, _, b in receiver.got] == texts  # Slack saw the same lines
    assert stalled.got[0][2]["event"] == "parked" and stalled.got[0][2]["task_id"] == task_id
    assert errors == []  # nothing has failed yet: the stalled delivery is still within its timeout
