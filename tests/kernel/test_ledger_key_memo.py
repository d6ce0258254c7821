"""INV_013 parses only ledger keys it has not already found well-formed; the memo must never hide a bad key."""

from __future__ import annotations

from loom_core.kernel import invariants as invmod
from loom_core.kernel.state import TaskState, View


def _inv013(keys) -> str | None:
    check = next(i for i in invmod.KERNEL_INVARIANTS if i.id == "INV_013").check
    return check(View(TaskState(ledger_keys=keys), "2026-01-01T00:00:00.000Z"))


def test_a_bad_key_is_caught_after_good_sets_were_remembered():
    good = frozenset({"task-create:a", "agent-result:r1"})
    assert _inv013(good) is None
    assert _inv013(good | {"agent-result:r2"}) is None
    assert "bogus" in (_inv013(good | {"bogus"}) or "")
    assert "nocolon" in (_inv013(frozenset({"nocolon"})) or "")  # another task's ledger
    assert _inv013(good) is None


def test_a_mutable_key_set_is_not_trusted_later():
    keys = {"task-create:a"}
    assert _inv013(keys) is None
    keys.add("agent-result:")  # empty suffix, added to the very set that passed
    assert "agent-result:" in (_inv013(keys) or "")
