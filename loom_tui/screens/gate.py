"""The gate dialog: what a person needs to answer a parked gate — why it opened, the open
blockers, the exact output being approved and the sandbox diff — and the answer keys.

``open_gate(app, pid)`` loads the view in a thread worker, pushes :class:`GateDialog`, and sends
the answer through ``app.answer_gate`` with the ``gate_event_id`` the dialog showed (a gate answered
elsewhere meanwhile is not answered twice), which answers and then drives on."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static, TabbedContent, TabPane

from loom_tui.fmt import SEVERITY_STYLE
from loom_tui.keys import help_key
from loom_tui.widgets.footer import LoomFooter

if TYPE_CHECKING:
    from loom_core.control import LocalControl

# the agent whose output a gate of this role approves (else the latest run's output)
# documents worth showing next to that output, relative to the sandbox's .loom/work/
ROLE_DOCS = {"plan": "plan.md"}
PLAN_DOC = "plan.md"
MAX_BLOCKERS = 8
GateAnswer = tuple[str, str | None]


# ---------------------------------------------------------------------- loading (thread)

def load_gate(control: LocalControl, pid: str) -> dict[str, Any] | None:
    """``control.gate`` plus the document of the agent the gate approves (e.g. the plan).
    Blocking I/O: call from a thread."""
    view = control.gate(pid)
    if view is None:
        return None
    view = dict(view)
    doc = ROLE_DOCS.get(view.get("role") or "")
    view["document"] = work_doc(control, pid, doc) if doc else None
    # what `e` opens in the editor: the task's plan at any gate (else the output being approved)
    view["plan"] = view["document"] if doc == PLAN_DOC else work_doc(control, pid, PLAN_DOC)
    return view


def work_doc(control: LocalControl, pid: str, name: str) -> tuple[str, str] | None:
    """``(".loom/work/<name>", text)`` from the task's work folder, or from the plane on another host."""
    for d in control.work_dirs(pid):
        if (d / name).is_file():
            return f".loom/work/{name}", (d / name).read_text(encoding="utf-8", errors="replace")
    if getattr(control, "remote", False):  # a plane on another host
        from loom_core.errors import LoomError

        try:
            got = control.artifact(pid, f".loom/work/{name}")
            return got["path"], got["content"]
        except LoomError:
            pass
    return None


# ---------------------------------------------------------------------- the dialog

def blocker_lines(blockers: list[dict[str, Any]], limit: int = MAX_BLOCKERS) -> Text:
    text = Text()
    for b in blockers[:limit]:
        where = b.get("file") or "?"
        if b.get("line_start"):
            where += f":{b['line_start']}"
        sev = b.get("severity") or "blocking"
        text.append(f"✗ {sev:<8} ", style=SEVERITY_STYLE.get(sev, ""))
        text.append(f"[{b.get('category') or '-'}] ", style="bold")
        text.append(f"{where} ", style="underline")
        text.append(f"{b.get('summary') or ''}")
        if b.get("agent"):
            text.append(f" ({b['agent']})", style="dim")
        text.append("\n")
    if len(blockers) > limit:
        text.append(f"… {len(blockers) - limit} more\n", style="dim")
    text.rstrip()
    return text


