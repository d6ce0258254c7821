"""Agents see what they judge, on the raw-provider backends too.

A whole task on the Anthropic backend against the local Messages stub, each agent scripted by its
prompt: the stub's request log shows what every agent was sent and offered. Plus units for the
read-only tool set, the read-only loop and the prompt sections.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from loom_core.agents import agent_view
from loom_core.agents.executors import ExecResult
from loom_core.agents.executors.toolloop import READ_ONLY_SUFFIX, ToolLoopExecutor
from loom_core.agents.providers.base import Reply, ToolCall
from loom_core.agents.tools import READ_TOOLS, SandboxTools
from loom_core.kernel.types import Intent
from tests.conftest import ROOT, run_loom
from tests.support.git import make_repo, user_side

TOKEN = "ghp_" + "Zq8" * 12  # a credential in .git/config and .env: no request may carry it
PLAN_MARK = "PLAN-7c1f: make f return 2 by editing app/core.py"
REVIEW_OK = json.dumps({"verdict": "APPROVE", "summary_line": "fine", "findings": []})
ACCEPT_OK = json.dumps({"verdict": "PASS", "summary_line": "ACs met", "findings": []})
WRITES = {"write_file", "edit_file", "run_checks"}


def _script(match: str, reply: str, *calls: dict, offered_only: bool = True) -> list[str]:
    return ["--script", json.dumps({"match": match, "reply": reply, "tool_calls": list(calls),
                                    "offered_only": offered_only})]


def _call(name: str, **args) -> dict:
    return {"name": name, "input": args}


@pytest.fixture(scope="module")
def whole_task(tmp_path_factory):
    """One task (--complexity simple) through analyzer, planner, implementer, reviewer, acceptance."""
    tmp = tmp_path_factory.mktemp("see")
    log = tmp / "requests.jsonl"
    args = [
        *_script("You are the light code analyzer", "## Scope\n- app/core.py: f() is the function to change\n"),
        *_script("You are the planner.", "```json\n{\"steps\": 1}\n```\n# Plan\n" + PLAN_MARK + "\n",
                 _call("read_file", path="app/core.py")),
        *_script("You are the implementer for this task", "done: f returns 2",
                 _call("read_file", path=".loom/work/plan.md"), _call("read_file", path=".git/config"),
                 _call("read_file", path=".env"),
                 _call("edit_file", path="app/core.py", old_string="return 1", new_string="return 2")),
        *_script("You are the logic reviewer", REVIEW_OK,
                 _call("write_file", path="app/core.py", content="hijacked = True\n"),
                 _call("edit_file", path="app/core.py", old_string="return 2", new_string="return 3"),
                 _call("read_file", path="app/core.py"), offered_only=False),
        *_script("You are the acceptance validator", ACCEPT_OK, _call("grep", pattern="return")),
    ]
    stub = subprocess.Popen([sys.executable, str(ROOT / "tests" / "support" / "anthropic_stub.py"), "--port", "0",
                             "--log", str(log), "--reply", REVIEW_OK, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = next(t for t in stub.stdout.readline().split() if t.startswith("http")).rstrip("/")
        proj = tmp / "app"
        make_repo(proj, {"app/__init__.py": "", "app/core.py": "def f():\n    return 1\n",
                         ".env": f"GITHUB_TOKEN={TOKEN}\n"})
        with open(proj / ".git" / "config", "a") as fh:
            fh.write(f'[remote "origin"]\n\turl = https://loom:{TOKEN}@example.invalid/app.git\n')
        before = user_side(proj)
        env = {"LOOM_HOME": str(tmp / "home"), "TMPDIR": str(tmp), "ANTHROPIC_API_KEY": "sk-test-key-123456",
               "LOOM_PROVIDERS__ANTHROPIC__BASE_URL": url, "PATH": "/usr/bin:/bin"}
        proc = run_loom("run", "make", "f", "return", "2", "--backend", "anthropic", "--complexity", "simple",
                        "--policy", "auto", cwd=proj, env=env, timeout=180)
    finally:
        stub.terminate()
        stub.wait(5)
    requests = [json.loads(line)["body"] for line in log.read_text().splitlines()]
    requests = [r for r in requests if isinstance(r, dict) and "messages" in r]
    return {"proc": proc, "requests": requests, "proj": proj, "before": before}


def _first_user(body: dict) -> str:
    content = body["messages"][0]["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


def _of(requests: list[dict], match: str) -> list[dict]:
    return [r for r in requests if match in _first_user(r)]


def _tool_results(body: dict) -> list[str]:
    out = []
    for msg in body["messages"]:
        if msg["role"] == "user" and isinstance(msg["content"], list):
            out += [b.get("content", "") for b in msg["content"] if b.get("type") == "tool_result"]
    return out


def _tools(body: dict) -> set[str]:
    return {t["name"] for t in body.get("tools") or []}


def test_the_reviewer_gets_the_diff_and_read_only_tools(whole_task):
    proc = whole_task["proc"]
    # no check could run in this repository, so the final gate waits for a person (or it was accepted)
    assert "parked at gate 'gate-final'" in proc.stdout or "done — accepted" in proc.stdout, \
        proc.stdout + proc.stderr
    reviews = _of(whole_task["requests"], "You are the logic reviewer")
    assert reviews, proc.stdout + proc.stderr
    prompt = _first_user(reviews[0])
    assert "### The change under review" in prompt
    assert "-    return 1\n+    return 2" in prompt  # the implementer's change, as a diff
    assert "app/core.py (modified +1/-1)" in prompt
    for req in reviews:
        assert _tools(req) and _tools(req) <= set(READ_TOOLS), _tools(req)
        assert "read-only" in str(req.get("system"))
    # the transcript records the prompt the reviewer was given, review section included
    import sqlite3

    from loom_core.store import codec

    with sqlite3.connect(whole_task["proj"] / ".loom" / "state.db") as db:
        rows = db.execute("SELECT prompt FROM transcripts WHERE agent = 'logic-reviewer'").fetchall()
    assert rows and all("### The change under review" in codec.unpack(r[0]) for r in rows)  # kept compressed


def test_a_reviewers_write_is_refused_and_the_tree_is_unchanged(whole_task):
    reviews = _of(whole_task["requests"], "You are the logic reviewer")
    last = reviews[-1]
    results = _tool_results(last)
    assert len(results) == 3
    assert results[0].startswith("refused: read-only: write_file")
    assert results[1].startswith("refused: read-only: edit_file")
    assert "return 2" in results[2] and "hijacked" not in results[2]  # read after the refused writes
    # acceptance, after the reviewer, still sees the implementer's change and nothing else
    accept = _of(whole_task["requests"], "You are the acceptance validator")
    assert accept and "+    return 2" in _first_user(accept[0]) and "hijacked" not in _first_user(accept[-1])
    assert "return 3" not in _first_user(accept[0])
    assert _tools(accept[0]) <= set(READ_TOOLS)


def test_the_planners_answer_is_the_plan_the_implementer_reads(whole_task):
    reqs = whole_task["requests"]
    planner = _of(reqs, "You are the planner.")
    assert planner and all(_tools(r) <= set(READ_TOOLS) and _tools(r) for r in planner)
    impl = _of(reqs, "You are the implementer for this task")
    assert impl and WRITES - {"run_checks"} <= _tools(impl[-1])
    results = _tool_results(impl[-1])
    assert PLAN_MARK in results[0]  # read_file .loom/work/plan.md succeeded
    assert '"steps"' not in results[0]  # the leading JSON block was not saved into the plan
    # the analyzer's answer became the context doc the planner was told about
    analyzer = _of(reqs, "You are the light code analyzer")
    assert analyzer and _tools(analyzer[0]) <= set(READ_TOOLS)


def test_git_config_and_env_are_refused_and_never_sent(whole_task):
    impl = _of(whole_task["requests"], "You are the implementer for this task")
    results = _tool_results(impl[-1])
    assert results[1] == "refused: sensitive-dir:.git"
    assert results[2] == "refused: sensitive-file:.env"
    for body in whole_task["requests"]:
        assert TOKEN not in json.dumps(body)
    assert user_side(whole_task["proj"]) == whole_task["before"]


# ------------------------------------------------------------------------------------------ units


def test_read_only_tools_offer_read_tools_and_refuse_writes(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    audit: list[dict] = []
    t = SandboxTools(tmp_path, run_checks=lambda: "ran", audit=audit.append, read_only=True)
    assert [s["name"] for s in t.specs()] == list(READ_TOOLS)
    assert [s["function"]["name"] for s in t.openai_specs()] == list(READ_TOOLS)
    for name, args in (("write_file", {"path": "a.py", "content": "y"}),
                       ("write_file", {"path": "new.py", "content": "y"}),
                       ("edit_file", {"path": "a.py", "old_string": "1", "new_string": "2"}),
                       ("run_checks", {})):
        res = t.call(name, args)
        assert res.refused and res.content.startswith(f"refused: read-only: {name}")
    assert (tmp_path / "a.py").read_text() == "x = 1\n" and not (tmp_path / "new.py").exists()
    assert not t.changed
    assert [a["result"] for a in audit] == ["refused"] * 4
    assert t.call("read_file", {"path": "a.py"}).content == "     1\tx = 1"
    assert t.call("grep", {"pattern": "x"}).content == "a.py:1:x = 1"
    assert t.call("list_files", {}).content == "a.py"
    assert t.call("delete_file", {"path": "a.py"}).content.startswith("error: unknown tool")
    editing = SandboxTools(tmp_path, run_checks=lambda: "ran")
    assert {s["name"] for s in editing.specs()} == set(READ_TOOLS) | WRITES


class _Provider:
    """A scripted provider in Anthropic's shape; records what each turn offered."""

    name = "anthropic"

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies
        self.seen: list[dict] = []

    def chat(self, *, model, system, messages, tools, max_tokens, idempotency_key=None, cancel=None,
             on_text=None):
        self.seen.append({"system": system, "tools": [t["name"] for t in tools or []],
                          "messages": [dict(m) for m in messages]})
        reply = self.replies.pop(0)
        if on_text and reply.text:
            on_text(reply.text)
        return reply

    def user_message(self, text):
        return {"role": "user", "content": text}

    def tool_result_message(self, results):
        return [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": c.id, "content": text}
                                             for c, text, _err in results]}]


