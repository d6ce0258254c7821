"""User-level settings: nested pydantic models, one per section, a docstring under every field
(the console's settings form shows it as help).

Sources, high to low: init arguments › ``LOOM_…`` environment (``__`` nests:
``LOOM_GENERAL__MAX_SPAWNS=10``; the short names in :data:`SHORT_ENV` keep working:
``LOOM_MAX_SPAWNS``, ``LOOM_STALL_MINUTES``; ``LOOM_HARNESS`` is the ``harness`` field's own name)
› the TOML file at :func:`paths.config_path` › defaults. Nothing else in loom reads these variables.
Secrets never go into the file: credential fields hold ``secret:<name>`` references that
:class:`loom_core.config.secrets.SecretStore` resolves.
"""

from __future__ import annotations

import os
import tomllib
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from loom_core.agents import registry
from loom_core.config import paths
from loom_core.config.remembered import key_parts, walk
from loom_core.config.sections import (
    ENV_PREFIX,
    HARNESSES,
    MAX_SPAWNS,
    SHORT_ENV,
    ChecksSettings,
    DockerSettings,
    GeneralSettings,
    Keymap,
    NotifySettings,
    ProvidersSettings,
    ServerSettings,
    TelegramSettings,
    UiSettings,
    check_model_ref,
    one_of,
)
from loom_core.config.toml_out import to_toml
from loom_core.errors import ConfigError


