"""Answers for shell completion: small, read-only, and quick enough for every Tab (plain sqlite3 and the
history index; no engine, no ORM, no settings model)."""

from __future__ import annotations

from typing import Any


class CompletionVerbs:
    def task_refs(self, ref: Any) -> list[dict[str, str]]:
        """The task ids ``loom replay`` and ``loom verify --task`` accept: the live task's first (if there is
        one), then the archived ones, newest first. Each ``{"ref", "label"}``."""
        from loom_core.control.words import ended_line
        from loom_core.store import db as dbmod
        from loom_core.store.archive import history
        from loom_core.store.read import task_id

        proj = self._path(ref)  # type: ignore[attr-defined]
        out = []
        live = dbmod.state_path(proj)
        tid = task_id(live) if live.is_file() else None
        if tid:
            out.append({"ref": tid, "label": "the live task"})
        for entry in reversed(history(proj)):
            if "raw" in entry or not entry.get("ref"):
                continue
            said = [ended_line(entry.get("status"), entry.get("verdict"), entry.get("work_result")),
                    str(entry.get("task_short") or "")]
            out.append({"ref": str(entry["ref"]), "label": " — ".join(w for w in said if w)})
        return out

    def completion_words(self) -> dict[str, list[str]]:
        """``config_keys`` (every settable key, ``<agent>`` spelled out per agent) and ``agents`` (the code
        bundle's), for completion. Loading the settings model and the bundle costs ~0.3 s, so the answer is
        kept under the cache dir until loom's config or bundle code changes (its files' sizes and times)."""
        import json

        from loom_core.config import cachefile
        from loom_core.config.paths import cache_dir

        path = cache_dir() / "completion-words.json"
        stamp = _stamp()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("stamp") == stamp:
                return {"config_keys": list(data["config_keys"]), "agents": list(data["agents"])}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        agents = [row["agent"] for row in self.models("code")]  # type: ignore[attr-defined]
        keys = [k.replace("<agent>", a) for k in self.config_keys()  # type: ignore[attr-defined]
                for a in (agents if "<agent>" in k else [""])]
        try:
            cachefile.write(path, json.dumps({"stamp": stamp, "config_keys": keys, "agents": agents}))
        except OSError:
            pass  # no cache: the next Tab loads them again
        return {"config_keys": keys, "agents": agents}


def _stamp() -> str:
    """loom's version and the size and time of every file of the config and bundles packages."""
    import os
    import zlib

    import loom_core.bundles
    import loom_core.config
    from loom_core import __version__
    from loom_core.config.cachefile import stamps

    names, paths = [], []
    for pkg in (loom_core.config, loom_core.bundles):
        for top in pkg.__path__:
            for root, dirs, files in os.walk(top):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for name in sorted(files):
                    names.append(name)
                    paths.append(os.path.join(root, name))
    parts = [f"{name}:{stamp}" for name, stamp in zip(names, stamps(paths), strict=True)]
    return f"{__version__}-{zlib.crc32(' '.join(parts).encode()):08x}-{len(parts)}"
