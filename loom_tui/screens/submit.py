"""Submit a task to a project: text, policy, complexity, backend, and what to do on an accepted finish."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Label, Select, Static, TextArea

from loom_core.control import RunOptions, policy_names
from loom_core.errors import LoomError
from loom_tui.keys import help_key


def docker_line(status: dict[str, Any] | None) -> str:
    """What the Docker checkbox says under it: what will run, or why containers cannot."""
    if status is None:
        return "Docker: cannot tell (the check failed)"
    if status.get("available"):
        return f"Docker {status.get('engine') or '?'}: {status.get('reason')}"
    return f"containers unavailable: {status.get('reason')}"


def policy_options() -> list[tuple[str, str | None]]:
    """The policy select: the bundle's own defaults, then the kernel's policies and presets."""
    return [("bundle default", None)] + [(name, name) for name in policy_names()]


def complexity_options(names: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """The complexity select: auto (the classifier decides), then the bundle's complexities."""
    words = {"trivial": "trivial (fast)", "question": "question (answer, no edits)"}
    return [("auto", None)] + [(words.get(name, name), name) for name in names]


def backend_options(rows: list[dict]) -> list[tuple[str, str]]:
    """The backend select from the facade's rows; one that cannot run here says why (auto and demo always can)."""
    return [(r["label"] if r["name"] in ("auto", "demo") or r["usable"] in (True, None) else f"{r['label']} — {r['why']}",
             r["name"]) for r in rows]


def validate(text: str, fast: bool, complexity: str | None) -> str | None:
    """The reason the form cannot be submitted, or None."""
    if not text.strip():
        return "the task text is empty — say what the agents should do"
    if fast and complexity not in (None, "trivial"):
        return f"fast means complexity trivial; it cannot be combined with '{complexity}' (untick fast or pick " \
               f"trivial / auto)"
    return None