class LoomSettings(BaseSettings):
    """loom's user-level settings."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore",
                                      use_attribute_docstrings=True, validate_assignment=True)

    backend: str = Field("auto", json_schema_extra={"enum": list(registry.choices())})
    """Which backend runs the agents: auto picks the first usable one; demo is offline and scripted."""

    general: GeneralSettings = Field(default_factory=GeneralSettings)
    """How tasks run."""

    ui: UiSettings = Field(default_factory=UiSettings)
    """Theme and animation of the console."""

    keymap: Keymap = Field(default_factory=dict)
    """The console's keys: binding id (as the help screen, ?, shows it) → keys, e.g. "fleet.sort" = "O"."""

    models: dict[str, str] = Field(default_factory=dict)
    """Per-agent model: agent name → 'provider:model' or a tier (fast, balanced, premium)."""

    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    """Per-agent fallback chain: agent name → model references tried in order when the primary is rate-limited or refuses (auth, unknown model)."""

    providers: ProvidersSettings = Field(default_factory=ProvidersSettings)
    """Backend endpoints and their secret references."""

    checks: ChecksSettings = Field(default_factory=ChecksSettings)
    """Check commands (test, lint, typecheck)."""

    server: ServerSettings = Field(default_factory=ServerSettings)
    """The HTTP control plane (`loom serve`): bind address, token, state folder, shared spawn permits."""

    notify: NotifySettings = Field(default_factory=NotifySettings)
    """Notifications: webhook, Slack, Telegram and script channels, which events, delivery timeout."""

    docker: DockerSettings = Field(default_factory=DockerSettings)
    """Container isolation: image, user, network, limits, bind mounts or archives (remote engines)."""

    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    """The Telegram bot (`loom bot telegram`): its token, allowed user ids, Bot API root and the plane it uses."""

    harness: Annotated[str, Field(json_schema_extra={"enum": list(HARNESSES)})] | None = None
    """External CLI that runs file-editing agents on a raw provider (Anthropic API, OpenRouter, Ollama): aider or opencode. Empty = loom's own tool loop; also used when the CLI is not on PATH. LOOM_HARNESS overrides it."""

    @field_validator("backend")
    @classmethod
    def _backend_known(cls, v: str) -> str:
        return one_of(v, registry.choices(), "backend")

    @field_validator("harness", mode="before")
    @classmethod
    def _harness_name(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip().lower()
            if v == "":
                return None
            if v not in HARNESSES:
                raise ValueError(f"unknown harness '{v}' (known: {', '.join(HARNESSES)})")
        return v

    @field_validator("fallbacks")
    @classmethod
    def _fallbacks_are_refs(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        try:
            return {agent: [check_model_ref(r) for r in refs] for agent, refs in v.items()}
        except ValueError as exc:
            raise ValueError(f"fallbacks: {exc}") from None

    @field_validator("models")
    @classmethod
    def _models_are_refs(cls, v: dict[str, str]) -> dict[str, str]:
        out = {}
        for agent, ref in v.items():
            if not agent.strip():
                raise ValueError("an agent name is empty")
            try:
                out[agent] = check_model_ref(ref)
            except ValueError as exc:
                raise ValueError(f"{agent}: {exc}") from None
        return out

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ShortEnv(settings_cls),
                TomlConfigSettingsSource(settings_cls, toml_file=paths.config_path()))


class _ShortEnv(PydanticBaseSettingsSource):
    """The short variables of :data:`SHORT_ENV`, placed where the nested ``LOOM_<SECTION>__<FIELD>`` would be
    (validated by the fields like any other source; the nested name wins when both are set)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for env, (section, name, _what) in SHORT_ENV.items():
            raw = os.environ.get(env, "").strip()
            if raw:
                out.setdefault(section, {})[name] = raw
        return out


class FileSettings(LoomSettings):
    """The settings as the file alone says (defaults below, no environment): what editing changes."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return init_settings, TomlConfigSettingsSource(settings_cls, toml_file=paths.config_path())


class _Document(LoomSettings):
    """A settings document validated on its own (no environment, no file)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return (init_settings,)


# ---------------------------------------------------------------------- errors
def _env_error(exc: ValidationError) -> ConfigError | None:
    """A bad short variable (``LOOM_MAX_SPAWNS=many``), named as the user wrote it: a usage error."""
    err = exc.errors()[0]
    loc = tuple(str(p) for p in err.get("loc", ()))
    for env, (section, name, what) in SHORT_ENV.items():
        raw = os.environ.get(env, "").strip()
        if raw and loc[:2] == (section, name) and not os.environ.get(f"{ENV_PREFIX}{section}__{name}".upper()):
            msg = err.get("msg", "invalid value").removeprefix("Value error, ")
            return ConfigError(f"{env} must be {what}, got '{raw}' ({msg})", code="USAGE", env=env)
    return None


def _first_error(exc: ValidationError, prefix: str = "") -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()) if not isinstance(p, int)) or "(document)"
    msg = err.get("msg", "invalid value").removeprefix("Value error, ")
    return f"{prefix}{loc}: {msg}"


def error_map(exc: ValidationError) -> dict[str, str]:
    """Dotted key → message for every error (for inline display in forms)."""
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if not isinstance(p, int))
        out.setdefault(loc, err.get("msg", "invalid value").removeprefix("Value error, "))
    return out


def _load(cls: type[LoomSettings]) -> LoomSettings:
    path = paths.config_path()
    paths.check_regular(path)
    try:
        return cls()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix or remove it", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start:exc.start + 1].hex()} at offset "
                          f"{exc.start}); TOML files are UTF-8 — fix or remove it", path=str(path)) from None
    except ValidationError as exc:
        raise _env_error(exc) or ConfigError(
            _first_error(exc, f"invalid setting in {path} or the {ENV_PREFIX}* environment: "), path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", path=str(path)) from None


def load_settings() -> LoomSettings:
    """Effective settings (init › env › file › defaults). Bad file or value → ConfigError."""
    return _load(LoomSettings)


def load_file_settings() -> FileSettings:
    """The file's settings over the defaults, ignoring the environment (the base for edits)."""
    return _load(FileSettings)  # type: ignore[return-value]


def validate_document(data: dict[str, Any]) -> LoomSettings:
    """Validate a whole settings document (no sources); ValidationError on a bad value."""
    return LoomSettings.model_construct(**dict(_Document(**data)))


def save_settings(settings: LoomSettings) -> None:
    """Write the settings to the config file atomically (values equal to the default are left out)."""
    data = settings.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    header = "# loom settings — written by loom; secrets are stored elsewhere (secret:<name> references)\n"
    paths.atomic_write(paths.config_path(), header + to_toml(data))


# ---------------------------------------------------------------------- dotted keys
MAPS = {"models": "<agent>", "fallbacks": "<agent>", "keymap": "<binding id>"}  # open maps: one key per entry


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _leaf_keys(ann, f"{prefix}{name}.")
        elif name in MAPS and not prefix:
            out.append(f"{name}.{MAPS[name]}")
        else:
            out.append(f"{prefix}{name}")
    return out


def valid_keys() -> list[str]:
    return _leaf_keys(LoomSettings)


def key_help() -> dict[str, str]:
    """Every settable key with the first line of its field's docstring (the schema's description)."""
    out: dict[str, str] = {}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.")
                continue
            key = f"{name}.{MAPS[name]}" if name in MAPS and not prefix else f"{prefix}{name}"
            out[key] = (field.description or "").strip().split("\n")[0]

    walk(LoomSettings, "")
    return out


def key_source(dotted: str) -> str:
    """Where a key's effective value comes from: ``env NAME``, ``file PATH`` or ``default`` (in the order the
    settings are loaded: the environment wins over the file, the file over the default)."""
    parts = _check_key(dotted)
    names = [ENV_PREFIX + "__".join(parts).upper()]
    names += [env for env, (section, field, _what) in SHORT_ENV.items() if [section, field] == parts]
    for env in names:
        if os.environ.get(env, "").strip():
            return f"env {env}"
    node: Any = load_file_settings().model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    for part in parts:
        node = node.get(part) if isinstance(node, dict) else None
    return f"file {paths.config_path()}" if node is not None else "default"


def _check_key(dotted: str) -> list[str]:
    parts = key_parts(dotted, valid_keys(), MAPS)
    if parts is not None:
        return parts
    raise ConfigError(f"unknown setting '{dotted}'; valid keys: {', '.join(valid_keys())}", code="USAGE")


def get_key(dotted: str) -> Any:
    """The effective value of a dotted key (``general.max_spawns``, ``models.planner``)."""
    parts = _check_key(dotted)
    return walk(load_settings().model_dump(mode="json"), parts)


def set_key(dotted: str, raw_value: str) -> LoomSettings:
    """Set one key in the config file from its text form (validated; an empty value clears it
    back to the default). Returns the file's settings after the change."""
    parts = _check_key(dotted)
    data = load_file_settings().model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    raw = raw_value.strip()
    if raw == "":
        node.pop(parts[-1], None)
    elif parts[0] == "fallbacks":
        node[parts[-1]] = [r.strip() for r in raw.split(",") if r.strip()]
    else:
        node[parts[-1]] = raw
    try:
        settings = validate_document(data)
    except ValidationError as exc:
        shown = "(the value is not shown)" if parts[0] == "providers" else repr(raw_value)  # may be a credential
        raise ConfigError(f"{dotted} = {shown} is not valid: {_first_error(exc)}", code="USAGE") from None
    save_settings(settings)
    return settings


__all__ = ["MAX_SPAWNS", "SHORT_ENV", "LoomSettings", "FileSettings", "load_settings", "load_file_settings", "save_settings", "get_key",
           "key_help", "key_source",
           "set_key", "valid_keys", "validate_document", "error_map", "to_toml", "check_model_ref"]
