"""What the bot writes and remembers: long text split at newlines, callback data within 64 bytes, the Docker
toggle only when offered, and the state file (round trip, dedup cursor, corrupt → empty with a notice)."""

from __future__ import annotations

import json

import pytest

from loom_core.errors import LoomError
from loom_core.surfaces.bot import views
from loom_core.surfaces.bot.state import PROMPTED_CAP, BotState


def test_long_text_is_split_at_newlines():
    lines = [f"line {i} " + "x" * (i % 70) for i in range(400)]
    text = "\n".join(lines)
    pieces = views.split(text)
    assert len(pieces) > 1 and all(len(p) <= views.LIMIT for p in pieces)
    assert "\n".join(pieces) == text  # nothing lost, every cut at a line end
    assert views.split("short") == ["short"]
    assert [len(p) for p in views.split("y" * 9000)] == [4000, 4000, 1000]  # one endless line: cut hard


def test_callback_data_stays_within_64_bytes():
    geid = "gev-3e7e6c82-fbfa-add5-5e9f-e84002ed6565"
    rows = views.gate_keyboard("04dc50f19be1", geid) + views.terminal_keyboard("04dc50f19be1")
    assert all(len(d.encode()) <= 64 for row in rows for _label, d in row)
    assert views.parse(views.data("ga", geid)) == ("ga", geid) and views.parse("cnx") == ("cnx", None)
    with pytest.raises(LoomError) as exc:
        views.data("ga", "é" * 40)
    assert exc.value.code == "CALLBACK_TOO_LONG"


def test_docker_toggle_only_when_offered():
    plain = [d for row in views.complexity_keyboard(None) for _l, d in row]
    assert plain == ["cx|auto", "cx|trivial", "cx|simple", "cx|medium", "cx|complex"]
    offered = views.complexity_keyboard(False)
    assert offered[-1] == [("🐳 Docker: off", "dk")] and views.complexity_keyboard(True)[-1][0][0] == "🐳 Docker: on"


def test_state_round_trip_and_dedup(tmp_path):
    path = tmp_path / "bot" / "telegram.json"
    st = BotState(path)
    assert st.mark_gate(42, "gev-1", "p1") and not st.mark_gate(42, "gev-1", "p1")
    assert st.mark_terminal(42, "p1", "completed:t-1") and not st.mark_terminal(42, "p1", "completed:t-1")
    st.chat(42)["active_project"] = {"id": "p1", "name": "shop"}
    st.save()
    again = BotState(path)
    assert again.notice is None and again.gate_project(42, "gev-1") == "p1"
    assert again.chat("42")["active_project"] == {"id": "p1", "name": "shop"}
    for i in range(PROMPTED_CAP + 5):
        again.mark_gate(42, f"gev-x{i}", "p1")
    assert len(again.chat(42)["prompted_gates"]) == PROMPTED_CAP and again.gate_project(42, "gev-1") is None
    assert not list(path.parent.glob(".*.tmp"))  # atomic: no temporary file left behind


@pytest.mark.parametrize("bad", ["{oops", json.dumps({"chats": [1, 2]}), json.dumps([]), "\xff"])
def test_a_corrupt_state_file_starts_empty_with_a_notice(tmp_path, bad):
    path = tmp_path / "telegram.json"
    path.write_text(bad, encoding="latin-1")
    st = BotState(path)
    assert st.chats == {} and st.notice and str(path) in st.notice and "starting empty" in st.notice
    assert (tmp_path / "telegram.json.corrupt").read_bytes() == bad.encode("latin-1")
    st.chat(1)["active_project"] = {"id": "p", "name": "p"}
    st.save()
    assert BotState(path).notice is None


def test_the_back_off_doubles_from_one_second_up_to_thirty():
    from loom_core.surfaces.bot.watch import next_delay

    delays, d = [], None
    for _ in range(7):
        d = next_delay(d)
        delays.append(d)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
