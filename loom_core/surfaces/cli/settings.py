"""``loom config``, ``loom secrets`` and ``loom models``: settings, secrets and which model each agent runs on,
through the facade's config verbs (:mod:`loom_core.control.config`)."""

from __future__ import annotations

from typing import Annotated

import typer

from loom_core.surfaces.cli.common import JsonOpt, control, echo_json
from loom_core.surfaces.cli.readview import show_config

config_app = typer.Typer(help="Settings (TOML in the loom home; LOOM_… environment variables override).",
                         no_args_is_help=True)
secrets_app = typer.Typer(help="Secrets: stored in the system keyring when usable, else a 0600 file; never "
                               "printed.", no_args_is_help=True)
models_app = typer.Typer(help="Which model each agent runs on.", no_args_is_help=True)


@config_app.command("get")
def config_get(key: Annotated[str | None, typer.Argument(help="Dotted key, e.g. general.max_spawns.")] = None,
               as_json: JsonOpt = False,
               source: Annotated[bool, typer.Option("--source", help="Also say where the value comes from: "
                                                    "the environment, the settings file or the default.")]
               = False) -> None:
    """Show all settings, or one key's effective value."""
    if key is None and source:
        raise typer.BadParameter("--source needs a key", param_hint="KEY")
    show_config(key, as_json, source)  # (the plainest calls skip typer and come there directly)


@config_app.command("set")
def config_set(key: Annotated[str, typer.Argument(help="Dotted key (see 'loom config keys').")],
               value: Annotated[list[str], typer.Argument(help="New value (empty string resets to default).")]
               ) -> None:
    """Set one key in the config file (validated before anything is written)."""
    typer.echo(f"set {key} = {control().config_set(key, ' '.join(value))}")


@config_app.command("keys")
def config_keys(as_json: JsonOpt = False) -> None:
    """List the settable keys, each with what it does."""
    docs = control().config_key_help()
    if as_json:
        echo_json(docs)
        return
    width = max(map(len, docs), default=0)
    for k, doc in docs.items():
        typer.echo(f"{k:<{width}}  {doc}".rstrip())


@secrets_app.command("set")
def secrets_set(name: Annotated[str, typer.Argument(help="Secret name, e.g. anthropic.")],
                value: Annotated[str | None, typer.Argument(help="The value (omit to be prompted without echo).")]
                = None) -> None:
    """Store a secret; reference it from settings as secret:<name>."""
    if value is None:
        value = typer.prompt(f"value for '{name}'", hide_input=True)
    done = control().set_secret(name, value)
    typer.echo(f"stored secret '{name}' ({done['masked']}) in {done['where']}; use it as secret:{name}")


@secrets_app.command("list")
def secrets_list() -> None:
    """Names of stored secrets with masked values."""
    got = control().secrets()
    if not got["secrets"]:
        typer.echo(f"no secrets stored ({got['where']})")
        return
    for n, masked in sorted(got["secrets"]):
        typer.echo(f"{n}  {masked}")


@secrets_app.command("unset")
def secrets_unset(name: Annotated[str, typer.Argument(help="Secret name.")]) -> None:
    """Delete a stored secret."""
    removed = control().unset_secret(name)
    typer.echo(f"removed secret '{name}'" if removed else f"no secret named '{name}'")


MODEL_FIELDS = ("agent", "ref", "model", "source", "fallbacks")


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Each agent's effective model and where it came from."""
    rows = [{k: r[k] for k in MODEL_FIELDS} for r in control().models()]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        fb = f"  fallbacks: {', '.join(r['fallbacks'])}" if r["fallbacks"] else ""
        typer.echo(f"{r['agent']} = {r['ref']} → {r['model']}  [{r['source']}]{fb}")


@models_app.command("set")
def models_set(agent: Annotated[str, typer.Argument(help="Agent name (see 'loom models list').")],
               ref: Annotated[str, typer.Argument(help="provider:model, a tier (fast, balanced, premium), or '' "
                                                        "to reset.")]) -> None:
    """Pin an agent to a model."""
    control().set_model(agent, ref)
    typer.echo(f"set code/{agent} → {ref or '(bundle default)'}")
