"""Run inspector: one agent run in full — output, prompt (collapsed), verdicts, findings and the
files it touched. Works over the live store and over an archived one."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Collapsible, Footer, Header, Static

from loom_core.control.humanize import millis
from loom_tui.fmt import SEVERITY_STYLE, token_line


def finding_lines(findings: list[dict[str, Any]]) -> Text:
    text = Text()
    for f in findings:
        where = f.get("file") or "—"
        if f.get("line_start"):
            where += f":{f['line_start']}"
        sev = f.get("severity") or "info"
        text.append(f"{sev:<8} ", style=SEVERITY_STYLE.get(sev, ""))
        text.append(f"{f.get('category') or '-'}  ", style="bold")
        text.append(f"{where}  ", style="underline")
        text.append(f.get("summary") or "")
        status = f.get("status")
        if status and status != "open":
            text.append(f"  [{status}]", style="dim")
        text.append("\n")
    text.rstrip()
    return text


def own_round(detail: dict[str, Any], runs: list[dict[str, Any]], index: int) -> dict[str, Any]:
    """``run_detail`` reports every verdict and finding of the run's agent in its phase; keep this
    run's own: the n-th run of an (agent, phase) pair gave the n-th verdict (as ``readmodel.chain``
    pairs them), and its findings carry that verdict's iteration."""
    run = runs[index]
    nth = sum(1 for r in runs[:index] if r["agent"] == run["agent"] and r["phase"] == run["phase"])
    verdicts = detail.get("verdicts") or []
    if nth >= len(verdicts):
        return {**detail, "verdicts": [], "findings": [] if run.get("state") == "running" else detail["findings"]}
    mine = verdicts[nth]
    findings = [f for f in detail.get("findings") or [] if f.get("iteration") in (None, mine.get("iteration"))]
    return {**detail, "verdicts": [mine], "findings": findings}


class RunLoaded(Message):
    def __init__(self, detail: dict[str, Any] | None, error: str | None = None) -> None:
        super().__init__()
        self.detail = detail
        self.error = error


