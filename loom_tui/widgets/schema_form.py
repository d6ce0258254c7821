"""A form generated from a JSON Schema (pydantic's ``model_json_schema()``).

Objects become groups with a heading, enums a Select, booleans a Switch, numbers and strings an
Input (numbers validated as typed). Each field's ``description`` is shown as help under it, and
an error line under it shows the model's validation message after a failed save.
"""

from __future__ import annotations

import os
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.validation import Function, Integer, Number
from textual.widgets import Input, Label, Select, Static, Switch


def _deref(schema: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any] | None:
    ref = prop.get("$ref") or next((a.get("$ref") for a in prop.get("allOf", []) if "$ref" in a), None)
    if ref:
        return schema.get("$defs", {}).get(ref.rsplit("/", 1)[1])
    return None


def _base(prop: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The non-null branch of an optional field, and whether null is allowed."""
    if "anyOf" in prop:
        options = [a for a in prop["anyOf"] if a.get("type") != "null"]
        nullable = len(options) != len(prop["anyOf"])
        if len(options) == 1:
            return {**prop, **options[0]}, nullable
    return prop, False


def widget_id(dotted: str) -> str:
    return "cfg-" + dotted.replace(".", "--")


def env_name(dotted: str, prefix: str = "LOOM_") -> str:
    return prefix + dotted.upper().replace(".", "__")


class SchemaForm(VerticalScroll):
    """``values()`` → nested dict for validation; ``set_values(doc)``; ``show_errors({dotted: msg})``."""

    DEFAULT_CSS = """
    SchemaForm .form-group { text-style: bold; color: $accent; margin-top: 1; }
    SchemaForm .form-group-help { color: $text-muted; }
    SchemaForm .form-row { height: auto; }
    SchemaForm .form-label { width: 18; padding-right: 1; }
    SchemaForm .form-row Input, SchemaForm .form-row Select { width: 1fr; }
    SchemaForm .form-help { color: $text-muted; padding-left: 18; }
    SchemaForm .form-error { color: $error; padding-left: 18; display: none; }
    SchemaForm .form-error.-shown { display: block; }
    SchemaForm .form-note { color: $text-muted; padding-left: 18; }
    """

    def __init__(self, schema: dict[str, Any], *, notes: dict[str, str] | None = None, env_prefix: str = "LOOM_",
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.schema = schema
        self.notes = notes or {}
        self.env_prefix = env_prefix
        self.fields: dict[str, tuple[str, dict[str, Any], bool]] = {}  # dotted -> (kind, prop, nullable)

    # ------------------------------------------------------------------ build
    def compose(self) -> ComposeResult:
        yield from self._build(self.schema.get("properties", {}), ())

    def _build(self, props: dict[str, Any], path: tuple[str, ...]) -> ComposeResult:
        scalars = [(n, p) for n, p in props.items() if _deref(self.schema, p) is None]
        groups = [(n, p) for n, p in props.items() if _deref(self.schema, p) is not None]
        for name, prop in scalars + groups:  # a section's own fields before its sub-sections
            dotted = ".".join(path + (name,))
            sub = _deref(self.schema, prop)
            if sub is not None:
                yield Static(dotted, classes="form-group")
                help_text = prop.get("description") or sub.get("description")
                if help_text:
                    yield Static(help_text, classes="form-group-help", markup=False)
                yield from self._build(sub.get("properties", {}), path + (name,))
                continue
            yield from self._field(dotted, name, prop)

    def _field(self, dotted: str, name: str, prop: dict[str, Any]) -> ComposeResult:
        base, nullable = _base(prop)
        title = prop.get("title") or name
        help_text = prop.get("description") or ""
        env = env_name(dotted, self.env_prefix)
        wid = widget_id(dotted)
        if base.get("type") == "object" and "properties" not in base:
            self.fields[dotted] = ("map", base, nullable)
            with Horizontal(classes="form-row"):
                yield Label(title, classes="form-label")
                yield Static(self._map_note(dotted, {}), id=wid, classes="form-map", markup=False)
        else:
            if "enum" in base:
                kind = "enum"
                widget: Any = Select([(str(v), v) for v in base["enum"]], allow_blank=nullable, id=wid,
                                     compact=True, prompt="(none)" if nullable else "Select", value=base.get("default", Select.NULL)
                                     if base.get("default") is not None else Select.NULL)
            elif base.get("type") == "boolean":
                kind = "bool"
                widget = Switch(bool(base.get("default")), id=wid, animate=False)
            elif base.get("type") in ("integer", "number"):
                kind = base["type"]
                lo = base.get("minimum")
                hi = base.get("maximum")
                checks: list[Any] = [(Integer if kind == "integer" else Number)(minimum=lo, maximum=hi)]
                if "exclusiveMinimum" in base:
                    xm = base["exclusiveMinimum"]
                    checks.append(Function(lambda s, xm=xm: _num(s) is not None and _num(s) > xm,
                                           f"must be greater than {xm}"))
                widget = Input(_text(base.get("default")), id=wid, type=kind, validators=checks,
                               valid_empty=True, compact=True, placeholder=f"default {base.get('default')}")
            else:
                kind = "string"
                default = base.get("default")
                widget = Input(_text(default), id=wid, compact=True,
                               placeholder="(empty = default)" if default in (None, "") else f"default {default}")
            self.fields[dotted] = (kind, base, nullable)
            with Horizontal(classes="form-row"):
                yield Label(title, classes="form-label")
                yield widget
        if help_text:
            yield Static(help_text, classes="form-help", markup=False, id=f"{wid}-help")
        if os.environ.get(env) is not None:
            yield Static(f"overridden now by ${env}={os.environ[env]!r}", classes="form-note", markup=False)
        yield Static("", classes="form-error", id=f"{wid}-error", markup=False)

    def _map_note(self, dotted: str, value: dict[str, Any]) -> str:
        if dotted in self.notes:
            return self.notes[dotted]
        keys = ", ".join(sorted(value)[:4]) + (" …" if len(value) > 4 else "")
        return (f"{len(value)} set ({keys})" if value else "none set") + f" — `loom config set {dotted}.<key>`"

    # ------------------------------------------------------------------ values
    def set_values(self, doc: dict[str, Any]) -> None:
        for dotted, (kind, _prop, _nullable) in self.fields.items():
            value = _get(doc, dotted)
            w = self.query_one(f"#{widget_id(dotted)}")
            if kind == "map":
                w.update(self._map_note(dotted, value or {}))
            elif kind == "enum":
                w.value = value if value is not None else Select.NULL
            elif kind == "bool":
                w.value = bool(value)
            else:
                w.value = _text(value)
        self.clear_errors()

    def values(self) -> dict[str, Any]:
        """A nested document from the widgets; empty inputs are left out (the default applies),
        or set to null where the field allows it."""
        doc: dict[str, Any] = {}
        for dotted, (kind, _prop, nullable) in self.fields.items():
            if kind == "map":
                continue
            w = self.query_one(f"#{widget_id(dotted)}")
            if kind == "enum":
                if w.value is Select.NULL or w.value is Select.BLANK:
                    if nullable:
                        _put(doc, dotted, None)
                    continue
                _put(doc, dotted, w.value)
            elif kind == "bool":
                _put(doc, dotted, bool(w.value))
            else:
                raw = w.value.strip()
                if raw == "":
                    if nullable:
                        _put(doc, dotted, None)
                    continue
                _put(doc, dotted, raw)
        return doc

    def map_keys(self) -> list[str]:
        """Open maps the form shows but does not edit (their values are kept as they are)."""
        return [d for d, (kind, _p, _n) in self.fields.items() if kind == "map"]

    def clear_errors(self) -> None:
        for err in self.query(".form-error"):
            err.update("")
            err.remove_class("-shown")

    def show_errors(self, errors: dict[str, str]) -> list[str]:
        """Show each message under its field; returns the keys that have no field here."""
        self.clear_errors()
        unplaced = []
        first = None
        for dotted, msg in errors.items():
            if dotted not in self.fields:
                unplaced.append(dotted)
                continue
            err = self.query_one(f"#{widget_id(dotted)}-error", Static)
            err.update(f"✗ {msg}")
            err.add_class("-shown")
            first = first or dotted
        if first:
            w = self.query_one(f"#{widget_id(first)}")
            w.focus()
            self.scroll_to_widget(w)
        return unplaced


def _num(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _get(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for p in dotted.split("."):
        node = node.get(p) if isinstance(node, dict) else None
    return node


def _put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = doc
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
