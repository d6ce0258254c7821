"""The one-line text of each event (Slack, Telegram)."""

from __future__ import annotations

import pytest

from loom_core.surfaces.notify import EVENTS, format_text


@pytest.mark.parametrize("event, line", [
    ({"event": "complete", "task_id": "t1", "project_id": "shop", "verdict": "accepted", "branch": "loom/t1"},
     "✅ shop/t1 complete — accepted → loom/t1"),
    ({"event": "complete", "task_id": "t1", "verdict": "rejected"}, "✅ t1 complete — rejected"),
    ({"event": "parked", "task_id": "t1", "gate": "gate-plan", "message": "plan ready"},
     "⏸️ t1 parked at gate-plan: plan ready — resume to continue"),
    ({"event": "failed", "task_id": "t1", "project_id": "p", "code": "BUDGET", "message": "out of\n spawns"},
     "❌ p/t1 failed [BUDGET]: out of spawns"),
    ({"event": "rate-limit-wait", "task_id": "t1", "message": "until 10:00"}, "⏳ t1 waiting for a rate limit: until 10:00"),
    ({"event": "watch-park", "task_id": None, "project_id": "shop"}, "🅿️ shop watching, nothing to do"),
    ({"event": "retry", "task_id": "t1", "code": "TRANSIENT", "message": "attempt 2 in 4 s"},
     "🔁 t1 retrying [TRANSIENT]: attempt 2 in 4 s"),
])
def test_one_line_per_event(event, line):
    assert format_text(event) == line


def test_every_event_has_an_icon_and_long_messages_are_cut():
    for kind in EVENTS:
        assert not format_text({"event": kind, "task_id": "t"}).startswith("•")
    text = format_text({"event": "failed", "task_id": "t", "message": "x" * 1000})
    assert "\n" not in text and len(text) < 340 and text.endswith("…")