def _reply(text: str = "", *calls: ToolCall) -> Reply:
    return Reply(text=text, tool_calls=list(calls), raw_assistant={"role": "assistant", "content": text or "…"})


def test_the_read_only_loop_refuses_writes_and_falls_back_without_a_sandbox(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    provider = _Provider([_reply("", ToolCall("t1", "write_file", {"path": "a.py", "content": "boom"}),
                                 ToolCall("t2", "read_file", {"path": "a.py"})), _reply("verdict: ok")])
    single = _Provider([_reply("single shot")])
    from loom_core.agents.executors.provider_call import ProviderExecutor

    ex = ToolLoopExecutor(provider, label="x", read_only=True, max_turns=5,
                          single_shot=ProviderExecutor(single, label="y"))
    intent = Intent("logic-reviewer", "ar-1", "implementation", "sonnet", "judge it",
                    extras={"workdir": str(tmp_path)})
    res = ex.execute(intent, threading.Event(), lambda _l: None)
    assert res.output == "verdict: ok" and res.files_modified == ()
    assert (tmp_path / "a.py").read_text() == "x = 1\n"
    assert provider.seen[0]["tools"] == list(READ_TOOLS) and provider.seen[0]["system"].endswith(READ_ONLY_SUFFIX)
    results = provider.seen[1]["messages"][-1]["content"]
    assert results[0]["content"].startswith("refused: read-only") and "x = 1" in results[1]["content"]
    nowhere = Intent("logic-reviewer", "ar-2", "implementation", "sonnet", "judge it")
    assert ex.execute(nowhere, threading.Event(), lambda _l: None).output == "single shot"
    assert single.seen[0]["tools"] == []


@pytest.mark.parametrize("status,message", [
    (400, "registry.ollama.ai/library/gemma:2b does not support tools"),
    (404, "No endpoints found that support tool use. To learn more about provider routing, visit: x"),
])
def test_a_model_without_tool_support_gets_one_plain_call(tmp_path, status, message):
    from loom_core.agents.executors.provider_call import ProviderExecutor
    from loom_core.agents.providers.base import error_for_status

    class NoTools(_Provider):
        def chat(self, **kw):
            if kw["tools"]:
                raise error_for_status("ollama", status, message)
            return super().chat(**kw)

    provider = NoTools([_reply("plain answer")])
    logs: list[str] = []
    ex = ToolLoopExecutor(provider, label="x", read_only=True, single_shot=ProviderExecutor(provider, label="y"))
    res = ex.execute(Intent("acceptance", "ar-1", "validation", "gemma:2b", "judge",
                            extras={"workdir": str(tmp_path)}), threading.Event(), logs.append)
    assert res.output == "plain answer" and provider.seen[0]["tools"] == []
    assert any("takes no tools" in line for line in logs)
    editing = ToolLoopExecutor(NoTools([]), label="x")  # an implementer cannot work without tools
    with pytest.raises(Exception, match="support tool"):
        editing.execute(Intent("implementer", "ar-2", "implementation", "m", "do",
                               extras={"workdir": str(tmp_path)}), threading.Event(), logs.append)


def test_the_read_only_loop_is_told_its_last_turn(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    read = ToolCall("t", "read_file", {"path": "a.py"})
    provider = _Provider([_reply("", read), _reply("", read), _reply("final")])
    ex = ToolLoopExecutor(provider, label="x", read_only=True, max_turns=3)
    res = ex.execute(Intent("planner", "ar-1", "planning", "m", "p", extras={"workdir": str(tmp_path)}),
                     threading.Event(), lambda _l: None)
    assert res.output == "final"
    last_results = provider.seen[2]["messages"][-1]["content"]
    assert "last tool turn" in last_results[-1]["content"]
    assert "last tool turn" not in provider.seen[1]["messages"][-1]["content"][-1]["content"]


class _Workspace:
    """The workspace contract, over a fixed diff (what the sandbox hands the driver)."""

    def __init__(self, root: Path, diff: str, modified: list[str], created: list[str], *, isolated=True):
        self.root, self._diff, self.isolated, self.prefix = root, diff, isolated, ""
        self._delta = (modified, created)

    def delta(self):
        return self._delta

    def diff_text(self, cap_bytes: int = 256 * 1024) -> str:
        (self.root / ".loom" / "work").mkdir(parents=True, exist_ok=True)
        (self.root / ".loom" / "work" / "diff.txt").write_text(self._diff)
        return self._diff


def _file_diff(path: str, added: list[str], removed: list[str] = ()) -> str:
    body = "".join(f"-{x}\n" for x in removed) + "".join(f"+{x}\n" for x in added)
    return (f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -1,{len(removed)} +1,{len(added)} @@\n{body}")


def test_the_change_section_lists_files_caps_the_diff_and_hides_credentials(tmp_path):
    big = [f"line {i} " + "x" * 100 for i in range(800)]
    diff = (_file_diff(".env", [f"TOKEN={TOKEN}"]) + _file_diff("app/core.py", ["    return 2"], ["    return 1"])
            + _file_diff("notes.md", ["```", "code", "```"]) + _file_diff("big.py", big))
    ws = _Workspace(tmp_path, diff, ["app/core.py"], [".env", "big.py", "notes.md"])
    section = agent_view.review_section(ws, "implementation")
    assert section.startswith("\n\n### The change under review\n")
    assert "- app/core.py (modified +1/-1)" in section and "- big.py (new +800/-0)" in section
    assert "- .env (new +1/-0)" in section and TOKEN not in section
    assert "# content not shown: sensitive-file:.env" in section
    assert TOKEN not in (tmp_path / ".loom" / "work" / "diff.txt").read_text()  # what agents can read_file
    assert len(section.encode()) < agent_view.PROMPT_CAP + 4096
    assert "diff cut at 60 KB" in section and "`.loom/work/diff.txt`" in section
    assert "````diff" in section  # a fence longer than any backtick run in the diff
    small = agent_view.change_section(_Workspace(tmp_path, _file_diff("a.py", ["b"]), [], ["a.py"]))
    assert "diff cut" not in small and "+b" in small
    empty = agent_view.change_section(_Workspace(tmp_path, "", [], []))
    assert "nothing was changed" in empty
    plain = agent_view.change_section(_Workspace(tmp_path, "", ["a.py"], [], isolated=False))
    assert "not a git repository" in plain and "- a.py (modified)" in plain


def test_a_workspace_truncated_diff_keeps_its_full_per_file_counts(tmp_path):
    diff = _file_diff("a.py", ["x"]) + ("\n# diff truncated (over 100 bytes): first 300 changed lines per file "
                                         "kept; full per-file changes:\n+900/-0 a.py\n+3/-1 b.py\n")
    section = agent_view.change_section(_Workspace(tmp_path, diff, ["b.py"], ["a.py"]))
    assert "- +900/-0 a.py" in section and "- +3/-1 b.py" in section


def test_plan_and_context_doc_sections(tmp_path):
    ws = _Workspace(tmp_path, "", [], [])
    assert "was not written" in agent_view.review_section(ws, "planning")
    (tmp_path / ".loom" / "work").mkdir(parents=True)
    (tmp_path / ".loom" / "work" / "plan.md").write_text("# Plan\nAC-1: f returns 2\n")
    (tmp_path / ".loom" / "work" / "context-doc.md").write_text("## Scope\napp/core.py\n")
    plan = agent_view.review_section(ws, "planning")
    assert "### The plan under review" in plan and "AC-1: f returns 2" in plan
    doc = agent_view.review_section(ws, "context")
    assert "### The document under review" in doc and "app/core.py" in doc


def test_documents_are_saved_only_when_the_agent_did_not_write_them(tmp_path):
    from loom_core.agents.spawn import SpawnExecutor

    class Backend:
        name, label, idempotent = "b", "b", True

        def __init__(self, output: str, writes: str | None = None) -> None:
            self.output, self.writes, self.prompts = output, writes, []

        def execute(self, intent, cancel, log):
            self.prompts.append(intent.prompt)
            if self.writes is not None:
                (Path(intent.extras["workdir"]) / ".loom" / "work" / "plan.md").write_text(self.writes)
            return ExecResult(output=self.output)

    ws = _Workspace(tmp_path, _file_diff("a.py", ["b"]), [], ["a.py"])
    plan = tmp_path / ".loom" / "work" / "plan.md"
    planner = Intent("planner", "ar-1", "planning", "m", "plan it", extras={"writes_doc": "plan.md"})
    SpawnExecutor(Backend("```json\n{\"a\": 1}\n```\n# Plan\nstep 1\n"), ws).execute(
        planner, threading.Event(), lambda _l: None)
    assert plan.read_text() == "# Plan\nstep 1\n"
    # a planner that wrote the plan itself keeps it; its answer (a summary) is not saved over it
    SpawnExecutor(Backend("summary: 1 step", writes="# Plan v2\n"), ws).execute(
        planner, threading.Event(), lambda _l: None)
    assert plan.read_text() == "# Plan v2\n"
    # a revision that changed nothing saves the new answer
    SpawnExecutor(Backend("# Plan v3\n"), ws).execute(planner, threading.Event(), lambda _l: None)
    assert plan.read_text() == "# Plan v3\n"
    # a plan reviewer gets it in its prompt; a change reviewer gets the diff; others get neither
    judge = Backend("ok")
    ex = SpawnExecutor(judge, ws)
    ex.execute(Intent("logic-reviewer", "ar-2", "planning", "m", "review", extras={"judges": True}),
               threading.Event(), lambda _l: None)
    ex.execute(Intent("logic-reviewer", "ar-3", "implementation", "m", "review", extras={"judges": True}),
               threading.Event(), lambda _l: None)
    ex.execute(Intent("classifier", "ar-4", "context", "m", "classify"), threading.Event(), lambda _l: None)
    assert "### The plan under review" in judge.prompts[0] and "# Plan v3" in judge.prompts[0]
    assert "### The change under review" in judge.prompts[1] and "+b" in judge.prompts[1]
    assert judge.prompts[2] == "classify"


def test_the_resolver_builds_a_read_only_loop_for_non_editing_agents(monkeypatch):
    from loom_core.agents.backends import READ_ONLY_TURNS, Resolver
    from loom_core.agents.executors.provider_call import ProviderExecutor
    from loom_core.config.settings import LoomSettings

    class NoSecrets:
        def get(self, name):
            return None

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-key-123456")
    monkeypatch.delenv("LOOM_HARNESS", raising=False)
    resolver = Resolver(LoomSettings(), secrets=NoSecrets())
    reader, editor = resolver.executor("anthropic", agentic=False), resolver.executor("anthropic", agentic=True)
    assert reader is not editor and reader is resolver.executor("anthropic", agentic=False)
    assert isinstance(reader, ToolLoopExecutor) and reader.read_only and reader.max_turns == READ_ONLY_TURNS
    assert isinstance(reader.single_shot, ProviderExecutor) and "read-only" in reader.label
    assert isinstance(editor, ToolLoopExecutor) and not editor.read_only
