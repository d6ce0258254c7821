"""`loom --help` and `loom status` stay light: no heavy library is imported to print help."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, run_loom

HEAVY = ("textual", "peewee", "anthropic", "docker", "pygit2", "telegram", "mcp")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_imports_no_heavy_library():
    mods = _modules_after("import sys\nsys.argv=['loom','--help']\nfrom loom_core.surfaces import cli\n"
                          "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass")
    loaded = sorted(m for m in mods if m.split(".")[0] in HEAVY)
    assert loaded == []


def test_help_and_version_exit_zero(tmp_path):
    proc = run_loom("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "status" in proc.stdout and "replay" in proc.stdout
    proc = run_loom("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("loom ")


def test_status_without_a_store_creates_nothing(tmp_path):
    proc = run_loom("status", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("no active task")
    assert not (tmp_path / ".loom").exists()


def test_status_converts_its_arguments_without_pydantic_and_still_checks_them(tmp_path):
    """typer would build a pydantic adapter per argument (~60 ms a process); plain values skip it."""
    code = ("import sys\nfrom loom_core.surfaces import cli\n"
            f"try:\n    cli.main(['status', '-C', {str(tmp_path)!r}, '--stall-minutes', '5'])\n"
            "except SystemExit:\n    pass")
    mods = _modules_after(code)
    assert not [m for m in mods if m.split(".")[0] in ("pydantic", "pydantic_settings", "keyring")]
    bad = run_loom("status", "--stall-minutes", "soon", cwd=tmp_path)
    assert bad.returncode == 2 and "'soon' is not a valid number" in bad.stderr
    missing = run_loom("status", "-C", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_status_history_and_verify_read_without_the_orm_or_settings(tmp_path):
    """The read commands open the store with plain sqlite3: no peewee, pydantic or keyring to load."""
    from tests.support.fixtures import parked_task

    parked_task(tmp_path)
    for verb in ("status", "history", "verify"):
        code = ("import sys\nfrom loom_core.surfaces import cli\n"
                f"try:\n    cli.main([{verb!r}, '-C', {str(tmp_path)!r}])\nexcept SystemExit as e:\n"
                "    assert not e.code, e.code\n")
        mods = _modules_after(code)
        heavy = sorted(m for m in mods if m.split(".")[0] in ("peewee", "pydantic", "pydantic_settings", "keyring"))
        assert heavy == [], (verb, heavy)


def _cli_modules(argv: list[str], cwd, env: dict | None = None) -> set[str]:
    """The modules a whole `loom ARGV` process has loaded when it exits."""
    import os

    code = ("import sys\nfrom loom_core.surfaces import cli\n"
            f"try:\n    cli.main({argv!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "import json\nprint(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


OTHER_COMMANDS = ("loom_core.surfaces.cli.tasks", "loom_core.surfaces.cli.daemon", "loom_core.surfaces.cli.bot",
                  "loom_core.surfaces.cli.serve", "loom_core.surfaces.cli.web", "loom_core.surfaces.cli.setup",
                  "loom_core.surfaces.cli.allowlist", "loom_core.surfaces.cli.projects")


def test_quick_commands_build_only_themselves_and_load_nothing_heavy(tmp_path):
    """status, history, verify and config get import their own command module only (the root lists the others
    from the command table), none of the heavy libraries and not the settings model (config get: once it has
    read the settings once, see test_config_get_fast)."""
    from tests.support.fixtures import parked_task

    parked_task(tmp_path)
    _cli_modules(["config", "get", "ui.theme"], tmp_path)  # the first read loads the model and remembers
    for argv in (["status"], ["history"], ["verify"], ["config", "get", "ui.theme"]):
        mods = _cli_modules(argv, tmp_path)
        assert not [m for m in mods if m.split(".")[0] in HEAVY + ("rich",)], argv
        assert not [m for m in mods if m in OTHER_COMMANDS], (argv, sorted(m for m in mods if m in OTHER_COMMANDS))
        assert not [m for m in mods if m.split(".")[0] in ("pydantic", "pydantic_settings", "keyring")], argv
        if argv[0] != "config":  # the store's run reads (a dozen dataclasses) are for the console's views
            assert "loom_core.store.read.runs" not in mods, argv
        if argv[0] != "config":  # their reads alone, not the whole facade
            assert not mods & FACADE, (argv, sorted(mods & FACADE))
        if argv[0] in ("status", "history"):  # nor OpenSSL's hashes (verify checks the chain's sha256)
            assert not mods & {"hashlib", "_hashlib"}, argv


# what LocalControl loads beyond the status read (its mixins, the catalog, the engine's clock and events)
FACADE = {"loom_core.control.local", "loom_core.control.catalog", "loom_core.control.client",
          "loom_core.control.plane_verbs", "loom_core.control.config", "loom_core.control.housekeeping",
          "loom_core.control.supervision", "loom_core.control.shuttle", "loom_core.control.trace",
          "loom_core.engine.clock", "loom_core.engine.events"}


def test_help_is_printed_from_the_cache_without_typer(tmp_path):
    """The first `loom --help` renders and stores the top-level help; later ones print it without importing
    typer; a stale or damaged entry is rendered again, and the text is always the rendered one."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "COLUMNS": "100"}
    first = run_loom("--help", cwd=tmp_path, env=env)
    assert first.returncode == 0 and "Commands:" in first.stdout and "--install-completion" in first.stdout
    cached = tmp_path / "cache" / "loom" / "help-78.txt"
    assert cached.read_text(encoding="utf-8").split("\n", 1)[1] + "\n" == first.stdout

    mods = _cli_modules(["--help"], tmp_path, env)
    assert not [m for m in mods if m.split(".")[0] == "typer"]
    again = run_loom("--help", cwd=tmp_path, env=env)
    assert again.stdout == first.stdout and again.returncode == 0

    narrow = run_loom("--help", cwd=tmp_path, env={**env, "COLUMNS": "60"})  # another width: its own entry
    assert narrow.stdout != first.stdout and (tmp_path / "cache" / "loom" / "help-58.txt").exists()

    key, _, text = cached.read_text(encoding="utf-8").partition("\n")
    cached.write_text(f"loom 0.0.0 width 78 stale\n{text.replace('Commands:', 'Stale:')}", encoding="utf-8")
    assert run_loom("--help", cwd=tmp_path, env=env).stdout == first.stdout
    assert cached.read_text(encoding="utf-8").startswith(key)
    cached.write_bytes(b"\xff\xfe not text")
    assert run_loom("--help", cwd=tmp_path, env=env).stdout == first.stdout
    (tmp_path / "not-a-dir").write_text("", encoding="utf-8")  # no usable cache: help is still printed
    assert run_loom("--help", cwd=tmp_path, env={**env, "XDG_CACHE_HOME": str(tmp_path / "not-a-dir")}).stdout \
        == first.stdout
