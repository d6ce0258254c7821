"""Large text kept compressed inside the store: transcripts' prompts and outputs are most of a finished
task's bytes and compress several times over.

A value of ``COMPRESS_FROM`` characters or more is stored as a zlib BLOB; shorter ones (and every value
written before this existed) stay TEXT, and :func:`unpack` reads both.
"""

from __future__ import annotations

import zlib

COMPRESS_FROM = 256


def pack(text: str | None) -> str | bytes | None:
    if text is None or len(text) < COMPRESS_FROM:
        return text
    return zlib.compress(text.encode("utf-8"), 6)


def unpack(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes | memoryview):
        return zlib.decompress(value).decode("utf-8")
    return value
