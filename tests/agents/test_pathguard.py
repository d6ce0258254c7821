"""The path guard and loom's sandboxed file tools (spec §8): property tests plus one test per behaviour."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loom_core.agents.pathguard import Resolved, resolve_safe_path
from loom_core.agents.tools import SandboxTools, ToolOutcome, glob_regex
from loom_core.agents.tools import fsio as tools_fsio

TOKEN = "CANARY" + uuid.uuid4().hex  # content of every file outside the root
NAME_TOKEN = "NAMETOKEN" + uuid.uuid4().hex[:12]  # part of a file name outside the root
SENSITIVE_DIR_NAMES = {".ssh", ".gnupg", ".aws", ".azure", ".gcp", ".kube", ".docker"}


# ---------------------------------------------------------------------------------------------- tree


def build_tree(base: Path) -> tuple[Path, Path]:
    """``base/root`` (the project) next to ``base/outside`` and a sibling ``base/rootx`` that shares the
    root's prefix. Symlinks inside the root point outside (files, dirs, dangling, chained, absolute and
    relative) and inside (files, dirs, ``..``), plus a loop."""
    root, out, sib = base / "root", base / "outside", base / "rootx"
    for d in (root / "src" / "pkg", root / "docs", root / ".git", root / ".loom", out / "dir" / "deep", sib):
        d.mkdir(parents=True, exist_ok=True)
    (root / "src" / "a.py").write_text("alpha = 1\nbeta = 2\nalpha_again = 3\n")
    (root / "src" / "pkg" / "b.py").write_text("import alpha\n")
    (root / "docs" / "readme.md").write_text("# readme\nalpha\n")
    (root / ".git" / "config").write_text("[core]\n")
    (root / ".loom" / "state.db").write_bytes(b"SQLite format 3\x00")
    (out / "canary.txt").write_text(f"secret {TOKEN}\n")
    (out / "dir" / "inner.txt").write_text(f"{TOKEN}\nalpha\n")
    (out / "dir" / "deep" / f"{NAME_TOKEN}.py").write_text(f"alpha = '{TOKEN}'\n")
    (sib / "sibling.txt").write_text(f"{TOKEN}\n")
    links = {
        "out_dir": "../outside/dir",
        "out_file": "../outside/canary.txt",
        "abs_out": str(out / "dir"),
        "abs_out_file": str(out / "canary.txt"),
        "sib": "../rootx",
        "chain": "out_dir",
        "dangling_out": "../outside/does-not-exist",
        "dangling_in": "src/not-yet.py",
        "in_dir": "src",
        "in_file": "src/a.py",
        "loop1": "loop2",
        "loop2": "loop1",
        "src/up": "../..",
        "src/dotdot": "..",
        "src/pkg/to_out": "../../../outside/dir/inner.txt",
        # os.path.realpath gives up at the loop and hands back ``root/out_dir`` unresolved
        "loop_esc": "loop1/../out_dir",
        "loop_esc_abs": f"loop1/{root}/out_file",
    }
    for name, target in links.items():
        os.symlink(target, root / name)
    return root, out


def snapshot(base: Path, root: Path) -> dict[str, tuple]:
    """Everything under ``base`` except the root: type plus content / link target."""
    snap: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        if Path(dirpath) == base and root.name in dirnames:
            dirnames.remove(root.name)
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = str(p.relative_to(base))
            if p.is_symlink():
                snap[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                snap[rel] = ("dir",)
            else:
                snap[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
    return snap


@pytest.fixture(scope="module")
def guard_tree(tmp_path_factory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("guard")
    root, out = build_tree(base)
    return base, root, out


@pytest.fixture(scope="module")
def tools_tree(tmp_path_factory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("tools")
    root, out = build_tree(base)
    return base, root, out


# ---------------------------------------------------------------------------------------------- strategies

NAMES = [
    "..", ".", "", "src", "pkg", "a.py", "b.py", "docs", "readme.md", "out_dir", "out_file", "abs_out",
    "abs_out_file", "sib", "rootx", "chain", "dangling_out", "dangling_in", "in_dir", "in_file", "loop1",
    "up", "dotdot", "to_out", "loop_esc", "loop_esc_abs",
    "outside", "dir", "deep", "inner.txt", "canary.txt", "new.txt", "root",
    ".ssh", ".aws", ".config", "gcloud", ".env", ".env.local", ".ENV", "id_rsa", "key.pem", ".git",
    "config", ".loom", "state.db", "state.db-wal", "credentials.json", "ünïcødé", "日本語", "a b", "\udc80",
]
PREFIXES = ["", "", "", "/", "//", "./", "<ROOT>/", "<ROOT>", "<BASE>/", "<OUT>/", "<ROOT>/../root/"]

component = st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES), st.text(max_size=6))
raw_paths = st.builds(lambda pre, parts, trail: pre + "/".join(parts) + trail,
                      st.sampled_from(PREFIXES), st.lists(component, max_size=7), st.sampled_from(["", "", "/"]))


def concrete(raw: str, base: Path, root: Path, out: Path) -> str:
    return raw.replace("<ROOT>", str(root)).replace("<BASE>", str(base)).replace("<OUT>", str(out))


def inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


# ---------------------------------------------------------------------------------------------- guard property


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=raw_paths, for_write=st.booleans())
def test_guard_ok_means_inside_root(guard_tree, raw, for_write):
    base, root, out = guard_tree
    raw = concrete(raw, base, root, out)
    res = resolve_safe_path(raw, root, for_write=for_write)
    assert isinstance(res, Resolved)
    root_s = os.path.realpath(root)
    if not res.ok:
        assert res.path is None and res.reason
        assert res.reason in {"path-escapes-project", "state-db-protected", "loom-state-protected",
                              "invalid-path"} or \
            res.reason.startswith(("sensitive-dir:", "sensitive-file:"))
        return
    assert res.reason is None and res.path is not None
    p = os.fspath(res.path)
    assert os.path.isabs(p) and ".." not in p.split(os.sep)
    assert inside(p, root_s)
    # canonical: no existing component of the returned path is a symlink, so opening it goes nowhere else
    for i in range(1, len(Path(p).parts) + 1):
        assert not os.path.islink(os.path.join(*Path(p).parts[:i])), (raw, p)
    # differential: where the OS can resolve the raw input completely, the guard agrees with it
    joined = raw if os.path.isabs(raw) else os.path.join(root_s, raw)
    try:
        real = os.path.realpath(joined, strict=True)
    except (OSError, ValueError):
        real = None
    if real is not None:
        assert real == p, (raw, p, real)
    rel_parts = [c.casefold() for c in Path(p).relative_to(root_s).parts]
    assert not SENSITIVE_DIR_NAMES & set(rel_parts)
    if rel_parts:
        assert rel_parts[-1] not in {".env", ".env.local", "id_rsa", "key.pem", "credentials.json"}
    assert ".git" not in rel_parts  # git metadata is neither readable nor writable
    if for_write:
        assert "/".join(rel_parts) not in {".loom/state.db", ".loom/state.db-wal"}


# ---------------------------------------------------------------------------------------------- tools property

GLOBS = ["**/*", "*", "**", "out_dir/*", "out_dir/**", "abs_out/**/*", "**/canary*", "../*", "../**/*",
         "/**", "src/up/**", "in_dir/**/*.py", "?*", "sib/*", "**/*.txt", "chain/**", "src/dotdot/**"]
GREPS = [".", "alpha", "CANARY", "secret", "^", "[", "(a|b)+", "NAMETOKEN", ""]

calls = st.one_of(
    st.tuples(st.just("read_file"), st.fixed_dictionaries(
        {"path": raw_paths}, optional={"offset": st.integers(-1, 5), "limit": st.integers(0, 5)})),
    st.tuples(st.just("write_file"), st.fixed_dictionaries(
        {"path": raw_paths, "content": st.text(max_size=40)})),
    st.tuples(st.just("edit_file"), st.fixed_dictionaries(
        {"path": raw_paths, "old_string": st.sampled_from(["alpha", "a", "", "secret", "\n"]),
         "new_string": st.text(max_size=10)}, optional={"replace_all": st.booleans()})),
    st.tuples(st.just("list_files"), st.fixed_dictionaries({}, optional={"pattern": st.sampled_from(GLOBS)})),
    st.tuples(st.just("grep"), st.fixed_dictionaries(
        {"pattern": st.sampled_from(GREPS)}, optional={"glob": st.sampled_from(GLOBS)})),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=calls)
def test_tools_never_leak_or_touch_outside(tools_tree, call):
    base, root, out = tools_tree
    name, args = call
    args = {k: concrete(v, base, root, out) if isinstance(v, str) and k == "path" else v
            for k, v in args.items()}
    before = snapshot(base, root)
    protected = ((root / ".git" / "config").read_bytes(), (root / ".loom" / "state.db").read_bytes())
    audits: list[dict] = []
    tools = SandboxTools(root, audit=audits.append)
    res = tools.call(name, args)
    assert isinstance(res, ToolOutcome) and isinstance(res.content, str)
    assert TOKEN not in res.content
    assert NAME_TOKEN not in res.content
    assert snapshot(base, root) == before
    assert ((root / ".git" / "config").read_bytes(), (root / ".loom" / "state.db").read_bytes()) == protected
    assert len(audits) == 1 and audits[0]["tool"] == name
    assert audits[0]["result"] == ("ok" if res.ok else "refused" if res.refused else "error")
    if res.refused:
        assert res.content.startswith("refused: ")
    for rel in tools.changed:
        assert inside(os.path.realpath(root / rel), os.path.realpath(root))


# ---------------------------------------------------------------------------------------------- guard units


def test_guard_basics(tmp_path):
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (tmp_path / "proj-evil").mkdir()
    rs = os.path.realpath(root)
    assert resolve_safe_path("src/x.py", root) == Resolved(True, Path(rs, "src", "x.py"), None)
    assert resolve_safe_path(".", root).path == Path(rs)
    assert resolve_safe_path(str(root / "src"), root).ok
    assert resolve_safe_path("new/../src/./x", root).path == Path(rs, "src", "x")
    assert resolve_safe_path("../proj-evil/x", root).reason == "path-escapes-project"
    assert resolve_safe_path(str(tmp_path / "proj-evil"), root).reason == "path-escapes-project"
    assert resolve_safe_path("/etc/passwd", root).reason == "path-escapes-project"
    assert resolve_safe_path("missing/../../x", root).reason == "path-escapes-project"
    for bad in ("", "a\x00b", None, 3, "\ud800"):
        assert resolve_safe_path(bad, root) == Resolved(False, None, "invalid-path")  # type: ignore[arg-type]


def test_guard_symlinks(tmp_path):
    root, out = tmp_path / "proj", tmp_path / "out"
    (root / "src").mkdir(parents=True)
    out.mkdir()
    (root / "link_out").symlink_to(out)
    (root / "link_in").symlink_to(root / "src")
    (root / "dangling").symlink_to(out / "later.txt")
    assert resolve_safe_path("link_out/new/file.txt", root).reason == "path-escapes-project"
    assert resolve_safe_path("dangling", root, for_write=True).reason == "path-escapes-project"
    assert resolve_safe_path("nope/../link_out/x", root).reason == "path-escapes-project"
    assert resolve_safe_path("link_in/new.py", root).path == Path(os.path.realpath(root), "src", "new.py")
    assert resolve_safe_path("link_in/../link_out", root).reason == "path-escapes-project"
    # a root reached through a symlink is canonicalised first
    (tmp_path / "alias").symlink_to(root)
    assert resolve_safe_path("src/a", tmp_path / "alias").path == Path(os.path.realpath(root), "src", "a")


@pytest.mark.parametrize("rel,reason", [
    (".ssh/id_ed25519", "sensitive-dir:.ssh"),
    ("home/.aws/config", "sensitive-dir:.aws"),
    (".config/gcloud/creds.db", "sensitive-dir:.config/gcloud"),
    (".config/gh/hosts.yml", "sensitive-dir:.config/gh"),
    (".kube/config", "sensitive-dir:.kube"),
    (".SSH/x", "sensitive-dir:.ssh"),
    (".env", "sensitive-file:.env"),
    ("app/.env.production", "sensitive-file:.env.*"),
    (".envrc", "sensitive-file:.envrc"),
    (".netrc", "sensitive-file:.netrc"),
    ("keys/id_rsa", "sensitive-file:id_rsa*"),
    ("tls/server.pem", "sensitive-file:*.pem"),
    ("tls/server.key", "sensitive-file:*.key"),
    ("credentials.json", "sensitive-file:credentials*"),
    ("config/client_secret.json", "sensitive-file:*secret*"),
    ("service-account-prod.json", "sensitive-file:service-account*.json"),
    (".npmrc", "sensitive-file:.npmrc"),
    ("infra/prod.tfvars", "sensitive-file:*.tfvars"),
    (".git/config", "sensitive-dir:.git"),
    (".GIT/config", "sensitive-dir:.git"),
    ("vendor/lib/.git/HEAD", "sensitive-dir:.git"),
    (".git", "sensitive-dir:.git"),
    ("sub/.git", "sensitive-dir:.git"),
    (".git-credentials", "sensitive-file:.git-credentials"),
    (".pypirc", "sensitive-file:.pypirc"),
    ("deploy/.env.local", "sensitive-file:.env.*"),
    ("keys/id_rsa_deploy", "sensitive-file:id_rsa*"),
    ("keys/id_ed25519", "sensitive-file:id_ed25519*"),
    ("certs/client.p12", "sensitive-file:*.p12"),
    (".aws/credentials", "sensitive-dir:.aws"),
    (".docker/config.json", "sensitive-dir:.docker"),
    ("terraform.tfstate", "sensitive-file:*.tfstate"),
])
def test_guard_sensitive(tmp_path, rel, reason):
    assert resolve_safe_path(rel, tmp_path).reason == reason
    assert resolve_safe_path(rel, tmp_path, for_write=True).reason == reason


def test_guard_symlink_loops(tmp_path):
    """Regression: ``os.path.realpath`` stops at a loop and returns the rest unresolved, so a link to
    ``loop/../out`` came back as ``root/out`` (ok) with ``out`` a symlink to outside the root."""
    root, out = tmp_path / "proj", tmp_path / "out"
    root.mkdir()
    out.mkdir()
    (out / "s.txt").write_text(TOKEN)
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (root / "outlink").symlink_to(out)
    (root / "a").symlink_to("loop1/../outlink")
    (root / "b").symlink_to(f"loop1/{root}/outlink")
    for raw in ("a/s.txt", "b/s.txt", "loop1", "loop1/../outlink/s.txt", "a"):
        res = resolve_safe_path(raw, root)
        assert not res.ok and res.reason == "invalid-path", raw
    assert "refused: invalid-path" == SandboxTools(root).call("read_file", {"path": "a/s.txt"}).content


def test_guard_sensitive_through_symlink_and_extras(tmp_path):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / "innocent").symlink_to(tmp_path / ".ssh")
    assert resolve_safe_path("innocent/id", tmp_path).reason == "sensitive-dir:.ssh"
    assert resolve_safe_path("conf/.vault/x", tmp_path, extra_dirs=(".vault",)).reason == "sensitive-dir:.vault"
    assert resolve_safe_path("a/b.p12", tmp_path, extra_files=("*.p12",)).reason == "sensitive-file:*.p12"
    assert resolve_safe_path("id_rsa.pub", tmp_path).ok
    assert resolve_safe_path("src/environment.py", tmp_path).ok


def test_guard_write_only_rules(tmp_path):
    for rel in (".loom/state.db", ".loom/state.db-wal", ".loom/state.db-shm", ".loom/state.db-journal"):
        assert resolve_safe_path(rel, tmp_path).ok
        assert resolve_safe_path(rel, tmp_path, for_write=True).reason == "state-db-protected"
    # the rest of loom's own folder is loom's too (landing record, run options, settings, lock, history);
    # agents write only in their work area
    for rel in (".loom/landing.json", ".loom/task-exec.json", ".loom/loom.json", ".loom/lock",
                ".loom/history/index.jsonl", ".loom/current-task.json", ".LOOM/notes.md", ".loom/work"):
        assert resolve_safe_path(rel, tmp_path).ok, rel  # readable
        assert resolve_safe_path(rel, tmp_path, for_write=True).reason == "loom-state-protected", rel
    assert resolve_safe_path(".loom/work/plan.md", tmp_path, for_write=True).ok
    assert resolve_safe_path("sub/.loom/notes.md", tmp_path, for_write=True).ok  # a subproject's is content
    for ok in (".github/workflows/ci.yml", ".gitignore", ".gitattributes", "docs/.gitkeep", ".env.example",
               "config/.env.production.sample", ".env.template", "keys/id_rsa.pub", "src/keyring.py"):
        assert resolve_safe_path(ok, tmp_path).ok, ok
        assert resolve_safe_path(ok, tmp_path, for_write=True).ok, ok


def test_git_metadata_and_credentials_are_unreadable_through_the_tools(tmp_path):
    """A remote URL in .git/config can hold a token: no tool shows it, not even by name through grep."""
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text(f"[remote \"origin\"]\n\turl = https://u:{TOKEN}@example.invalid/r\n")
    (root / "sub").mkdir()
    (root / "sub" / ".git").write_text(f"gitdir: ../.git/modules/sub {TOKEN}\n")
    (root / ".env").write_text(f"KEY={TOKEN}\n")
    (root / ".git-credentials").write_text(f"https://u:{TOKEN}@example.invalid\n")
    (root / ".env.example").write_text("KEY=\n")
    (root / "app.py").write_text("KEY = 'x'\n")
    (root / "linked").symlink_to(root / ".git")
    t = SandboxTools(root)
    for path in (".git/config", "sub/.git", ".env", ".git-credentials", "linked/config", "./.git/../.git/config"):
        res = t.call("read_file", {"path": path})
        assert res.refused and TOKEN not in res.content, path
    assert t.call("read_file", {"path": ".env.example"}).ok
    listing = t.call("list_files", {"pattern": "**/*"}).content
    assert "app.py" in listing and ".env.example" in listing
    for hidden in (".git/config", "sub/.git", ".git-credentials", "\n.env\n"):
        assert hidden not in "\n" + listing + "\n", hidden
    assert "hidden by the path guard" in listing
    grep = t.call("grep", {"pattern": "KEY|url|gitdir"}).content
    assert TOKEN not in grep and "app.py:1:" in grep and ".env.example:1:" in grep
    assert t.call("grep", {"pattern": TOKEN, "glob": "**"}).content.startswith("no matches")


# ---------------------------------------------------------------------------------------------- tool units


@pytest.fixture
def proj(tmp_path) -> Path:
    root = tmp_path / "proj"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "a.py").write_text("one\ntwo\nthree\n")
    (root / "src" / "pkg" / "b.py").write_text("x = 1\n")
    (root / "top.py").write_text("print('hi')\n")
    for skipped in (".git", "node_modules", "dist", ".loom", "__pycache__", ".venv"):
        (root / skipped).mkdir()
        (root / skipped / "hidden.py").write_text("one\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "o.py").write_text(f"{TOKEN}\n")
    return root


def test_read_file(proj):
    t = SandboxTools(proj)
    r = t.call("read_file", {"path": "src/a.py"})
    assert r == ToolOutcome(True, "     1\tone\n     2\ttwo\n     3\tthree")
    r = t.call("read_file", {"path": "src/a.py", "offset": 2, "limit": 1})
    assert r.ok and r.content.startswith("     2\ttwo\n")
    assert "showing lines 2-2 of 3; continue with offset=3" in r.content
    assert "past the end" in t.call("read_file", {"path": "src/a.py", "offset": 9}).content
    assert t.call("read_file", {"path": "nope.py"}).content == "error: no such file: nope.py"
    assert "is a directory" in t.call("read_file", {"path": "src"}).content
    (proj / "blob.bin").write_bytes(b"\x89PNG\x00\x01" * 10)
    assert t.call("read_file", {"path": "blob.bin"}).content == "binary file, 60 bytes"
    (proj / "empty.txt").write_text("")
    assert t.call("read_file", {"path": "empty.txt"}).content == "empty.txt is empty"


def test_read_large_file_not_read_whole(proj):
    (proj / "big.log").write_bytes(b"x" * 99 + b"\n" * 1 + (b"y" * 99 + b"\n") * 22_000)
    r = SandboxTools(proj).call("read_file", {"path": "big.log", "limit": 3})
    assert r.ok and "     3\tyyy" in r.content
    assert "over 2 MB); not read whole" in r.content and "continue with offset=4" in r.content


def test_write_file(proj, tmp_path):
    audits: list[dict] = []
    t = SandboxTools(proj, audit=audits.append)
    r = t.call("write_file", {"path": "new/deep/f.txt", "content": "héllo\n"})
    assert r.ok and r.content == "created new/deep/f.txt (7 bytes)"
    assert (proj / "new" / "deep" / "f.txt").read_text() == "héllo\n"
    assert t.call("write_file", {"path": "top.py", "content": "x"}).content == "wrote top.py (1 bytes)"
    assert t.changed == {"new/deep/f.txt", "top.py"}
    assert audits[0] == {"tool": "write_file", "path": "new/deep/f.txt", "result": "ok"}
    assert "is a directory" in t.call("write_file", {"path": "src", "content": "x"}).content
    assert not [p for p in (proj / "new" / "deep").iterdir() if "loom-tmp" in p.name]


def test_write_refusals(proj):
    audits: list[dict] = []
    t = SandboxTools(proj, audit=audits.append)
    for path, reason in [(".loom/state.db", "state-db-protected"), (".loom/state.db-wal", "state-db-protected"),
                         (".git/config", "sensitive-dir:.git"), ("../out/o.py", "path-escapes-project"),
                         (".env", "sensitive-file:.env"), ("", "invalid-path")]:
        r = t.call("write_file", {"path": path, "content": "pwned"})
        assert r == ToolOutcome(False, f"refused: {reason}", refused=True), path
        assert audits[-1] == {"tool": "write_file", "path": path, "result": "refused", "reason": reason,
                              "error_class": "sandbox-violation"}
    assert not (proj / ".loom" / "state.db").exists() and not (proj / ".git" / "config").exists()
    assert t.changed == set()


def test_write_through_symlinks(proj, tmp_path):
    (proj / "alias").symlink_to(proj / "src")
    (proj / "esc").symlink_to(tmp_path / "out")
    (proj / "later").symlink_to(tmp_path / "out" / "new.py")
    t = SandboxTools(proj)
    assert t.call("write_file", {"path": "alias/c.py", "content": "c"}).ok
    assert (proj / "src" / "c.py").read_text() == "c" and t.changed == {"src/c.py"}
    assert t.call("write_file", {"path": "esc/o.py", "content": "x"}).refused
    assert t.call("write_file", {"path": "later", "content": "x"}).refused
    assert not (tmp_path / "out" / "new.py").exists()
    # a hard link to a file outside the root is broken by the write, not written through
    os.link(tmp_path / "out" / "o.py", proj / "hard.py")
    assert t.call("write_file", {"path": "hard.py", "content": "new"}).ok
    assert (tmp_path / "out" / "o.py").read_text() == f"{TOKEN}\n"
    assert (proj / "hard.py").read_text() == "new"


def test_symlink_swapped_after_the_check_is_not_followed(proj, tmp_path, monkeypatch):
    """The guard saw a real directory; by the time of the open it is a symlink out of the root."""
    (proj / "swap").symlink_to(tmp_path / "out")
    fake = Resolved(True, Path(os.path.realpath(proj), "swap", "o.py"), None)
    monkeypatch.setattr(tools_fsio, "resolve_safe_path", lambda *a, **k: fake)
    t = SandboxTools(proj)
    for name, args in [("read_file", {"path": "swap/o.py"}), ("write_file", {"path": "swap/o.py", "content": "x"}),
                       ("edit_file", {"path": "swap/o.py", "old_string": "CANARY", "new_string": "x"})]:
        r = t.call(name, args)
        assert not r.ok and TOKEN not in r.content, (name, r)
    assert (tmp_path / "out" / "o.py").read_text() == f"{TOKEN}\n"


def test_edit_file(proj):
    t = SandboxTools(proj)
    (proj / "e.txt").write_bytes(b"foo\r\nbar\r\nfoo\r\n")
    r = t.call("edit_file", {"path": "e.txt", "old_string": "foo", "new_string": "baz"})
    assert r.content == ("error: old_string matches 2 times in e.txt; add surrounding context to make it "
                         "unique, or pass replace_all=true")
    assert t.call("edit_file", {"path": "e.txt", "old_string": "nope", "new_string": "x"}).content == \
        "error: old_string not found in e.txt"
    r = t.call("edit_file", {"path": "e.txt", "old_string": "bar\r\nfoo", "new_string": "qux"})
    assert r.ok and r.content == "edited e.txt: 1 replacement"
    assert (proj / "e.txt").read_bytes() == b"foo\r\nqux\r\n"
    r = t.call("edit_file", {"path": "src/a.py", "old_string": "o", "new_string": "0", "replace_all": True})
    assert r.content == "edited src/a.py: 2 replacements"
    assert (proj / "src" / "a.py").read_text() == "0ne\ntw0\nthree\n"
    assert t.changed == {"e.txt", "src/a.py"}
    assert "must not be empty" in t.call("edit_file", {"path": "e.txt", "old_string": "",
                                                       "new_string": "x"}).content
    assert t.call("edit_file", {"path": ".git/hidden.py", "old_string": "one", "new_string": "x"}).refused
    assert t.call("edit_file", {"path": "missing.py", "old_string": "a", "new_string": "b"}).content == \
        "error: no such file: missing.py"


def test_list_files(proj, tmp_path):
    (proj / "linkdir").symlink_to(proj / "src")
    (proj / "outdir").symlink_to(tmp_path / "out")
    (proj / "outfile.py").symlink_to(tmp_path / "out" / "o.py")
    (proj / "infile.py").symlink_to(proj / "top.py")
    (proj / ".env").write_text("A=1\n")
    t = SandboxTools(proj)
    r = t.call("list_files", {})
    assert r.ok
    lines = r.content.splitlines()
    assert lines[:-1] == ["infile.py", "src/a.py", "src/pkg/b.py", "top.py"]
    assert lines[-1] == "(2 matching paths hidden by the path guard)"
    assert t.call("list_files", {"pattern": "*.py"}).content.splitlines()[:2] == ["infile.py", "top.py"]
    assert t.call("list_files", {"pattern": "**/*.py"}).content.splitlines()[:4] == \
        ["infile.py", "src/a.py", "src/pkg/b.py", "top.py"]
    assert t.call("list_files", {"pattern": "src/*"}).content == "src/a.py"
    assert t.call("list_files", {"pattern": "src/**"}).content == "src/a.py\nsrc/pkg/b.py"
    assert t.call("list_files", {"pattern": "src/?.py"}).content == "src/a.py"
    assert t.call("list_files", {"pattern": "src/**/b.py"}).content == "src/pkg/b.py"
    assert t.call("list_files", {"pattern": "*.rs"}).content == "no files match '*.rs'"


def test_list_files_cap(tmp_path):
    for i in range(520):
        (tmp_path / f"f{i:04d}.txt").write_text("x")
    r = SandboxTools(tmp_path).call("list_files", {"pattern": "*.txt"})
    lines = r.content.splitlines()
    assert len(lines) == 501 and lines[0] == "f0000.txt" and lines[499] == "f0499.txt"
    assert lines[500].startswith("… 20 more files not shown")


def test_glob_regex():
    rx = glob_regex("**/*.py")
    assert rx.match("a.py") and rx.match("x/y/a.py") and not rx.match("a.pyc")
    assert glob_regex("*.py").match("a.py") and not glob_regex("*.py").match("x/a.py")
    assert glob_regex("a?c").match("abc") and not glob_regex("a?c").match("a/c")
    assert glob_regex("src/**").match("src/a/b") and not glob_regex("src/**").match("srcx/a")
    assert glob_regex("[ab].txt").match("a.txt") and not glob_regex("[!ab].txt").match("a.txt")
    assert glob_regex("./x/*.md").match("x/r.md")
    assert glob_regex("(a+)+$").match("(a+)+$")  # regex metacharacters are literal


def test_grep(proj, tmp_path):
    (proj / "outlink.py").symlink_to(tmp_path / "out" / "o.py")
    t = SandboxTools(proj)
    r = t.call("grep", {"pattern": "one|x ="})
    assert r.content == "src/a.py:1:one\nsrc/pkg/b.py:1:x = 1"  # skipped dirs are not searched
    assert t.call("grep", {"pattern": "CANARY"}).content == "no matches for 'CANARY'"
    assert t.call("grep", {"pattern": "t", "glob": "src/*.py"}).content == "src/a.py:2:two\nsrc/a.py:3:three"
    bad = t.call("grep", {"pattern": "("})
    assert not bad.ok and bad.content.startswith("error: invalid regular expression '('")


def test_grep_keeps_the_tail(tmp_path):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text("".join(f"match line {i:03d}\n" for i in range(150)))
    r = SandboxTools(tmp_path).call("grep", {"pattern": "match"})
    first, *rest = r.content.splitlines()
    assert first.startswith("… ") and first.endswith(" earlier matches omitted")
    omitted = int(first.split()[1])
    assert omitted + len(rest) == 300
    assert rest[-1] == "b.txt:150:match line 149"
    assert len("\n".join(rest).encode()) <= 2000
    assert [int(x.split(":")[1]) for x in rest] == sorted(int(x.split(":")[1]) for x in rest)


def test_specs_and_bad_args(proj):
    t = SandboxTools(proj)
    names = [s["name"] for s in t.specs()]
    assert names == ["read_file", "write_file", "edit_file", "list_files", "grep"]
    for s in t.specs():
        assert set(s) == {"name", "description", "input_schema"} and s["input_schema"]["type"] == "object"
    oa = t.openai_specs()
    assert [o["function"]["name"] for o in oa] == names
    for o in oa:
        assert o["type"] == "function" and set(o["function"]) == {"name", "description", "parameters"}
        assert o["function"]["parameters"]["type"] == "object"
    edit = next(s for s in t.specs() if s["name"] == "edit_file")["input_schema"]
    assert edit["required"] == ["path", "old_string", "new_string"]
    assert edit["properties"]["replace_all"] == {"type": "boolean", "description": edit["properties"][
        "replace_all"]["description"], "default": False}

    assert t.call("run_checks", {}).content.startswith("error: unknown tool 'run_checks'")
    assert t.call("read_file", {}).content == "error: read_file: missing required argument 'path'"
    assert t.call("read_file", {"path": 3}).content == "error: read_file: argument 'path' must be a string, got int"
    assert t.call("read_file", {"path": "a", "limit": 0}).content == \
        "error: read_file: argument 'limit' must be at least 1"
    assert "unexpected argument(s): mode" in t.call("write_file", {"path": "a", "content": "", "mode": 1}).content
    assert "arguments must be an object" in t.call("grep", ["x"]).content  # type: ignore[arg-type]
    assert not any(r.refused for r in [t.call("nope", {})])


def test_run_checks(proj):
    t = SandboxTools(proj, run_checks=lambda: "typecheck: ok\ntest: 2 failed", max_output=1000)
    assert "run_checks" in [s["name"] for s in t.specs()]
    assert t.call("run_checks", {}) == ToolOutcome(True, "typecheck: ok\ntest: 2 failed")

    def boom() -> str:
        raise RuntimeError("runner died")

    r = SandboxTools(proj, run_checks=boom).call("run_checks", {})
    assert r == ToolOutcome(False, "error: RuntimeError: runner died")
    long = SandboxTools(proj, run_checks=lambda: "H" + "x" * 5000 + "T", max_output=1000).call("run_checks", {})
    assert long.content.startswith("H") and long.content.endswith("T") and len(long.content) < 1100


def test_audit_failure_does_not_break_the_call(proj):
    def bad_audit(_: dict) -> None:
        raise RuntimeError("audit sink down")

    assert SandboxTools(proj, audit=bad_audit).call("read_file", {"path": "top.py"}).ok
