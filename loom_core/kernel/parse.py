"""Extract a JSON header from free model text and validate it by output kind.

Never raises on model text: every outcome is a ``Parsed`` value, either ``ok`` with the
header or a failure kind (``no-json`` | ``json-parse`` | ``schema-field``) and a short excerpt.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

_FENCE = re.compile(r"```[^\n`]*\n(.*?)```", re.S)
MAX_INT_DIGITS = 4000  # below Python's int/str conversion limit (4300 digits)
MAX_LINE = 2**31 - 1  # a line number fits the store's INTEGER column with room to spare

SEVERITY_SYNONYMS = {
    "blocking": "blocking", "blocker": "blocking", "critical": "blocking", "high": "blocking",
    "error": "blocking", "severe": "blocking", "fatal": "blocking", "must-fix": "blocking",
    "warn": "warn", "warning": "warn", "medium": "warn", "major": "warn", "moderate": "warn",
    "should-fix": "warn",
    "info": "info", "low": "info", "minor": "info", "nit": "info", "note": "info",
    "suggestion": "info", "trivial": "info", "informational": "info",
}


@dataclass(frozen=True)
class Parsed:
    ok: bool
    header: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None  # no-json | json-parse | schema-field
    detail: str = ""
    excerpt: str = ""


def _int_or_none(text: str) -> int | None:
    """JSON integers longer than Python converts (4300 digits) become null instead of an error."""
    return int(text) if len(text) <= MAX_INT_DIGITS else None


def _finite_or_none(text: str) -> float | None:
    """``1e999`` and the non-standard ``NaN`` / ``Infinity`` become null: the store keeps strict JSON."""
    value = float(text)
    return value if math.isfinite(value) else None


def _loads(text: str) -> Any:
    return json.loads(text, parse_int=_int_or_none, parse_float=_finite_or_none, parse_constant=lambda _c: None)


def _balanced_objects(text: str, limit: int = 5) -> list[str]:
    out: list[str] = []
    depth = 0
    start = -1
    in_str = False
    esc = False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                out.append(text[start : i + 1])
                if len(out) >= limit:
                    break
    return out


def extract_json(text: str) -> tuple[dict[str, Any] | None, str | None, str]:
    """Return (object, failure_kind, detail)."""
    if not isinstance(text, str) or not text.strip():
        return None, "no-json", "empty output"
    candidates: list[str] = []
    for m in _FENCE.finditer(text):
        body = m.group(1).strip()
        if body.startswith("{"):
            candidates.append(body)
    candidates.append(text.strip())
    candidates.extend(_balanced_objects(text))
    saw_brace = False
    last_err = ""
    for cand in candidates:
        if not cand.startswith("{"):
            continue
        saw_brace = True
        try:
            value = _loads(cand)
        except (ValueError, RecursionError) as exc:
            last_err = str(exc)
            continue
        if isinstance(value, dict):
            return value, None, ""
    if saw_brace or "{" in text:
        return None, "json-parse", last_err or "no balanced JSON object"
    return None, "no-json", "no JSON object in output"


def excerpt(text: str, limit: int = 400) -> str:
    text = text if isinstance(text, str) else repr(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def normalise_severity(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return SEVERITY_SYNONYMS.get(value.strip().lower())


def _as_int(value: Any) -> int | None:
    """A line number: a non-negative int (or a string of ASCII digits) up to ``MAX_LINE``, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_LINE)):
            return None
        value = int(text)
    if isinstance(value, int) and 0 <= value <= MAX_LINE:
        return value
    return None


def _as_str(value: Any, limit: int = 4000) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, default=str)
    return value[:limit]


def normalise_finding(raw: Any) -> tuple[dict[str, Any] | None, str]:
    if not isinstance(raw, dict):
        return None, f"finding is {type(raw).__name__}, expected object"
    sev = normalise_severity(raw.get("severity"))
    if sev is None:
        return None, f"finding severity {raw.get('severity')!r} is not blocking|warn|info"
    line = _as_int(raw.get("line_start", raw.get("line")))
    return {
        "severity": sev,
        "file": _as_str(raw.get("file"), 1000),
        "line_start": line,
        "line_end": _as_int(raw.get("line_end")) or line,
        "category": _as_str(raw.get("category"), 200) or "general",
        "summary": _as_str(raw.get("summary") or raw.get("message") or raw.get("title")) or "",
        "evidence_excerpt": _as_str(raw.get("evidence_excerpt") or raw.get("evidence")),
        "suggested_fix": _as_str(raw.get("suggested_fix") or raw.get("fix")),
    }, ""


def parse_output(output_kind: str, text: str) -> Parsed:
    header, failure, detail = extract_json(text)
    if header is None:
        return Parsed(False, failure=failure, detail=detail, excerpt=excerpt(text))
    if output_kind in ("reviewer", "validator"):
        verdict = header.get("verdict")
        if not isinstance(verdict, str) or not verdict.strip():
            return Parsed(False, failure="schema-field",
                          detail=f"field 'verdict': expected non-empty string, got {type(verdict).__name__}",
                          excerpt=excerpt(text))
        findings = header.get("findings")
        if findings is None and output_kind == "validator":
            findings = []
        if not isinstance(findings, list):
            return Parsed(False, failure="schema-field",
                          detail=f"field 'findings': expected array, got {type(findings).__name__}",
                          excerpt=excerpt(text))
        norm = []
        for i, raw in enumerate(findings):
            f, why = normalise_finding(raw)
            if f is None:
                return Parsed(False, failure="schema-field", detail=f"findings[{i}]: {why}",
                              excerpt=excerpt(text))
            norm.append(f)
        header = dict(header, findings=norm, verdict=verdict.strip().upper())
    return Parsed(True, header=header)
