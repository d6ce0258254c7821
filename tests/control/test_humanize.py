"""One way to write an age or a duration, shared by ``loom status``, the stall notice and the console."""

from __future__ import annotations

import pytest

from loom_core.control.humanize import duration, millis, span


@pytest.mark.parametrize(("seconds", "fine", "text"), [
    (None, False, "—"), (-3, False, "0s"), (0, False, "0s"), (59.9, False, "59s"), (60, False, "1 min"),
    (754, False, "12 min"), (3599, False, "59 min"), (3600, False, "1h 00m"), (3725, False, "1h 02m"),
    (0.04, True, "0.0s"), (4.24, True, "4.2s"), (9.96, True, "10.0s"), (12.4, True, "12s"), (59.6, True, "1 min"),
])
def test_duration(seconds, fine, text):
    assert duration(seconds, fine=fine) == text


@pytest.mark.parametrize(("ms", "text"), [(None, "—"), (850, "850 ms"), (1234, "1.2 s"), (65_000, "1 min")])
def test_millis(ms, text):
    assert millis(ms) == text


def test_span_between_stored_timestamps():
    assert span("2026-11-20T09:00:00.000Z", "2026-11-20T09:12:34.000Z") == "12 min"
    assert span(None, "2026-11-20T09:12:34.000Z") == ""


def test_status_and_console_write_ages_the_same_way():
    from loom_core.control import status
    from loom_tui.render import project

    assert status._age is duration and project.span is span
