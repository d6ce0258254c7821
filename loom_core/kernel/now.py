"""NowToken arithmetic. A NowToken is ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC), minted outside the
kernel once per tick; inside, tokens are only parsed, compared and shifted."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

_NOW_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def is_now_token(value: object) -> bool:
    return isinstance(value, str) and bool(_NOW_RE.match(value))


def parse(token: str) -> datetime:
    if not is_now_token(token):
        raise ValueError(f"not a NowToken: {token!r}")
    return _parse(token)


@functools.lru_cache(maxsize=4096)
def _parse(token: str) -> datetime:  # a poll of many projects parses the same start times again and again
    return datetime(int(token[0:4]), int(token[5:7]), int(token[8:10]), int(token[11:13]), int(token[14:16]),
                    int(token[17:19]), int(token[20:23]) * 1000, tzinfo=UTC)


def format_dt(moment: datetime) -> str:
    m = moment.astimezone(UTC)
    return (f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
            f"{m.microsecond // 1000:03d}Z")


def shift(token: str, *, seconds: float) -> str:
    return format_dt(parse(token) + timedelta(seconds=seconds))


def seconds_between(earlier: str, later: str) -> float:
    return (parse(later) - parse(earlier)).total_seconds()


def day(token: str) -> str:
    return token[:10]
