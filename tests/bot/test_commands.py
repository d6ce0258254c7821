"""The commands around a task: a corrupt state file noticed on /start, text without a project, an unknown
command, /status, a long /plan as a plan.md document, a restart that does not announce a gate again, /cancel
with its confirmation."""

from __future__ import annotations

import time
from pathlib import Path

from tests.bot.conftest import ME, PLANE_TOKEN, wait_for
from tests.bot.test_flow import GATE, buttons, pick_project, send_task


def test_commands_around_a_task(plane, stub, start_bot, tmp_path):
    pid, _proj = plane.demo("cafe")
    state = tmp_path / "bot" / "telegram.json"
    state.parent.mkdir(parents=True)
    state.write_text("{not json")
    bot = start_bot(plane.url, PLANE_TOKEN)

    stub.say("/start")
    notice = stub.message("starting empty")
    assert str(state) in notice["text"] and (tmp_path / "bot" / "telegram.json.corrupt").exists()
    stub.say("make it faster")
    stub.message("pick one with /projects first")
    stub.say("/frobnicate")
    assert "/projects — pick the project" in stub.message("/cancel — stop", after=notice["message_id"])["text"]

    pick_project(stub, "cafe")
    send_task(stub, "Keep cafe discounts sane")
    gate = stub.message(GATE.format("gate-plan"))
    stub.say("/status")
    status = stub.message("📊 cafe — in_progress", after=gate["message_id"])
    assert "awaiting you at gate «gate-plan»" in status["text"] and "last runs:" in status["text"]
    assert "phase: planning" in status["text"]

    work = Path(plane.http.get(f"/projects/{pid}/view/work_dirs").json()["result"][0])
    long_plan = "".join(f"## Step {i}\nChange line {i} of the pricing rules.\n" for i in range(200))
    (work / "plan.md").write_text(long_plan)
    stub.say("/plan")
    sent = wait_for(lambda: stub.calls("sendDocument"))
    assert sent[0]["uploads"] == {"document": "plan.md"} and "cafe — .loom/work/plan.md" in sent[0]["params"]["caption"]
    doc = next(m for m in stub.messages() if m.get("document"))
    assert stub.http.get(f"/file/bot123:TEST/uploads/{doc['document']['file_name']}").text == long_plan

    bot.stop()  # a restart remembers what it announced
    start_bot(plane.url, PLANE_TOKEN)
    stub.say("/status")
    stub.message("📊 cafe — in_progress", after=doc["message_id"])
    time.sleep(0.6)  # a few watch beats
    assert sum(GATE.format("gate-plan") in (m.get("text") or "") for m in stub.messages()) == 1

    stub.say("/cancel")
    ask = stub.message("Cancel the task")
    assert set(buttons(ask).values()) == {f"cy|{pid}", "cnx"}
    stub.tap(ask["message_id"], "cnx")
    wait_for(lambda: any("Kept" in (m.get("text") or "") for m in stub.messages()))
    assert plane.status(pid)["status"] == "in_progress"
    stub.say("/cancel")
    ask = stub.message("Cancel the task", after=ask["message_id"])
    stub.tap(ask["message_id"], f"cy|{pid}")
    wait_for(lambda: any((m.get("text") or "").startswith("🛑 cancelled t-") for m in stub.messages(ME)))
    assert plane.status(pid)["has_task"] is False


def test_docker_toggle_and_a_refused_submit_keeps_the_task(plane, stub, start_bot):
    """A plane that offers Docker gets the 🐳 toggle; when it then cannot honour it, the typed refusal is shown
    and the task waits with its keyboard, so Docker off submits it."""
    from loom_core.surfaces.bot.plane import PlaneLink

    class OffersDocker(PlaneLink):  # this host has no engine: the plane's own signal would say no
        def docker_available(self) -> bool:
            return True

    pid, _proj = plane.demo("deli")
    start_bot(plane.url, PLANE_TOKEN, link_cls=OffersDocker)
    pick_project(stub, "deli")
    stub.say("Keep deli discounts sane")
    kb = stub.message("How complex is it?")
    assert buttons(kb)["🐳 Docker: off"] == "dk"
    stub.tap(kb["message_id"], "dk")
    wait_for(lambda: "🐳 Docker: on" in buttons(stub.message("Docker: on")))
    stub.tap(kb["message_id"], "cx|medium")
    refused = stub.message("⚠️ DOCKER_UNAVAILABLE")
    assert "How complex is it?" in refused["text"] and "🐳 Docker: on" in buttons(refused)
    assert plane.status(pid)["has_task"] is False
    stub.tap(kb["message_id"], "dk")
    wait_for(lambda: "🐳 Docker: off" in buttons(stub.message("Docker: off")))
    stub.tap(kb["message_id"], "cx|medium")
    stub.message("submitted t-")
    wait_for(lambda: plane.status(pid)["has_task"])
