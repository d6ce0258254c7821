"""The project catalog (``<loom home>/workspace.json``): the projects the console shows."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loom_core.config.paths import atomic_write, catalog_path
from loom_core.errors import ConfigError

_LOCK = threading.Lock()


def project_id(path: Path | str) -> str:
    return hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:12]


@dataclass
class Project:
    id: str
    dir: str
    label: str | None = None
    bundle: str | None = None
    added_at: str | None = None
    pinned: bool = False

    @classmethod
    def at(cls, path: Path | str) -> Project:
        """A project outside the catalog (the CLI works on any directory); same id as if it were in it."""
        resolved = Path(path).resolve()
        return cls(id=project_id(resolved), dir=str(resolved))

    @property
    def name(self) -> str:
        return self.label or Path(self.dir).name

    @property
    def path(self) -> Path:
        return Path(self.dir)


@dataclass
class Catalog:
    projects: list[Project] = field(default_factory=list)
    path: Path | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        path = path or catalog_path()
        if not path.exists():
            return cls([], path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data.get("projects", []) if isinstance(data, dict) else None
            if not isinstance(rows, list):
                raise ValueError("'projects' must be a list")
            projects = [Project(**{k: v for k, v in r.items() if k in Project.__dataclass_fields__}) for r in rows]
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path} is not a valid project catalog ({exc}); fix or remove it") from exc
        return cls(projects, path)

    def save(self) -> None:
        assert self.path is not None
        atomic_write(self.path, json.dumps({"projects": [asdict(p) for p in self.projects]}, indent=2) + "\n")

    def get(self, ref: str) -> Project | None:
        for p in self.projects:
            if p.id == ref or p.dir == ref:
                return p
        try:
            pid = project_id(ref)
        except OSError:
            return None
        return next((p for p in self.projects if p.id == pid), None)

    def add(self, directory: Path | str, *, label: str | None = None, now: str | None = None,
            create: bool = False) -> Project:
        path = Path(directory).expanduser()
        if not path.exists():
            if not create:
                raise ConfigError(f"{path} does not exist")
            path.mkdir(parents=True)
        if not path.is_dir():
            raise ConfigError(f"{path} is not a directory")
        path = path.resolve()
        with _LOCK:
            existing = self.get(str(path))
            if existing:
                if label:
                    existing.label = label
                self.save()
                return existing
            proj = Project(project_id(path), str(path), label, None, now)
            self.projects.append(proj)
            self.save()
            return proj

    def remove(self, ref: str) -> Project | None:
        with _LOCK:
            proj = self.get(ref)
            if proj is None:
                return None
            self.projects = [p for p in self.projects if p.id != proj.id]
            self.save()
            return proj
