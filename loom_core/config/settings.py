"""User-level settings: nested pydantic models, one per section, a docstring under every field
(the console's settings form shows it as help).

Sources, high to low: init arguments › ``LOOM_…`` environment (``__`` nests:
``LOOM_GENERAL__MAX_SPAWNS=10``) › the TOML file at :func:`paths.config_path` › defaults.
Secrets never go into the file: credential fields hold ``secret:<name>`` references that
:class:`loom_core.config.secrets.SecretStore` resolves.
"""

from __future__ import annotations

import math
import re
import tomllib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from loom_core.config import paths
from loom_core.errors import ConfigError

BACKENDS = ("auto", "demo", "claude-code", "anthropic", "openrouter", "ollama")
POLICIES = ("on-blockers", "human", "auto")
TIERS = ("fast", "balanced", "premium")
FAMILIES = ("anthropic", "openrouter", "ollama", "openai", "google")
HARNESSES = ("aider", "opencode")
SECRET_REF = re.compile(r"^secret:[A-Za-z0-9_.-]+$")
ENV_PREFIX = "LOOM_"


class _Section(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="ignore", validate_assignment=True)


class GeneralSettings(_Section):
    """How tasks run unless a task says otherwise."""

    default_policy: Literal["on-blockers", "human", "auto"] = "on-blockers"
    """Gate policy for new tasks: on-blockers stops only when a blocking finding is open, human stops at every gate, auto never stops."""

    max_spawns: int = Field(40, ge=0)
    """Most agent runs one task may start before it is parked (0 = no agent runs)."""

    stall_minutes: float = Field(50.0, gt=0)
    """Minutes without progress after which a running task is shown as stalled."""

    max_concurrent: int = Field(4, ge=1, le=8)
    """Agents run at the same time within one task (1-8)."""


class UiSettings(_Section):
    """The console's look."""

    theme: Literal["dark", "light"] = "dark"
    """Colour theme of the console."""

    animation: bool = False
    """Animate the console (off suits slow links and SSH)."""


def _check_ref(value: str | None, what: str) -> str | None:
    if value is None or value == "":
        return None
    if not SECRET_REF.match(value):
        raise ValueError(f"{what} must be a reference like 'secret:<name>' (store the value with "
                         f"`loom secrets set <name>` or the Secrets tab), never the key itself")
    return value


class KeyedProvider(_Section):
    """A hosted API reached with a key."""

    base_url: str | None = None
    """API base URL; empty = the provider's default. A literal URL or a secret:<name> reference."""

    @field_validator("base_url")
    @classmethod
    def _base_url_is_a_url(cls, v: str | None) -> str | None:
        if v is None or v == "" or SECRET_REF.match(v) or re.match(r"^https?://\S+$", v):
            return v or None
        raise ValueError("base_url must be an http(s):// URL or a reference like 'secret:<name>' (a key goes in "
                         "the secret store, never here)")

    api_key: str | None = None
    """The API key as a secret:<name> reference (the value lives in the secret store, never here)."""

    @field_validator("api_key")
    @classmethod
    def _api_key_is_a_ref(cls, v: str | None) -> str | None:
        return _check_ref(v, "api_key")


class AnthropicProvider(KeyedProvider):
    """Anthropic's API."""

    api_key: str | None = "secret:anthropic"
    """The API key as a secret:<name> reference (the value lives in the secret store, never here)."""


class OpenRouterProvider(KeyedProvider):
    """OpenRouter's API."""

    api_key: str | None = "secret:openrouter"
    """The API key as a secret:<name> reference (the value lives in the secret store, never here)."""


class OllamaProvider(_Section):
    """A local or remote Ollama server."""

    host: str = "http://localhost:11434"
    """Ollama server address."""


class ProvidersSettings(_Section):
    """Where each backend is reached and which stored secret it uses."""

    anthropic: AnthropicProvider = Field(default_factory=AnthropicProvider)
    """Anthropic API settings."""

    openrouter: OpenRouterProvider = Field(default_factory=OpenRouterProvider)
    """OpenRouter API settings."""

    ollama: OllamaProvider = Field(default_factory=OllamaProvider)
    """Ollama settings."""


class ChecksSettings(_Section):
    """Shell commands the checks runner uses; empty = detected from the project."""

    test: str | None = None
    """Command that runs the test suite, e.g. `pytest -q`."""

    lint: str | None = None
    """Command that runs the linter, e.g. `ruff check .`."""

    typecheck: str | None = None
    """Command that runs the type checker, e.g. `mypy .`."""

    timeout_s: int = Field(default=600, ge=1)
    """Time cap in seconds for each check command (the whole process group is stopped after it)."""

    test_timeout_s: int | None = Field(default=None, ge=1)
    """Time cap in seconds for the test suite alone; empty = `timeout_s`."""


