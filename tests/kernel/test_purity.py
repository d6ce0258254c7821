"""The kernel is pure: no clock, no files, no database, no vendor, no UI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import loom_core

KERNEL_DIR = Path(loom_core.__file__).resolve().parent / "kernel"
KERNEL_FILES = sorted(KERNEL_DIR.glob("*.py"))

FORBIDDEN = [
    re.compile(r"\btime\."),
    re.compile(r"datetime\.now"),
    re.compile(r"\bopen\("),
    re.compile(r"sqlite3"),
    re.compile(r"anthropic", re.I),
    re.compile(r"openai", re.I),
    re.compile(r"claude", re.I),
    re.compile(r"textual", re.I),
]


def test_kernel_sources_are_found():
    names = {p.name for p in KERNEL_FILES}
    assert {"fsm.py", "gates.py", "invariants.py", "parse.py", "prompt.py", "state.py", "types.py",
            "ids.py", "now.py", "codec.py"} <= names


@pytest.mark.parametrize("path", KERNEL_FILES, ids=lambda p: p.name)
def test_kernel_source_has_no_impure_call(path):
    text = path.read_text(encoding="utf-8")
    hits = [f"{path.name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
            for rx in FORBIDDEN for m in rx.finditer(text)]
    assert hits == []


def test_the_patterns_do_catch_impure_code():
    sample = "import time\nstamp = time.time()\nf = open('x')\nnow = datetime.now()\nimport sqlite3\n" \
             "from Anthropic import Client\n"
    caught = {rx.pattern for rx in FORBIDDEN if rx.search(sample)}
    assert caught == {r"\btime\.", r"datetime\.now", r"\bopen\(", "sqlite3", "anthropic"}
    assert not any(rx.search("runtime.x = reopen(y)") for rx in FORBIDDEN[:3])


HEAVY = ("sqlite3", "peewee", "textual", "anthropic")
PROBE = (
    "import sys\n"
    "import loom_core.kernel.fsm, loom_core.kernel.prompt, loom_core.kernel.codec\n"
    f"heavy = {HEAVY!r}\n"
    "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
)


def test_importing_the_kernel_loads_no_store_ui_or_vendor_module():
    root = Path(loom_core.__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
