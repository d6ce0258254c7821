"""Plain conversion for plain arguments, so a command does not import pydantic to read a string.

typer (0.29) converts every non-flag value through a pydantic ``TypeAdapter`` built on first use; the import
and schema build cost ~60 ms per process — most of ``loom status``'s start-up. For parameters annotated
``str``, ``int``, ``float`` or ``Path`` (optionally ``| None``) without typer-side bounds, :func:`lighten`
gives each parameter a converter of the same contract (the value, or ``BadParameter`` with a plain message).
Anything else (enums, lists, bounded numbers) keeps typer's own conversion. If typer's internals move, the
command tree is left untouched: slower, never wrong.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

PLAIN = {str: "text", int: "integer", float: "number", Path: "path", bool: "true/false value"}
# ParameterInfo fields whose non-default value means typer validates more than the type
TYPER_CHECKS = {"min": None, "max": None, "clamp": False, "count": False, "parser": None, "click_type": None,
                "writable": False, "readable": True,
                "allow_dash": False, "path_type": None, "formats": None}
TRUE, FALSE = {"1", "true", "yes", "y", "on"}, {"0", "false", "no", "n", "off"}


def _plain_base(annotation: Any) -> tuple[type, bool] | None:
    """(base type, is a list) when the annotation is plain enough, else None."""
    if annotation in PLAIN:
        return annotation, False
    if typing.get_origin(annotation) is list and len(typing.get_args(annotation)) == 1 \
            and typing.get_args(annotation)[0] in PLAIN:
        return typing.get_args(annotation)[0], True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _plain_base(args[0])
    return None


def _converter_class() -> type | None:
    try:
        from dataclasses import dataclass

        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
    except ImportError:  # typer moved its internals: keep its own conversion
        return None

    @dataclass(frozen=True)
    class PlainParam(RuntimeParam):
        base: type = str
        many: bool = False

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.many:
                return [self._one(v, param, ctx) for v in value]
            return self._one(value, param, ctx)

        def _one(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, self.base) and not (self.base is int and isinstance(value, bool)):
                return value
            if self.base is Path:
                return self._path(Path(value), param, ctx)
            if self.base is bool:
                word = str(value).strip().lower()
                if word in TRUE | FALSE:
                    return word in TRUE
                raise BadParameter(f"'{value}' is not a valid {PLAIN[bool]}.", ctx=ctx, param=param)
            try:
                return self.base(value)
            except (TypeError, ValueError):
                raise BadParameter(f"'{value}' is not a valid {PLAIN[self.base]}.", ctx=ctx, param=param) from None

        def _path(self, path: Path, param: Any, ctx: Any) -> Path:
            info = self.parameter_info
            if getattr(info, "resolve_path", False):
                path = path.resolve()
            if getattr(info, "exists", False) and not path.exists():
                raise BadParameter(f"Path '{path}' does not exist.", ctx=ctx, param=param)
            if path.exists() and not getattr(info, "dir_okay", True) and path.is_dir():
                raise BadParameter(f"Path '{path}' is a directory.", ctx=ctx, param=param)
            if path.exists() and not getattr(info, "file_okay", True) and not path.is_dir():
                raise BadParameter(f"Path '{path}' is a file.", ctx=ctx, param=param)
            return path

    return PlainParam


def lighten(command: Any, *, deep: bool = True) -> int:
    """Give every plain parameter in ``command``'s tree (``deep``; else the command's own) the plain converter;
    returns how many."""
    cls = _converter_class()
    if cls is None:
        return 0
    from typer._click import Context

    done = 0
    todo = [command]
    while todo:
        cmd = todo.pop()
        if deep:
            todo.extend(getattr(cmd, "commands", {}).values())
        params = list(getattr(cmd, "params", ()))
        try:  # the --help option is made (and cached on the command) when first parsed: make it now
            params.append(cmd.get_help_option(Context(cmd, **(cmd.context_settings or {}))))
        except Exception:  # noqa: BLE001 - keep typer's own
            pass
        for param in params:
            desc = getattr(param, "type_descriptor", None)
            if desc is None or getattr(param, "_runtime_param", "absent") is not None:
                continue  # not typer's, or already built
            info = desc.parameter_info
            if desc.file_annotation is not None or any(getattr(info, k, v) != v for k, v in TYPER_CHECKS.items()):
                continue  # typer checks something beyond the type (bounds, a path that must exist…): keep its own
            plain = _plain_base(desc.annotation)
            if plain is None:
                continue
            param._runtime_param = cls(parameter_info=info, annotation=desc.annotation, base=plain[0], many=plain[1])
            done += 1
    return done
