"""The binding catalogue: every key of every screen (with the widgets shown in it) and of the app, the
effective keys under the user's ``[keymap]``, and the clash check that keymap entries must pass.

A scope is what is active at once: a screen with its widgets, plus the app's keys (outside dialogs, where
only the app's priority keys still act). Keys are compared in Textual's long form (``question_mark``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import ModalScreen

SCOPES: dict[str, tuple[str, ...]] = {  # scope → "module:Class" (the screen first, then its widgets)
    "app": ("loom_tui.app:LoomApp",),
    "fleet": ("loom_tui.screens.fleet:FleetScreen", "loom_tui.screens.fleet:FleetTable"),
    "project": ("loom_tui.screens.project:ProjectScreen", "loom_tui.widgets.agent_chain:AgentChain"),
    "run": ("loom_tui.screens.inspector:RunInspector",),
    "gate": ("loom_tui.screens.gate:GateDialog",),
    "submit": ("loom_tui.screens.submit:SubmitScreen",),
    "budget": ("loom_tui.screens.budget:BudgetDialog",),
    "history": ("loom_tui.screens.history:HistoryScreen", "loom_tui.screens.history:HistoryTable"),
    "replay": ("loom_tui.screens.replay:ReplayScreen", "loom_tui.screens.replay:TickTable"),
    "settings": ("loom_tui.screens.settings:SettingsScreen", "loom_tui.screens.settings:SecretsTable",
                 "loom_tui.screens.settings:ModelsTable", "loom_tui.screens.settings:ProjectsTable",
                 "loom_tui.screens.settings.keys_pane:KeysTable"),
    "add": ("loom_tui.screens.wizard.add_project:AddProjectScreen", "loom_tui.screens.wizard.add_project:FolderTree"),
    "wizard": ("loom_tui.screens.wizard.first_run:WizardScreen",),
    "confirm": ("loom_tui.screens.confirm:ConfirmDialog",),
    "choice": ("loom_tui.screens.choice:ChoiceDialog",),
}


@dataclass(frozen=True)
class Entry:
    """One binding as declared (``keys`` may list several, comma-separated)."""

    scope: str
    binding: Binding
    owner: type

    @property
    def name(self) -> str:
        """How a clash message names it: its id, else its description or action."""
        b = self.binding
        return b.id or (b.description or b.action).lower()


def _cls(ref: str) -> type:
    module, name = ref.split(":")
    return getattr(import_module(module), name)


def classes_of(scope: str) -> list[type]:
    """The screen (first) and widget classes of a scope."""
    return [_cls(ref) for ref in SCOPES[scope]]


def declared(cls: type, *, textual_widgets: bool = True) -> list[Binding]:
    """The bindings a class declares, loom's before Textual's; ``textual_widgets=False`` leaves out what
    Textual's own widgets bring (cursor keys of a table …), keeping the App's and Screen's."""
    ours: list[Binding] = []
    theirs: list[Binding] = []  # Textual's own, listed after loom's
    for base in reversed(cls.__mro__):
        if not (isinstance(base, type) and issubclass(base, DOMNode)) or "BINDINGS" not in base.__dict__:
            continue
        loom = base.__module__.startswith("loom_tui")
        if textual_widgets or loom or base.__module__ in ("textual.app", "textual.screen"):
            (ours if loom else theirs).extend(b if isinstance(b, Binding) else Binding(*b)
                                              for b in base.__dict__["BINDINGS"])
    out = ours + theirs
    if cls.__module__.startswith("loom_tui") and getattr(cls, "ENABLE_COMMAND_PALETTE", False):
        out.append(Binding(cls.COMMAND_PALETTE_BINDING, "command_palette", "Command palette", show=False,
                           priority=True))
    return out


def catalogue() -> dict[str, list[Entry]]:
    """Scope → its bindings (every one, including Textual's widgets' own)."""
    out: dict[str, list[Entry]] = {}
    for scope, refs in SCOPES.items():
        for ref in refs:
            cls = _cls(ref)
            out.setdefault(scope, []).extend(Entry(scope, b, cls) for b in declared(cls) if not b.system)
    return out


def binding_ids() -> dict[str, Entry]:
    """Every binding id → its entry (ids are what a keymap names)."""
    return {e.binding.id: e for entries in catalogue().values() for e in entries if e.binding.id}


