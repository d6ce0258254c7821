"""The root ``loom`` group: commands come from the static table (:mod:`.table`) and each is built only when
it is used, so ``loom status`` imports and builds the status command alone, not the 25 others.

Listing, the top-level help and completing a command name read the table; resolving a name imports that
command's module and builds its click command the way typer's ``app.command()`` / ``app.add_typer()``
would, then gives its plain parameters the light converter (:mod:`.fastargs`) and its completions
(:mod:`.complete`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer._click as click
from typer._click.shell_completion import CompletionItem
from typer._click.utils import make_default_short_help
from typer.core import TyperGroup

from loom_core.surfaces.cli.table import BY_NAME, COMMANDS, Entry


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def build(entry: Entry) -> click.Command:
    """The click command for one table entry (imports its module)."""
    from typer.main import get_command_from_info, get_group_from_info
    from typer.models import CommandInfo, TyperInfo

    from loom_core.surfaces.cli.complete import attach
    from loom_core.surfaces.cli.fastargs import lighten

    obj = _load(entry.target)
    if entry.group:
        cmd: click.Command = get_group_from_info(TyperInfo(obj, name=entry.name, hidden=entry.hidden),
                                                 pretty_exceptions_short=False, rich_markup_mode=None,
                                                 suggest_commands=True)
    else:
        cls = _load(entry.cls) if entry.cls else None
        cmd = get_command_from_info(CommandInfo(name=entry.name, callback=obj, cls=cls, hidden=entry.hidden),
                                    pretty_exceptions_short=False, rich_markup_mode=None)
    lighten(cmd)  # plain values without pydantic
    attach(cmd, (entry.name,))  # dynamic completion of ids, names and keys
    return cmd


class _Commands(MutableMapping):
    """The group's ``commands``: the table's names, each built on first access; a command added by hand
    (``add_command``) is kept as given."""

    def __init__(self) -> None:
        self._built: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._built:
            if name not in BY_NAME:
                raise KeyError(name)
            self._built[name] = build(BY_NAME[name])
        return self._built[name]

    def __setitem__(self, name: str, cmd: click.Command) -> None:
        self._built[name] = cmd

    def __delitem__(self, name: str) -> None:
        raise TypeError("loom's commands cannot be removed")

    def __iter__(self) -> Iterator[str]:
        yield from BY_NAME
        yield from (n for n in self._built if n not in BY_NAME)

    def __len__(self) -> int:
        return len(set(BY_NAME) | set(self._built))

    def __contains__(self, name: object) -> bool:
        return name in BY_NAME or name in self._built


class LazyGroup(TyperGroup):
    """typer's group with commands built on demand; help and name completion from the table."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        extra = self.commands
        self.commands = _Commands()
        self.commands.update(extra)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def _rows(self) -> list[tuple[str, str]]:
        return [(e.name, e.help) for e in COMMANDS if not e.hidden]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = self._rows()
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, make_default_short_help(text, limit).strip()) for name, text in rows])

    def get_help(self, ctx: click.Context) -> str:
        text = super().get_help(ctx)
        if ctx.parent is None and not ctx.resilient_parsing:
            from loom_core.surfaces.cli import helpcache

            helpcache.store(text)  # the next `loom --help` prints it without typer
        return text

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names (with their help) from the table, then the root's options: no command module loads."""
        names = [CompletionItem(e.name, help=e.help) for e in COMMANDS
                 if not e.hidden and e.name.startswith(incomplete)]
        return names + click.Command.shell_complete(self, ctx, incomplete)
