"""A question with a few named answers as a typed modal (``ModalScreen[str | None]``): each answer has a
key and a button; escape answers None (leave everything as it is).

Also the two questions the console asks before it loses work: :class:`QuitDialog` (drives are running)
and :class:`StoppingScreen` (waiting for them to stop between steps, the screen never blank)."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from loom_tui.keys import help_key

Choice = tuple[str, str, str]  # (key, label, value)


class ChoiceDialog(ModalScreen[str | None]):
    DEFAULT_CSS = """
    ChoiceDialog {
        align: center middle;
    }
    ChoiceDialog > #choice-box {
        width: 72;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: thick $warning;
        background: $surface;
        padding: 0 1;
    }
    ChoiceDialog #choice-title {
        text-style: bold;
    }
    ChoiceDialog #choice-body {
        padding: 1 0;
    }
    ChoiceDialog #choice-buttons {
        height: auto;
        align-horizontal: right;
    }
    ChoiceDialog Button {
        margin-left: 1;
    }
    """
    BINDINGS = [Binding("escape", "choose(None)", "Back", id="choice.back", tooltip="Leave everything as it is"),
                help_key("choice")]

    def __init__(self, title: str, body: str, choices: list[Choice], back: str = "Back") -> None:
        super().__init__()
        self._title = title
        self._body = body
        self.choices = list(choices)
        self._back = back

    def compose(self) -> ComposeResult:
        with Vertical(id="choice-box"):
            yield Static(self._title, id="choice-title", markup=False)
            yield Static(self._body, id="choice-body", markup=False)
            with Horizontal(id="choice-buttons"):
                for i, (key, label, value) in enumerate(self.choices):
                    yield Button(f"{label} ({key})", id=f"choice-{value}", variant="warning" if i == 0 else "default",
                                 compact=True)
                yield Button(f"{self._back} (esc)", id="choice-back", compact=True)

    def on_key(self, event: events.Key) -> None:
        for key, _label, value in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(value)
                return

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        value = (event.button.id or "").removeprefix("choice-")
        self.dismiss(None if value == "back" else value)

    def action_choose(self, value: str | None) -> None:
        self.dismiss(value)


class QuitDialog(ChoiceDialog):
    """``q`` while drives run: stop them between steps and quit, or stay. Keeping a drive running after
    the console closes needs a supervisor process, which loom does not have yet, so it is not offered."""

    def __init__(self, names: list[str]) -> None:
        listed = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        super().__init__(
            f"{len(names)} task(s) are being driven: {listed}",
            "Quitting stops each drive between steps: the agent at work finishes its step, the task stays in "
            "progress, and 'loom proceed' (or r in the console) resumes it. A drive cannot keep running "
            "without the console yet.",
            [("s", "Stop the drives and quit", "stop")], back="Stay")


class StoppingScreen(ModalScreen[None]):
    """Shown after "stop and quit" until every drive has stopped; the app exits when the last one ends."""

    DEFAULT_CSS = """
    StoppingScreen {
        align: center middle;
    }
    StoppingScreen > #stopping-box {
        width: 72;
        max-width: 95%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 1 1;
    }
    """

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.waiting = list(names)

    def compose(self) -> ComposeResult:
        with Vertical(id="stopping-box"):
            yield Static(self._text(), id="stopping-text", markup=False)

    def _text(self) -> str:
        return ("Stopping between steps — waiting for the agents at work to finish their step:\n  "
                + "\n  ".join(self.waiting) + "\nThe console closes by itself when they have stopped.")

    def still_running(self, names: list[str]) -> None:
        self.waiting = list(names)
        try:
            self.query_one("#stopping-text", Static).update(self._text())
        except NoMatches:  # not composed yet: compose shows the current list
            pass
