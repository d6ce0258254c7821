"""Raise a task's budgets (``ModalScreen[dict | None]``): the cost and token budgets, prefilled with the
task's own; Enter raises them (the console then drives on), Escape leaves everything as it is."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from loom_tui.keys import help_key


def parse(cost: str, tokens: str) -> dict[str, Any] | str:
    """``{"max_cost_usd", "max_tokens"}`` from the two fields ("" = 0, no budget), or what is wrong."""
    try:
        usd = float(cost.strip().lstrip("$") or 0)
    except ValueError:
        return f"the cost budget must be a number of US dollars, got '{cost.strip()}'"
    text = tokens.strip().lower().replace(",", "").replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    try:
        count = int(float(text[:-1] if scale > 1 else text or 0) * scale)
    except ValueError:
        return f"the token budget must be a whole number (12000, 50k, 1m), got '{tokens.strip()}'"
    if not 0 <= usd < float("inf") or count < 0:
        return "a budget is 0 (none) or more"
    return {"max_cost_usd": usd, "max_tokens": count}


class BudgetDialog(ModalScreen[dict[str, Any] | None]):
    DEFAULT_CSS = """
    BudgetDialog { align: center middle; }
    BudgetDialog > #budget-box {
        width: 70; max-width: 95%; height: auto; border: thick $warning; background: $surface; padding: 0 1;
    }
    BudgetDialog #budget-title { text-style: bold; }
    BudgetDialog #budget-why { padding: 1 0; }
    BudgetDialog #budget-error { color: $error; height: auto; }
    BudgetDialog #budget-buttons { height: auto; align-horizontal: right; }
    BudgetDialog Button { margin-left: 1; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", id="budget.cancel", tooltip="Leave the budgets as they are"),
                help_key("budget")]

    def __init__(self, name: str, budget: dict[str, Any] | None) -> None:
        super().__init__()
        self._name, self._budget = name, budget or {}

    def compose(self) -> ComposeResult:
        b = self._budget
        with Vertical(id="budget-box"):
            yield Static(f"Budgets of {self._name}", id="budget-title", markup=False)
            yield Static(b.get("stopped") or (f"spent {b['text']}" if b.get("text") else "no budget yet"),
                         id="budget-why", markup=False)
            yield Label("cost budget, US dollars (0 = none)")
            yield Input(f"{b['max_cost_usd']:g}" if b.get("max_cost_usd") else "", id="budget-cost")
            yield Label("token budget, input + output (0 = none; 50k, 1m)")
            yield Input(str(b["max_tokens"]) if b.get("max_tokens") else "", id="budget-tokens")
            yield Static("", id="budget-error", markup=False)
            with Horizontal(id="budget-buttons"):
                yield Button("Raise and resume (enter)", id="budget-ok", variant="warning", compact=True)
                yield Button("Cancel (esc)", id="budget-cancel", compact=True)

    def _submit(self) -> None:
        got = parse(self.query_one("#budget-cost", Input).value, self.query_one("#budget-tokens", Input).value)
        if isinstance(got, str):
            self.query_one("#budget-error", Static).update(got)
            return
        self.dismiss(got)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "budget-ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
