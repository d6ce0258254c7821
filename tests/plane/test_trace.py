"""``GET /projects/{id}/trace`` returns the spec's Trace shape (§5.4) for a finished demo task, live and
archived, over real HTTP; a malformed id is 400 ``BAD_TASK_ID``, an unknown archive 404 ``ARCHIVE_NOT_FOUND``."""

from __future__ import annotations

from loom_core.control import demo_task
from tests.plane.conftest import client, demo, envelope, wait_for

SUMMARY = {"task_id", "status", "verdict", "started_at", "ended_at", "task", "completion_summary"}
AGENT = {"agent_run_id", "agent", "phase", "model", "output_kind", "tokens_in", "tokens_out", "tokens_cached",
         "recorded_at"}
FINDING = {"id", "agent", "phase", "iteration", "file", "line_start", "line_end", "severity", "category", "summary",
           "status", "recorded_at"}
VERDICT = {"phase", "agent", "iteration", "verdict", "summary_line", "blocking_issues", "warn_issues", "info_issues",
           "recorded_at"}
GATE = {"name", "status", "decided_by", "feedback", "decided_at"}


def check_shape(trace: dict) -> None:
    assert set(trace) == {"archived", "summary", "agents", "findings", "verdicts", "gates", "token_totals"}
    assert set(trace["summary"]) == SUMMARY
    assert trace["agents"] and all(set(a) == AGENT for a in trace["agents"])
    assert all(set(f) == FINDING for f in trace["findings"])
    assert trace["verdicts"] and all(set(v) == VERDICT for v in trace["verdicts"])
    assert trace["gates"] and all(set(g) == GATE for g in trace["gates"])
    stamps = [a["recorded_at"] for a in trace["agents"]]
    assert stamps == sorted(stamps)  # in order
    assert all(a["tokens_in"] > 0 and a["tokens_out"] > 0 for a in trace["agents"]
               if a["agent"] != "checks-runner")  # the checks are no LLM
    totals = trace["token_totals"]
    assert totals["tokens_in"] == sum(a["tokens_in"] for a in trace["agents"]) > 0
    assert totals["tokens_out"] == sum(a["tokens_out"] for a in trace["agents"]) > 0


def test_trace_of_a_finished_task_live_and_archived(start_plane, tmp_path):
    plane = start_plane()
    proj = demo(tmp_path)
    with client(plane) as c:
        made = c.post("/submit", json={"project": str(proj), "task": demo_task(), "backend": "demo",
                                       "policy_preset": "full-autonomous"})
        assert made.status_code == 200, made.text
        pid, task_id = made.json()["id"], made.json()["task_id"]
        wait_for(lambda: c.get(f"/projects/{pid}").json()["status"]["status"] == "completed", timeout_s=60)

        live = c.get(f"/projects/{pid}/trace").json()
        check_shape(live)
        assert live["archived"] is False
        assert live["summary"]["task_id"] == task_id and live["summary"]["status"] == "completed"
        assert live["summary"]["verdict"] and live["summary"]["ended_at"]

        envelope(c.get(f"/projects/{pid}/trace", params={"task": "../x"}), 400, "BAD_TASK_ID")
        envelope(c.get(f"/projects/{pid}/trace", params={"task": "t-none"}), 404, "ARCHIVE_NOT_FOUND")

        again = c.post("/submit", json={"project": pid, "task": demo_task() + " Again.", "backend": "demo",
                                        "policy_preset": "full-autonomous"})
        assert again.status_code == 200, again.text  # the finished task is archived first
        assert again.json()["task_id"] != task_id
        old = c.get(f"/projects/{pid}/trace", params={"task": task_id}).json()
        check_shape(old)
        assert old["archived"] is True
        assert {k: v for k, v in old.items() if k != "archived"} == {k: v for k, v in live.items() if k != "archived"}
