"""Per-task budgets: a cost (USD) and a token ceiling a task may not spend past.

The spend is kept in ``.loom/budget.json`` (the ledger), beside the task's store:

- before a spawn starts, its worst case is *reserved* (written and fsynced first), so a kill -9 in the
  middle of a spawn still counts it; when the spawn ends (delivered or failed) the reservation is
  replaced by what it really used, failed attempts included;
- a drive that opens the ledger counts a reservation left by a killed process at its worst case, and
  never counts less than the task's transcripts record.

Before each batch of spawns (and before each retry) the driver asks :meth:`Keeper.admit` /
:meth:`Keeper.reserve`; when the spend so far plus the worst case would pass a budget, the task stops
BEFORE the spawn with ``BUDGET_EXCEEDED``: it stays in progress and goes on once the budget is raised
(``loom proceed --max-cost USD`` / ``--max-tokens N``).

The worst case of one spawn, kept simple:

- tokens = the prompt's characters / 3, rounded up (system prompt included), + its reply cap
  (``intent.extras["max_tokens"]``, else 8192);
- cost = prompt tokens × input price + reply cap × output price, at the model's USD per million tokens:
  Claude models from the Anthropic provider's table, local models (``ollama``) free, any other model
  priced as the dearest known one ($15 in / $75 out);
- a deterministic spawn (the checks runner) costs nothing.

An agent that takes many turns in one spawn (Claude Code) can use more than this; a budget is then
passed by at most what that one spawn used beyond its estimate.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loom_core.errors import BudgetExceeded
from loom_core.store import db as dbmod
from loom_core.store import loomdir

if TYPE_CHECKING:
    from loom_core.kernel.types import Intent  # a status read never loads the kernel's types

CODE = "BUDGET_EXCEEDED"
STATUS = "over-budget"  # the status a task stopped by its budget shows
REPLY_CAP = 8192  # tokens an agent may reply with when its intent names no cap (the tool loop's default)
CHARS_PER_TOKEN = 3  # prompt size estimate, generous (English runs about 4 characters a token)
DEAREST = (15.0, 75.0)  # USD per million tokens (in, out) for a model loom has no price for
FREE_MARKS = ("ollama", "local", "demo", "scripted", "deterministic")


@dataclass(frozen=True)
class Spend:
    cost_usd: float = 0.0
    tokens: int = 0

    def __add__(self, other: Spend) -> Spend:
        return Spend(self.cost_usd + other.cost_usd, self.tokens + other.tokens)


@dataclass(frozen=True)
class Limits:
    """A task's budgets; 0 = none."""

    max_cost_usd: float = 0.0
    max_tokens: int = 0

    @property
    def active(self) -> bool:
        return bool(self.max_cost_usd or self.max_tokens)


def limits_for(opts: Any) -> Limits:
    """The budgets a run's options give: ``max_cost_usd`` / ``max_tokens``, else the ``general`` settings
    (``LOOM_MAX_COST_USD`` / ``LOOM_MAX_TOKENS``); None or 0 = no budget."""
    cost, tokens = getattr(opts, "max_cost_usd", None), getattr(opts, "max_tokens", None)
    if cost is None or tokens is None:
        from loom_core.config.settings import load_settings

        general = load_settings().general
        cost = getattr(general, "max_cost_usd", 0.0) if cost is None else cost
        tokens = getattr(general, "max_tokens", 0) if tokens is None else tokens
    return Limits(float(cost or 0.0), int(tokens or 0))


def pin(opts: Any) -> None:
    """Write the settings' budgets into options left at None, so the task keeps the budgets it started with."""
    limits = limits_for(opts)
    opts.max_cost_usd, opts.max_tokens = limits.max_cost_usd, limits.max_tokens


# ---------------------------------------------------------------------------- prices and worst cases
def price(model: str) -> tuple[float, float]:
    """USD per million tokens (input, output) for ``model``: free for local models, the Anthropic table
    for Claude models, :data:`DEAREST` for anything else."""
    name = (model or "").lower()
    if any(mark in name for mark in FREE_MARKS):
        return 0.0, 0.0
    from loom_core.agents.providers.anthropic import price_per_mtok

    return price_per_mtok(name) or DEAREST


def worst_case(intent: Intent) -> Spend:
    """The most one spawn of ``intent`` is expected to use (see the module docstring)."""
    if intent.extras.get("capability") == "checks":
        return Spend()
    chars = len(intent.prompt or "") + len(intent.system_prompt or "")
    prompt = math.ceil(chars / CHARS_PER_TOKEN)
    cap = intent.extras.get("max_tokens")
    reply = cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else REPLY_CAP
    pin_, pout = price(intent.model)
    return Spend(round((prompt * pin_ + reply * pout) / 1_000_000, 6), prompt + reply)


def used(model: str, usage: dict[str, Any]) -> Spend:
    """What one attempt used: its reported cost (else its tokens at the model's price) and its tokens."""
    t_in, t_out = int(usage.get("tokens_in") or 0), int(usage.get("tokens_out") or 0)
    cost = usage.get("cost_usd")
    if cost is None:
        pin_, pout = price(model)
        cost = (t_in * pin_ + t_out * pout) / 1_000_000
    return Spend(float(cost), t_in + t_out)


