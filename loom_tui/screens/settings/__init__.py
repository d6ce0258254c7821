"""Settings: Config (a form generated from the settings schema), Secrets (names and masks only),
Models (per-agent model map), Projects (the catalog) and Keys (the keymap), one pane module each.

Every read and write goes through the facade (``app.control``) in thread workers that post messages
back; the screen holds the tabs, the keys and the palette, and hands each action to its pane.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, TabbedContent

from loom_tui.screens.settings.config_pane import ConfigPane
from loom_tui.screens.settings.keys_pane import KeysPane, KeysTable
from loom_tui.screens.settings.models_pane import ModelsPane, ModelsTable
from loom_tui.screens.settings.projects_pane import ProjectsPane, ProjectsTable
from loom_tui.screens.settings.secrets_pane import SecretsPane, SecretsTable
from loom_tui.widgets.schema_form import SchemaForm

TABS = ("config", "secrets", "models", "projects", "keys")


class SettingsScreen(Screen):
    CSS_PATH = "../../styles/settings.tcss"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="settings.save", tooltip="Validate the config form and write it"),
        Binding("ctrl+r", "revert", "Revert", id="settings.revert", tooltip="Discard edits; reload from the file"),
        Binding("ctrl+n", "next_tab", "Next tab", id="settings.next_tab",
                tooltip="Config → Secrets → Models → Projects → Keys"),
        Binding("escape", "back", "Back", id="settings.back", tooltip="Leave the settings"),
    ]

    def __init__(self, tab: str = "config") -> None:
        super().__init__()
        self.initial_tab = tab if tab in TABS else "config"

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial=f"tab-{self.initial_tab}", id="settings-tabs"):
            yield ConfigPane()
            yield SecretsPane()
            yield ModelsPane()
            yield ProjectsPane()
            yield KeysPane()
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "settings"

    def apply_rows(self, rows: list[dict[str, Any]]) -> None:
        self.query_one(ProjectsPane).apply_rows(rows)

    # ------------------------------------------------------------------ actions (each pane does the work)
    def action_save(self) -> None:
        self.query_one(ConfigPane).save()

    def action_revert(self) -> None:
        self.query_one(ConfigPane).revert()

    def action_replace_secret(self) -> None:
        self.query_one(SecretsPane).replace_selected()

    def action_remove_secret(self) -> None:
        self.query_one(SecretsPane).remove_selected()

    def action_edit_model(self) -> None:
        self.query_one(ModelsPane).edit_selected()

    def action_clear_model(self) -> None:
        self.query_one(ModelsPane).clear_selected()

    def action_remove_project(self) -> None:
        self.query_one(ProjectsPane).remove_selected()

    def action_add_project(self) -> None:
        self.query_one(ProjectsPane).add()

    def action_edit_key(self) -> None:
        self.query_one(KeysPane).edit_selected()

    def action_reset_key(self) -> None:
        self.query_one(KeysPane).reset_selected()

    # ------------------------------------------------------------------ navigation
    def action_next_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        current = (tabs.active or "tab-config").removeprefix("tab-")
        self.show_tab(TABS[(TABS.index(current) + 1) % len(TABS)])

    def show_tab(self, name: str, *, focus: bool = True) -> None:
        self.query_one(TabbedContent).active = f"tab-{name}"
        if not focus:
            return
        target = self.query_one({"config": SchemaForm, "secrets": SecretsTable, "models": ModelsTable,
                                 "projects": ProjectsTable, "keys": KeysTable}[name])
        if name == "config":
            self.call_after_refresh(lambda: target.query("Input, Select, Switch").first().focus())
        else:
            self.call_after_refresh(target.focus)

    def action_back(self) -> None:
        models = self.query_one(ModelsPane)
        if models.is_editing():
            models.close_editor()
            return
        keys_pane = self.query_one(KeysPane)
        if keys_pane.is_editing():
            keys_pane.close_editor()
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
            ("settings: keys tab", "Every key binding; change or reset one", lambda: self.show_tab("keys")),
            ("secrets: replace selected", "Store a new value for the selected secret", self.action_replace_secret),
            ("secrets: remove selected", "Delete the selected secret", self.action_remove_secret),
            ("models: edit selected", "Set the selected agent's model", self.action_edit_model),
            ("models: clear selected", "Back to the bundle default", self.action_clear_model),
            ("projects: remove selected", "Remove from the catalog (files stay)", self.action_remove_project),
            ("projects: add", "Add a project to the catalog", self.action_add_project),
            ("keys: change selected", "Give the selected binding other keys", self.action_edit_key),
            ("keys: default for selected", "Back to the binding's default keys", self.action_reset_key),
            ("settings: back", "Leave the settings", self.action_back),
        ]


__all__ = ["TABS", "ConfigPane", "KeysPane", "KeysTable", "ModelsPane", "ModelsTable", "ProjectsPane", "ProjectsTable", "SecretsPane",
           "SecretsTable", "SettingsScreen"]
