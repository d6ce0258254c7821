"""First run: choose a backend (or the offline demo), then add a first project.

The backends offered are the registry's (through the facade); the choice and an API key are written
through the facade's settings and secrets verbs in thread workers.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from loom_core.errors import LoomError

FIRST = "demo"  # offered first: it works anywhere, with no account


def backend_choices(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(name, "name — what it is")`` for every backend row of the facade, the offline demo first."""
    rows = sorted(rows, key=lambda r: r["name"] != FIRST)  # stable: the registry's order otherwise
    return [(r["name"], f"{r['name']} — {r['about']}") for r in rows]


class WizardScreen(Screen):
    """Shown by the app when the catalog is empty."""

    CSS_PATH = "../../styles/wizard.tcss"
    BINDINGS = [
        Binding("a", "add_project", "Add project", id="wizard.add", tooltip="Pick or create a project folder"),
        Binding("escape", "skip", "Skip", id="wizard.skip", tooltip="Close the first-run guide"),
    ]

    class BackendSaved(Message):
        def __init__(self, backend: str, error: str | None = None) -> None:
            super().__init__()
            self.backend = backend
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.step = 1
        self.backend: str | None = None
        self.needs_key: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="wizard-body"):
            yield Static(Text("Welcome to loom", style="bold"), id="wizard-title")
            with Vertical(id="wizard-step1"):
                yield Static("1 · Choose how agents run (enter to choose; change it later in Settings)",
                             classes="wizard-step-title")
                rows = self.app.control.backends(check=False)  # the table only: nothing is probed here
                self.needs_key = {r["name"] for r in rows if r["needs_key"]}
                yield OptionList(*(Option(label, id=key) for key, label in backend_choices(rows)),
                                 id="wizard-backends")
                with Horizontal(id="wizard-key-row"):
                    yield Label("API key", classes="add-label")
                    yield Input(password=True, id="wizard-key", compact=True,
                                placeholder="stored as a secret; enter to store, empty to skip")
            with Vertical(id="wizard-step2"):
                yield Static("2 · Add a first project", classes="wizard-step-title")
                yield Static("", id="wizard-chosen", markup=False)
                yield Static(Text.assemble("Press ", ("a", "bold"), " to pick a folder, type a new one, or create "
                                           "the demo project there (^n in the picker). ",
                                           ("escape", "bold"), " skips."))
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "first run"
        self.query_one("#wizard-step2").display = False
        self.query_one("#wizard-key-row").display = False
        self.query_one(OptionList).focus()

    # ------------------------------------------------------------------ step 1
    @on(OptionList.OptionSelected, "#wizard-backends")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.backend = event.option.id
        self.save_backend(self.backend)

    @work(thread=True, exclusive=True, group="wizard", exit_on_error=False)
    def save_backend(self, backend: str) -> None:
        try:
            self.app.control.config_set("backend", backend)
        except Exception as exc:
            self.post_message(self.BackendSaved(backend, str(exc)))
            return
        self.post_message(self.BackendSaved(backend))

    def on_wizard_screen_backend_saved(self, message: BackendSaved) -> None:
        if message.error:
            self.notify(message.error, title="settings not saved", severity="error", timeout=8)
            return
        self.notify(f"backend: {message.backend}", title="settings")
        if message.backend in self.needs_key:
            self.query_one("#wizard-key-row").display = True
            self.query_one("#wizard-key", Input).focus()
            return
        self.to_step2()

    @on(Input.Submitted, "#wizard-key")
    def _key_submitted(self, event: Input.Submitted) -> None:
        value = event.value
        event.input.value = ""
        if value and self.backend:
            self.store_key(self.backend, value)
        else:
            self.to_step2()

    @work(thread=True, exclusive=True, group="wizard-key", exit_on_error=False)
    def store_key(self, name: str, value: str) -> None:
        try:
            self.app.control.set_secret(name, value)
        except LoomError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self._key_stored, name)

    def _key_stored(self, name: str) -> None:
        self.notify(f"stored as secret:{name}", title="secrets")
        self.to_step2()

    # ------------------------------------------------------------------ step 2
    def to_step2(self) -> None:
        self.step = 2
        self.query_one("#wizard-step1").display = False
        self.query_one("#wizard-step2").display = True
        self.query_one("#wizard-chosen", Static).update(f"backend: {self.backend}")
        self.refresh_bindings()
        self.action_add_project()

    def action_add_project(self) -> None:
        self.app.open_add_project(self._added)

    def _added(self, pid: Any) -> None:
        if pid:
            self.call_after_refresh(self.dismiss_wizard)

    def dismiss_wizard(self) -> None:
        if self.app.screen is self:
            self.app.pop_screen()
        elif self in self.app.screen_stack:  # something opened on top: close the guide once it is back
            self.call_after_refresh(self.dismiss_wizard)

    def action_skip(self) -> None:
        self.dismiss_wizard()

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "add_project" and self.step < 2:
            return None
        return True

    def palette_entries(self):
        return [
            ("wizard: add project", "Pick or create a project folder", self.action_add_project),
            ("wizard: skip", "Close the first-run guide", self.action_skip),
        ]