class SubmitScreen(ModalScreen[bool]):
    CSS_PATH = "../styles/submit.tcss"
    BINDINGS = [
        Binding("ctrl+s", "submit", "Submit", id="submit.send", tooltip="Start the task with these options",
                priority=True),
        Binding("escape", "cancel", "Cancel", id="submit.cancel", tooltip="Close without submitting"),
        help_key("submit"),
    ]

    def __init__(self, pid: str, text: str = "") -> None:
        super().__init__()
        self.pid = pid
        drafts = getattr(self.app, "drafts", {})
        self._text = text or drafts.pop(pid, "")  # text the user kept when they chose not to replace a task
        control = self.app.control
        try:
            self.project = control.project(pid)
        except LoomError:
            self.project = None
        self.in_place = None
        self.docker_available = False  # until probe() has asked
        if self.project is not None:
            try:  # every new task in a directory that is not a git repository needs the consent
                self.in_place = control.in_place_question(pid, any_task=True)
            except Exception:  # noqa: BLE001 - an unreadable project: the run itself will say why
                self.in_place = None
        try:
            self.complexities = control.complexities((self.project.bundle if self.project else None) or "code")
        except LoomError:
            self.complexities = ()
        self.backends = backend_options(control.backends(check=False))  # the table now; checked in probe()

    def compose(self) -> ComposeResult:
        name = self.project.name if self.project else self.pid
        with Vertical(id="submit-box") as box:
            box.border_title = f"New task · {name}"
            box.border_subtitle = "ctrl+s submit · esc cancel"
            yield TextArea(self._text, id="submit-text", placeholder="What should the agents do? (the task text)",
                           compact=True, tab_behavior="focus")
            with Horizontal(classes="submit-row"):
                yield Label("policy", classes="submit-label")
                yield Select(policy_options(), value=None, allow_blank=False, id="submit-policy", compact=True,
                             tooltip="Who decides at the gates (bundle default: the project's own rules)")
                yield Label("complexity", classes="submit-label")
                yield Select(complexity_options(self.complexities), value=None, allow_blank=False, id="submit-complexity", compact=True,
                             tooltip="Pin the task's size, or let the classifier decide (auto)")
            with Horizontal(classes="submit-row"):
                yield Label("backend", classes="submit-label")
                yield Select(self.backends, value="auto", allow_blank=False, id="submit-backend", compact=True,
                             tooltip="Which models run the agents (demo: offline and scripted)")
                yield Checkbox("fast (trivial, fewest agents)", id="submit-fast", compact=True)
            yield Checkbox("run in Docker", id="submit-docker", disabled=True, compact=True,
                           tooltip="Agents run in containers (ticked) or in a sandbox copy (unticked)")
            yield Static(Text("checking Docker…", style="dim"), id="submit-docker-reason")
            with Horizontal(classes="submit-row"):
                yield Checkbox("push on accept", id="submit-push", compact=True)
                yield Checkbox("squash-merge on accept", id="submit-squash", compact=True)
            if self.in_place:
                yield Static(Text(f"⚠ {self.in_place}", style="bold yellow"), id="submit-inplace-warning")
                yield Checkbox("run in place anyway", id="submit-inplace", compact=True)
            yield Static("", id="submit-error")
            with Horizontal(id="submit-buttons"):
                yield Button("Submit", id="submit-go", variant="primary", compact=True)
                yield Button("Cancel", id="submit-no", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#submit-error").display = False
        self.query_one("#submit-text", TextArea).focus()
        self.probe()

    @work(thread=True, exclusive=True, group="submit-probe", exit_on_error=False)
    def probe(self) -> None:
        """Read the project's last run options and ask whether containers can run (both blocking)."""
        control = self.app.control
        backend, docker = None, None
        if self.project is not None:
            try:
                backend = control.run_options(self.pid).backend
            except Exception:  # noqa: BLE001
                backend = None
        try:
            docker = control.docker_status()
        except Exception:  # noqa: BLE001 - the check failing leaves the box off; the run decides
            docker = None
        options = list(self.backends)
        try:  # say which backends cannot run here, and why (a key missing, the CLI not installed)
            options = backend_options(control.backends())
        except Exception:  # noqa: BLE001 - a broken config must not break the form
            pass
        self.app.call_from_thread(self._probed, backend, docker, options)

    def _probed(self, backend: str | None, docker: dict[str, Any] | None, options: list | None = None) -> None:
        line = docker_line(docker)
        self.docker_available = bool(docker and docker.get("available"))
        self.query_one("#submit-docker-reason", Static).update(Text(line, style="dim"))
        box = self.query_one("#submit-docker", Checkbox)
        box.tooltip = line
        box.disabled = not self.docker_available
        box.value = self.docker_available  # what auto would do; untick for a sandbox copy
        select = self.query_one("#submit-backend", Select)
        if options:
            current = select.value
            select.set_options(options)
            select.value = current
        if backend in {v for _, v in self.backends} and select.value == "auto":  # untouched: last run's backend
            select.value = backend

    # ------------------------------------------------------------------ submit
    def values(self) -> dict[str, Any]:
        def sel(id_: str):
            v = self.query_one(id_, Select).value
            return None if v is Select.NULL else v

        return {
            "text": self.query_one("#submit-text", TextArea).text,
            "policy": sel("#submit-policy"),
            "complexity": sel("#submit-complexity"),
            "backend": sel("#submit-backend") or "auto",
            "fast": self.query_one("#submit-fast", Checkbox).value,
            "push": self.query_one("#submit-push", Checkbox).value,
            "squash": self.query_one("#submit-squash", Checkbox).value,
            # ticked = containers, unticked = a sandbox copy; not offered (unavailable) = auto, which says why
            "docker": self.query_one("#submit-docker", Checkbox).value if self.docker_available else None,
        }

    def refuse(self, reason: str) -> None:
        err = self.query_one("#submit-error", Static)
        err.update(Text(f"✗ {reason}", style="bold red"))
        err.display = True
        self.app.bell()

    def action_submit(self) -> None:
        v = self.values()
        reason = validate(v["text"], v["fast"], v["complexity"])
        if reason is None and self.project is None:
            reason = f"project {self.pid} is not in the catalog"
        driven_here = self.app.control.is_driving(self.pid)
        row = (getattr(self.app, "rows", None) or {}).get(self.pid) or {}
        if reason is None and not driven_here and row.get("status") == "running":
            reason = "another loom process is driving this project's task: wait for it, or stop it first"
        confirmed = bool(self.in_place) and self.query_one("#submit-inplace", Checkbox).value
        if reason is None and self.in_place and not confirmed:
            reason = "not a git repository: tick 'run in place anyway' to let agents edit it directly, or make " \
                     "it a repository first (git init, then commit)"
        opts = RunOptions(bundle=(self.project.bundle if self.project else None) or "code", backend=v["backend"],
                          policy=v["policy"], complexity=v["complexity"], fast=v["fast"], in_place=confirmed,
                          push=v["push"], squash_merge=v["squash"],  # kept in task-exec.json: a supervisor ships too
                          docker=v["docker"])
        if reason is None:
            try:
                opts.validate()
            except LoomError as exc:
                reason = str(exc)
        if reason is not None:
            self.refuse(reason)
            return
        ship = getattr(self.app, "ship_on_accept", None)
        if ship is None:
            ship = self.app.ship_on_accept = {}
        if v["push"] or v["squash"]:
            ship[self.pid] = {"push": v["push"], "squash": v["squash"]}
        else:
            ship.pop(self.pid, None)
        text = v["text"].strip()
        if driven_here or row.get("state") == "in_progress":
            self._resume_or_replace(text, opts, row, driven_here)
            return
        self._send(text, opts)

    def _send(self, text: str, opts: RunOptions, *, stop_first: bool = False) -> None:
        if stop_first:
            self.app.replace_task(self.pid, text, opts)
        else:
            self.app.submit_task(self.pid, text, opts)
        self.dismiss(True)
        self.app.notify(f"submitted — {text.splitlines()[0][:60]}", title=self.project.name if self.project else self.pid)

    def _resume_or_replace(self, text: str, opts: RunOptions, row: dict[str, Any], driven_here: bool) -> None:
        """The project already has a task in progress: never drop the text silently — resume that task
        (the text is kept as a draft for the next New task), replace it, or go back to the form."""
        from loom_tui.screens.choice import ChoiceDialog

        name = self.project.name if self.project else self.pid
        task = (row.get("task_short") or row.get("task") or "a task").splitlines()[0][:80]
        if driven_here:
            where = "being driven here right now"
            choices = [("p", "Replace it (its drive stops after the current step)", "replace")]
        elif row.get("status") == "parked":
            where = f"parked at gate '{row.get('gate')}'"
            choices = [("r", "Answer its gate", "gate"), ("p", "Replace it", "replace")]
        else:
            where = f"{row.get('status') or 'in progress'}, not driven"
            choices = [("r", "Resume it", "resume"), ("p", "Replace it", "replace")]

        def chosen(choice: str | None) -> None:
            if choice == "replace":
                opts.replace = True
                self._send(text, opts, stop_first=driven_here)
            elif choice in ("resume", "gate"):
                self.app.drafts[self.pid] = text
                self.dismiss(False)
                if choice == "gate":
                    from loom_tui.screens.gate import open_gate

                    open_gate(self.app, self.pid)
                else:
                    self.app.proceed_task(self.pid)
                self.app.notify("your text is kept: press n again to find it in the form", title=name)

        self.app.push_screen(ChoiceDialog(
            f"{name} already has a task in progress",
            f"'{task}' is {where}. Replacing it archives that task as discarded (its sandbox work is not "
            "merged) and starts yours; resuming keeps your text for later.", choices, back="Back to the form"),
            chosen)

    def action_cancel(self) -> None:
        self.dismiss(False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "submit-go":
            self.action_submit()
        else:
            self.action_cancel()

    def palette_entries(self):
        return [
            ("submit: send", "Start the task with these options", self.action_submit),
            ("submit: cancel", "Close without submitting", self.action_cancel),
        ]
