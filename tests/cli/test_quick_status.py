"""The plainest `loom status`, `loom history` and `loom verify` calls are answered without typer (its import
is a quarter of these commands' start-up): they must print exactly what the typer commands print, and every
other call must still reach typer and get its messages."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_loom


@pytest.fixture(scope="module")
def parked(tmp_path_factory) -> Path:
    """A project with a task in its history and one parked at a gate."""
    from loom_core.control import LocalControl
    from tests.support.fixtures import finished_task, parked_task

    proj = tmp_path_factory.mktemp("quick") / "proj"
    proj.mkdir()
    finished_task(proj)
    LocalControl().reset(proj)
    parked_task(proj)
    return proj


def _through_typer(args: list[str], cwd: Path, command: str = "status") -> str:
    """What the typer command prints for ``loom COMMAND ARGS`` (built and run as the root group runs it)."""
    return _typer_run(command, args, cwd)[0]


def _typer_run(command: str, args: list[str], cwd: Path) -> tuple[str, int]:
    from loom_core.surfaces.cli.lazy import build
    from loom_core.surfaces.cli.table import BY_NAME

    cmd = build(BY_NAME[command])
    out = io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out):
            code = cmd.main(args, prog_name=f"loom {command}", standalone_mode=False)
    finally:
        os.chdir(here)
    return out.getvalue(), code or 0


def _loaded(args: list[str], cwd: Path) -> set[str]:
    code = ("import sys\nfrom loom_core.surfaces import cli\n"
            f"try:\n    cli.main({args!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "import json\nprint(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _same(out: str) -> object:
    """The output with the clock's readings left out (JSON carries elapsed seconds to the millisecond)."""
    def blur(v: object) -> object:
        if isinstance(v, dict):
            return {k: blur(x) for k, x in v.items()}
        if isinstance(v, list):
            return [blur(x) for x in v]
        return "<number>" if isinstance(v, float) else v
    return blur(json.loads(out)) if out.startswith("{") else out


@pytest.mark.parametrize("extra", [[], ["--json"], ["--stall-minutes", "5"], ["--stall-minutes=0.5", "--json"]],
                         ids=["plain", "json", "stall", "stall=json"])
def test_plain_calls_skip_typer_and_print_what_typer_prints(parked, tmp_path, extra):
    for args, cwd in ((extra, parked), (["-C", str(parked), *extra], tmp_path),
                      ([f"--project={parked}", *extra], tmp_path), (extra, tmp_path)):
        fast = run_loom("status", *args, cwd=cwd)
        assert fast.returncode == 0 and fast.stderr == "", fast.stderr
        assert _same(fast.stdout) == _same(_through_typer(args, cwd)), args
    assert "awaiting your answer" in run_loom("status", cwd=parked).stdout
    mods = _loaded(["status", "-C", str(parked), *extra], tmp_path)
    assert not [m for m in mods if m.split(".")[0] == "typer"]


