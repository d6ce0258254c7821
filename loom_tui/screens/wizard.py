"""First run: choose a backend (or the offline demo), then add a first project.

``AddProjectScreen`` is the folder picker the fleet's ``a`` key opens too: a directory tree
bounded to a root (``$LOOM_FS_ROOT`` or home), a path input that also accepts a new folder
(created after confirmation), and "create the demo project here".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DirectoryTree, Footer, Header, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from loom_core.errors import LoomError

BACKEND_CHOICES = (
    ("demo", "demo — offline, scripted agents on a demo project; no account needed"),
    ("auto", "auto — use the first backend that works on this machine"),
    ("claude-code", "claude-code — the Claude Code CLI (signs in via the CLI)"),
    ("anthropic", "anthropic — Anthropic API (needs an API key)"),
    ("openrouter", "openrouter — OpenRouter API (needs an API key)"),
    ("ollama", "ollama — a local Ollama server"),
)
NEEDS_KEY = ("anthropic", "openrouter")


def fs_root() -> Path:
    raw = os.environ.get("LOOM_FS_ROOT", "").strip()
    return (Path(raw).expanduser() if raw else Path.home()).resolve()


def resolve_in_root(raw: str, root: Path) -> Path:
    """A typed path (absolute, ~, or relative to the root) that must stay inside the root."""
    p = Path(raw.strip()).expanduser()
    p = (p if p.is_absolute() else root / p).resolve()
    if p != root and root not in p.parents:
        raise LoomError(f"{p} is outside {root} (set LOOM_FS_ROOT to browse elsewhere)", code="USAGE")
    return p


class FolderTree(DirectoryTree):
    """Directories only, hidden ones left out."""

    BINDINGS = [Binding("j", "cursor_down", show=False), Binding("k", "cursor_up", show=False)]

    def filter_paths(self, paths):
        out = []
        for p in paths:
            try:
                if p.is_dir() and not p.name.startswith("."):
                    out.append(p)
            except OSError:
                continue
        return out


class AddProjectScreen(ModalScreen[str | None]):
    """Dismisses with the added project's id, or None."""

    CSS_PATH = "../styles/wizard.tcss"
    BINDINGS = [
        Binding("ctrl+s", "add", "Add", id="add.add", tooltip="Add the folder in the path field to the catalog"),
        Binding("ctrl+n", "demo", "Demo here", id="add.demo",
                tooltip="Create the demo project in the folder of the path field and add it"),
        Binding("escape", "cancel", "Cancel", id="add.cancel", tooltip="Close without adding"),
    ]

    class Added(Message):
        def __init__(self, pid: str | None, error: str | None = None) -> None:
            super().__init__()
            self.pid = pid
            self.error = error

    def __init__(self, root: Path | None = None) -> None:
        super().__init__()
        self.root = Path(root).resolve() if root else fs_root()
        self._name_edited = False
        self._auto_name = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="add-box"):
            yield Static(Text.assemble(("Add a project", "bold"), ("  folders under ", "dim"), str(self.root)),
                         id="add-title")
            yield FolderTree(self.root, id="add-tree")
            with Horizontal(classes="add-row"):
                yield Label("path", classes="add-label")
                yield Input(placeholder="a folder; a new one is created after you confirm", id="add-path",
                            compact=True, select_on_focus=False)
            with Horizontal(classes="add-row"):
                yield Label("name", classes="add-label")
                yield Input(placeholder="defaults to the folder's name", id="add-name", compact=True)
            yield Static("", id="add-status", markup=False)
            with Horizontal(id="add-buttons"):
                yield Button("Add (^s)", id="add-add", variant="primary", compact=True)
                yield Button("Demo project here (^n)", id="add-demo", compact=True)
                yield Button("Cancel (esc)", id="add-cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self._set_path(self.root)
        path_in = self.query_one("#add-path", Input)
        path_in.focus()
        path_in.action_end()

    # ------------------------------------------------------------------ fields
    def _set_path(self, path: Path) -> None:
        """A folder with a trailing separator, so typing a name goes below it."""
        text = str(path)
        path_in = self.query_one("#add-path", Input)
        path_in.value = text if text.endswith(os.sep) else text + os.sep
        path_in.cursor_position = len(path_in.value)

    @on(DirectoryTree.NodeHighlighted, "#add-tree")
    def _highlighted(self, event: DirectoryTree.NodeHighlighted) -> None:
        data = event.node.data
        if data is not None and self.query_one(FolderTree).has_focus:  # never overwrite what is being typed
            self._set_path(Path(data.path))

    @on(Input.Changed, "#add-path")
    def _path_changed(self, event: Input.Changed) -> None:
        """The name follows the folder's basename until it is edited."""
        if not self._name_edited:
            raw = event.value.strip()
            self._auto_name = Path(raw).name if raw and not raw.endswith(os.sep) else ""
            self.query_one("#add-name", Input).value = self._auto_name
        self.query_one("#add-status", Static).update("")

    @on(Input.Changed, "#add-name")
    def _name_changed(self, event: Input.Changed) -> None:
        self._name_edited = event.value.strip() not in ("", self._auto_name)

    @on(Input.Submitted, "#add-path")
    @on(Input.Submitted, "#add-name")
    @on(Button.Pressed, "#add-add")
    def _submit(self) -> None:
        self.action_add()

    @on(Button.Pressed, "#add-demo")
    def _demo_pressed(self) -> None:
        self.action_demo()

    @on(Button.Pressed, "#add-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def _error(self, text: str) -> None:
        self.query_one("#add-status", Static).update(Text(text, style="bold red"))

    def _target(self) -> Path | None:
        raw = self.query_one("#add-path", Input).value
        if not raw.strip():
            self._error("type a path or pick a folder above")
            return None
        try:
            return resolve_in_root(raw, self.root)
        except LoomError as exc:
            self._error(str(exc))
            return None

    def _label(self, path: Path) -> str | None:
        name = self.query_one("#add-name", Input).value.strip()
        return name if name and name != path.name else None

    # ------------------------------------------------------------------ actions
    def action_add(self) -> None:
        from loom_tui.screens.confirm import ConfirmDialog

        path = self._target()
        if path is None:
            return
        if path.exists() and not path.is_dir():
            self._error(f"{path} is a file, not a folder")
            return
        label = self._label(path)
        if not path.exists():
            def done(yes: bool | None) -> None:
                if yes:
                    self.add(path, label, create=True)

            self.app.push_screen(ConfirmDialog("Create folder", f"{path} does not exist. Create it as a new, "
                                               "empty project folder?", "Create"), done)
            return
        self.add(path, label)

    def action_demo(self) -> None:
        from loom_tui.screens.confirm import ConfirmDialog

        path = self._target()
        if path is None:
            return
        if path.exists() and not path.is_dir():
            self._error(f"{path} is a file, not a folder")
            return
        label = self._label(path)

        def done(yes: bool | None) -> None:
            if yes:
                self.add(path, label, demo=True)

        self.app.push_screen(ConfirmDialog("Create the demo project", f"Write loom's demo project (a small git "
                                           f"repository with tests) into {path}?", "Create"), done)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(thread=True, exclusive=True, group="add-project", exit_on_error=False)
    def add(self, path: Path, label: str | None, create: bool = False, demo: bool = False) -> None:
        service = self.app.service
        try:
            if demo:
                from loom_core.workspace.demo_project import create_demo_project

                create_demo_project(path)
            proj = service.catalog.add(path, label=label, now=service.clock.now(), create=create)
        except (LoomError, OSError) as exc:
            self.post_message(self.Added(None, str(exc) if isinstance(exc, LoomError) else
                                         f"{path}: {exc.strerror or exc}"))
            return
        except Exception as exc:  # pygit2 and friends: report, never crash the console
            self.post_message(self.Added(None, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.Added(proj.id))

    def on_add_project_screen_added(self, message: Added) -> None:
        if message.error:
            self._error(message.error)
            return
        self.app.refresh_rows()
        proj = self.app.service.catalog.get(message.pid)
        self.app.notify(f"added {proj.name if proj else message.pid}", title="catalog")
        self.dismiss(message.pid)

    def palette_entries(self):
        return [
            ("add project: add", "Add the folder in the path field", self.action_add),
            ("add project: demo here", "Create the demo project in that folder and add it", self.action_demo),
            ("add project: cancel", "Close without adding", self.action_cancel),
        ]


class WizardScreen(Screen):
    """Shown by the app when the catalog is empty."""

    CSS_PATH = "../styles/wizard.tcss"
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

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="wizard-body"):
            yield Static(Text("Welcome to loom", style="bold"), id="wizard-title")
            with Vertical(id="wizard-step1"):
                yield Static("1 · Choose how agents run (enter to choose; change it later in Settings)",
                             classes="wizard-step-title")
                yield OptionList(*(Option(label, id=key) for key, label in BACKEND_CHOICES), id="wizard-backends")
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
        from loom_core.config.settings import load_file_settings, save_settings

        try:
            s = load_file_settings()
            s.backend = backend  # type: ignore[assignment]
            save_settings(s)
        except Exception as exc:
            self.post_message(self.BackendSaved(backend, str(exc)))
            return
        self.post_message(self.BackendSaved(backend))

    def on_wizard_screen_backend_saved(self, message: BackendSaved) -> None:
        if message.error:
            self.notify(message.error, title="settings not saved", severity="error", timeout=8)
            return
        self.notify(f"backend: {message.backend}", title="settings")
        if message.backend in NEEDS_KEY:
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
        from loom_core.config.secrets import SecretStore

        try:
            SecretStore().set(name, value)
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
        self.app.push_screen(AddProjectScreen(), self._added)

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