# ---------------------------------------------------------------------------- words
def usd(x: float) -> str:
    return f"${x:.2f}" if x == 0 or abs(x) >= 0.01 else f"${x:.4f}"


def tokens(n: float) -> str:
    n = int(n)
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M".replace(".0M", "M")
    if n >= 1000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return str(n)


def _raise_to_cost(needed: float) -> str:
    return str(math.ceil(needed)) if needed >= 1 else f"{math.ceil(needed * 10) / 10:g}"


def _raise_to_tokens(needed: int) -> str:
    step = 10 ** max(3, len(str(int(needed))) - 2)
    return str(math.ceil(needed / step) * step)


def refusal(limits: Limits, spent: Spend, worst: Spend, agents: list[str]) -> str | None:
    """The plain words for stopping before ``agents`` (None when their worst case fits both budgets)."""
    unique = list(dict.fromkeys(agents)) or ["next agent"]
    names = unique[0] if len(unique) == 1 else ", ".join(unique[:-1]) + " and " + unique[-1]
    n = len(agents)
    spawns = "the next spawn" if n == 1 else f"the next {n} spawns"
    if limits.max_cost_usd and spent.cost_usd + worst.cost_usd > limits.max_cost_usd:
        left = limits.max_cost_usd - spent.cost_usd
        left_s = f"only {usd(left)}" if left > 0 else "nothing"
        return (f"stopped before the {names}: {spawns} could cost up to {usd(worst.cost_usd)} and {left_s} of the "
                f"{usd(limits.max_cost_usd)} budget is left (spent {usd(spent.cost_usd)}); raise it with loom proceed "
                f"--max-cost {_raise_to_cost(spent.cost_usd + worst.cost_usd)}")
    if limits.max_tokens and spent.tokens + worst.tokens > limits.max_tokens:
        left = limits.max_tokens - spent.tokens
        left_s = f"only {tokens(left)}" if left > 0 else "nothing"
        return (f"stopped before the {names}: {spawns} could use up to {tokens(worst.tokens)} tokens and {left_s} of "
                f"the {tokens(limits.max_tokens)}-token budget is left (spent {tokens(spent.tokens)}); raise it with "
                f"loom proceed --max-tokens {_raise_to_tokens(spent.tokens + worst.tokens)}")
    return None


def shown(limits: Limits, spent: Spend) -> str:
    """``$1.20 / $2.00``, ``12.3k / 50k tokens``, or both joined by `` · ``."""
    parts = []
    if limits.max_cost_usd:
        parts.append(f"{usd(spent.cost_usd)} / {usd(limits.max_cost_usd)}")
    if limits.max_tokens:
        parts.append(f"{tokens(spent.tokens)} / {tokens(limits.max_tokens)} tokens")
    return " · ".join(parts)


# ---------------------------------------------------------------------------- the ledger
def ledger_path(project: Path) -> Path:
    return dbmod.loom_dir(Path(project)) / "budget.json"


def read_ledger(project: Path) -> dict[str, Any] | None:
    """The ledger as written, None when there is none or it cannot be read (a drive then starts it again
    from the transcripts)."""
    return loomdir.read_json_object(ledger_path(project))


def _write(path: Path, doc: dict[str, Any]) -> None:
    loomdir.ensure(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(doc, indent=1))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _num(doc: dict[str, Any], key: str) -> float:
    v = doc.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0


def _spent(doc: dict[str, Any], *, with_reserved: bool = True) -> Spend:
    total = Spend(_num(doc, "cost_usd"), int(_num(doc, "tokens")))
    if with_reserved:
        for r in (doc.get("inflight") or {}).values():
            if isinstance(r, dict):
                total = total + Spend(_num(r, "cost_usd"), int(_num(r, "tokens")))
    return total


