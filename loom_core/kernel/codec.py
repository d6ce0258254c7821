"""Events to and from plain JSON (the tick log stores them; replay reads them back)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .types import Advance, AgentResult, AgentResults, Create, Event, Recover, UserAnswer

_KINDS = {cls.kind: cls for cls in (Create, AgentResult, AgentResults, UserAnswer, Recover, Advance)}


def encode(event: Event) -> dict[str, Any]:
    if isinstance(event, AgentResults):
        return {"kind": event.kind, "results": [encode(r) for r in event.results]}
    out = {}
    for f in dataclasses.fields(event):
        v = getattr(event, f.name)
        if f.name == "harness_findings" and not v:
            continue  # the common case keeps the payload of earlier versions
        if isinstance(v, tuple):
            v = [dict(x) if hasattr(x, "items") else x for x in v]
        elif hasattr(v, "items"):
            v = dict(v)
        out[f.name] = v
    return out


def decode(data: dict[str, Any]) -> Event:
    kind = data.get("kind")
    cls = _KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    if cls is AgentResults:
        return AgentResults(results=tuple(decode(r) for r in data["results"]))  # type: ignore[arg-type]
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            v = data[f.name]
            if isinstance(v, list):
                v = tuple(v)
            kw[f.name] = v
    return cls(**kw)
