"""The command table (loom_core/surfaces/cli/table.py) says what the commands themselves say: the root help
and completion read the table, so a changed docstring or a new command must be written there too."""

from __future__ import annotations

import pytest
import typer._click as click
from typer.core import TyperGroup
from typer.main import get_command

from loom_core.surfaces.cli import complete
from loom_core.surfaces.cli.app import app
from loom_core.surfaces.cli.lazy import build
from loom_core.surfaces.cli.table import COMMANDS


@pytest.fixture(scope="module")
def built() -> dict[str, click.Command]:
    return {e.name: build(e) for e in COMMANDS}


@pytest.mark.parametrize("entry", COMMANDS, ids=lambda e: e.name)
def test_each_line_matches_its_command(entry, built):
    cmd = built[entry.name]
    assert cmd.name == entry.name
    assert cmd.get_short_help_str(10**6) == entry.help, "update the table's help to the command's first sentence"
    assert cmd.hidden == entry.hidden
    assert isinstance(cmd, TyperGroup) == entry.group


@pytest.mark.parametrize("width", [50, 64, 78, 120])
def test_root_help_from_the_table_is_the_help_of_the_built_commands(width, built):
    """The lazy root renders the same Commands section as typer's group over every built command."""
    root = get_command(app)
    lazy = click.Context(root, info_name="loom", terminal_width=width, max_content_width=width)
    lazy_help = root.get_help(lazy)
    eager = TyperGroup(name="loom", commands=dict(built), params=root.params, help=root.help,
                       invoke_without_command=True, rich_markup_mode=None)
    ctx = click.Context(eager, info_name="loom", terminal_width=width, max_content_width=width)
    assert lazy_help == eager.get_help(ctx)
    assert "status " in lazy_help and "mcp" not in lazy_help


def test_every_completion_names_a_real_parameter(built):
    """A renamed argument or command would silently lose its completion."""
    def params(cmd: click.Command, path: tuple[str, ...]):
        for p in cmd.params:
            yield (*path, p.name), p
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from params(sub, (*path, name))

    found = dict(kv for name, cmd in built.items() for kv in params(cmd, (name,)))
    missing = [key for key in complete.BY_COMMAND if key not in found]
    assert not missing
    for key in complete.BY_COMMAND:
        assert found[key]._custom_shell_complete is not None, key
    by_name = {key[-1] for key in found}
    assert set(complete.BY_PARAM) <= by_name


def test_the_written_out_lists_match_their_sources():
    from loom_core.control import LocalControl, complexity_names, policy_names
    from loom_core.control.client import DECISIONS, RECOVERIES

    loom = LocalControl()
    words = loom.completion_words()
    agents = [r["agent"] for r in loom.models("code")]
    assert words["agents"] == agents and "implementer" in agents
    keys = set(words["config_keys"])
    assert {k for k in loom.config_keys() if "<agent>" not in k} <= keys and f"models.{agents[0]}" in keys
    assert complete.POLICIES == policy_names()
    assert complete.COMPLEXITIES == complexity_names("code")
    assert complete.DECISIONS == tuple(DECISIONS) and complete.RECOVERIES == tuple(RECOVERIES)
