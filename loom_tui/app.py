"""LoomApp: wiring only. Screens live in ``loom_tui/screens``, styles in ``loom_tui/styles``.

The console talks to loom only through the facade, ``app.control`` (a
:class:`~loom_core.control.LocalControl`). Its verbs run in thread workers; engine events arrive as
messages (``EngineUpdate``, ``LogLines``, ``RunFinished``) and are forwarded to the screens that show
that project. The event loop never blocks on the engine. Screens never import each other to move
between views: they ask the app (``open_project``, ``open_history``, ``open_replay``, …).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding

from loom_core.control import Catalog, LocalControl, RunOptions
from loom_core.errors import GateAlreadyAnswered, LoomError
from loom_tui.bridge import TuiSink
from loom_tui.commands import LoomCommands
from loom_tui.messages import EngineUpdate, FleetRows, LogLines, RunFinished

REFRESH_S = 2.0
# Garbage collection, console only (the engine keeps Python's defaults; the thresholds are given back on exit).
# Python starts a full collection by itself after every 10 younger (generation 1) passes; over the tens of
# thousands of objects a running console holds, one costs ~25 ms of the event loop and lands inside whatever
# frame allocated last. The console lets them wait (FULL_GC_EVERY generation-1 passes before Python starts one
# itself) and runs one when nothing is happening: after a poll that changed no row, once generation-1 passes
# have piled up, at most every IDLE_GC_S seconds. The youngest pass runs every YOUNG_GC_EVERY allocations
# instead of 700: a frame allocates thousands of short-lived objects, and at 700 it ran ~8 passes per fleet
# update (~2.5 ms of a 16 ms frame, measured) where it now runs under one.
YOUNG_GC_EVERY = 10_000
FULL_GC_EVERY = 1_000
IDLE_GC_S = 30.0
ANSWERED_ELSEWHERE = "this gate was answered elsewhere meanwhile; nothing sent"


class LoomApp(App):
    TITLE = "loom"
    SUB_TITLE = "agent runs you can prove"
    CSS_PATH = ["styles/app.tcss"]
    COMMANDS = App.COMMANDS | {LoomCommands}
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit",
                tooltip="Leave the console (asks first while drives run: they stop between steps)"),
        Binding("question_mark,f1", "help", "Help", id="app.help", show=False,
                tooltip="Every key of this screen and the global ones"),
        Binding("s", "settings", "Settings", id="app.settings", tooltip="Configuration, secrets, models, projects"),
        Binding("t", "toggle_theme", "Theme", id="app.theme", show=False, tooltip="Switch light / dark"),
    ]

    def __init__(self, control: LocalControl | None = None, *, open_project: str | None = None,
                 start: tuple[str, str, RunOptions] | None = None, refresh_s: float = REFRESH_S,
                 watch: bool = True) -> None:
        super().__init__()
        self.control = control or LocalControl()
        self.control.sink_for = lambda pid: TuiSink(self, pid)
        self.rows: dict[str, dict[str, Any]] = {}
        self._rows_posted: list[dict[str, Any]] | None = None  # the poll's last rows (the worker's own)
        self._frozen = False
        self._collected_at = 0.0  # monotonic time of the last idle full collection
        self._gc_threshold: tuple[int, ...] | None = None  # Python's thresholds before the console raised one
        self._open_project = open_project
        self._start = start
        self._refresh_s = refresh_s
        self._watch = watch
        self.animation_level = "none"  # SSH-friendly: no animation unless ui.animation says so (on mount)
        self.stopping = False  # "stop and quit" chosen: exit once the last drive has stopped
        self.drafts: dict[str, str] = {}  # task text kept per project when the user chose not to submit it
        self.attached = getattr(self.control, "remote", False)  # a plane drives; this console only watches
        self.fleet_sort = "attention"  # ui.sort, read on mount; the fleet keeps it current
        self.keymap_entries: dict[str, str] = {}  # the [keymap] entries applied (binding id → keys)
        self._prefs_lock = threading.Lock()
        if self.attached:
            self.sub_title = f"attached to plane at {getattr(self.control, 'url', '?')}"

    # ------------------------------------------------------------------ lifecycle
    def on_mount(self) -> None:
        from loom_tui.screens.fleet import FleetScreen

        theme = self._theme_from_settings()  # also sets the animation level
        self.theme = os.environ.get("LOOM_THEME") or theme
        from loom_core.config.secrets import on_notice

        self._unhook_notices = on_notice(self._store_notice)  # never print to the terminal under the console
        self.push_screen(FleetScreen())
        if not self.control.projects():
            from loom_tui.screens.wizard import WizardScreen

            self.push_screen(WizardScreen())
        self.refresh_rows()
        if self._watch:
            self.set_interval(self._refresh_s, self.refresh_rows)
        if self._start is not None:
            pid, text, opts = self._start
            self.submit_task(pid, text, opts)
        if self._open_project:
            self.open_project(self._open_project)

    def on_unmount(self) -> None:
        if self._gc_threshold is not None:
            import gc

            gc.set_threshold(*self._gc_threshold)
        unhook = getattr(self, "_unhook_notices", None)
        if unhook is not None:
            unhook()

    def _store_notice(self, message: str) -> None:
        """A notice from the settings / secrets layer, from any thread."""
        import threading

        if threading.get_ident() == self._thread_id:
            self.notify(message, title="secrets", severity="warning", timeout=10)
        else:
            self.call_from_thread(self.notify, message, title="secrets", severity="warning", timeout=10)

    def _theme_from_settings(self) -> str:
        """The theme from the ``ui`` settings; ``ui.animation`` sets the animation level on the way."""
        try:
            from loom_core.config.settings import load_settings

            settings = load_settings()
            ui = settings.ui
            self.animation_level = "full" if ui.animation else "none"
            self.fleet_sort = ui.sort
            if settings.keymap:
                self.apply_keymap(settings.keymap)
            return "textual-light" if ui.theme == "light" else "textual-dark"
        except LoomError as exc:
            self.notify(str(exc), title="settings ignored", severity="warning")
            return "textual-dark"

    # ------------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="rows", exit_on_error=False)
    def refresh_rows(self) -> None:
        """Read every project's row (off the loop); post them only when some row changed in more than what
        the clock alone moves (a running agent's age, a task's elapsed seconds: every view works those out
        from the time of the read, and ``elapsed`` in words still changes the row)."""
        rows = self.control.fleet()
        steady = [_steady(r) for r in rows]
        if steady != self._rows_posted:
            self._rows_posted = steady
            self.post_message(FleetRows(rows))
        elif self._frozen:
            self._collect_idle()

    def _collect_idle(self) -> None:
        """A full garbage collection while nothing changes on screen (see FULL_GC_EVERY), when it has work."""
        import gc
        import time

        now = time.monotonic()
        if gc.get_count()[2] >= 10 and now - self._collected_at >= IDLE_GC_S:  # Python's own default pace
            self._collected_at = now
            gc.collect()

    @work(thread=True, exclusive=True, group="plane-log", exit_on_error=False)
    def follow_log(self, pid: str) -> None:
        """Attached: the project's live log from the plane's SSE stream (one project at a time)."""
        from textual.worker import get_current_worker

        from loom_tui.attached import follow_log

        worker = get_current_worker()
        follow_log(self, pid, lambda: worker.is_cancelled)

    @work(thread=True, group="engine", exit_on_error=False)
    def submit_task(self, pid: str, text: str, opts: RunOptions) -> None:
        self._drive(pid, lambda: self.control.submit(pid, text, opts))

    @work(thread=True, group="engine", exit_on_error=False)
    def replace_task(self, pid: str, text: str, opts: RunOptions) -> None:
        """Stop the drive of ``pid`` between steps, then start ``text`` in place of its task."""
        self.control.pause(pid)
        self.control.wait_stopped(pid, timeout_s=3600)
        opts.replace = True
        self._drive(pid, lambda: self.control.submit(pid, text, opts))

    @work(thread=True, group="engine", exit_on_error=False)
    def proceed_task(self, pid: str, budgets: dict[str, Any] | None = None) -> None:
        """Drive the task on; ``budgets`` (``max_cost_usd`` / ``max_tokens``) raise the task's own first."""
        opts = None
        if budgets and self.attached:  # the plane keeps the task's options; it is raised where the plane runs
            self.post_message(RunFinished(pid, error="the plane drives this task: raise its budget there with "
                                                     "loom proceed --max-cost USD / --max-tokens N"))
            return
        if budgets:
            try:
                opts = self.control.run_options(pid)
                for key, value in budgets.items():
                    setattr(opts, key, value)
                opts.validate()
            except LoomError as exc:
                self.post_message(RunFinished(pid, error=str(exc)))
                return
        self._drive(pid, lambda: self.control.proceed(pid, opts))

    @work(thread=True, group="engine", exit_on_error=False)
    def answer_gate(self, pid: str, decision: str, note: str | None = None, *, gate_event_id: str | None = None,
                    then_proceed: bool = True) -> None:
        """Answer the gate the dialog showed (``gate_event_id``), then drive on. A gate answered elsewhere
        meanwhile is not answered again: the user is told, nothing is sent."""
        try:
            self.control.answer(pid, decision, note, gate_event_id=gate_event_id)
        except GateAlreadyAnswered:
            self.call_from_thread(self.notify, ANSWERED_ELSEWHERE, severity="warning")
            self.post_message(RunFinished(pid))
            return
        except LoomError as exc:
            self.post_message(RunFinished(pid, error=str(exc)))
            return
        self.call_from_thread(self.notify, f"{decision}{' — ' + note if note else ''}", title="gate answer sent")
        if then_proceed:
            self._drive(pid, lambda: self.control.proceed(pid))

    @work(thread=True, group="engine", exit_on_error=False)
    def cancel_task(self, pid: str) -> None:
        """Stop this console's drive of ``pid`` and abandon the task (the facade does both, under the lock)."""
        try:
            self.control.cancel(pid)
            self.post_message(RunFinished(pid, error=None))
        except LoomError as exc:
            self.post_message(RunFinished(pid, error=str(exc)))

    def pause_task(self, pid: str) -> None:
        self.control.pause(pid)
        self.notify("pausing: the drive stops after the current step", title="task")

    def _drive(self, pid: str, fn) -> None:
        try:
            result = fn()
        except LoomError as exc:
            self.post_message(RunFinished(pid, error=str(exc)))
            return
        except Exception as exc:  # never let a worker take the console down
            self.post_message(RunFinished(pid, error=f"{type(exc).__name__}: {exc}"))
            return
        if result is None:  # attached: the plane drives it now; the fleet tells how it goes
            self.call_from_thread(self.notify, "sent to the plane; it drives the task", title="plane")
            self.post_message(RunFinished(pid))
            return
        self.post_message(RunFinished(pid, outcome=result.outcome))

    # ------------------------------------------------------------------ messages
    def _screens_with(self, attr: str):
        for screen in list(self.screen_stack):
            fn = getattr(screen, attr, None)
            if fn is not None:
                yield fn

    def on_fleet_rows(self, message: FleetRows) -> None:
        old, self.rows = self.rows, {r["id"]: r for r in message.rows}
        if self.attached:  # the plane drives: its "finished" is a status change in the fleet
            from loom_tui.attached import transitions

            for pid in transitions(self, old, message.rows):
                for fn in self._screens_with("run_finished"):
                    fn(pid, None, None)
        for fn in self._screens_with("apply_rows"):
            fn(message.rows)
        if not self._frozen:  # what start-up built lives as long as the console: keep it out of full collections
            import gc

            gc.freeze()  # (a full collection over it stalled a frame by ~100 ms every minute or so)
            self._gc_threshold = gc.get_threshold()  # given back on unmount
            gc.set_threshold(YOUNG_GC_EVERY, self._gc_threshold[1], FULL_GC_EVERY)  # (see FULL_GC_EVERY)
            self._frozen = True

    def on_engine_update(self, message: EngineUpdate) -> None:
        for fn in self._screens_with("engine_event"):
            fn(message.project_id, message.event)
        if message.event.kind in ("phase", "verdicts", "gate-opened", "gate-answered", "merge", "spawn-end"):
            self.refresh_rows()

    def on_log_lines(self, message: LogLines) -> None:
        for fn in self._screens_with("log_lines"):
            fn(message.project_id, message.lines)

    def on_run_finished(self, message: RunFinished) -> None:
        name = self.rows.get(message.project_id, {}).get("name", message.project_id)
        if message.error:
            self.notify(message.error, title=f"{name}: failed", severity="error", timeout=8)
        elif message.outcome is not None:
            o = message.outcome
            if o.kind == "complete":
                from loom_core.control.words import ended, summary

                rest = summary(o.summary)
                self.notify(f"{ended(None, o.verdict)}{': ' + rest[:120] if rest else ''}", title=name,
                            severity="information" if o.verdict == "accepted" else "warning")
            elif o.kind == "paused":
                from loom_tui.toasts import parked

                parked(self, message.project_id, name, o.gate)  # not over the project's own view or gate dialog
            else:
                self.notify(f"{o.code}: {o.message[:160]}", title=f"{name}: {o.kind}", severity="error", timeout=8)
        for fn in self._screens_with("run_finished"):
            fn(message.project_id, message.outcome, message.error)
        from loom_tui.shipping import ship_after_accept

        if not self.stopping:
            ship_after_accept(self, message.project_id, message.outcome)  # runs once per task
        self.refresh_rows()
        self._check_stopped()

    # ------------------------------------------------------------------ quitting
    def driving_names(self) -> list[str]:
        if self.attached:  # the plane drives: quitting leaves the work running
            return []
        return [p.name for p in self.control.projects() if self.control.is_driving(p.id)]

    async def action_quit(self) -> None:
        """Quit at once when nothing is being driven; otherwise ask (never blank the screen while agents work)."""
        from loom_tui.screens.choice import QuitDialog, StoppingScreen

        if self.stopping:
            self.notify("stopping: the console closes when the drives have stopped", severity="warning")
            return
        names = self.driving_names()
        if not names:
            self.exit()
            return
        if any(isinstance(s, QuitDialog) for s in self.screen_stack):
            return

        def answered(choice: str | None) -> None:
            if choice != "stop":
                return
            self.stopping = True
            for p in self.control.projects():
                self.control.pause(p.id)  # False (nothing to do) when this console does not drive it
            self.push_screen(StoppingScreen(self.driving_names()))
            self.set_interval(0.25, self._check_stopped)
            self._check_stopped()

        self.push_screen(QuitDialog(names), answered)

    def _check_stopped(self) -> None:
        if not self.stopping:
            return
        names = self.driving_names()
        if not names:
            self.exit()
            return
        from loom_tui.screens.choice import StoppingScreen

        for screen in self.screen_stack:
            if isinstance(screen, StoppingScreen):
                screen.still_running(names)

    # ------------------------------------------------------------------ navigation (screens never import screens)
    def open_project(self, pid: str, task_id: str | None = None) -> None:
        """The project view: the live task, or an archived one (``task_id`` a task id or history ref) read-only."""
        from loom_tui.screens.project import ProjectScreen

        self.push_screen(ProjectScreen(pid, task_id))
        if self.attached and task_id is None:
            self.follow_log(pid)

    def open_history(self, pid: str) -> None:
        from loom_tui.screens.history import HistoryScreen

        self.push_screen(HistoryScreen(pid))

    def open_replay(self, pid: str, task_id: str, title: str | None = None) -> None:
        from loom_tui.screens.replay import ReplayScreen

        self.push_screen(ReplayScreen(pid, task_id, title=title))

    def open_run(self, pid: str, task_id: str | None, runs: list[dict[str, Any]], index: int,
                 *, archived: bool = False) -> None:
        """The run inspector over ``runs`` (the chain's rows), at ``index``."""
        from loom_tui.screens.inspector import RunInspector

        self.push_screen(RunInspector(pid, task_id, runs, index, archived=archived))

    def open_gate(self, pid: str) -> None:
        from loom_tui.screens.gate import open_gate

        open_gate(self, pid)

    def open_submit(self, pid: str) -> None:
        from loom_tui.screens.submit import SubmitScreen

        self.push_screen(SubmitScreen(pid))

    def open_add_project(self, then=None) -> None:
        """The folder picker; ``then(project id | None)`` once it closes."""
        from loom_tui.screens.wizard import AddProjectScreen

        self.push_screen(AddProjectScreen(), then)

    def confirm(self, title: str, body: str, yes: str, then) -> None:
        """Ask ``title`` (a yes/no dialog); ``then(True | False | None)`` with the answer."""
        from loom_tui.screens.confirm import ConfirmDialog

        self.push_screen(ConfirmDialog(title, body, yes=yes), then)

    def action_settings(self) -> None:
        from loom_tui.screens.settings import SettingsScreen

        if not isinstance(self.screen, SettingsScreen):
            self.push_screen(SettingsScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"
        self.keep_setting("ui.theme")

    def action_help(self) -> None:
        from loom_tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
        else:
            self.push_screen(HelpScreen(self.screen))

    # ------------------------------------------------------------------ keys and kept choices
    def apply_keymap(self, keymap: dict[str, str]) -> None:
        """Apply the ``[keymap]`` entries; an unknown binding id or a clash is a warning and that entry is left out."""
        from loom_tui.keys import check

        good, warnings = check(keymap)
        self.keymap_entries = good
        self.set_keymap(good)
        for warning in warnings:
            self.notify(warning, title="keymap", severity="warning", timeout=10)

    def settings_verbs(self) -> Any:
        """The config verbs of the user's own settings file (this machine's, also when attached to a plane)."""
        if not self.attached:
            return self.control
        from loom_core.control.config import ConfigVerbs

        return ConfigVerbs()

    @work(thread=True, group="prefs", exit_on_error=False)
    def keep_setting(self, key: str) -> None:
        """Write a console choice (``ui.theme``, ``ui.sort``) to the settings file, its value as it is when
        written (the last write wins with the latest choice). A failure is a warning, never fatal."""
        with self._prefs_lock:
            value = {"ui.theme": "light" if self.theme == "textual-light" else "dark",
                     "ui.sort": self.fleet_sort}[key]
            try:
                self.settings_verbs().config_set(key, value)
            except (LoomError, OSError) as exc:
                self.call_from_thread(self.notify, f"not kept: {exc}", title=key, severity="warning")


def _steady(row: dict[str, Any]) -> dict[str, Any]:
    """A fleet row less what only the clock moves."""
    out = {k: v for k, v in row.items() if k != "elapsed_s"}
    if row.get("pending"):
        out["pending"] = [{k: v for k, v in p.items() if k != "age_s"} for p in row["pending"]]
    return out


def make_app(catalog: Catalog | None = None, **kw: Any) -> LoomApp:
    """One factory for the CLI, the tests and the screenshots."""
    return LoomApp(LocalControl(catalog, demo_delay_s=kw.pop("demo_delay_s", 0.0)), **kw)


def run_console(server: str | None = None, token: str | None = None) -> None:
    """The console: in-process, or attached to the plane at ``server`` (it drives; quitting leaves it running)."""
    from loom_core.config.runtime import allow_deep_trees

    allow_deep_trees()
    if server:
        from loom_core.control.http import HttpControl

        LoomApp(HttpControl(server, token)).run()
        return
    make_app().run()


def run_demo_console(project: Path, opts: RunOptions) -> None:
    """`loom demo` without --plain: the console on the demo project with the task running."""
    from loom_core.config.runtime import allow_deep_trees
    from loom_core.control import demo_task

    allow_deep_trees()
    control = LocalControl(demo_delay_s=0.4)
    proj = control.add_project(project)
    LoomApp(control, open_project=proj.id, start=(proj.id, demo_task(), opts)).run()