class RunInspector(Screen):
    CSS_PATH = "../styles/inspector.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back", id="run.back", tooltip="Back to the agent chain"),
        Binding("left_square_bracket", "step(-1)", "Prev run", id="run.prev", tooltip="The run before this one"),
        Binding("right_square_bracket", "step(1)", "Next run", id="run.next", tooltip="The run after this one"),
        Binding("p", "toggle_prompt", "Prompt", id="run.prompt", tooltip="Show or hide the prompt the agent got"),
    ]

    def __init__(self, pid: str, task_id: str | None, runs: list[dict[str, Any]], index: int, *,
                 archived: bool = False) -> None:
        super().__init__()
        self.pid = pid
        self.task_id = task_id  # None: the live task; else a task id or history ref
        self.runs = runs  # the chain's runs (readmodel.chain), for stepping and for the run's round
        self.run_ids = [r["agent_run_id"] for r in runs]
        self.index = index
        self.archived = archived
        self.detail: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return self.run_ids[self.index]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading…", id="run-head")
        with VerticalScroll(id="run-body"):
            yield Static("", id="run-meta")
            yield Static("", id="run-findings")
            yield Static("", id="run-output-title")
            yield Static("", id="run-output", markup=False)
            with Collapsible(title="Prompt", collapsed=True, id="run-prompt-box"):
                yield Static("", id="run-prompt", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#run-body").focus()
        self.load()

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def load(self) -> None:
        try:
            detail = self.app.control.run_detail(self.pid, self.run_id, self.task_id)
            self.post_message(RunLoaded(own_round(detail, self.runs, self.index)))
        except Exception as exc:  # noqa: BLE001
            self.post_message(RunLoaded(None, f"{type(exc).__name__}: {exc}"))

    def on_run_loaded(self, message: RunLoaded) -> None:
        if message.error:
            self.query_one("#run-head", Static).update(Text(f"could not read the run: {message.error}", style="red"))
            return
        d = self.detail = message.detail or {}
        self.sub_title = f"run {self.index + 1} of {len(self.run_ids)}"
        head = Text()
        head.append(f"{d.get('agent') or '?'}", style="bold")
        head.append(f" · {d.get('phase') or '—'} · {d.get('model') or '—'}")
        if d.get("running"):
            head.append("  ▶ running", style="bold green")
        u = d.get("usage") or {}
        turns = f" · {u['num_turns']} turn(s)" if u.get("num_turns") else ""
        head.append(f"\n{token_line(u.get('tokens_in'), u.get('tokens_out'), u.get('tokens_cached'))}{turns}"
                    f" · {millis(d.get('duration_ms'))}", style="dim")
        if d.get("cost_usd") is not None:
            head.append(f" · ${d['cost_usd']:.4f}", style="dim")
        self.query_one("#run-head", Static).update(head)

        meta = Text()
        for v in d.get("verdicts") or []:
            meta.append("verdict ", style="dim")
            meta.append(f"{v.get('verdict')}", style="bold")
            meta.append(f" — {v.get('summary_line') or ''}  ")
            meta.append(f"({v.get('blocking_issues', 0)} blocking · {v.get('warn_issues', 0)} warn · "
                        f"{v.get('info_issues', 0)} info)\n", style="dim")
        mod, new = d.get("files_modified") or [], d.get("files_created") or []
        if mod:
            meta.append("modified ", style="dim")
            meta.append(", ".join(mod) + "\n")
        if new:
            meta.append("created  ", style="dim")
            meta.append(", ".join(new) + "\n")
        meta.rstrip()
        self.query_one("#run-meta", Static).update(meta)
        self.query_one("#run-meta").display = bool(meta.plain)

        findings = d.get("findings") or []
        fnd = self.query_one("#run-findings", Static)
        fnd.display = bool(findings)
        if findings:
            fnd.update(Text(f"Findings ({len(findings)})\n", style="bold") + finding_lines(findings))

        out = d.get("output") or ""
        self.query_one("#run-output-title", Static).update(
            Text(f"Output · {len(out)} chars", style="bold"))
        self.query_one("#run-output", Static).update(
            out or ("(still running — the output appears when the run ends)" if d.get("running") else "(no output)"))
        prompt = d.get("prompt") or ""
        self.query_one("#run-prompt-box", Collapsible).title = f"Prompt · {len(prompt)} chars (p)"
        self.query_one("#run-prompt", Static).update(prompt or "(no prompt recorded)")
        self.refresh_bindings()

    # ------------------------------------------------------------------ engine events
    def engine_event(self, pid: str, event) -> None:
        if pid == self.pid and not self.archived and self.is_mounted and event.kind == "spawn-end" \
                and event.data.get("agent_run_id") == self.run_id:
            self.load()

    # ------------------------------------------------------------------ actions
    def check_action(self, action: str, parameters) -> bool | None:
        if action == "step":
            j = self.index + int(parameters[0])
            return True if 0 <= j < len(self.run_ids) else None
        return True

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_step(self, delta: int) -> None:
        j = self.index + delta
        if 0 <= j < len(self.run_ids):
            self.index = j
            self.query_one("#run-body", VerticalScroll).scroll_home(animate=False)
            self.load()

    def action_toggle_prompt(self) -> None:
        box = self.query_one("#run-prompt-box", Collapsible)
        box.collapsed = not box.collapsed

    def palette_entries(self):
        return [
            ("run: back", "Back to the agent chain", self.action_back),
            ("run: previous run", "The run before this one", lambda: self.action_step(-1)),
            ("run: next run", "The run after this one", lambda: self.action_step(1)),
            ("run: toggle prompt", "Show or hide the prompt the agent got", self.action_toggle_prompt),
        ]
