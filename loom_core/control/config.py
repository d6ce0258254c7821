"""Settings, secrets, models and backends: the verbs behind ``loom config`` / ``loom secrets`` /
``loom models`` and the console's settings screen.

:class:`ConfigVerbs` is mixed into :class:`~loom_core.control.local.LocalControl`; a remote client
serves the same verbs. Values cross as JSON-able data (dicts, lists, strings), never pydantic models,
so a surface needs neither pydantic nor the store. Secret values go in and never come back out: reads
return names and masks only. Every write is validated first; a bad value raises
:class:`~loom_core.errors.ConfigError` (``code="USAGE"`` for a bad key or value, with
``detail["errors"]``: dotted key → message for a whole document).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loom_core.errors import ConfigError

MAPS = ("models", "fallbacks")
"""Open maps (agent → model) the settings form does not edit: a document save keeps them as on disk."""


def backend_names() -> tuple[str, ...]:
    """Every backend name ``--backend`` and ``backend =`` accept, ``auto`` first (no heavy import)."""
    from loom_core.agents.registry import choices

    return choices()


def backend_help() -> str:
    """The ``--backend`` help text, from the registry."""
    from loom_core.agents.registry import help_text

    return help_text()


def policy_names() -> tuple[str, ...]:
    """Gate policies (every gate) then the kernel's presets (one policy per gate role)."""
    from loom_core.kernel.gates import BUILTIN_POLICIES, PRESETS

    return tuple(BUILTIN_POLICIES) + tuple(PRESETS)


def complexity_names(bundle: str = "code") -> tuple[str, ...]:
    """The sizes a task of ``bundle`` can be pinned to (its complexity → flow map); () if it has none."""
    from loom_core.bundles import load_bundle

    flows = load_bundle(bundle).complexity_flows
    return tuple(flows.map) if flows is not None else ()