def check_model_ref(value: str) -> str:
    """`provider:model` (family before the first ':'), a tier, or a bare concrete model name."""
    value = value.strip()
    if not value or any(c.isspace() for c in value):
        raise ValueError("a model reference is 'provider:model', a tier (fast, balanced, premium) or a model name")
    if ":" in value:
        family, model = value.split(":", 1)
        if family not in FAMILIES:
            raise ValueError(f"unknown provider '{family}' (known: {', '.join(FAMILIES)})")
        if not model:
            raise ValueError(f"'{value}' names no model after '{family}:'")
    return value


class LoomSettings(BaseSettings):
    """loom's user-level settings."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore",
                                      use_attribute_docstrings=True, validate_assignment=True)

    backend: Literal["auto", "demo", "claude-code", "anthropic", "openrouter", "ollama"] = "auto"
    """Which backend runs the agents: auto picks the first usable one; demo is offline and scripted."""

    general: GeneralSettings = Field(default_factory=GeneralSettings)
    """How tasks run."""

    ui: UiSettings = Field(default_factory=UiSettings)
    """Theme and animation of the console."""

    models: dict[str, str] = Field(default_factory=dict)
    """Per-agent model: agent name → 'provider:model' or a tier (fast, balanced, premium)."""

    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    """Per-agent fallback chain: agent name → model references tried in order when the primary is rate-limited or refuses (auth, unknown model)."""

    providers: ProvidersSettings = Field(default_factory=ProvidersSettings)
    """Backend endpoints and their secret references."""

    checks: ChecksSettings = Field(default_factory=ChecksSettings)
    """Check commands (test, lint, typecheck)."""

    harness: Literal["aider", "opencode"] | None = None
    """External CLI that runs file-editing agents on a raw provider (Anthropic API, OpenRouter, Ollama): aider or opencode. Empty = loom's own tool loop; also used when the CLI is not on PATH. LOOM_HARNESS overrides it."""

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
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=paths.config_path())


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
        raise ConfigError(_first_error(exc, f"invalid setting in {path} or the {ENV_PREFIX}* environment: "),
                          path=str(path)) from None
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


# ---------------------------------------------------------------------- TOML out
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else _str(k)


def _str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(data: dict[str, Any], _path: tuple[str, ...] = ()) -> str:
    """A small TOML writer for nested dicts of str/int/float/bool/lists (None values are skipped)."""
    lines: list[str] = []
    tables = []
    for k, v in data.items():
        if v is None:
            continue
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_scalar(v)}")
    out = ""
    if _path and (lines or not tables):
        out += "[" + ".".join(_key(p) for p in _path) + "]\n"
    if lines:
        out += "\n".join(lines) + "\n"
    for k, v in tables:
        sub = to_toml(v, _path + (k,))
        if sub:
            out += ("\n" if out else "") + sub
    return out


def save_settings(settings: LoomSettings) -> None:
    """Write the settings to the config file atomically (values equal to the default are left out)."""
    data = settings.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    header = "# loom settings — written by loom; secrets are stored elsewhere (secret:<name> references)\n"
    paths.atomic_write(paths.config_path(), header + to_toml(data))


# ---------------------------------------------------------------------- dotted keys
def _leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _leaf_keys(ann, f"{prefix}{name}.")
        elif name in ("models", "fallbacks") and not prefix:
            out.append(f"{prefix}{name}.<agent>")
        else:
            out.append(f"{prefix}{name}")
    return out


def valid_keys() -> list[str]:
    return _leaf_keys(LoomSettings)


def _check_key(dotted: str) -> list[str]:
    parts = dotted.split(".")
    if len(parts) == 2 and parts[0] in ("models", "fallbacks") and parts[1]:
        return parts
    if dotted in valid_keys():
        return parts
    raise ConfigError(f"unknown setting '{dotted}'; valid keys: {', '.join(valid_keys())}", code="USAGE")


def get_key(dotted: str) -> Any:
    """The effective value of a dotted key (``general.max_spawns``, ``models.planner``)."""
    parts = _check_key(dotted)
    value: Any = load_settings().model_dump(mode="json")
    for p in parts:
        value = value.get(p) if isinstance(value, dict) else None
    return value


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


__all__ = ["LoomSettings", "FileSettings", "load_settings", "load_file_settings", "save_settings", "get_key",
           "set_key", "valid_keys", "validate_document", "error_map", "to_toml", "check_model_ref"]
