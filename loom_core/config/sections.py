"""The settings' sections: one pydantic model per ``[section]`` of the file, a docstring under every field."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from loom_core.agents.executors.harness_config import HARNESSES
from loom_core.config import quick
from loom_core.kernel.gates import BUILTIN_POLICIES, PRESETS

MAX_SPAWNS = 10_000  # the most agent runs a cap may allow
TIERS = ("fast", "balanced", "premium")
FAMILIES = ("anthropic", "openrouter", "ollama", "openai", "google")
SECRET_REF = re.compile(r"^secret:[A-Za-z0-9_.-]+$")
ENV_PREFIX = "LOOM_"
SHORT_ENV = {  # variable → (section, field); older and shorter than LOOM_<SECTION>__<FIELD>
    "LOOM_MAX_SPAWNS": ("general", "max_spawns", f"a whole number between 0 (no cap) and {MAX_SPAWNS}"),
    "LOOM_STALL_MINUTES": ("general", "stall_minutes", "a number of minutes above 0"),
    "LOOM_MAX_COST_USD": ("general", "max_cost_usd", "a number of US dollars, 0 (no budget) or more"),
    "LOOM_MAX_TOKENS": ("general", "max_tokens", "a whole number of tokens, 0 (no budget) or more"),
    "LOOM_SERVER_HOST": ("server", "host", "a host name or address"),
    "LOOM_SERVER_PORT": ("server", "port", "a port number (1-65535)"),
    "LOOM_SERVER_TOKEN": ("server", "token", "a token or a secret:<name> reference"),
    "LOOM_SERVER_STATE_DIR": ("server", "state_dir", "a directory"),
    "LOOM_NOTIFY_WEBHOOK_URL": ("notify", "webhook_url", "an http(s):// URL or a secret:<name> reference"),
    "LOOM_NOTIFY_SLACK_URL": ("notify", "slack_url", "an http(s):// URL or a secret:<name> reference"),
    "LOOM_NOTIFY_TELEGRAM_TOKEN": ("notify", "telegram_token", "a bot token or a secret:<name> reference"),
    "LOOM_NOTIFY_TELEGRAM_CHAT": ("notify", "telegram_chat", "a chat id"),
    "LOOM_NOTIFY_TELEGRAM_API_URL": ("notify", "telegram_api_url", "an http(s):// URL"),
    "LOOM_NOTIFY_SCRIPT": ("notify", "script", "a command line"),
    "LOOM_NOTIFY_EVENTS": ("notify", "events", "comma-separated event names"),
    "LOOM_NOTIFY_TIMEOUT_MS": ("notify", "timeout_ms", "a duration (ms, or with a ms|s|m suffix) above 0"),
    "LOOM_DOCKER_IMAGE": ("docker", "image", "an image name with the Claude Code CLI and git"),
    "LOOM_DOCKER_USER": ("docker", "user", "host, image, or uid[:gid] (not root)"),
    "LOOM_DOCKER_NETWORK": ("docker", "network", "default, none, host or a network name"),
    "LOOM_DOCKER_STRICT_MCP": ("docker", "strict_mcp", "true or false"),
    "LOOM_DOCKER_BIND_MOUNTS": ("docker", "bind_mounts", "auto, on or off"),
    "LOOM_TG_BOT_TOKEN": ("telegram", "token", "a bot token or a secret:<name> reference"),
    "LOOM_TG_ALLOWED_USERS": ("telegram", "allowed_users", "comma-separated numeric Telegram user ids"),
    "LOOM_TG_API_URL": ("telegram", "api_url", "an http(s):// URL"),
}


def one_of(value: str, known: tuple[str, ...], what: str) -> str:
    if value not in known:
        raise ValueError(f"unknown {what} '{value}' (known: {', '.join(known)})")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="ignore", validate_assignment=True)


class GeneralSettings(_Section):
    """How tasks run unless a task says otherwise."""

    # acts on tasks started without --policy, only when the file or the environment names it (policy_if_set);
    # a preset (PRESETS) is accepted too. LOOM_MAX_SPAWNS and LOOM_STALL_MINUTES override the two below.
    default_policy: str = Field("on-blockers", json_schema_extra={"enum": list(BUILTIN_POLICIES) + list(PRESETS)})
    """Gate policy for new tasks: on-blockers stops only when a blocking finding is open, human stops at every gate, auto never stops."""

    max_spawns: int = Field(40, ge=0, le=MAX_SPAWNS)
    """Most agent runs one task may start before it is parked (0 = no agent runs)."""

    stall_minutes: float = Field(quick.STALL_MINUTES, gt=0)
    """Minutes without progress after which a running task is shown as stalled."""

    max_concurrent: int = Field(4, ge=1, le=8)
    """Agents run at the same time within one task (1-8)."""

    max_cost_usd: float = Field(0.0, ge=0, allow_inf_nan=False)
    """Cost budget of a new task in US dollars (0 = none): it stops before a spawn that could pass it."""

    max_tokens: int = Field(0, ge=0)
    """Token budget of a new task, input plus output (0 = none): it stops before a spawn that could pass it."""

    @field_validator("default_policy")
    @classmethod
    def _policy_known(cls, v: str) -> str:
        return one_of(v, tuple(BUILTIN_POLICIES) + tuple(PRESETS), "policy")

    def policy_if_set(self) -> str | None:
        """``default_policy`` when the file or the environment names it; None leaves the bundle's defaults."""
        return self.default_policy if "default_policy" in self.model_fields_set else None


