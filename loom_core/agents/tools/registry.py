"""The tool registry: each tool's description and parameters, the JSON schema offered to the model,
argument checking, and the outcome and refusal types every tool shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

READ_TOOLS = ("read_file", "list_files", "grep")


@dataclass
class ToolOutcome:
    ok: bool
    content: str
    refused: bool = False


class BadArgs(Exception):
    pass


class Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Failed(Exception):
    """A tool-level failure with a message meant for the model."""



# name -> (description, {param: (json type, description, default or REQUIRED)})
REQUIRED = object()
TOOLS: dict[str, tuple[str, dict[str, tuple[str, str, Any]]]] = {
    "read_file": (
        "Read a text file in the project. Returns numbered lines (`number<TAB>text`) starting at `offset` "
        "(1-based), at most `limit` lines, and says when the file continues.",
        {
            "path": ("string", "File path relative to the project root.", REQUIRED),
            "offset": ("integer", "First line to return (1-based).", 1),
            "limit": ("integer", "Maximum number of lines to return.", 400),
        },
    ),
    "write_file": (
        "Create or overwrite a file in the project with `content`. Parent directories are created.",
        {
            "path": ("string", "File path relative to the project root.", REQUIRED),
            "content": ("string", "The complete new file content.", REQUIRED),
        },
    ),
    "edit_file": (
        "Replace an exact string in a file. `old_string` must occur exactly once unless `replace_all` is "
        "true; include enough surrounding context to make it unique.",
        {
            "path": ("string", "File path relative to the project root.", REQUIRED),
            "old_string": ("string", "The exact text to replace.", REQUIRED),
            "new_string": ("string", "The replacement text.", REQUIRED),
            "replace_all": ("boolean", "Replace every occurrence instead of exactly one.", False),
        },
    ),
    "list_files": (
        "List project files matching a glob, as sorted paths relative to the project root. `**/` spans "
        "directories, `*` and `?` do not. Skips .git, node_modules, dist, .loom, __pycache__, .venv.",
        {"pattern": ("string", "Glob pattern, e.g. `**/*.py` or `src/*`.", "**/*")},
    ),
    "grep": (
        "Search project text files with a Python regular expression. Returns `path:line:text` lines sorted "
        "by path then line; long results keep only the last matches.",
        {
            "pattern": ("string", "Python regular expression searched in each line.", REQUIRED),
            "glob": ("string", "Only search files matching this glob.", "**/*"),
        },
    ),
    "run_checks": (
        "Run the project's configured checks (typecheck, lint, test) and return their report.",
        {},
    ),
}
_JSON_TYPES = {"string": str, "integer": int, "boolean": bool}


def schema(params: dict[str, tuple[str, str, Any]]) -> dict:
    props: dict[str, Any] = {}
    required: list[str] = []
    for pname, (jtype, desc, default) in params.items():
        prop: dict[str, Any] = {"type": jtype, "description": desc}
        if default is REQUIRED:
            required.append(pname)
        else:
            prop["default"] = default
        if jtype == "integer":
            prop["minimum"] = 1
        props[pname] = prop
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def check_args(name: str, args: Any) -> dict[str, Any]:
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise BadArgs(f"{name}: arguments must be an object, got {type(args).__name__}")
    params = TOOLS[name][1]
    extra = sorted(str(k) for k in args if k not in params)
    if extra:
        raise BadArgs(f"{name}: unexpected argument(s): {', '.join(extra)}; "
                       f"accepted: {', '.join(params) or 'none'}")
    out: dict[str, Any] = {}
    for pname, (jtype, _desc, default) in params.items():
        if pname not in args or args[pname] is None:
            if default is REQUIRED:
                raise BadArgs(f"{name}: missing required argument '{pname}'")
            out[pname] = default
            continue
        value = args[pname]
        want = _JSON_TYPES[jtype]
        if want is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            article = "an" if jtype[0] in "aeiou" else "a"
            raise BadArgs(f"{name}: argument '{pname}' must be {article} {jtype}, got {type(value).__name__}")
        if jtype == "integer" and value < 1:
            raise BadArgs(f"{name}: argument '{pname}' must be at least 1")
        out[pname] = value
    return out
