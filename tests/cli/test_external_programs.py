"""Which pager and editor loom runs for a gate's diff and plan (git's and lazygit's order), and that the
temporary copy it hands them is cleaned up and never written back."""

from __future__ import annotations

from pathlib import Path

import pytest

from loom_core.control.external import ProgramNotFound, editor, open_text, pager, what_to_open


@pytest.fixture
def bin_dir(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    for name in ("less", "more", "vi", "nano", "bat"):
        (d / name).write_text("#!/bin/sh\nexit 0\n")
        (d / name).chmod(0o755)
    return d


def test_pager_order_loom_pager_then_pager_then_less_r_then_more(bin_dir):
    path = str(bin_dir)
    assert pager({"PATH": path, "LOOM_PAGER": "bat --paging=always", "PAGER": "more"}).argv == [
        str(bin_dir / "bat"), "--paging=always"]
    assert pager({"PATH": path, "LOOM_PAGER": "", "PAGER": "more -d"}).argv == [str(bin_dir / "more"), "-d"]
    assert pager({"PATH": path}).argv == [str(bin_dir / "less"), "-R"]
    (bin_dir / "less").unlink()
    assert pager({"PATH": path}).argv == [str(bin_dir / "more")]


def test_editor_order_visual_then_editor_then_vi(bin_dir):
    path = str(bin_dir)
    assert editor({"PATH": path, "VISUAL": "nano -v", "EDITOR": "vi"}).argv == [str(bin_dir / "nano"), "-v"]
    assert editor({"PATH": path, "VISUAL": " ", "EDITOR": "nano"}).source == "$EDITOR"
    assert editor({"PATH": path}).argv == [str(bin_dir / "vi")]


def test_a_missing_program_is_a_typed_error_naming_the_variable(bin_dir, tmp_path):
    with pytest.raises(ProgramNotFound, match=r"the editor 'emacsclient' \(from \$EDITOR\) was not found") as err:
        editor({"PATH": str(bin_dir), "EDITOR": "emacsclient -t"})
    assert err.value.code == "PROGRAM_NOT_FOUND"
    with pytest.raises(ProgramNotFound, match=r"no pager found: set \$LOOM_PAGER or \$PAGER"):
        pager({"PATH": str(tmp_path / "nothing")})
    with pytest.raises(ProgramNotFound, match="cannot be read as a command"):
        pager({"PATH": str(bin_dir), "PAGER": "less 'unclosed"})


def test_open_text_hands_over_a_temporary_copy_and_removes_it(tmp_path):
    log = tmp_path / "log"
    script = tmp_path / "ed"
    script.write_text(f"#!/bin/sh\necho \"$1\" > '{log}'\ncat \"$1\" >> '{log}'\necho extra >> \"$1\"\nexit 4\n")
    script.chmod(0o755)
    program, suffix = what_to_open("plan", {"PATH": str(tmp_path), "VISUAL": str(script)})
    opened = open_text(program, "# Plan\r\nstep 1\n", suffix=suffix, name="loom-plan")
    name, _, body = log.read_bytes().decode().partition("\n")
    assert Path(name).suffix == ".md" and Path(name).name.startswith("loom-plan-") and not Path(name).exists()
    assert body == "# Plan\r\nstep 1\n"
    assert opened.returncode == 4 and opened.changed  # edited: the caller says the edit went nowhere
    untouched = open_text(program.__class__("pager", ["/bin/true"], "test"), "x\r\n", suffix=".diff")
    assert untouched.returncode == 0 and not untouched.changed
