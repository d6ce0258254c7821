"""Settings: Config (a form generated from the settings schema), Secrets (names and masks only),
Models (per-agent model map) and Projects (the catalog).

File, keyring and catalog writes run in thread workers that post messages back.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static, TabbedContent, TabPane

from loom_core.config.settings import (
    LoomSettings,
    check_model_ref,
    error_map,
    load_file_settings,
    save_settings,
    set_key,
    validate_document,
)
from loom_core.errors import LoomError
from loom_tui.widgets.schema_form import SchemaForm

TABS = ("config", "secrets", "models", "projects")


class _Table(DataTable):
    BINDINGS = [Binding("j", "cursor_down", show=False), Binding("k", "cursor_up", show=False)]

    def key(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            return self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
        except Exception:
            return None


class SecretsTable(_Table):
    BINDINGS = _Table.BINDINGS + [
        Binding("enter", "screen.replace_secret", "Replace", id="secrets.replace", tooltip="Store a new value"),
        Binding("x", "screen.remove_secret", "Remove", id="secrets.remove", tooltip="Delete the stored secret"),
    ]


class ModelsTable(_Table):
    BINDINGS = _Table.BINDINGS + [
        Binding("enter", "screen.edit_model", "Edit", id="models.edit",
                tooltip="Set this agent's model (provider:model or a tier)"),
        Binding("x", "screen.clear_model", "Clear", id="models.clear", tooltip="Back to the bundle default"),
    ]


class ProjectsTable(_Table):
    BINDINGS = _Table.BINDINGS + [
        Binding("x", "screen.remove_project", "Remove", id="projects.remove",
                tooltip="Remove from the catalog (nothing on disk changes)"),
        Binding("a", "screen.add_project", "Add", id="projects.add", tooltip="Add a project to the catalog"),
    ]


class SettingsScreen(Screen):
    CSS_PATH = "../styles/settings.tcss"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="settings.save", tooltip="Validate the config form and write it"),
        Binding("ctrl+r", "revert", "Revert", id="settings.revert", tooltip="Discard edits; reload from the file"),
        Binding("ctrl+n", "next_tab", "Next tab", id="settings.next_tab",
                tooltip="Config → Secrets → Models → Projects"),
        Binding("escape", "back", "Back", id="settings.back", tooltip="Leave the settings"),
    ]

    class Loaded(Message):
        def __init__(self, doc: dict[str, Any] | None, error: str | None = None) -> None:
            super().__init__()
            self.doc = doc
            self.error = error

    class Saved(Message):
        def __init__(self, what: str, error: str | None = None, doc: dict[str, Any] | None = None) -> None:
            super().__init__()
            self.what = what
            self.error = error
            self.doc = doc

    class Secrets(Message):
        def __init__(self, rows: list[tuple[str, str]] | None, where: str = "", note: str | None = None,
                     error: str | None = None) -> None:
            super().__init__()
            self.rows = rows
            self.where = where
            self.note = note
            self.error = error

    def __init__(self, tab: str = "config") -> None:
        super().__init__()
        self.initial_tab = tab if tab in TABS else "config"
        self.doc: dict[str, Any] = {}
        self.agents: dict[str, str] = {}
        self.tiers: dict[str, str] = {}
        self._editing: str | None = None

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial=f"tab-{self.initial_tab}", id="settings-tabs"):
            with TabPane("Config", id="tab-config"):
                yield SchemaForm(LoomSettings.model_json_schema(), id="config-form",
                                 notes={"models": "per agent — edit in the Models tab"})
                with Horizontal(id="config-buttons"):
                    yield Button("Save (^s)", id="config-save", variant="primary", compact=True)
                    yield Button("Revert (^r)", id="config-revert", compact=True)
                    yield Static("", id="config-status", markup=False)
            with TabPane("Secrets", id="tab-secrets"):
                yield Static("", id="secrets-where", markup=False)
                table = SecretsTable(id="secrets-table", cursor_type="row")
                table.add_column("name", key="name")
                table.add_column("value (masked)", key="mask")
                yield table
                with Vertical(id="secrets-editor"):
                    with Horizontal(classes="editor-row"):
                        yield Label("name", classes="editor-label")
                        yield Input(placeholder="e.g. anthropic", id="secret-name", compact=True,
                                    restrict=r"[A-Za-z0-9_.\-]*", max_length=64)
                    with Horizontal(classes="editor-row"):
                        yield Label("value", classes="editor-label")
                        yield Input(placeholder="pasted value is never shown", password=True, id="secret-value",
                                    compact=True)
                        yield Button("Store", id="secret-store", compact=True)
                    yield Static("Refer to a secret in the config as secret:<name>. Values are write-only.",
                                 classes="hint", markup=False)
            with TabPane("Models", id="tab-models"):
                table = ModelsTable(id="models-table", cursor_type="row", zebra_stripes=True)
                for key, label in (("agent", "agent"), ("tier", "default"), ("override", "override"),
                                   ("effective", "effective")):
                    table.add_column(label, key=key)
                yield table
                with Horizontal(id="model-editor", classes="editor-row"):
                    yield Label("model", id="model-label", classes="editor-label")
                    yield Input(placeholder="provider:model, or fast / balanced / premium; empty clears",
                                id="model-ref", compact=True)
                yield Static("", id="model-error", markup=False)
            with TabPane("Projects", id="tab-projects"):
                table = ProjectsTable(id="projects-table", cursor_type="row", zebra_stripes=True)
                for key in ("id", "name", "dir"):
                    table.add_column(key, key=key)
                yield table
                yield Static("x removes the selected project from the catalog (files stay); a adds one.",
                             classes="hint", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "settings"
        self.query_one("#model-editor").display = False
        self.load()
        self.load_secrets()
        self.fill_projects()

    # ------------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="settings-load", exit_on_error=False)
    def load(self) -> None:
        try:
            doc = load_file_settings().model_dump(mode="json")
            from loom_core.bundles.code import AGENTS, BUNDLE

            self.agents = {n: a.default_model for n, a in AGENTS.items()}
            self.tiers = dict(BUNDLE.default_model_tiers)
        except LoomError as exc:
            self.post_message(self.Loaded(None, str(exc)))
            return
        self.post_message(self.Loaded(doc))

    @work(thread=True, exclusive=True, group="settings-save", exit_on_error=False)
    def write(self, settings: LoomSettings, maps: list[str]) -> None:
        try:
            current = load_file_settings()  # maps as they are on disk now (a Models-tab edit may be newer)
            settings = settings.model_copy(update={k: getattr(current, k) for k in maps})
            save_settings(settings)
        except (LoomError, OSError) as exc:
            self.post_message(self.Saved("config", str(exc)))
            return
        self.post_message(self.Saved("config", doc=settings.model_dump(mode="json")))

    @work(thread=True, exclusive=True, group="settings-model", exit_on_error=False)
    def write_model(self, agent: str, ref: str) -> None:
        try:
            s = set_key(f"models.{agent}", ref)
        except (LoomError, OSError) as exc:
            self.post_message(self.Saved("model", str(exc)))
            return
        self.post_message(self.Saved(f"model of {agent}", doc=s.model_dump(mode="json")))

    @work(thread=True, exclusive=True, group="settings-secrets", exit_on_error=False)
    def load_secrets(self, op: str | None = None, name: str = "", value: str = "") -> None:
        from loom_core.config.secrets import SecretStore

        note = None
        try:
            store = SecretStore()
            if op == "set":
                store.set(name, value)
                note = f"stored secret '{name}'"
            elif op == "unset":
                store.unset(name)
                note = f"removed secret '{name}'"
            rows = store.masked()
        except (LoomError, OSError) as exc:
            self.post_message(self.Secrets(None, error=str(exc)))
            return
        self.post_message(self.Secrets(rows, store.describe(), note))

    @work(thread=True, group="settings-projects", exit_on_error=False)
    def remove_project(self, pid: str) -> None:
        try:
            self.app.service.catalog.remove(pid)
        except (LoomError, OSError) as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self._project_removed)

    # ------------------------------------------------------------------ messages
    def on_settings_screen_loaded(self, message: Loaded) -> None:
        status = self.query_one("#config-status", Static)
        if message.error:
            status.update(Text(message.error, style="red"))
            self.notify(message.error, title="settings", severity="error", timeout=8)
            return
        self.doc = message.doc or {}
        self.query_one(SchemaForm).set_values(self.doc)
        status.update("")
        self.fill_models()

    def on_settings_screen_saved(self, message: Saved) -> None:
        if message.error:
            if message.what == "model":
                self.query_one("#model-error", Static).update(Text(message.error, style="red"))
            else:
                self.query_one("#config-status", Static).update(Text(message.error, style="red"))
            self.notify(message.error, title="not saved", severity="error", timeout=8)
            return
        self.doc = message.doc or self.doc
        if message.what == "config":
            self.query_one("#config-status", Static).update(Text("saved", style="green"))
            self._apply_ui()
        else:
            self._close_model_editor()
            self.fill_models()
        from loom_core.config.paths import config_path

        self.notify(f"{message.what} saved to {config_path()}", title="settings")

    def on_settings_screen_secrets(self, message: Secrets) -> None:
        if message.error:
            self.notify(message.error, title="secrets", severity="error", timeout=8)
            return
        self.query_one("#secrets-where", Static).update(Text(f"stored in: {message.where}", style="dim"))
        table = self.query_one(SecretsTable)
        table.clear()
        for name, masked in message.rows or []:
            table.add_row(name, masked, key=name)
        if message.note:
            self.notify(message.note, title="secrets")

    def _apply_ui(self) -> None:
        theme = (self.doc.get("ui") or {}).get("theme")
        if theme in ("dark", "light"):
            self.app.theme = f"textual-{theme}"

    # ------------------------------------------------------------------ config tab
    def action_save(self) -> None:
        form = self.query_one(SchemaForm)
        status = self.query_one("#config-status", Static)
        data = form.values()
        maps = [k for k in form.map_keys() if "." not in k]
        for key in maps:  # open maps are edited elsewhere (Models tab, `loom config set`): keep them
            data[key] = self.doc.get(key) or {}
        try:
            settings = validate_document(data)
        except ValidationError as exc:
            errors = error_map(exc)
            unplaced = form.show_errors(errors)
            self.query_one(TabbedContent).active = "tab-config"
            text = f"not saved: {len(errors)} invalid value(s)"
            if unplaced:
                text += " — " + "; ".join(f"{k}: {errors[k]}" for k in unplaced)
            status.update(Text(text, style="bold red"))
            return
        form.clear_errors()
        status.update(Text("saving…", style="dim"))
        self.write(settings, maps)

    def action_revert(self) -> None:
        self.query_one("#config-status", Static).update(Text("reverted to the file", style="dim"))
        self.load()

    @on(Button.Pressed, "#config-save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#config-revert")
    def _revert_pressed(self) -> None:
        self.action_revert()

    # ------------------------------------------------------------------ secrets tab
    def _store_secret(self) -> None:
        name_in = self.query_one("#secret-name", Input)
        value_in = self.query_one("#secret-value", Input)
        name, value = name_in.value.strip(), value_in.value
        if not name:
            self.notify("give the secret a name", severity="warning")
            name_in.focus()
            return
        if not value:
            self.notify("paste the value to store", severity="warning")
            value_in.focus()
            return
        value_in.value = ""  # never keep the value on screen
        self.load_secrets("set", name, value)

    @on(Button.Pressed, "#secret-store")
    def _store_pressed(self) -> None:
        self._store_secret()

    @on(Input.Submitted, "#secret-value")
    def _value_submitted(self) -> None:
        self._store_secret()

    @on(Input.Submitted, "#secret-name")
    def _name_submitted(self) -> None:
        self.query_one("#secret-value", Input).focus()

    def action_replace_secret(self) -> None:
        name = self.query_one(SecretsTable).key()
        if name:
            self.query_one("#secret-name", Input).value = name
            self.query_one("#secret-value", Input).focus()

    def action_remove_secret(self) -> None:
        name = self.query_one(SecretsTable).key()
        if not name:
            return
        from loom_tui.screens.confirm import ConfirmDialog

        def done(yes: bool | None) -> None:
            if yes:
                self.load_secrets("unset", name)

        self.app.push_screen(ConfirmDialog("Remove secret", f"Delete the stored secret '{name}'? Settings that "
                                           f"refer to secret:{name} stop resolving.", "Remove"), done)

    # ------------------------------------------------------------------ models tab
    def fill_models(self) -> None:
        table = self.query_one(ModelsTable)
        keep = table.cursor_row
        table.clear()
        overrides = self.doc.get("models") or {}
        for agent, tier in self.agents.items():
            ref = overrides.get(agent)
            effective = self._effective(ref or tier)
            table.add_row(agent, tier, Text(ref or "—", style="bold" if ref else "dim"), effective, key=agent)
        for agent, ref in overrides.items():  # overrides for agents the code bundle does not have
            if agent not in self.agents:
                table.add_row(agent, "?", Text(ref, style="bold"), self._effective(ref), key=agent)
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))

    def _effective(self, ref: str) -> str:
        """The model a ref resolves to: a tier through the bundle's table, else the model part."""
        if ref in self.tiers:
            return self.tiers[ref]
        return ref.split(":", 1)[1] if ":" in ref else ref

    def action_edit_model(self) -> None:
        agent = self.query_one(ModelsTable).key()
        if not agent:
            return
        self._editing = agent
        self.query_one("#model-label", Label).update(agent[:17])
        editor = self.query_one("#model-editor")
        editor.display = True
        ref = self.query_one("#model-ref", Input)
        ref.value = (self.doc.get("models") or {}).get(agent, "")
        self.query_one("#model-error", Static).update(
            Text("enter saves to the global config · empty clears · escape cancels", style="dim"))
        ref.focus()

    def action_clear_model(self) -> None:
        agent = self.query_one(ModelsTable).key()
        if agent and agent in (self.doc.get("models") or {}):
            self.write_model(agent, "")

    @on(Input.Submitted, "#model-ref")
    def _model_submitted(self, event: Input.Submitted) -> None:
        if not self._editing:
            return
        raw = event.value.strip()
        if raw:
            try:
                check_model_ref(raw)
            except ValueError as exc:
                self.query_one("#model-error", Static).update(Text(f"✗ {exc}", style="red"))
                return
        self.write_model(self._editing, raw)

    def _close_model_editor(self) -> None:
        self._editing = None
        self.query_one("#model-editor").display = False
        self.query_one("#model-error", Static).update("")
        self.query_one(ModelsTable).focus()

    # ------------------------------------------------------------------ projects tab
    def fill_projects(self) -> None:
        table = self.query_one(ProjectsTable)
        table.clear()
        for p in self.app.service.catalog.projects:
            table.add_row(p.id, p.name, p.dir, key=p.id)

    def apply_rows(self, rows: list[dict[str, Any]]) -> None:
        table = self.query_one(ProjectsTable)
        if [k.value for k in table.rows] != [p.id for p in self.app.service.catalog.projects]:
            self.fill_projects()

    def action_remove_project(self) -> None:
        pid = self.query_one(ProjectsTable).key()
        if not pid:
            return
        from loom_tui.screens.confirm import ConfirmDialog

        proj = self.app.service.catalog.get(pid)
        name = proj.name if proj else pid

        def done(yes: bool | None) -> None:
            if yes:
                self.remove_project(pid)

        self.app.push_screen(ConfirmDialog("Remove from the catalog",
                                           f"Stop showing '{name}'? Nothing on disk changes.", "Remove"), done)

    def _project_removed(self) -> None:
        self.fill_projects()
        self.app.refresh_rows()
        self.notify("removed from the catalog (files on disk untouched)")

    def action_add_project(self) -> None:
        from loom_tui.screens.wizard import AddProjectScreen

        self.app.push_screen(AddProjectScreen(), lambda _r: self.fill_projects())

    # ------------------------------------------------------------------ navigation
    def action_next_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        current = (tabs.active or "tab-config").removeprefix("tab-")
        self.show_tab(TABS[(TABS.index(current) + 1) % len(TABS)])

    def show_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{name}"
        focus = {"config": SchemaForm, "secrets": SecretsTable, "models": ModelsTable,
                 "projects": ProjectsTable}[name]
        target = self.query_one(focus)
        if name == "config":
            self.call_after_refresh(lambda: target.query("Input, Select, Switch").first().focus())
        else:
            self.call_after_refresh(target.focus)

    def action_back(self) -> None:
        if self._editing and self.focused is self.query_one("#model-ref"):
            self._close_model_editor()
            return
        self.app.pop_screen()

    def check_action(self, action: str, parameters) -> bool | None:
        return True

    def palette_entries(self):
        return [
            ("settings: save", "Validate the config form and write it", self.action_save),
            ("settings: revert", "Discard edits; reload the config file", self.action_revert),
            ("settings: config tab", "The settings form", lambda: self.show_tab("config")),
            ("settings: secrets tab", "Stored secrets (names and masks)", lambda: self.show_tab("secrets")),
            ("settings: models tab", "Per-agent models", lambda: self.show_tab("models")),
            ("settings: projects tab", "The project catalog", lambda: self.show_tab("projects")),
            ("secrets: replace selected", "Store a new value for the selected secret", self.action_replace_secret),
            ("secrets: remove selected", "Delete the selected secret", self.action_remove_secret),
            ("models: edit selected", "Set the selected agent's model", self.action_edit_model),
            ("models: clear selected", "Back to the bundle default", self.action_clear_model),
            ("projects: remove selected", "Remove from the catalog (files stay)", self.action_remove_project),
            ("projects: add", "Add a project to the catalog", self.action_add_project),
            ("settings: back", "Leave the settings", self.action_back),
        ]
