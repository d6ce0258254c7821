"""The submit form, the first-run guide and the settings read their names from the registries through the
facade (backends from agents/registry, policies from the kernel, complexities from the bundle), and those
screens import nothing of loom but the facade, the config and the errors."""

from __future__ import annotations

import ast
import asyncio
import tomllib
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, Select

from loom_core.agents import registry
from loom_core.bundles import load_bundle
from loom_core.config import paths
from loom_core.control.catalog import Catalog
from loom_core.kernel.gates import BUILTIN_POLICIES, PRESETS
from loom_tui.app import make_app

ROOT = Path(__file__).resolve().parents[2]
SIZE = (100, 40)


async def _settle(pilot, until=lambda: True, tries: int = 100) -> None:
    for _ in range(tries):
        await pilot.pause(0.05)
        if until():
            return


def _values(select: Select) -> list:
    return [value for _label, value in select._options]


def test_the_submit_form_offers_the_registrys_backends_and_the_kernels_and_bundles_names(tmp_path, no_keyring,
                                                                                        monkeypatch):
    from loom_tui.screens.submit import SubmitScreen

    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    catalog = Catalog([], tmp_path / "workspace.json")
    pid = catalog.add(tmp_path).id

    async def go():
        app = make_app(catalog, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            app.push_screen(SubmitScreen(pid))
            await _settle(pilot, lambda: isinstance(app.screen, SubmitScreen))
            form = app.screen
            backend = form.query_one("#submit-backend", Select)
            assert _values(backend) == list(registry.choices())
            assert _values(form.query_one("#submit-policy", Select)) == [None, *BUILTIN_POLICIES, *PRESETS]
            assert _values(form.query_one("#submit-complexity", Select)) == [
                None, *load_bundle("code").complexity_flows.map]
            # the probe says why a backend cannot run here (no key stored for OpenRouter)
            await _settle(pilot, lambda: any("loom secrets set openrouter" in str(label)
                                             for label, _ in backend._options))

    asyncio.run(go())


def test_the_first_run_guide_offers_the_registrys_backends_and_asks_a_key_where_one_is_needed(tmp_path, no_keyring):
    from loom_tui.screens.wizard import WizardScreen

    async def go():
        app = make_app(Catalog([], tmp_path / "workspace.json"), watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await _settle(pilot, lambda: isinstance(app.screen, WizardScreen))
            options = app.screen.query_one(OptionList)
            ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
            assert ids == ["demo", "auto"] + [n for n in registry.names() if n != "demo"]
            options.highlighted = ids.index("openrouter")
            await pilot.press("enter")
            key = app.screen.query_one("#wizard-key", Input)
            await _settle(pilot, lambda: key.has_focus)
            await pilot.press(*"sk-or-secret", "enter")
            await _settle(pilot, lambda: app.control.secrets()["secrets"] != [])

    asyncio.run(go())
    assert tomllib.loads(paths.config_path().read_text())["backend"] == "openrouter"
    from loom_core.config.secrets import SecretStore

    assert SecretStore().get("openrouter") == "sk-or-secret"


FACADE = ("loom_core.control", "loom_core.config", "loom_core.errors")


@pytest.mark.parametrize("module", ["settings", "wizard", "submit"])
def test_these_screens_use_only_the_facade(module):
    base = ROOT / "loom_tui" / "screens"
    files = [base / f"{module}.py"] if (base / f"{module}.py").exists() else sorted((base / module).glob("*.py"))
    assert files
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name.startswith("loom_core"):
                    assert name.startswith(FACADE), f"{f.name} imports {name}"
