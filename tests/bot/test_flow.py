"""The whole phone flow against the stub and a real plane: pick a project, send a task, Medium → the plan gate is
announced once; Plan; Reject with a note that reaches the rework; Approve twice → accepted, announced with
Squash-merge / Push; Push to a local bare remote, Squash-merge. Then the guards: an unlisted user (and the
owner's Abandon), a double tap."""

from __future__ import annotations

import subprocess
import time

from tests.bot.conftest import ME, PLANE_TOKEN, wait_for

GATE = "parked at gate «{}»"


def buttons(msg: dict) -> dict[str, str]:
    """label → callback data of a bot message's inline keyboard."""
    rows = (msg.get("reply_markup") or {}).get("inline_keyboard") or []
    return {b["text"]: b["callback_data"] for row in rows for b in row}


def pick_project(stub, name: str) -> None:
    stub.say("/projects")
    pick = stub.message("Pick the project")
    data = next(d for label, d in buttons(pick).items() if label.endswith(f". {name}"))
    stub.tap(pick["message_id"], data)
    stub.message(f"Active project: {name}")


def send_task(stub, text: str, complexity: str = "medium") -> dict:
    before = max((m["message_id"] for m in stub.messages()), default=0)
    stub.say(text)
    kb = stub.message("How complex is it?", after=before)
    assert list(buttons(kb).values()) == ["cx|auto", "cx|trivial", "cx|simple", "cx|medium", "cx|complex"]  # no 🐳
    stub.tap(kb["message_id"], f"cx|{complexity}")
    return stub.message("submitted t-", after=before)


def test_the_gate_flow_from_a_phone(plane, stub, start_bot, tmp_path):
    pid, proj = plane.demo("shop")
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    subprocess.run(["git", "-C", str(proj), "remote", "add", "origin", str(bare)], check=True)
    start_bot(plane.url, PLANE_TOKEN)

    stub.say("/start")
    stub.message("Start with /projects")
    pick_project(stub, "shop")
    send_task(stub, "Keep discounts from raising prices")

    gate = stub.message(GATE.format("gate-plan"))
    keys = buttons(gate)
    assert set(keys) == {"✅ Approve", "↩️ Reject", "🛑 Abandon", "📄 Plan", "📊 Status"}
    assert all(len(d.encode()) <= 64 for d in keys.values())
    geid = keys["✅ Approve"].split("|", 1)[1]
    assert plane.status(pid)["parked_gate"]["gate_event_id"] == geid
    time.sleep(1.0)  # several watch beats later: still one announcement
    assert sum(GATE.format("gate-plan") in (m.get("text") or "") for m in stub.messages()) == 1

    stub.tap(gate["message_id"], keys["📄 Plan"])
    plan = stub.message("plan.md", after=gate["message_id"])
    assert "\n\n" in plan["text"] or plan.get("document")

    stub.tap(gate["message_id"], keys["↩️ Reject"])
    prompt = stub.message("Why reject?")
    assert prompt["reply_markup"].get("force_reply") is True
    stub.say("NOTE-7: a negative discount must raise an error")
    stub.message("rejected — the agents rework with your note")
    gate2 = stub.message(GATE.format("gate-plan"), after=prompt["message_id"])
    geid2 = buttons(gate2)["✅ Approve"].split("|", 1)[1]
    assert geid2 != geid

    trace = plane.http.get(f"/projects/{pid}/trace").json()  # the note reached the re-plan's prompt
    replan = [a for a in trace["agents"] if a["agent"] == "planner"][-1]
    transcript = plane.http.get(f"/projects/{pid}/spawn/{replan['agent_run_id']}").json()["transcript"]
    assert "NOTE-7: a negative discount must raise an error" in transcript["prompt"]

    stub.tap(gate2["message_id"], f"ga|{geid2}")
    final = stub.message(GATE.format("gate-final"), after=gate2["message_id"])
    stub.tap(final["message_id"], buttons(final)["✅ Approve"])
    end = stub.message("shop — accepted", after=final["message_id"])
    assert "took " in end["text"] and "Touched" in end["text"]
    assert {"🔀 Squash-merge", "⬆️ Push"} <= set(buttons(end))
    assert all(t is None or "unknown" not in t for t in stub.toasts())
    taps = len(stub.calls("answerCallbackQuery"))
    assert taps == 6  # project, complexity, plan, reject, approve ×2: every tap acknowledged once

    stub.tap(end["message_id"], buttons(end)["⬆️ Push"])
    task_id = plane.status(pid)["task_id"]
    pushed = stub.message("✅ push", after=end["message_id"])
    assert f"loom/{task_id}" in pushed["text"]
    heads = subprocess.run(["git", "--git-dir", str(bare), "branch", "--list"], capture_output=True, text=True).stdout
    assert f"loom/{task_id}" in heads

    stub.tap(end["message_id"], buttons(end)["🔀 Squash-merge"])
    merged = stub.message("squash-merge", after=pushed["message_id"])
    assert merged["text"].startswith("✅ squash-merge"), merged["text"]
    touched = subprocess.run(["git", "-C", str(proj), "show", "--name-only", "--format=", "HEAD"],
                             capture_output=True, text=True).stdout
    assert "shop/pricing.py" in touched  # the accepted change is on the user's branch
    wait_for(lambda: len(stub.calls("answerCallbackQuery")) == taps + 2)