class ConfigVerbs:
    """Settings, secrets and models verbs. Needs no state of its own; ``secret_store`` may be replaced."""

    # ------------------------------------------------------------------ settings
    def config(self, *, file_only: bool = False) -> dict[str, Any]:
        """The effective settings (file › environment › defaults), or with ``file_only`` what the file says
        over the defaults (the base an edit starts from)."""
        if not file_only:
            from loom_core.config.remembered import effective

            return effective()  # the settings model only when something changed
        from loom_core.config import settings as cfg

        return cfg.load_file_settings().model_dump(mode="json")

    def config_text(self) -> str:
        """The effective settings as TOML (what ``loom config get`` prints)."""
        from loom_core.config.toml_out import to_toml

        return to_toml(self.config()).rstrip()

    def config_get(self, key: str) -> Any:
        """One dotted key's effective value (``general.max_spawns``, ``models.planner``); unknown → USAGE."""
        from loom_core.config.remembered import get_key  # the settings model only when something changed

        return get_key(key)

    def config_set(self, key: str, value: str) -> Any:
        """Set one key in the file from its text form ("" resets it); returns the effective value after."""
        from loom_core.config.settings import get_key, set_key

        set_key(key, value)
        return get_key(key)

    def config_keys(self) -> list[str]:
        from loom_core.config.settings import valid_keys

        return valid_keys()

    def config_key_help(self) -> dict[str, str]:
        """Every settable key with its one-line description."""
        from loom_core.config.settings import key_help

        return key_help()

    def config_source(self, key: str) -> str:
        """Where the key's effective value comes from: ``env NAME``, ``file PATH`` or ``default``."""
        from loom_core.config.settings import key_source

        return key_source(key)

    def config_schema(self) -> dict[str, Any]:
        """The settings' JSON schema (every field with its help text), for a generated form."""
        from loom_core.config.settings import LoomSettings

        return LoomSettings.model_json_schema()

    def config_path(self) -> Path:
        from loom_core.config.paths import config_path

        return config_path()

    def config_check(self, doc: dict[str, Any]) -> dict[str, str]:
        """Validate a whole settings document without writing: dotted key → message ({} when valid)."""
        from pydantic import ValidationError

        from loom_core.config.settings import error_map, validate_document

        try:
            validate_document(doc)
        except ValidationError as exc:
            return error_map(exc)
        return {}

    def config_save(self, doc: dict[str, Any], *, keep: tuple[str, ...] = MAPS) -> dict[str, Any]:
        """Validate ``doc`` and write it as the settings file; the ``keep`` sections are taken from the file
        as it is now (another surface may have changed them). Returns what was written (defaults filled)."""
        from pydantic import ValidationError

        from loom_core.config import settings as cfg

        doc = dict(doc)
        if keep:
            current = cfg.load_file_settings().model_dump(mode="json")
            doc.update({k: current.get(k) for k in keep})
        try:
            settings = cfg.validate_document(doc)
        except ValidationError as exc:
            errors = cfg.error_map(exc)
            raise ConfigError("not saved: " + "; ".join(f"{k}: {m}" for k, m in errors.items()), code="USAGE",
                              errors=errors) from None
        cfg.save_settings(settings)
        return settings.model_dump(mode="json")

    # ------------------------------------------------------------------ secrets
    def secret_store(self) -> Any:
        from loom_core.config.secrets import SecretStore

        return SecretStore()

    def secrets(self) -> dict[str, Any]:
        """``{"where": …, "secrets": [(name, masked value), …]}``: never a value."""
        store = self.secret_store()
        return {"where": store.describe(), "secrets": store.masked()}

    def set_secret(self, name: str, value: str) -> dict[str, str]:
        """Store a secret (refer to it as ``secret:<name>``); returns its name, mask and where it went."""
        from loom_core.config.secrets import mask

        store = self.secret_store()
        store.set(name, value)
        return {"name": name, "masked": mask(value), "where": store.describe()}

    def unset_secret(self, name: str) -> bool:
        """Delete a stored secret; ``False`` when there was none."""
        return self.secret_store().unset(name)

    # ------------------------------------------------------------------ models
    def models(self, bundle: str = "code", *, stray: bool = False) -> list[dict[str, Any]]:
        """One row per agent of ``bundle``: ``agent``, ``default`` (the bundle's ref), ``override`` (or None),
        ``ref`` (the effective one), ``model`` (a tier resolved), ``source``, ``fallbacks``. With ``stray``,
        overrides for agents the bundle does not have follow (``default`` None, source ``unknown-agent``)."""
        from loom_core.bundles import load_bundle
        from loom_core.config.settings import load_settings

        b = load_bundle(bundle)
        s = load_settings()
        tiers = b.default_model_tiers

        def row(agent: str, default: str | None) -> dict[str, Any]:
            override = s.models.get(agent)
            ref = override or default or ""
            source = "override" if override else "bundle-default"
            if default is None:
                source = "unknown-agent"
            return {"agent": agent, "default": default, "override": override, "ref": ref,
                    "model": tiers.get(ref, ref), "source": source, "fallbacks": s.fallbacks.get(agent, [])}

        rows = [row(name, agent.default_model) for name, agent in b.agents.items()]
        if stray:
            rows += [row(name, None) for name in s.models if name not in b.agents]
        return rows

    def set_model(self, agent: str, ref: str, bundle: str = "code") -> dict[str, Any]:
        """Pin ``agent`` to ``ref`` (``provider:model`` or a tier; "" back to the bundle default); returns
        the agent's row after. An agent the bundle does not have may only be cleared."""
        from loom_core.bundles import load_bundle
        from loom_core.config.settings import set_key

        roster = load_bundle(bundle).agents
        if agent not in roster and ref.strip():
            raise ConfigError(f"unknown agent '{agent}'; agents: {', '.join(sorted(roster))}", code="USAGE")
        set_key(f"models.{agent}", ref)
        return next((r for r in self.models(bundle, stray=True) if r["agent"] == agent),
                    {"agent": agent, "override": None})

    # ------------------------------------------------------------------ backends, policies, complexities
    def backends(self, *, check: bool = True) -> list[dict[str, Any]]:
        """Each backend (``auto`` first): ``name``, ``label``, ``about``, ``needs_key``, and whether it can run
        here and why not (no network probe; may start ``claude --version``). ``check=False``: the table only."""
        from loom_core.agents.registry import usable_rows

        return usable_rows(check=check)

    def policies(self) -> tuple[str, ...]:
        return policy_names()

    def complexities(self, bundle: str = "code") -> tuple[str, ...]:
        return complexity_names(bundle)
