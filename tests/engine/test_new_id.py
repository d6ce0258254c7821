"""The engine's id source is injectable: ids it invents outside the kernel come from ``new_id``."""

from __future__ import annotations

from loom_core.bundles.spec import BUNDLE
from loom_core.engine.clock import FixedClock
from loom_core.engine.engine import Engine, sequential_ids


def _created(project, new_id):
    engine = Engine(project, bundle=BUNDLE, clock=FixedClock(), new_id=new_id)
    try:
        engine.create("write the csv export spec")
        return engine.state().pipeline
    finally:
        engine.close()


def test_driver_state_id_comes_from_the_injected_source(project):
    minted: list[str] = []

    def new_id() -> str:
        minted.append(f"id-{len(minted) + 1}")
        return minted[-1]

    pipeline = _created(project, new_id)
    assert pipeline["driver_state_id"] in {f"d-{i}" for i in minted}


def test_sequential_ids_make_the_same_task_id_twice(tmp_path):
    ids = [_created(tmp_path / name, sequential_ids())["task_id"] for name in ("a", "b")]
    assert ids[0] == ids[1]
    assert sequential_ids()() == "00000000-0000-0000-0000-000000000001"
