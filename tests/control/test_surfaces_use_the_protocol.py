"""The console and the CLI ask loom only what the ControlClient protocol offers, so the HTTP plane's
client (and the Telegram / MCP adapters over it) can stand in for the in-process one."""

from __future__ import annotations

import ast
from pathlib import Path

from loom_core.control.client import ControlClient

ROOT = Path(__file__).resolve().parents[2]
SURFACES = [*sorted((ROOT / "loom_tui").rglob("*.py")), *sorted((ROOT / "loom_core" / "surfaces").rglob("*.py"))]
# wiring of the in-process client, set where it is built (the console routes engine events to itself)
WIRING = {"sink_for"}


def _is_facade(node: ast.expr) -> bool:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("control", "_control"):
        return True  # control().verb(...)
    if isinstance(node, ast.Attribute) and node.attr == "control":
        return True  # app.control.verb / self.app.control.verb
    return isinstance(node, ast.Name) and node.id in ("loom", "ctl")  # loom = control()


def verbs_used() -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for path in SURFACES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_facade(node.value):
                used.setdefault(node.attr, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return used


def protocol_members() -> set[str]:
    return {name for name in dir(ControlClient) if not name.startswith("_")}


def test_surfaces_call_only_protocol_verbs():
    used = verbs_used()
    assert len(used) > 20  # the scan sees the surfaces' calls
    missing = {verb: where for verb, where in used.items() if verb not in protocol_members() | WIRING}
    assert not missing, f"verbs used by a surface but missing from ControlClient: {missing}"


def test_the_in_process_client_implements_every_verb():
    from loom_core.control.local import LocalControl

    absent = sorted(v for v in protocol_members() if not callable(getattr(LocalControl, v, None)))
    assert not absent, absent