class Keeper:
    """One drive's budget keeper. Opened lazily (the task may not exist when the driver is built);
    :meth:`admit` runs on the drive's thread, :meth:`reserve` / :meth:`settle` on spawn threads."""

    def __init__(self, project: Path, store_path: Path, limits: Limits) -> None:
        self.project, self.store_path, self.limits = Path(project), Path(store_path), limits
        self._lock = threading.Lock()
        self._doc: dict[str, Any] | None = None
        self._seq = 0

    def _open(self, task_id: str) -> dict[str, Any]:
        if self._doc is not None and self._doc.get("task_id") == task_id:
            return self._doc
        from loom_core.store.read.budget import spend_at

        old = read_ledger(self.project) or {}
        if old.get("task_id") != task_id:
            old = {}
        carried = _spent(old)  # a reservation a killed drive left counts at its worst case
        floor = spend_at(self.store_path)
        self._doc = {"task_id": task_id, "cost_usd": round(max(carried.cost_usd, floor[0]), 6),
                     "tokens": max(carried.tokens, floor[1]), "inflight": {}, "stopped": old.get("stopped"),
                     "limits": {"max_cost_usd": self.limits.max_cost_usd, "max_tokens": self.limits.max_tokens}}
        _write(ledger_path(self.project), self._doc)
        return self._doc

    def spent(self) -> Spend:
        with self._lock:
            return _spent(self._doc) if self._doc is not None else Spend()

    def admit(self, task_id: str, intents: list[Intent]) -> str | None:
        """None when the batch's worst case fits; else the stop's words (recorded in the ledger)."""
        with self._lock:
            doc = self._open(task_id)
            worst = sum((worst_case(i) for i in intents), Spend())
            why = refusal(self.limits, _spent(doc), worst, [i.agent for i in intents])
            self._mark(doc, why)
            return why

    def reserve(self, task_id: str, intent: Intent) -> str:
        """Reserve one spawn's worst case before it starts (written before the spawn); refused with
        :class:`BudgetExceeded` when it does not fit (a retry after the batch was admitted)."""
        with self._lock:
            doc = self._open(task_id)
            worst = worst_case(intent)
            why = refusal(self.limits, _spent(doc), worst, [intent.agent])
            if why:
                self._mark(doc, why)
                raise BudgetExceeded(why, code=CODE)
            self._seq += 1
            key = f"{intent.agent_run_id}#{self._seq}"
            doc["inflight"][key] = {"agent": intent.agent, "cost_usd": worst.cost_usd, "tokens": worst.tokens}
            _write(ledger_path(self.project), doc)
            return key

    def settle(self, key: str, model: str, attempts: list[dict[str, Any]]) -> None:
        """Replace a reservation by what the spawn's attempts used (each attempt's usage dict)."""
        with self._lock:
            doc = self._doc
            if doc is None or doc["inflight"].pop(key, None) is None:
                return
            total = sum((used(a.get("model") or model, a.get("usage") or {}) for a in attempts), Spend())
            doc["cost_usd"] = round(doc["cost_usd"] + total.cost_usd, 6)
            doc["tokens"] = int(doc["tokens"] + total.tokens)
            _write(ledger_path(self.project), doc)

    def _mark(self, doc: dict[str, Any], why: str | None) -> None:
        stopped = {"code": CODE, "message": why} if why else None
        if doc.get("stopped") != stopped:
            doc["stopped"] = stopped
            _write(ledger_path(self.project), doc)


# ---------------------------------------------------------------------------- the read side
def _exec_limits(project: Path) -> Limits:
    """The budgets in ``task-exec.json`` as written (no settings, no validation: a status read)."""
    data = loomdir.read_json_object(dbmod.loom_dir(project) / "task-exec.json")
    if data is None:
        return Limits()
    cost, toks = data.get("max_cost_usd"), data.get("max_tokens")
    ok = isinstance(cost, int | float) and not isinstance(cost, bool) and cost > 0
    return Limits(float(cost) if ok else 0.0,
                  int(toks) if isinstance(toks, int) and not isinstance(toks, bool) and toks > 0 else 0)


def view(project: Path | str, task_id: str | None) -> dict[str, Any] | None:
    """What a surface shows of the task's budget: ``{max_cost_usd, max_tokens, spent_cost_usd, spent_tokens,
    text, stopped}`` (``stopped``: the words of a budget stop, else None); None when it has no budget."""
    if not task_id:
        return None
    project = Path(project)
    doc = read_ledger(project)
    if doc is not None and doc.get("task_id") != task_id:
        doc = None
    limits = _exec_limits(project)
    if doc is not None and isinstance(doc.get("limits"), dict):
        lim = doc["limits"]
        limits = Limits(_num(lim, "max_cost_usd"), int(_num(lim, "max_tokens")))
    if not limits.active:
        return None
    if doc is not None:
        spent = _spent(doc, with_reserved=False)
    else:
        from loom_core.store.read.budget import spend_at

        spent = Spend(*spend_at(dbmod.state_path(project)))
    stopped = (doc or {}).get("stopped")
    return {"max_cost_usd": limits.max_cost_usd or None, "max_tokens": limits.max_tokens or None,
            "spent_cost_usd": round(spent.cost_usd, 6), "spent_tokens": spent.tokens,
            "reserved": _spent(doc) != spent if doc is not None else False, "text": shown(limits, spent),
            "stopped": stopped.get("message") if isinstance(stopped, dict) else None}


def sync(project: Path, opts: Any) -> None:
    """Keep the task's budgets in ``task-exec.json``: a budget ``opts`` name (``loom proceed --max-cost``
    raising it) is written there; one ``opts`` leave at None is taken from there."""
    from loom_core.engine.exec_file import exec_file

    path = exec_file(Path(project))
    data = loomdir.read_json_object(path)
    if data is None:
        return
    changed = False
    for name in ("max_cost_usd", "max_tokens"):
        given = getattr(opts, name, None)
        kept = data.get(name)
        if given is None:
            ok = isinstance(kept, int | float) and not isinstance(kept, bool) and kept >= 0
            setattr(opts, name, kept if ok else None)
        elif kept != given:
            data[name], changed = given, True
    if changed:
        _write(path, data)
