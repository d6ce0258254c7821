"""Bad input gives one line (``loom: …``), never a traceback; usage errors exit 2; nothing is created or lost."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from tests.cli.test_errors import _read_only
from tests.conftest import ROOT, run_loom
from tests.support.fixtures import finished_task, parked_task


def cli(*args: str, cwd, env: dict | None = None, timeout: float = 60):
    """The CLI of this checkout (never an installed copy)."""
    return run_loom(*args, cwd=cwd, env={"PYTHONPATH": str(ROOT), **(env or {})}, timeout=timeout)


def one_line(proc, code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loom: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def repo(tmp_path):
    """An empty git repository (a real project for `loom run`)."""
    p = tmp_path / "repo"
    p.mkdir()
    subprocess.run(["git", "init", "-q", str(p)], check=True)
    subprocess.run(["git", "-C", str(p), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "init"], check=True)
    return p


def no_task_created(project) -> None:
    assert not (project / ".loom" / "state.db").exists()
    assert not (project / ".loom" / "task-exec.json").exists()


# ------------------------------------------------------------------ usage errors: exit 2, before a task exists
@pytest.mark.parametrize(("args", "needle"), [
    (["run", "--backend", "nope", "x"], "--backend must be one of"),
    (["run", "--bundle", "nope", "x"], "--bundle must be one of"),
    (["run", "--max-spawns", "-1", "x"], "--max-spawns must be between 0"),
    (["run", "--max-spawns", "10000001", "x"], "--max-spawns must be between 0"),
    (["run", "--complexity", "huge", "x"], "--complexity must be one of"),
    (["run", "--policy", "whatever", "x"], "--policy must be one of"),
    (["status", "--stall-minutes", "-5"], "--stall-minutes must be more than 0"),
    (["status", "--stall-minutes", "nan"], "--stall-minutes must be more than 0"),
    (["recover", "bogus"], "expected retry"),
    (["status", "-C", "/no/such/project"], "does not exist"),
    (["status", "--no-such-flag"], "No such option: --no-such-flag"),
    (["recover"], "Missing argument"),
    (["replay", "t-any", "--invariants", "garbage"], "not a module:attr reference"),
    (["replay", "t-any", "--invariants", "no_such_module_here:X"], "cannot import"),
    (["replay", "t-any", "--invariants", "json:dumps"], "must be an Invariant"),
])
def test_usage_errors_exit_2_and_create_nothing(repo, args, needle):
    one_line(cli(*args, cwd=repo), 2, needle)
    assert not (repo / ".loom").exists()


@pytest.mark.parametrize("value", ["-1", "many", "10000001"])
def test_an_out_of_range_spawn_cap_in_the_environment_is_refused_before_a_task_exists(repo, value):
    one_line(cli("run", "--backend", "demo", "x", cwd=repo, env={"LOOM_MAX_SPAWNS": value}), 2, "LOOM_MAX_SPAWNS must be")
    no_task_created(repo)


def test_a_task_text_that_is_not_utf8_is_refused_before_a_task_exists(repo):
    bad = "fix the caf" + b"\xe9 \xff".decode("utf-8", "surrogateescape")  # as Python decodes such argv bytes
    proc = cli("run", "--backend", "demo", bad, cwd=repo)
    one_line(proc, 2, "not valid UTF-8", "0xe9")
    no_task_created(repo)


@pytest.mark.parametrize("args", [["config", "set", "checks.test", "pytest {}"], ["secrets", "set", "k", "ab{}cd"],
                                  ["projects", "add", ".", "--label", "x{}"], ["status", "-C", "/tmp/{}"],
                                  ["answer", "reject", "--note", "no{}"]])
def test_any_argument_that_is_not_utf8_is_refused_and_never_echoed(repo, tmp_path, args):
    bad = b"\xff".decode("utf-8", "surrogateescape")
    home = tmp_path / "home"
    proc = cli(*[a.format(bad) for a in args], cwd=repo, env={"LOOM_HOME": str(home)})
    line = one_line(proc, 2, "is not valid UTF-8", "0xff")
    assert "ab" not in line and "pytest" not in line  # the argument itself is never echoed
    assert not home.exists()  # nothing was stored


def test_proceed_and_answer_without_a_task_say_no_active_task(repo):
    (repo / ".loom").mkdir()
    (repo / ".loom" / "task-exec.json").write_text('{"backend": 5}')  # not even looked at without a task
    for args in (["proceed"], ["answer", "accept"]):
        one_line(cli(*args, cwd=repo), 1, "no active task")
    assert not (repo / ".loom" / "state.db").exists()


def test_a_missing_api_key_is_refused_before_the_task_is_created(repo, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "OPENROUTER_API_KEY")}
    env.update({"PYTHONPATH": str(ROOT), "LOOM_HOME": str(tmp_path / "empty-home")})
    for backend in ("anthropic", "openrouter"):
        proc = subprocess.run([sys.executable, "-m", "loom_core.surfaces.cli", "run", "--backend", backend, "do a thing"],
                              cwd=repo, env=env, capture_output=True, text=True, timeout=60)
        one_line(proc, 1, f"backend {backend} needs a key", "loom secrets set")
        no_task_created(repo)


# ------------------------------------------------------------------ damaged files
def test_a_config_file_that_is_not_utf8_is_one_line(repo, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_bytes(b"[general]\nmax_spawns = 3  # caf\xe9\n")
    for args in (["config", "get"], ["run", "--backend", "demo", "x"], ["config", "set", "ui.theme", "light"]):
        line = one_line(cli(*args, cwd=repo, env={"LOOM_HOME": str(home)}), 1, "config.toml", "not UTF-8")
        assert "0xe9" in line
    no_task_created(repo)


def test_bad_lines_in_the_history_index_are_shown_and_the_good_ones_still_listed(project):
    finished_task(project)
    assert cli("reset", cwd=project).returncode == 0
    index = project / ".loom" / "history" / "index.jsonl"
    good = index.read_bytes()
    index.write_bytes(good + b"garbage{\n[1, 2]\n\"text\"\n{\"task_id\": 5, \"db_file\": 7, \"task_short\": 3}\n"
                      + b"{\"task_id\": \"t-caf\xe9\"}\n\n")
    proc = cli("history", cwd=project)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    out = proc.stdout.splitlines()
    task_id = json.loads(good.decode().splitlines()[0])["task_id"]
    assert any(task_id in line for line in out)
    assert "garbage{" in out and "[1, 2]" in out  # shown as they are, nothing dropped silently
    assert any('"task_id": 5' in line for line in out)
    proc = cli("history", "--json", cwd=project)
    assert proc.returncode == 0 and len(json.loads(proc.stdout)) == 6
    # a damaged entry never names an archive: replay of the good one still works
    assert cli("replay", task_id, cwd=project).returncode == 0


@pytest.mark.parametrize(("content", "needle"), [
    ('{"backend": 5}', "--backend must be a backend name"),
    ('{"backend": "demo", "max_spawns": "many"}', "--max-spawns must be a whole number"),
    ('{"fast": "yes"}', "fast must be true or false"),
    ('{"policy": ["human"]}', "--policy must be a policy name"),
    ('{"max_spawns": -4}', "--max-spawns must be between 0"),
    ("[1, 2]", "must hold a JSON object"),
    ("{not json", "cannot be read"),
])
def test_a_wrongly_typed_task_exec_file_is_named_with_the_fix(project, content, needle):
    parked_task(project)
    (project / ".loom" / "task-exec.json").write_text(content)
    line = one_line(cli("proceed", cwd=project), 1, "task-exec.json", needle)
    assert "fix or delete" in line


def _tamper_tick(db, n: int, change) -> None:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT id, payload FROM audit WHERE type = 'tick' ORDER BY id").fetchall()
    row_id, payload = rows[n]
    conn.execute("UPDATE audit SET payload = ? WHERE id = ?", (change(json.loads(payload)), row_id))
    conn.commit()
    conn.close()


@pytest.mark.parametrize(("change", "needle"), [
    (lambda p: json.dumps({**p, "event": {"kind": "nonsense"}}), "event cannot be decoded"),
    (lambda p: json.dumps({**p, "event": "x"}), "field 'event'"),
    (lambda p: json.dumps({k: v for k, v in p.items() if k != "now"}), "field 'now'"),
    (lambda p: json.dumps([p]), "not an object"),
    (lambda p: json.dumps({**p, "event": {**p["event"], "gate_event_id": "gev-forged"}}), "cannot be re-applied"),
    (lambda p: json.dumps({**p, "event": {**p["event"], "decision": 5}}), "tick 2"),
])
def test_a_tampered_tick_payload_in_replay_is_one_line(project, change, needle):
    outcome = finished_task(project)
    _tamper_tick(project / ".loom" / "state.db", 1, change)
    one_line(cli("replay", outcome.task_id, cwd=project), 1, "recorded tick 2", needle, "loom verify")


def test_a_replay_rule_that_raises_is_named(project):
    outcome = finished_task(project)
    (project / "myrules.py").write_text(
        "from loom_core.kernel.types import Invariant\n"
        "def explode(view):\n    raise ZeroDivisionError('rule bug')\n"
        "RULES = [Invariant(id='explodes', reads=('*',), check=explode)]\n")
    one_line(cli("replay", outcome.task_id, "--invariants", "myrules:RULES", cwd=project), 1,
             "the rule 'explodes' raised ZeroDivisionError: rule bug", "at tick 1")
    (project / "brokenrules.py").write_text("raise RuntimeError('cannot import me')\n")
    one_line(cli("replay", outcome.task_id, "--invariants", "brokenrules:RULES", cwd=project), 2,
             "importing brokenrules failed: RuntimeError: cannot import me")


# ------------------------------------------------------------------ what sits at state.db
@pytest.mark.parametrize("kind", ["fifo", "dangling-symlink"])
def test_a_fifo_or_dangling_symlink_at_state_db_is_named_never_opened(project, kind):
    db = project / ".loom" / "state.db"
    db.parent.mkdir()
    if kind == "fifo":
        os.mkfifo(db)
        needle = "not a regular file"
    else:
        db.symlink_to(project / "gone" / "state.db")
        needle = "is a symlink to"
    for args in (["status"], ["verify"], ["recover", "abandon"], ["reset"], ["proceed"], ["answer", "accept"]):
        one_line(cli(*args, cwd=project, timeout=20), 1, needle)
    assert db.is_symlink() if kind != "fifo" else db.is_fifo()
    assert sorted(p.name for p in db.parent.iterdir()) == ["state.db"]


@pytest.mark.parametrize(("where", "args"), [
    ("home/config.toml", ["config", "get"]),
    ("home/secrets.json", ["secrets", "list"]),
    (".loom/task-exec.json", ["proceed"]),
    (".loom/loom.json", ["run", "--backend", "demo", "x"]),
    (".loom/history/index.jsonl", ["history"]),
])
def test_a_fifo_in_place_of_a_loom_file_is_named_never_opened(project, tmp_path, where, args):
    if where == ".loom/task-exec.json":
        parked_task(project)
    if where == ".loom/loom.json":
        from loom_core.agents.executors.demo_project import create_demo_project

        project = tmp_path / "shop"
        create_demo_project(project)
    path = (tmp_path if where.startswith("home/") else project) / where
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    env = {"LOOM_HOME": str(tmp_path / "home"), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    one_line(cli(*args, cwd=project, env=env, timeout=20), 1, path.name, "a FIFO")


def test_a_read_only_loom_dir_still_serves_status_history_and_verify(project):
    outcome = finished_task(project)
    assert cli("reset", cwd=project).returncode == 0
    parked_task(project)  # a live store in WAL mode next to an archive
    with _read_only(project / ".loom"):
        st = cli("status", cwd=project)
        assert st.returncode == 0 and "gate-scope" in st.stdout, st.stderr
        hist = cli("history", cwd=project)
        assert hist.returncode == 0 and outcome.task_id in hist.stdout, hist.stderr
        for args in (["verify"], ["verify", "--task", outcome.task_id]):
            proc = cli(*args, cwd=project)
            assert proc.returncode == 0 and "intact" in proc.stdout, proc.stderr
        one_line(cli("recover", "abandon", cwd=project), 1, "read-only")  # a writing command is refused


def _nest(root, depth: int, leaf: str) -> None:
    """``root/d/d/…/d/<leaf>`` ``depth`` levels deep (directory fds: no long path, no recursion)."""
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        os.close(os.open(leaf, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


@pytest.fixture
def deep_shop(tmp_path):
    """The demo project's place; removed with ``rm -rf`` afterwards (pytest's own clean-up of old temporary
    directories recurses, and would fail on a tree this deep)."""
    proj = tmp_path / "shop"
    (tmp_path / "tmp").mkdir()
    yield proj
    subprocess.run(["rm", "-rf", str(proj), str(tmp_path / "tmp")], check=False)  # the project and its sandbox


def test_a_project_with_directories_nested_1200_deep_is_never_a_traceback(deep_shop):
    from loom_core.agents.executors.demo_project import create_demo_project
    from loom_core.engine.runner import demo_task
    from loom_core.workspace import Workspace

    proj = deep_shop
    create_demo_project(proj)
    _nest(proj, 1200, "leaf.txt")  # tracked
    (proj / "build").mkdir()
    _nest(proj / "build", 1200, "out.o")  # ignored: copied into the sandbox as it is
    with open(proj / ".gitignore", "a") as fh:
        fh.write("build/\n")
    git = ["git", "-C", str(proj), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a deep tree"], check=True)
    tmp = {"TMPDIR": str(proj.parent / "tmp")}  # the sandbox too is removed with rm -rf afterwards
    proc = cli("run", "--backend", "demo", "--policy", "auto", "--fast", demo_task(), cwd=proj, env=tmp, timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1) and "Traceback" not in out and "RecursionError" not in out, out[-600:]
    status = cli("status", cwd=proj, env=tmp)
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr[-600:]
    sandbox = proj.parent / "tmp" / f"loom-{os.getuid()}" / Workspace.sandbox_path(proj).name
    assert sandbox.exists() == (proc.returncode == 1)  # a task stopped short keeps its sandbox
    proc = cli("reset", "--force", cwd=proj, env=tmp)  # removes a sandbox holding both deep trees
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-600:]
    assert not sandbox.exists()
