"""Agents do only what their role allows: a read-only role's change to the sandbox is reverted and
becomes a blocking finding naming the agent and the files; it never reaches the branch.

Units on :class:`SpawnExecutor` with a backend that writes files, a whole code-bundle task on the real
kernel, store and sandbox, and a whole task on the real Claude Code CLI against the Messages stub.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from loom_core.agents.executors import ExecResult, ScriptedExecutor
from loom_core.agents.spawn import SpawnExecutor
from loom_core.bundles.code import BUNDLE
from loom_core.engine.clock import FixedClock
from loom_core.engine.drive import Driver
from loom_core.engine.engine import Engine
from loom_core.kernel.types import Intent
from loom_core.workspace import Workspace
from tests.conftest import ROOT, run_loom
from tests.support.code_agents import CHECKS_OK, CodeAgents
from tests.support.git import branch_files, make_repo, user_side

CORE = "def f():\n    return 1\n"
FIXED = "def f():\n    return 2\n"


class Writer:
    """A backend whose agents write files: ``edits[agent] = {path: text}`` (None deletes)."""

    name, label, idempotent = "writer", "writer", True

    def __init__(self, agents=None) -> None:
        self.edits: dict[str, dict[str, str | None]] = {}
        self.agents = agents

    def execute(self, intent: Intent, cancel, log) -> ExecResult:
        root = Path(intent.extras["workdir"])
        for rel, text in self.edits.get(intent.agent, {}).items():
            if text is None:
                (root / rel).unlink()
            else:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(text)
        out = self.agents(intent) if self.agents else "ok"
        return out if isinstance(out, ExecResult) else ExecResult(output=out)


@pytest.fixture
def sandbox(tmp_path):
    proj = tmp_path / "app"
    make_repo(proj, {"app/__init__.py": "", "app/core.py": CORE, "README.md": "# app\n"})
    ws = Workspace.provision(proj, fresh=True)
    assert ws.isolated
    yield proj, ws
    ws.discard()


def _intent(agent: str, rid: str, **extras) -> Intent:
    return Intent(agent, rid, "implementation", "m", "do it", extras=extras)


def test_a_read_only_agents_edits_are_reverted_and_reported(sandbox):
    _, ws = sandbox
    backend = Writer()
    backend.edits["logic-reviewer"] = {"app/core.py": "hijacked = True\n", "evil.py": "x = 1\n", "README.md": None}
    ex = SpawnExecutor(backend, ws)
    logs: list[str] = []
    res = ex.execute(_intent("logic-reviewer", "ar-1", judges=True), threading.Event(), logs.append)

    assert (ws.root / "app" / "core.py").read_text() == CORE
    assert (ws.root / "README.md").read_text() == "# app\n"
    assert not (ws.root / "evil.py").exists()
    assert ws.delta() == ([], [])
    assert res.files_modified == () and res.files_created == ()
    [finding] = res.findings
    assert finding["severity"] == "blocking" and finding["category"] == "role-violation"
    assert "logic-reviewer" in finding["summary"]
    for rel in ("app/core.py", "evil.py", "README.md"):
        assert rel in finding["summary"]
    assert any("logic-reviewer may not change files" in line for line in logs)


def test_an_editing_agent_keeps_its_change_and_a_clean_reader_has_no_finding(sandbox):
    _, ws = sandbox
    backend = Writer()
    backend.edits["implementer"] = {"app/core.py": FIXED}
    ex = SpawnExecutor(backend, ws)
    res = ex.execute(_intent("implementer", "ar-1", edits_files=True), threading.Event(), lambda _l: None)
    assert res.findings == [] and res.files_modified == ("app/core.py",)
    assert (ws.root / "app" / "core.py").read_text() == FIXED
    res = ex.execute(_intent("acceptance", "ar-2", judges=True), threading.Event(), lambda _l: None)
    assert res.findings == [] and (ws.root / "app" / "core.py").read_text() == FIXED
    # a planner's document lands in .loom/work (outside the tree): not a violation
    backend.edits["planner"] = {".loom/work/plan.md": "# Plan\n"}
    res = ex.execute(_intent("planner", "ar-3", writes_doc="plan.md"), threading.Event(), lambda _l: None)
    assert res.findings == []


def test_a_failed_read_only_spawn_leaves_no_edit_either(sandbox):
    _, ws = sandbox

    class Failing(Writer):
        def execute(self, intent, cancel, log):
            (Path(intent.extras["workdir"]) / "app" / "core.py").write_text("half")
            from loom_core.errors import ExecutorError

            raise ExecutorError("boom", code="EXECUTOR_FAILED")

    with pytest.raises(Exception, match="boom"):
        SpawnExecutor(Failing(), ws).execute(_intent("security", "ar-1"), threading.Event(), lambda _l: None)
    assert (ws.root / "app" / "core.py").read_text() == CORE


def _run_task(proj: Path, ws: Workspace, backend: Writer, policy: str = "auto"):
    engine = Engine(proj, bundle=BUNDLE, clock=FixedClock())
    checks = ScriptedExecutor(lambda i: CHECKS_OK)
    driver = Driver(engine, SpawnExecutor(backend, ws, checks=checks))
    outcome = driver.start("make f return 2", gate_policies={"classify": policy, "plan": policy, "final": policy},
                           initial_decisions={"complexity": "simple", "complexity_pinned": True})
    return engine, driver, outcome


def test_a_reviewer_that_edits_is_a_blocking_finding_and_its_edit_never_reaches_the_branch(sandbox):
    proj, ws = sandbox
    before = user_side(proj)
    backend = Writer(CodeAgents())
    backend.edits["implementer"] = {"app/core.py": FIXED}
    backend.edits["logic-reviewer"] = {"app/core.py": "def f():\n    return 3\n", "app/extra.py": "y = 2\n"}
    engine, driver, outcome = _run_task(proj, ws, backend)
    try:
        # the violation is a harness blocker: even under `auto`, a person decides
        assert outcome.kind == "paused" and outcome.gate == "gate-final", outcome
        assert "- [role-violation] app/core.py (logic-reviewer): logic-reviewer may not change files but changed 2: " \
               "app/core.py, app/extra.py; the changes were reverted" in outcome.message, outcome.message
        assert "logic-reviewer changed files its role does not allow" in outcome.message
        st = engine.state()
        [f] = [f for f in st.findings.values() if f["category"] == "role-violation"]
        assert f["agent"] == "logic-reviewer" and f["severity"] == "blocking" and f["origin"] == "harness"
        assert f["file"] == "app/core.py" and "app/extra.py" in f["summary"]
        assert st.pipeline["files_created"] == [] and st.pipeline["files_modified"] == ["app/core.py"]
        from loom_core.engine.replay import replay, verify

        report = replay(proj / ".loom" / "state.db")  # the finding comes back from the recorded result
        assert report.identical and report.replayed == report.ticks
        assert verify(proj / ".loom" / "state.db").ok
        outcome = driver.run(engine.answer(outcome.gate_event_id, "accept"))
        assert outcome.kind == "complete" and outcome.verdict == "accepted"
        merge = ws.merge_back(outcome.task_id)
    finally:
        engine.close()
    files = branch_files(proj, merge.branch)
    assert files["app/core.py"] == FIXED and "app/extra.py" not in files
    assert user_side(proj) == before


# ------------------------------------------------------------------------------ the real Claude Code CLI

def _script(match: str, reply: str, *calls: dict) -> list[str]:
    return ["--script", json.dumps({"match": match, "reply": reply, "tool_calls": list(calls),
                                    "offered_only": False})]


def _call(name: str, **args) -> dict:
    return {"name": name, "input": args}


REVIEW_OK = json.dumps({"verdict": "APPROVE", "summary_line": "fine", "findings": []})
ACCEPT_OK = json.dumps({"verdict": "PASS", "summary_line": "ACs met", "findings": []})


def test_real_claude_code_read_only_roles_cannot_edit(tmp_path, claude_bin):  # noqa: F811
    """loom run on the Claude Code backend: the implementer edits in acceptEdits; the analyzer, the planner,
    the reviewer and acceptance try Write, Edit and Bash, the CLI has no such tools for them, and the
    branch holds the implementer's change only."""
    log = tmp_path / "requests.jsonl"
    hostile = (_call("Read", file_path="app/core.py"), _call("Write", file_path="app/core.py", content="hijacked\n"),
               _call("Edit", file_path="app/core.py", old_string="return", new_string="yield"),
               _call("Bash", command="echo pwned > pwned.txt"))
    args = [
        *_script("You are the light code analyzer", "## Scope\n- app/core.py\n", *hostile),
        *_script("You are the planner.", "# Plan\nmake f return 2\n", *hostile),
        *_script("You are the implementer for this task", "done: f returns 2",
                 _call("Read", file_path="app/core.py"),
                 _call("Edit", file_path="app/core.py", old_string="return 1", new_string="return 2")),
        *_script("You are the logic reviewer", REVIEW_OK, *hostile),
        *_script("You are the acceptance validator", ACCEPT_OK, *hostile),
    ]
    stub = subprocess.Popen([sys.executable, str(ROOT / "tests" / "support" / "anthropic_stub.py"), "--port", "0",
                             "--log", str(log), "--reply", REVIEW_OK, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = next(t for t in stub.stdout.readline().split() if t.startswith("http")).rstrip("/")
        proj = tmp_path / "app"
        make_repo(proj, {"app/__init__.py": "", "app/core.py": CORE})
        before = user_side(proj)
        home = tmp_path / "cchome"
        home.mkdir()
        env = {"LOOM_CLAUDE_BIN": claude_bin, "HOME": str(home), "ANTHROPIC_BASE_URL": url,
               "ANTHROPIC_API_KEY": "test", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
               "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "TMPDIR": str(tmp_path)}
        proc = run_loom("run", "make", "f", "return", "2", "--backend", "claude-code", "--complexity", "simple",
                        "--policy", "auto", "--json", cwd=proj, env=env, timeout=300)
    finally:
        stub.terminate()
        stub.wait(5)
    out = proc.stdout + proc.stderr
    bodies = [json.loads(line)["body"] for line in log.read_text().splitlines()]
    bodies = [b for b in bodies if isinstance(b, dict) and b.get("messages")]

    def first_user(b):
        c = b["messages"][0]["content"]
        return c if isinstance(c, str) else "".join(x.get("text", "") for x in c if isinstance(x, dict))

    for match in ("You are the light code analyzer", "You are the planner.", "You are the logic reviewer",
                  "You are the acceptance validator"):
        reqs = [b for b in bodies if match in first_user(b)]
        assert reqs, f"{match!r} never ran: {out[-2000:]}"
        offered = {t["name"] for t in reqs[-1].get("tools") or []}
        assert offered and offered <= {"Read", "Grep", "Glob"}, (match, offered)
        denied = [blk for m in reqs[-1]["messages"] if m["role"] == "user" and isinstance(m["content"], list)
                  for blk in m["content"] if blk.get("type") == "tool_result" and blk.get("is_error")]
        assert len(denied) == 3, (match, denied)  # Write, Edit, Bash: no such tool for this role
    impl = [b for b in bodies if "You are the implementer for this task" in first_user(b)]
    assert impl and {"Edit", "Write"} <= {t["name"] for t in impl[-1].get("tools") or []}
    import sqlite3

    with sqlite3.connect(proj / ".loom" / "state.db") as db:
        task_id = db.execute("SELECT task_id FROM pipeline_state").fetchone()[0]
        violations = db.execute("SELECT count(*) FROM findings WHERE category = 'role-violation'").fetchone()[0]
    assert violations == 0  # the CLI refused every attempt: nothing to revert
    if "accepted" not in out:  # no check ran in this repository: a person decides at the final gate
        assert "gate-final" in out, out[-2000:]
        done = run_loom("answer", "accept", cwd=proj, env=env, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        done = run_loom("proceed", cwd=proj, env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    files = branch_files(proj, f"loom/{task_id}")
    assert files["app/core.py"] == FIXED
    assert "pwned.txt" not in files
    assert user_side(proj) == before


# ------------------------------------------------------------------------------ checks see the final tree

class Checks:
    """A checks runner over the real sandbox: ``test`` fails when a file holds BROKEN; records what it saw."""

    name, label, idempotent = "checks", "checks", True

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    def execute(self, intent, cancel, log) -> ExecResult:
        root = Path(intent.extras["workdir"])
        files = {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*.ts*"))
                 if ".loom" not in p.parts}
        files["app/core.py"] = (root / "app" / "core.py").read_text()
        self.seen.append(files)
        broken = [rel for rel, text in files.items() if "BROKEN" in text]
        status = "fail" if broken else "ok"
        return ExecResult(output=json.dumps({"checks": [
            {"name": "test", "status": status, "exit_code": 1 if broken else 0, "command": "pytest",
             "output_head": "\n".join(broken)}, {"name": "lint", "status": "skipped"},
            {"name": "typecheck", "status": "skipped"}]}))


def _ui_task(proj: Path, ws: Workspace, backend: Writer, checks: Checks, final: str):
    engine = Engine(proj, bundle=BUNDLE, clock=FixedClock())
    driver = Driver(engine, SpawnExecutor(backend, ws, checks=checks))
    outcome = driver.start("make f return 2 and show it", gate_policies={"classify": "auto", "plan": "auto",
                                                                          "final": final},
                           initial_decisions={"complexity": "medium", "complexity_pinned": True})
    return engine, driver, outcome


def test_an_edit_after_the_checks_runs_them_again_before_the_final_gate(sandbox):
    """playwright (an agent that may edit) changes a file after the checks: the checks run again on the tree
    as it stands, and the final gate shows their result, not the earlier green one."""
    proj, ws = sandbox
    backend = Writer(CodeAgents())
    backend.edits["implementer"] = {"app/core.py": FIXED, "web/view.tsx": "export const v = 2;\n"}
    backend.edits["playwright"] = {"web/view.tsx": "export const v = BROKEN;\n"}
    checks = Checks()
    engine, _, outcome = _ui_task(proj, ws, backend, checks, final="human")
    try:
        st = engine.state()
        assert "playwright" in [r["agent"] for r in st.agent_records]
        assert len(checks.seen) == 2, checks.seen
        assert checks.seen[0]["web/view.tsx"] == "export const v = 2;\n"
        assert checks.seen[1]["web/view.tsx"] == "export const v = BROKEN;\n"  # the tree after playwright
        agents = [r["agent"] for r in st.agent_records]
        assert agents.index("playwright") < len(agents) - 1 - agents[::-1].index("checks-runner")
        assert outcome.kind == "paused" and outcome.gate == "gate-final", outcome
        assert "- tests: fail" in outcome.message
        assert st.bundle_state["test_run"]["status"] == "fail"
        assert "acceptance" not in agents  # never over a failing check
    finally:
        engine.close()


def test_no_edit_after_the_checks_no_second_run_and_the_branch_is_the_tree_the_checks_saw(sandbox):
    proj, ws = sandbox
    backend = Writer(CodeAgents())
    backend.edits["implementer"] = {"app/core.py": FIXED}
    backend.edits["acceptance"] = {"app/core.py": "def f():\n    return 99\n"}  # reverted: read-only
    checks = Checks()
    engine, driver, outcome = _ui_task(proj, ws, backend, checks, final="human")
    try:
        assert outcome.kind == "paused" and outcome.gate == "gate-final", outcome
        assert "(acceptance): acceptance may not change files but changed 1: app/core.py" in outcome.message
        st = engine.state()
        # acceptance's edit was put back: the tree at the gate is the one the checks saw, no second run
        assert [s["app/core.py"] for s in checks.seen] == [FIXED]
        tree = st.bundle_state["checks_meta"]["tree"]
        outcome = driver.run(engine.answer(outcome.gate_event_id, "accept"))
        assert outcome.verdict == "accepted"
        merge = ws.merge_back(outcome.task_id)
    finally:
        engine.close()
    import pygit2

    repo = pygit2.Repository(str(proj))
    assert str(repo.revparse_single(merge.branch).peel(pygit2.Tree).id) == tree  # the branch = the checked tree


# ------------------------------------------------------------------------------ a spawn that runs again

def test_an_undelivered_editing_spawn_runs_again_from_the_tree_it_started_from(sandbox):
    """The same agent_run_id again after its result was never delivered (loom died after the spawn): the
    first attempt's edits are undone first, so the rerun sees the tree the first attempt saw. A failed
    attempt is undone at once."""
    _, ws = sandbox
    seen: list[str] = []

    class Implementer(Writer):
        def execute(self, intent, cancel, log):
            core = Path(intent.extras["workdir"]) / "app" / "core.py"
            seen.append(core.read_text())
            if intent.agent_run_id == "ar-fail":
                core.write_text("half")
                from loom_core.errors import ExecutorError

                raise ExecutorError("died", code="EXECUTOR_FAILED")
            if len(seen) == 1:
                core.write_text("")  # what a kill mid-write leaves
                (core.parent / "half.py").write_text("x")
            else:
                core.write_text(FIXED)
            return ExecResult(output="done")

    it = _intent("implementer", "ar-7", edits_files=True)
    SpawnExecutor(Implementer(), ws).execute(it, threading.Event(), lambda _l: None)  # ... and loom dies here
    assert (ws.root / "app" / "core.py").read_text() == ""
    logs: list[str] = []
    again = SpawnExecutor(Implementer(), ws)  # a new driver process: nothing of the first attempt in memory
    res = again.execute(it, threading.Event(), logs.append)
    assert seen == [CORE, CORE]
    assert (ws.root / "app" / "core.py").read_text() == FIXED
    assert res.files_modified == ("app/core.py",) and res.files_created == ()
    assert not (ws.root / "app" / "half.py").exists()
    assert any("restored the 2 file(s)" in line for line in logs), logs
    assert (ws.root / ".loom" / "work" / "spawns" / "ar-7.json").exists()
    again.delivered(["ar-7"])
    assert not (ws.root / ".loom" / "work" / "spawns" / "ar-7.json").exists()

    with pytest.raises(Exception, match="died"):
        again.execute(_intent("implementer", "ar-fail", edits_files=True), threading.Event(), logs.append)
    assert (ws.root / "app" / "core.py").read_text() == FIXED  # the failed attempt's "half" is gone
    assert any("undid the 1 file change(s) of the failed attempt" in line for line in logs), logs


def test_a_change_seen_beside_other_read_only_agents_names_them_too(sandbox):
    """Reviewers of one fan-out run at once: the finding says which of them ran while the tree changed."""
    _, ws = sandbox
    gate = threading.Barrier(2, timeout=10)

    class Pair(Writer):
        def execute(self, intent, cancel, log):
            gate.wait()  # both reviewers are running
            if intent.agent == "security":
                (Path(intent.extras["workdir"]) / "evil.py").write_text("x")
            gate.wait()  # the write happened before either finishes
            return ExecResult(output="ok")

    ex = SpawnExecutor(Pair(), ws)
    out: dict[str, ExecResult] = {}
    threads = [threading.Thread(target=lambda a=a: out.__setitem__(a, ex.execute(
        _intent(a, f"ar-{a}", judges=True), threading.Event(), lambda _l: None))) for a in ("security", "performance")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    found = [f for r in out.values() for f in r.findings]
    assert found and all(f["category"] == "role-violation" and "evil.py" in f["summary"] for f in found)
    assert any("beside" in f["summary"] and ("security" in f["summary"]) for f in found)
    assert not (ws.root / "evil.py").exists()