class UiSettings(_Section):
    """The console's look."""

    theme: Literal["dark", "light"] = "dark"
    """Colour theme of the console."""

    animation: bool = False
    """Animate the console (off suits slow links and SSH)."""

    sort: Literal["attention", "name", "status", "elapsed"] = "attention"
    """Order of the fleet's rows (o cycles it and the choice is kept here)."""

    browse_root: str = ""
    """Folder the add-project tree opens at and the plane's folder picker may browse (empty: your home
    folder; LOOM_FS_ROOT overrides). A path typed in the console may still lie outside it."""

    @field_validator("browse_root")
    @classmethod
    def _absolute(cls, v: str) -> str:
        v = v.strip()
        if v and not (v.startswith("/") or v.startswith("~")):
            raise ValueError(f"'{v}' is not an absolute path (like /srv or ~/code)")
        return v


_BINDING_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_KEY = re.compile(r"^((ctrl|shift|alt|meta|super|hyper)\+)*([!-~]|[a-z][a-z0-9_]*)$")


def check_keymap(value: dict[str, str]) -> dict[str, str]:
    """Binding id (``fleet.sort``) → comma-separated keys (``O``, ``ctrl+o,f5``, ``question_mark``). Checks the
    syntax only; which ids exist and which keys clash is the console's to say."""
    out: dict[str, str] = {}
    for bid, keys in value.items():
        bid = bid.strip()
        if not _BINDING_ID.match(bid):
            raise ValueError(f"'{bid}' is not a binding id like fleet.sort")
        parts = [k.strip() for k in str(keys).split(",")]
        bad = [k for k in parts if not _KEY.match(k)]
        if bad:
            raise ValueError(f"{bid}: '{bad[0]}' is not a key (a character like O or ?, a name like f5, "
                             f"escape or question_mark, with ctrl+ / shift+ / alt+ in front; several keys "
                             f"separated by commas)")
        out[bid] = ",".join(parts)
    return out


Keymap = Annotated[dict[str, str], AfterValidator(check_keymap)]
"""The ``[keymap]`` section: binding id → keys (``"fleet.sort" = "O"``)."""