class GateDialog(ModalScreen[GateAnswer | None]):
    """Answer a gate: ``("accept" | "reject" | "auto-apply", note)``, or None to leave it parked."""

    CSS_PATH = "../styles/gate.tcss"
    BINDINGS = [
        help_key("gate"),
        Binding("a", "accept", "Accept", id="gate.accept", tooltip="Approve and continue the task"),
        Binding("r", "reject", "Reject", id="gate.reject",
                tooltip="Send it back: a note saying what to change is required"),
        Binding("y", "auto_apply", "Auto-apply", id="gate.auto_apply",
                tooltip="Approve, and let this task's remaining gates decide themselves"),
        Binding("d", "toggle_view", "Output/Diff", id="gate.toggle",
                tooltip="Switch between the agent output and the sandbox diff"),
        Binding("e", "open_plan", "Editor", id="gate.open_plan",
                tooltip="Read the plan in $VISUAL / $EDITOR (a copy: edits are dropped; reject with a note to "
                        "change the plan)"),
        Binding("v", "open_diff", "Pager", id="gate.open_diff",
                tooltip="Read the diff in $LOOM_PAGER / $PAGER (default less -R)"),
        Binding("escape", "close", "Close", id="gate.close", tooltip="Close without answering (the task stays parked)"),
    ]

    def __init__(self, view: dict[str, Any], pid: str | None = None, project_name: str | None = None) -> None:
        super().__init__()
        self.view = view
        self.pid = pid
        self.project_name = project_name
        self.rejecting = False

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        v = self.view
        blockers = v.get("blockers") or []
        with Vertical(id="gate-box") as box:
            where = f"{self.project_name} · " if self.project_name else ""
            box.border_title = f"{where}{v.get('gate')} · {v.get('role') or 'gate'}"
            box.border_subtitle = f"{len(blockers)} open blocker(s)" if blockers else "no open blockers"
            with VerticalScroll(id="gate-message"):
                yield Static(v.get("message") or "", markup=False, id="gate-message-text")
            blk = Static(blocker_lines(blockers), id="gate-blockers")
            blk.display = bool(blockers)
            yield blk
            agent = v.get("agent") or "agent"
            with TabbedContent(id="gate-tabs", initial="gate-output-tab"):
                with TabPane(f"Output · {agent}", id="gate-output-tab"):
                    with VerticalScroll(id="gate-output"):
                        yield Static(self._output_text(), id="gate-output-text")
                with TabPane("Diff", id="gate-diff-tab"):
                    with ScrollableContainer(id="gate-diff"):
                        yield Static(self._diff_renderable(), id="gate-diff-text")
            note = Input(placeholder="what should change? (enter sends · esc cancels)", id="gate-note", compact=True)
            note.display = False
            yield note
        yield LoomFooter()

    def _output_text(self) -> Text:
        v = self.view
        out = v.get("output") or ""
        text = Text()
        text.append(f"{v.get('agent') or 'agent'} output · {len(out)} chars\n", style="dim")
        text.append(out or "(no output recorded)")
        doc = v.get("document")
        if doc:
            name, body = doc
            text.append(f"\n── {name} ──\n", style="bold")
            text.append(body)
        return text

    def _diff_renderable(self):
        diff = self.view.get("diff") or ""
        if not diff.strip():
            return Text("no changes in the sandbox yet", style="dim")
        return Syntax(diff, "diff", theme="ansi_dark", word_wrap=False, background_color="default")

    def on_mount(self) -> None:
        self.query_one("#gate-output").focus()

    # ------------------------------------------------------------------ state
    @property
    def showing(self) -> str:
        return "diff" if self.query_one(TabbedContent).active == "gate-diff-tab" else "output"

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        if not self.rejecting:
            self.query_one("#gate-diff" if self.showing == "diff" else "#gate-output").focus()

    def check_action(self, action: str, parameters) -> bool | None:
        if self.rejecting and action in ("accept", "auto_apply", "toggle_view", "open_plan", "open_diff"):
            return None
        return True

    # ------------------------------------------------------------------ actions
    def action_accept(self) -> None:
        self._approve("accept")

    def action_auto_apply(self) -> None:
        self._approve("auto-apply")

    def open_blockers(self) -> list[dict[str, Any]]:
        return [b for b in self.view.get("blockers") or [] if (b.get("severity") or "blocking") == "blocking"]

    def _approve(self, decision: str) -> None:
        """Approving over an open blocking finding asks once more; otherwise it answers at once."""
        blocking = self.open_blockers()
        if not blocking:
            self.dismiss((decision, None))
            return
        from loom_tui.screens.confirm import ConfirmDialog

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.dismiss((decision, None))

        listed = "\n".join(f"  ✗ {b.get('file') or '?'}{':' + str(b['line_start']) if b.get('line_start') else ''} "
                           f"{(b.get('summary') or '')[:70]}" for b in blocking[:3])
        more = f"\n  … {len(blocking) - 3} more" if len(blocking) > 3 else ""
        self.app.push_screen(ConfirmDialog(
            f"{decision.capitalize()} over {len(blocking)} open blocking finding(s)?",
            f"A reviewer or check said these must be fixed first:\n{listed}{more}\n\n"
            f"{'Accepting' if decision == 'accept' else 'Auto-applying'} approves the work as it is.",
            yes="Accept anyway" if decision == "accept" else "Auto-apply anyway"), confirmed)

    def action_reject(self) -> None:
        note = self.query_one("#gate-note", Input)
        self.rejecting = True
        note.display = True
        note.focus()
        self.refresh_bindings()

    def plan_text(self) -> str:
        """The plan (``.loom/work/plan.md``), else the output being approved."""
        plan = self.view.get("plan")
        return plan[1] if plan else self.view.get("output") or ""

    def action_open_plan(self) -> None:
        open_outside(self.app, "plan", self.plan_text())

    def action_open_diff(self) -> None:
        open_outside(self.app, "diff", self.view.get("diff") or "")

    def action_toggle_view(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "gate-output-tab" if self.showing == "diff" else "gate-diff-tab"

    def action_close(self) -> None:
        if self.rejecting:
            self.rejecting = False
            note = self.query_one("#gate-note", Input)
            note.display = False
            self.query_one("#gate-diff" if self.showing == "diff" else "#gate-output").focus()
            self.refresh_bindings()
            return
        self.dismiss(None)

    @on(Input.Submitted, "#gate-note")
    def _send_reject(self, event: Input.Submitted) -> None:
        note = event.value.strip()
        if not note:
            self.notify("a rejection needs a note saying what to change", severity="warning")
            return
        self.dismiss(("reject", note))

    def palette_entries(self):
        return [
            ("gate: accept", "Approve and continue the task", self.action_accept),
            ("gate: reject", "Send it back with a note saying what to change", self.action_reject),
            ("gate: auto-apply", "Approve, and let this task's remaining gates decide themselves",
             self.action_auto_apply),
            ("gate: toggle output / diff", "Switch between the agent output and the sandbox diff",
             self.action_toggle_view),
            ("gate: plan in editor", "Read the plan in $VISUAL / $EDITOR (a copy: edits are dropped)",
             self.action_open_plan),
            ("gate: diff in pager", "Read the diff in $LOOM_PAGER / $PAGER (default less -R)", self.action_open_diff),
            ("gate: close", "Close without answering (the task stays parked)", self.action_close),
        ]


# ---------------------------------------------------------------------- $EDITOR / $PAGER

def open_outside(app: App, which: str, text: str) -> None:
    """Hand the terminal to the user's editor (``which="plan"``) or pager (``"diff"``) on a temporary copy
    of ``text`` (as git and lazygit do), wait, and come back; a missing program or a console that cannot
    give the terminal away (the browser) is a toast."""
    from textual.app import SuspendNotSupported

    from loom_core.control.external import ProgramNotFound, open_text, what_to_open

    if not text.strip():
        app.notify("no plan to open yet" if which == "plan" else "no changes in the sandbox yet", severity="warning")
        return
    try:
        program, suffix = what_to_open(which)
    except ProgramNotFound as exc:
        app.notify(str(exc), title=f"cannot open the {which}", severity="error")
        return
    failed: Exception | None = None
    opened = None
    try:
        with app.suspend():
            try:  # nothing may escape: App.suspend resumes the screen only when its block ends normally
                opened = open_text(program, text, suffix=suffix, name=f"loom-{which}")
            except Exception as exc:  # noqa: BLE001 - shown as a toast once the console is back
                failed = exc
    except SuspendNotSupported:
        app.notify("this console cannot hand the terminal to another program (a browser console?)",
                   title=f"cannot open the {which}", severity="warning")
        return
    name = Path(program.argv[0]).name
    if failed is not None:
        app.notify(str(failed), title=f"cannot open the {which}", severity="error")
    elif opened is not None and opened.returncode:
        app.notify(f"{name} exited with status {opened.returncode}", severity="warning")
    elif opened is not None and opened.changed and which == "plan":
        app.notify("your edits went to a copy and were dropped: reject (r) with a note to change the plan")


# ---------------------------------------------------------------------- entry point

def open_gate(app: App, pid: str) -> None:
    """Load the gate of project ``pid`` in a thread worker, show the dialog, answer via the app."""
    if any(isinstance(s, GateDialog) and s.pid == pid for s in app.screen_stack):
        return

    def load() -> None:
        try:
            project = app.control.project(pid)
            view = load_gate(app.control, pid)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never raised into the loop
            app.call_from_thread(app.notify, f"could not read the gate: {exc}", severity="error")
            return
        app.call_from_thread(show, view, project.name)

    def show(view: dict[str, Any] | None, name: str) -> None:
        if view is None:
            app.notify("no gate is waiting for an answer in this project", severity="warning")
            return
        if any(isinstance(s, GateDialog) and s.pid == pid for s in app.screen_stack):
            return
        gate_event_id = view.get("gate_event_id")
        app.push_screen(GateDialog(view, pid, name), callback=lambda answer: _answered(app, pid, gate_event_id, answer))

    app.run_worker(load, thread=True, group=f"gate-{pid}", exclusive=True, exit_on_error=False,
                   name=f"open-gate {pid}", description="read the gate view")


def _answered(app: App, pid: str, gate_event_id: str | None, answer: GateAnswer | None) -> None:
    if answer is None:
        return
    decision, note = answer
    app.answer_gate(pid, decision, note, gate_event_id=gate_event_id)
