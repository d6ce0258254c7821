"""``python -m loom_core.surfaces.cli``: the same as the ``loom`` script."""

from loom_core.surfaces.cli import main

main()
