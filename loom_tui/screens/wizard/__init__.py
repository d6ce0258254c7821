"""The first-run guide (:mod:`.first_run`) and the folder picker it opens (:mod:`.add_project`)."""

from __future__ import annotations

from loom_tui.screens.wizard.add_project import AddProjectScreen, FolderTree, fs_root, resolve_typed
from loom_tui.screens.wizard.first_run import WizardScreen, backend_choices

__all__ = ["AddProjectScreen", "FolderTree", "WizardScreen", "backend_choices", "fs_root", "resolve_typed"]