def test_every_other_call_gets_typers_own_answer(parked, tmp_path):
    (tmp_path / "afile").write_text("", encoding="utf-8")
    cases = {("--stall-minutes", "soon"): "'soon' is not a valid number",
             ("-C", str(tmp_path / "nope")): "does not exist",
             ("-C", str(tmp_path / "afile")): "is a file",
             ("--bogus",): "No such option: --bogus",
             ("--json", "--json", "-C"): "requires an argument"}
    for args, words in cases.items():
        proc = run_loom("status", *args, cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr.startswith("loom: ") and words in proc.stderr, args
    helped = run_loom("status", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "--stall-minutes" in helped.stdout
    twice = run_loom("status", "-C", str(parked), "-C", str(parked), cwd=tmp_path)  # typer's: the last one wins
    assert twice.returncode == 0 and twice.stdout == run_loom("status", cwd=parked).stdout


def test_errors_on_the_quick_path_are_the_usual_one_line(tmp_path):
    zero = run_loom("status", "--stall-minutes", "0", cwd=tmp_path)
    assert zero.returncode == 2 and zero.stderr == "loom: --stall-minutes must be more than 0, got 0\n"
    (tmp_path / ".loom").mkdir()
    (tmp_path / ".loom" / "state.db").write_bytes(b"not a database at all" * 100)
    bad = run_loom("status", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.startswith("loom: ") and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_history_and_verify_plain_calls_skip_typer_too(parked, tmp_path):
    from loom_core.control import LocalControl

    archived = LocalControl().history_index(parked)[0]["ref"]
    for command, args, cwd in (("history", [], parked), ("history", ["--json"], parked),
                               ("history", ["-C", str(parked)], tmp_path), ("history", [], tmp_path),
                               ("verify", [], parked), ("verify", ["--task", archived], parked),
                               ("verify", [f"--project={parked}", f"--task={archived}"], tmp_path)):
        fast = run_loom(command, *args, cwd=cwd)
        out, code = _typer_run(command, args, cwd)
        assert (fast.returncode, _same(fast.stdout)) == (code, _same(out)), (command, args)
        assert fast.stderr == ""
    assert "intact" in run_loom("verify", cwd=parked).stdout
    for argv in (["history", "-C", str(parked)], ["verify", "-C", str(parked)]):
        mods = _loaded(argv, tmp_path)
        assert not [m for m in mods if m.split(".")[0] == "typer"], argv
    unknown = run_loom("verify", "--task", "t-nope", cwd=parked)  # an error on the quick path: one line
    assert unknown.returncode == 1 and unknown.stderr.startswith("loom: ") and len(unknown.stderr.splitlines()) == 1
    assert unknown.stderr == _typer_error("verify", ["--task", "t-nope"], parked)
    assert run_loom("history", "--task", "x", cwd=parked).returncode == 2  # not history's: typer says so


def _typer_error(command: str, args: list[str], cwd: Path) -> str:
    from loom_core.errors import LoomError

    try:
        _typer_run(command, args, cwd)
    except LoomError as exc:
        return f"loom: {exc}\n"
    raise AssertionError("no error")


def test_config_get_plain_calls_skip_typer_too(tmp_path):
    assert run_loom("config", "set", "general.max_spawns", "12", cwd=tmp_path).returncode == 0
    for args in (["general.max_spawns"], ["general.max_spawns", "--json"], ["--json", "ui.theme"], [], ["--json"],
                 ["models.planner"]):
        fast = run_loom("config", "get", *args, cwd=tmp_path)
        out, code = _typer_run("config", ["get", *args], tmp_path)
        assert (fast.returncode, fast.stdout, fast.stderr) == (code, out, ""), args
    assert run_loom("config", "get", "general.max_spawns", cwd=tmp_path).stdout == "general.max_spawns = 12\n"
    mods = _loaded(["config", "get", "ui.theme"], tmp_path)
    assert not [m for m in mods if m.split(".")[0] in ("typer", "pydantic")]
    unknown = run_loom("config", "get", "general.nope", cwd=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr == _typer_error("config", ["get", "general.nope"], tmp_path)
    sourced = run_loom("config", "get", "general.max_spawns", "--source", cwd=tmp_path)  # typer's path
    assert sourced.returncode == 0 and sourced.stdout.startswith("general.max_spawns = 12  (file ")
    assert run_loom("config", "get", "--source", cwd=tmp_path).returncode == 2  # --source needs a key


def test_the_light_status_read_answers_what_the_facade_answers(parked, tmp_path):
    """`loom status` reads through ``read_status`` (no facade built): for a parked task (with a stall limit, with
    its sandbox), an ended one, an empty folder, a project in the catalog and a path with ``..`` in it, it gives
    what ``LocalControl.status`` gives at the same clock reading."""
    from loom_core.control import LocalControl, read_status
    from loom_core.engine.clock import FixedClock
    from tests.support.fixtures import finished_task

    ended, empty = tmp_path / "ended", tmp_path / "empty"
    ended.mkdir()
    empty.mkdir()
    finished_task(ended)
    listed = LocalControl()
    listed.add_project(ended, label="named in the catalog")
    now = "2026-03-01T12:00:00.000Z"
    for project, stall in ((parked, None), (parked, 5.0), (parked / ".loom" / "..", None), (ended, None),
                           (empty, None)):
        for sandbox in (False, True):
            got = read_status(project, stall_after_min=stall, with_sandbox=sandbox, now=now)
            for control in (LocalControl(clock=FixedClock(now)), LocalControl(listed.catalog, clock=FixedClock(now))):
                assert got == control.status(project, stall_after_min=stall, with_sandbox=sandbox), project
    assert read_status(parked, now=now)["gate"] and read_status(parked, now=now)["elapsed"] == "1428h 00m"
    assert read_status(ended, now=now)["state"] != "in_progress" and read_status(empty)["task_id"] is None


def test_the_light_history_and_verify_reads_answer_what_the_facade_answers(parked, tmp_path):
    """`loom history` and `loom verify` read through ``read_history`` / ``read_verify``: the same rows, the same
    report and store as ``LocalControl.history_index`` / ``verify`` + ``store_of``, the same errors."""
    from loom_core.control import LocalControl, read_history, read_verify
    from loom_core.errors import LoomError

    loom = LocalControl()
    assert read_history(parked) == loom.history_index(parked) and len(read_history(parked)) == 1
    assert read_history(parked / ".loom" / "..") == loom.history_index(parked)
    assert read_history(tmp_path) == loom.history_index(tmp_path) == []
    archived = read_history(parked)[0]["ref"]
    for task in (None, archived):
        report, path = read_verify(parked, task)
        want = loom.verify(parked, task)
        assert (report.ok, report.line("x"), path) == (want.ok, want.line("x"), loom.store_of(parked, task))
        assert path is not None and path.exists()
    for project, task in ((parked, "t-nope"), (tmp_path, None)):
        with pytest.raises(LoomError) as got:
            read_verify(project, task)
        with pytest.raises(LoomError) as want:
            loom.verify(project, task)
        assert (type(got.value), str(got.value), got.value.code) == (type(want.value), str(want.value),
                                                                     want.value.code)
