"""The help screen (? or F1): every key of the screen below it and the app's, as they are now (after the
user's keymap), each with what it does, its binding id (what ``[keymap]`` names) and its palette name."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from loom_tui import keys
from loom_tui.commands import palette_entries

COLUMNS = ("key", "does", "binding", "palette")


def _action_name(action: str) -> str:
    """``screen.jump('first')`` → ``jump``."""
    return action.split("(")[0].rsplit(".", 1)[-1]


def _palette_names(app: Any, screen: Any) -> dict[str, str]:
    """Action name → palette title, for the palette entries that call an action method."""
    out: dict[str, str] = {}
    for title, _help, fn in palette_entries(app, screen):
        name = getattr(fn, "__name__", "")
        if name.startswith("action_"):
            out.setdefault(name.removeprefix("action_"), title)
    return out


def help_rows(app: Any, screen: Any) -> list[tuple[str, list[tuple[str, str, str, str, str]]]]:
    """[(section title, [(keys, does, binding id, palette name, about), …]), …]: the screen's keys, then the
    app's (only its priority keys over a dialog, the others do not act there)."""
    keymap = dict(getattr(app, "keymap_entries", {}) or {})
    palette = _palette_names(app, screen)
    scope = keys.scope_of(screen)
    classes = keys.classes_of(scope) if scope else [type(screen)]
    title = scope or type(screen).__name__

    def rows(bindings: list[Binding]) -> list[tuple[str, str, str, str, str]]:
        out, seen = [], set()
        for b in bindings:
            ident = b.id or (b.key, b.action)
            if b.system or ident in seen:
                continue
            seen.add(ident)
            name = _action_name(b.action)
            out.append((keys.display(b, keymap), b.description or name.replace("_", " "), b.id or "",
                        palette.get(name, ""), b.tooltip or ""))
        return out

    screen_bindings = [b for cls in classes for b in keys.declared(cls, textual_widgets=False)]
    app_bindings = keys.declared(type(app), textual_widgets=False)
    modal = keys.is_modal(screen)
    if modal:
        app_bindings = [b for b in app_bindings if b.priority]
    return [(f"this screen ({title})", rows(screen_bindings)),
            ("everywhere" if not modal else "everywhere (in a dialog only these)", rows(app_bindings))]


class HelpScreen(ModalScreen[None]):
    """Keys of the screen below and of the app; Esc, ? or q closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #help-box { width: 96%; height: 90%; border: round $accent; background: $surface; padding: 0 1; }
    #help-title { text-style: bold; }
    #help-keys { height: 1fr; }
    #help-hint { color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape,question_mark,q,f1", "close", "Close", id="help.close", tooltip="Close the help"),
    ]

    def __init__(self, below: Any) -> None:
        super().__init__()
        self.below = below
        self.sections = help_rows(self.app, below)

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static("Keys", id="help-title")
            with VerticalScroll(id="help-keys"):
                yield Static(Group(*(self._table(title, rows) for title, rows in self.sections)), id="help-body")
            yield Static("esc, ? or q closes · other keys: Settings → Keys, or [keymap] in the settings",
                         id="help-hint", markup=False)

    @staticmethod
    def _table(title: str, rows: list[tuple[str, str, str, str, str]]) -> Table:
        """One section; long cells wrap instead of being cut (80 columns hold it)."""
        table = Table(title=title, title_justify="left", title_style="bold", expand=True, box=None,
                      header_style="dim", padding=(0, 1))
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("does", ratio=3)
        table.add_column("binding", no_wrap=True, style="cyan")
        table.add_column("palette", ratio=2)
        for keys_, does, bid, pal, about in rows:
            table.add_row(keys_, does if not about else f"{does} [dim]— {about}[/]", bid, pal)
        return table

    def on_mount(self) -> None:
        self.query_one("#help-keys").focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def text(self) -> str:
        """Every row as plain text (for tests and screen readers)."""
        return "\n".join(f"{title}\n" + "\n".join("  ".join(r) for r in rows) for title, rows in self.sections)


__all__ = ["HelpScreen", "help_rows"]