def test_an_unlisted_user_can_neither_submit_nor_answer(plane, stub, start_bot):
    pid, _proj = plane.demo("kiosk")
    rb = start_bot(plane.url, PLANE_TOKEN)
    pick_project(stub, "kiosk")
    send_task(stub, "Keep kiosk discounts sane")
    stub.message(GATE.format("gate-plan"))
    geid = plane.status(pid)["parked_gate"]["gate_event_id"]

    stranger = 7007
    stub.say("/projects", chat=stranger)
    refused = stub.message("not authorized", chat=stranger)
    assert "7007" in refused["text"]
    stub.say("Delete everything", chat=stranger)
    wait_for(lambda: len(stub.messages(chat=stranger)) == 2)
    stub.tap(refused["message_id"], f"ga|{geid}", chat=stranger)  # a forged button for a real gate
    toast = wait_for(lambda: [t for t in stub.toasts() if t and "Not authorized" in t])
    assert "7007" in toast[0]
    time.sleep(0.5)
    assert plane.status(pid)["parked_gate"]["gate_event_id"] == geid  # not answered
    assert all("inline_keyboard" not in (m.get("reply_markup") or {}) for m in stub.messages(chat=stranger))
    assert str(stranger) not in rb.bot.state.chats

    gate = stub.message(GATE.format("gate-plan"))  # the owner abandons it: the end is announced
    stub.tap(gate["message_id"], buttons(gate)["🛑 Abandon"])
    stub.message("🛑 abandoned", after=gate["message_id"])
    end = stub.message("❌ kiosk — rejected", after=gate["message_id"])
    assert "- planner (planning)" in end["text"] and "took " in end["text"]  # no summary: the last runs
    assert plane.status(pid)["verdict"] == "rejected"
    stub.tap(end["message_id"], buttons(end)["⬆️ Push"])  # nothing to push: a refusal, with its reason
    refusal = stub.message("⚠️ push refused (", after=end["message_id"])
    assert "BRANCH_NOT_FOUND" in refusal["text"] or "NO_REMOTE" in refusal["text"], refusal["text"]



def test_two_quick_taps_on_approve_answer_once(plane, stub, start_bot):
    pid, _proj = plane.demo("stall")
    start_bot(plane.url, PLANE_TOKEN)
    pick_project(stub, "stall")
    send_task(stub, "Keep stall discounts sane")
    gate = stub.message(GATE.format("gate-plan"))
    geid = buttons(gate)["✅ Approve"].split("|", 1)[1]
    before = len(stub.toasts())
    stub.tap(gate["message_id"], f"ga|{geid}")
    stub.tap(gate["message_id"], f"ga|{geid}")
    toasts = wait_for(lambda: len(stub.toasts()) == before + 2 and stub.toasts()[before:])
    assert sorted(toasts) == ["already answered", "✅ approved"]
    wait_for(lambda: (g := plane.status(pid)["parked_gate"]) and g["gate"] == "gate-final")
    ticks = plane.http.get(f"/projects/{pid}/view/ticks").json()["result"]  # the audit's recorded events
    answers = [t["decision"] for t in ticks if t.get("event") == "user-answer"]
    assert answers == ["accept"], answers
    assert sum("approved" in (m.get("text") or "") for m in stub.messages(ME)) == 1
