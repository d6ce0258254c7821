"""The folder picker (the fleet's ``a`` key, the settings' Projects tab, the first-run guide): a directory
tree that opens at the browse root (``$LOOM_FS_ROOT``, the ``ui.browse_root`` setting, or home), a path input
that takes any folder (absolute, ``~``, or relative to the browse root; the tree follows what is typed),
a new one created after confirmation, and "create the demo project here". Catalog writes go
through the facade.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Footer, Input, Label, Static

from loom_core.control import fs_root
from loom_core.errors import LoomError
from loom_tui.keys import help_key


def enroll(path: Path) -> bool:
    """Adding a project is an operator gesture: allowlist it for /task in Claude Code (spec §3.10), best-effort."""
    from loom_core.config import allowlist

    try:
        allowlist.add(path)
    except (LoomError, OSError):
        return False
    return True


def resolve_typed(raw: str, base: Path) -> Path:
    """A typed path: absolute, ``~``, or relative to ``base`` (the browse root); resolved."""
    p = Path(raw.strip()).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def existing_folder(raw: str, base: Path) -> Path | None:
    """The deepest existing folder of a typed path (the path itself when it ends with a separator), or None."""
    text = raw.strip()
    if not text:
        return None
    p = resolve_typed(text, base)
    if not text.endswith(os.sep):
        p = p.parent
    for candidate in (p, *p.parents):
        try:
            if candidate.is_dir():
                return candidate
        except OSError:
            continue
    return None


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

    CSS_PATH = "../../styles/wizard.tcss"
    BINDINGS = [
        help_key("add"),
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
            yield Static(self._title(self.root), id="add-title")
            yield FolderTree(self.root if self.root.is_dir() else Path.home(), id="add-tree")
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
        self._set_path(Path(self.query_one(FolderTree).path))
        path_in = self.query_one("#add-path", Input)
        path_in.focus()
        path_in.action_end()
        if not self.root.is_dir():
            self.query_one("#add-title", Static).update(Text.assemble(
                self._title(Path.home()), (f"  (the browse root {self.root} is not a folder)", "yellow")))

    # ------------------------------------------------------------------ fields
    @staticmethod
    def _title(folder: Path) -> Text:
        return Text.assemble(("Add a project", "bold"), ("  folders under ", "dim"), str(folder))

    def _follow(self, raw: str) -> None:
        """The tree shows the deepest existing folder of what is typed (it moves at each separator)."""
        tree = self.query_one(FolderTree)
        here = Path(tree.path)
        folder = existing_folder(raw, self.root)
        if folder is None or folder == here:
            return
        tree.path = folder
        self.query_one("#add-title", Static).update(self._title(folder))

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
        """The name follows the folder's basename until it is edited; the tree follows what is typed."""
        if event.input.has_focus:
            self._follow(event.value)
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
            return resolve_typed(raw, self.root)
        except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable parent
            self._error(f"{raw.strip()}: {getattr(exc, 'strerror', None) or exc}")
            return None

    def _label(self, path: Path) -> str | None:
        name = self.query_one("#add-name", Input).value.strip()
        return name if name and name != path.name else None

    def _folder(self) -> tuple[Path, str | None] | None:
        """The typed folder and its label, or None (the error shown) when it names a file or nothing."""
        path = self._target()
        if path is None:
            return None
        if path.exists() and not path.is_dir():
            self._error(f"{path} is a file, not a folder")
            return None
        return path, self._label(path)

    # ------------------------------------------------------------------ actions
    def action_add(self) -> None:
        folder = self._folder()
        if folder is None:
            return
        path, label = folder
        if not path.exists():
            def done(yes: bool | None) -> None:
                if yes:
                    self.add(path, label, create=True)

            self.app.confirm("Create folder", f"{path} does not exist. Create it as a new, empty project folder?",
                             "Create", done)
            return
        self.add(path, label)

    def action_demo(self) -> None:
        folder = self._folder()
        if folder is None:
            return
        path, label = folder

        def done(yes: bool | None) -> None:
            if yes:
                self.add(path, label, demo=True)

        self.app.confirm("Create the demo project", f"Write loom's demo project (a small git repository with tests) "
                         f"into {path}?", "Create", done)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(thread=True, exclusive=True, group="add-project", exit_on_error=False)
    def add(self, path: Path, label: str | None, create: bool = False, demo: bool = False) -> None:
        control = self.app.control
        try:
            if demo:
                from loom_core.control import create_demo_project

                create_demo_project(path)
            proj = control.add_project(path, label=label, create=create)
            if not self.app.attached:  # an attached plane enrolls on its own host (POST /workspace/projects)
                enroll(proj.path)
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
        try:
            name = self.app.control.project(message.pid).name
        except LoomError:
            name = message.pid
        self.app.notify(f"added {name}", title="catalog")
        self.dismiss(message.pid)

    def palette_entries(self):
        return [
            ("add project: add", "Add the folder in the path field", self.action_add),
            ("add project: demo here", "Create the demo project in that folder and add it", self.action_demo),
            ("add project: cancel", "Close without adding", self.action_cancel),
        ]