class ServerSettings(_Section):
    """The HTTP control plane (`loom serve`)."""

    host: str = "127.0.0.1"
    """Address the plane listens on; anything but loopback needs a token."""

    port: int = Field(4317, ge=1, le=65535)
    """Port the plane listens on."""

    token: str | None = None
    """Bearer token clients must send (a secret:<name> reference is resolved); empty = loopback only, no token."""

    state_dir: str | None = None
    """Where the plane keeps server.json and the supervised set; empty = ~/.loom/server."""

    spawn_permits: int = Field(4, ge=1, le=64)
    """Agents running at once across every project the plane drives (one shared queue)."""


NOTIFY_EVENTS = ("complete", "parked", "failed", "rate-limit-wait", "watch-park", "retry")
_URL_OR_REF = re.compile(r"^(https?://\S+|secret:[A-Za-z0-9_.-]+)$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


class NotifySettings(_Section):
    """Notifications sent by the supervisor and the plane (each channel is on when configured)."""

    webhook_url: str | None = None
    """URL that receives every event as a JSON POST; a secret:<name> reference is resolved."""

    slack_url: str | None = None
    """Slack incoming-webhook URL (one line of text per event); best kept as a secret:<name> reference."""

    telegram_token: str | None = None
    """Telegram bot token for sendMessage, as a secret:<name> reference (a literal token works too)."""

    telegram_chat: str | None = None
    """Telegram chat id the bot writes to (needs the token above)."""

    telegram_api_url: str = "https://api.telegram.org"
    """Telegram Bot API root (change it only for a self-hosted Bot API server)."""

    script: str | None = None
    """Command run for every event, with the event JSON on stdin and in $LOOM_NOTIFY_EVENT (killed on timeout)."""

    events: str = "complete,parked,failed"
    """Events sent, comma-separated: complete, parked, failed, rate-limit-wait, watch-park, retry."""

    timeout_ms: int = Field(10_000, ge=1, le=600_000)
    """Most milliseconds one delivery may take (a ms|s|m suffix is accepted from the environment)."""

    @field_validator("webhook_url", "slack_url")
    @classmethod
    def _url_or_ref(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if not _URL_OR_REF.match(v.strip()):
            raise ValueError("must be an http(s):// URL or a reference like 'secret:<name>'")
        return v.strip()

    @field_validator("telegram_token", "telegram_chat", "script")
    @classmethod
    def _blank_is_off(cls, v: str | None) -> str | None:
        return (v or "").strip() or None

    @field_validator("telegram_api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        if not re.match(r"^https?://\S+$", v.strip()):
            raise ValueError("must be an http(s):// URL")
        return v.strip().rstrip("/")

    @field_validator("events")
    @classmethod
    def _events_known(cls, v: str) -> str:
        names = [n.strip() for n in v.split(",") if n.strip()]
        for n in names:
            one_of(n, NOTIFY_EVENTS, "event")
        return ",".join(dict.fromkeys(names))

    @field_validator("timeout_ms", mode="before")
    @classmethod
    def _duration(cls, v: object) -> object:
        if isinstance(v, str) and (m := _DURATION.match(v)):
            scale = {"ms": 1, None: 1, "s": 1000, "m": 60_000, "h": 3_600_000}[m.group(2)]
            return int(float(m.group(1)) * scale)
        return v

    def event_names(self) -> frozenset[str]:
        return frozenset(n for n in self.events.split(",") if n)


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


_DOCKER_USER = re.compile(r"^(host|image|\d+(:\d+)?)$")
_DOCKER_MEMORY = re.compile(r"^\d+[bkmg]?$", re.I)


class DockerSettings(_Section):
    """Container isolation: agents run the Claude Code CLI inside a Docker container (`--docker`)."""

    image: str | None = None
    """Image with the `claude` CLI and git (see docker/README.md); empty = containers are never chosen."""

    user: str = "host"
    """User the agent runs as: host = loom's own uid:gid, image = the image's user, or uid[:gid]; root is refused."""

    network: str = "default"
    """Container network: default = the engine's (the agent needs egress to reach the API), none, host or a name."""

    memory: str | None = "4g"
    """Memory limit, e.g. 512m or 4g; empty = no limit."""

    pids: int | None = Field(1024, ge=16)
    """Most processes in the container; empty = no limit."""

    cpus: float | None = Field(None, gt=0, le=256)
    """CPUs the container may use, e.g. 1.5; empty = no limit."""

    strict_mcp: bool = False
    """Start the agent with `--strict-mcp-config` and no servers (host MCP config is never mounted anyway)."""

    bind_mounts: Literal["auto", "on", "off"] = "auto"
    """Mount the sandbox copy at /workspace (on), or ship it in and out as archives (off, for remote engines); auto = on for a local unix socket only."""

    home: str = "/home/app"
    """HOME inside the container, a tmpfs."""

    @field_validator("image", "memory")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return (v or "").strip() or None

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        if v is not None and not _DOCKER_MEMORY.match(v):
            raise ValueError("must be a size like 512m or 4g")
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        v = v.strip() or "host"
        if not _DOCKER_USER.match(v):
            raise ValueError("must be host, image, or uid[:gid] with numbers")
        if v.split(":")[0] == "0":
            raise ValueError("root (uid 0) is refused: an agent container never runs as root")
        return v

    @field_validator("network")
    @classmethod
    def _network(cls, v: str) -> str:
        v = v.strip() or "default"
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", v):
            raise ValueError("must be default, none, host or a network name")
        return v

    @field_validator("home")
    @classmethod
    def _home(cls, v: str) -> str:
        if not v.startswith("/") or v.rstrip("/") in ("", "/workspace"):
            raise ValueError("must be an absolute path other than / and /workspace")
        return v.rstrip("/")


class TelegramSettings(_Section):
    """The Telegram bot (`loom bot telegram`): answer gates, submit and ship from a phone, through the plane."""

    token: str | None = None
    """Bot token from BotFather, best as a secret:<name> reference (`loom secrets set telegram <token>`)."""

    allowed_users: str = ""
    """Numeric Telegram user ids allowed to use the bot, comma-separated; empty = the bot refuses to start."""

    api_url: str = "https://api.telegram.org"
    """Bot API root, used as <root>/bot<token>/… (change it only for a self-hosted Bot API server)."""

    server_url: str | None = None
    """URL of the plane the bot talks to; empty = LOOM_SERVER_URL, else the plane running on this host."""

    server_token: str | None = None
    """The plane's bearer token (a secret:<name> reference is resolved); empty = LOOM_SERVER_TOKEN / server.token."""

    @field_validator("token", "server_token", "server_url")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return (v or "").strip() or None

    @field_validator("allowed_users")
    @classmethod
    def _user_ids(cls, v: str) -> str:
        ids = [p.strip() for p in str(v).split(",") if p.strip()]
        for i in ids:
            if not i.isdigit():
                raise ValueError(f"'{i}' is not a numeric Telegram user id (the bot tells an unlisted user theirs)")
        return ",".join(dict.fromkeys(ids))

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        if not re.match(r"^https?://\S+$", v.strip()):
            raise ValueError("must be an http(s):// URL")
        return v.strip().rstrip("/")

    def user_ids(self) -> frozenset[int]:
        return frozenset(int(i) for i in self.allowed_users.split(",") if i)


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


__all__ = ["MAX_SPAWNS", "TIERS", "FAMILIES", "HARNESSES", "SECRET_REF", "ENV_PREFIX", "SHORT_ENV", "GeneralSettings",
           "UiSettings", "Keymap", "check_keymap", "KeyedProvider", "AnthropicProvider", "OpenRouterProvider", "OllamaProvider",
           "ProvidersSettings", "ChecksSettings", "DockerSettings", "ServerSettings", "NotifySettings", "TelegramSettings", "NOTIFY_EVENTS", "check_model_ref", "one_of"]
