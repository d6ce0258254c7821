"""The allowlist file: default deny, realpath comparison, verbatim edits."""

from __future__ import annotations

import os

import pytest

from loom_core.config import allowlist as al


def test_a_missing_file_denies_everything_with_the_reason(tmp_path):
    with pytest.raises(al.ProjectNotAllowed) as e:
        al.check(tmp_path)
    assert e.value.reason == "allowlist-missing" and e.value.code == "PROJECT_DIR_NOT_ALLOWED"
    assert "loom allowlist add" in str(e.value)
    with pytest.raises(al.ProjectNotAllowed) as e:
        al.check(tmp_path / "nope")
    assert e.value.reason == "input-path-unresolved"


def test_add_then_check_by_realpath_through_a_symlink(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    link = tmp_path / "link"
    link.symlink_to(proj)
    other = tmp_path / "other"
    other.mkdir()
    ch = al.add(link)
    assert ch.changed and ch.path == os.path.realpath(proj)
    assert al.check(proj) == os.path.realpath(proj)
    assert al.is_allowed(link) and not al.is_allowed(other)
    with pytest.raises(al.ProjectNotAllowed) as e:
        al.check(other)
    assert e.value.reason == "not-in-allowlist"
    assert not al.add(proj).changed  # the same folder by another name is not added twice
    assert al.entries() == [os.path.realpath(proj)]


def test_edits_keep_the_file_verbatim_and_skip_stale_entries(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    f = al.allowlist_path()
    f.parent.mkdir(parents=True)
    f.write_text("# mine\n/gone/away\n\n  # indented comment")  # no final newline
    assert not al.is_allowed(proj)
    al.add(proj)
    assert f.read_text() == f"# mine\n/gone/away\n\n  # indented comment\n{os.path.realpath(proj)}\n"
    assert al.is_allowed(proj)  # the stale entry is skipped, not an error
    al.remove(proj)
    assert f.read_text() == "# mine\n/gone/away\n\n  # indented comment\n"
    al.remove("/gone/away")  # a stale entry goes by its literal text
    assert al.entries() == []


def test_dry_run_writes_nothing_and_ensure_never_adds(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    ch = al.add(proj, dry_run=True)
    assert not ch.changed and not al.allowlist_path().exists()
    al.ensure_file()
    assert al.entries() == [] and al.allowlist_path().read_text() == al.HEADER
    al.add(proj)
    al.ensure_file()
    assert al.is_allowed(proj)