def keys_of(spec: str) -> list[str]:
    """``"O,?"`` → ``["O", "question_mark"]`` (Textual's own normalisation)."""
    return [b.key for b in Binding.make_bindings([Binding(spec, "_")])]


def effective(binding: Binding, keymap: dict[str, str]) -> list[str]:
    spec = keymap.get(binding.id) if binding.id else None
    return keys_of(spec or binding.key)


def display(binding: Binding, keymap: dict[str, str]) -> str:
    """The keys as a keymap may name them, printable ones as typed (``?``, ``ctrl+s``, ``enter``); a binding's
    own key_display is kept while it is not remapped."""
    if binding.key_display and not (binding.id and binding.id in keymap):
        return binding.key_display
    return ", ".join(_shown(k) for k in effective(binding, keymap))


def _modal(scope: str, cat: dict[str, list[Entry]]) -> bool:
    return any(issubclass(e.owner, ModalScreen) for e in cat[scope][:1])


def _rivals(entry: Entry, cat: dict[str, list[Entry]]) -> list[Entry]:
    """The bindings active together with ``entry``: its scope and the app's, or every scope for an app key."""
    if entry.scope == "app":
        return [e for s, es in cat.items() if s == "app" or entry.binding.priority or not _modal(s, cat) for e in es]
    app = [e for e in cat["app"] if e.binding.priority or not _modal(entry.scope, cat)]
    return cat[entry.scope] + app


def clash(binding_id: str, keymap: dict[str, str], cat: dict[str, list[Entry]] | None = None) -> str | None:
    """Why ``binding_id`` cannot have its keys under ``keymap`` ("O is already fleet.open"), or None.
    Keys two bindings share by default (the table's enter and the screen's) are not a clash."""
    cat = cat or catalogue()
    mine = [e for es in cat.values() for e in es if e.binding.id == binding_id]
    if not mine:
        return f"unknown binding id '{binding_id}'"
    entry = mine[0]
    keys = effective(entry.binding, keymap)
    defaults = set(keys_of(entry.binding.key))
    for other in _rivals(entry, cat):
        if other.binding.id == binding_id:
            continue
        theirs = set(effective(other.binding, keymap))
        for key in keys:
            if key in theirs and not (key in defaults and key in keys_of(other.binding.key)):
                return f"{_shown(key)} is already {other.name}"
    return None


def _shown(key: str) -> str:
    """``question_mark`` → ``?``, ``ctrl+s`` stays, ``enter`` stays (not ⏎: the keymap takes names)."""
    from textual.keys import format_key

    *mods, name = key.split("+")
    char = format_key(name)
    return "+".join([*mods, char if len(char) == 1 and " " < char <= "~" else name])


def check(keymap: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The entries that can be applied, and one warning per entry left out (unknown id, clash). The last
    entry of a clashing pair is the one left out."""
    cat = catalogue()
    ids = {e.binding.id for es in cat.values() for e in es if e.binding.id}
    good = {bid: keys for bid, keys in keymap.items() if bid in ids}
    warnings = [f"keymap: unknown binding id '{bid}' (ignored)" for bid in keymap if bid not in ids]
    changed = True
    while changed:
        changed = False
        for bid in reversed(list(good)):
            why = clash(bid, good, cat)
            if why:
                warnings.append(f"keymap: {bid} = {good.pop(bid)!r} ignored: {why}")
                changed = True
                break
    return good, warnings


def scope_of(screen: Any) -> str | None:
    """The catalogue's scope of a screen instance (None for one it does not list)."""
    for scope, refs in SCOPES.items():
        if scope != "app" and isinstance(screen, _cls(refs[0])):
            return scope
    return None


def is_modal(screen: Any) -> bool:
    return isinstance(screen, ModalScreen)


__all__ = ["SCOPES", "Entry", "binding_ids", "catalogue", "check", "clash", "classes_of", "declared", "display", "effective",
           "is_modal", "keys_of", "scope_of"]


def help_key(scope: str) -> Binding:
    """A dialog's own ``?`` / F1 (a modal screen stops the app's keys): the help of that dialog. In a text
    field ``?`` stays text (the field takes printable keys first); F1 always opens the help."""
    return Binding("f1,question_mark", "app.help", "Help", id=f"{scope}.help", show=False, tooltip="Show the keys")
