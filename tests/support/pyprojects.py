"""Python projects shaped like users' ones, for checks and end-to-end tests: a git repository with a
package, a pytest suite and ruff settings, and a project ``.venv`` holding a real editable install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]

CORE = "import os\n\n\ndef add(a, b):\n    return a + b\n"  # `import os`: a lint error already there
TESTS = ("from pkgx import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\n"
         "def test_known_bug():\n    assert add(2, 2) == 5\n")  # failing already on the baseline
SETUPTOOLS = '[build-system]\nrequires = ["setuptools>=70.1"]\nbuild-backend = "setuptools.build_meta"\n'
BUILD = {
    "setuptools": SETUPTOOLS,  # src layout: a .pth holding the user's src/ path
    "setuptools-flat": SETUPTOOLS + '\n[tool.setuptools]\npackages = ["pkgx"]\n',  # the __editable__ finder
    "hatchling": '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
                 '[tool.hatch.build.targets.wheel]\npackages = ["src/pkgx"]\n',
    "flit": '[build-system]\nrequires = ["flit_core>=3.4"]\nbuild-backend = "flit_core.buildapi"\n',
    "pdm": '[build-system]\nrequires = ["pdm-backend"]\nbuild-backend = "pdm.backend"\n',
}
# what the build backend needs in the venv for `pip install --no-build-isolation -e .`
BUILD_REQUIRES = {"setuptools": ["setuptools>=70.1"], "setuptools-flat": ["setuptools>=70.1"],
                  "hatchling": ["hatchling", "editables"], "flit": ["flit_core>=3.4"], "pdm": ["pdm-backend"]}


def write(root: Path, rel: str, text: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def commit_all(root: Path) -> str:
    subprocess.run([*GIT, "add", "-A"], cwd=root, check=True, capture_output=True)
    subprocess.run([*GIT, "commit", "-qm", "base"], cwd=root, check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_project(root: Path, backend: str) -> Path:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    write(root, "pyproject.toml", f'[project]\nname = "pkgx"\nversion = "0.1"\ndescription = "a package"\n\n'
                                  f'{BUILD[backend]}\n'
                                  "[tool.ruff]\nfix = true\n")
    pkg = "pkgx" if backend.endswith("-flat") else "src/pkgx"
    write(root, f"{pkg}/__init__.py", "from .core import add\n")
    write(root, f"{pkg}/core.py", CORE)
    write(root, "tests/test_core.py", TESTS)
    write(root, ".gitignore", ".venv/\nbuild/\n*.egg-info/\n")
    commit_all(root)
    return root


def make_venv(venv: Path, *, system: bool) -> Path:
    args = ["--system-site-packages"] if system else []
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", *args, str(venv)], check=True)
    return venv / "bin" / "python"


def pip(python: Path, cwd: Path, *args: str) -> None:
    """A real pip install into the venv at ``python`` (pip runs from this interpreter via --python)."""
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                        "--disable-pip-version-check", *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0 and "-e" in args:  # loom's fixture is wrong, not the network
        pytest.fail(f"pip install {' '.join(args)} failed: {r.stderr[-1500:]}")
    if r.returncode != 0:
        pytest.skip(f"pip install {' '.join(args)} failed (registry unreachable?): {r.stderr[-300:]}")


def editable_factory(tmp_path_factory):
    """backend -> a user project whose own .venv holds an editable install of its src/ package.

    The build backends are installed once (one pip run into a shared folder) and each venv reaches them
    through a ``.pth`` file, instead of one pip run per venv: what the tests inspect, the project's own
    editable install made by a real ``pip install -e .`` in its venv, is unchanged."""
    made: dict[str, Path] = {}
    backends: list[Path] = []

    def get(backend: str) -> Path:
        if backend not in made:
            if not backends:
                shared = tmp_path_factory.mktemp("build-backends")
                reqs = sorted({r for rs in BUILD_REQUIRES.values() for r in rs})
                pip(Path(sys.executable), shared, "--target", str(shared / "lib"), *reqs)
                backends.append(shared / "lib")
            proj = make_project(tmp_path_factory.mktemp(f"user-{backend}") / "proj", backend)
            py = make_venv(proj / ".venv", system=True)  # pytest comes from the base environment
            site = next((proj / ".venv" / "lib").glob("python*/site-packages"))
            (site / "_loom_test_build_backends.pth").write_text(f"{backends[0]}\n")  # before the base's own
            pip(py, proj, "--no-build-isolation", "-e", ".")
            made[backend] = proj
        return made[backend]

    return get
