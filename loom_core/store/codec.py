"""Bytes kept compressed by the store.

Transcripts: their prompts and outputs are most of a finished task's bytes and compress several times
over. A value of ``COMPRESS_FROM`` characters or more is stored as a zlib BLOB; shorter ones (and every
value written before this existed) stay TEXT, and :func:`unpack` reads both.

Archives: a finished task's store is kept in ``.loom/history/`` as one xz-compressed image of the
compacted database (``xz -dc < ARCHIVE > task.sqlite`` gives the SQLite file back). :func:`pack_image`
and :func:`unpack_image` convert; :func:`is_image` tells an image from an SQLite file (older archives)
by its first bytes.
"""

from __future__ import annotations

import zlib

COMPRESS_FROM = 256
IMAGE_MAGIC = b"\xfd7zXZ\x00"  # the xz container's own header
MAX_IMAGE_BYTES = 1 << 31  # an image that claims to unpack past this is refused, not expanded
IMAGE_PRESET = 3  # xz's fast mode: the demo task's archive 25 KB in ~15 ms; preset 6 saves 1 KB for 3× the time
_DICT_MAX = 8 << 20  # the most dictionary asked for; a smaller input gets a dictionary its own size


def pack(text: str | None) -> str | bytes | None:
    if text is None or len(text) < COMPRESS_FROM:
        return text
    return zlib.compress(text.encode("utf-8"), 6)


def unpack(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes | memoryview):
        return zlib.decompress(value).decode("utf-8")
    return value


def is_image(head: bytes) -> bool:
    return head.startswith(IMAGE_MAGIC)


def pack_image(data: bytes) -> bytes:
    """An SQLite database image as an xz stream (CRC64-checked)."""
    import lzma

    filters = [{"id": lzma.FILTER_LZMA2, "preset": IMAGE_PRESET, "dict_size": min(_DICT_MAX, max(4096, len(data)))}]
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, filters=filters)


def unpack_image(blob: bytes) -> bytes:
    """The database image an xz stream holds. ``ValueError`` when it is damaged, truncated, holds more
    than one stream's worth of garbage, or would unpack past ``MAX_IMAGE_BYTES``."""
    import lzma

    dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    try:
        data = dec.decompress(blob, max_length=MAX_IMAGE_BYTES)
    except lzma.LZMAError as exc:
        raise ValueError(f"damaged compressed image ({exc})") from None
    if not dec.eof:
        raise ValueError("truncated compressed image" if dec.needs_input else
                         f"compressed image unpacks past {MAX_IMAGE_BYTES} bytes")
    if dec.unused_data:
        raise ValueError("bytes after the end of the compressed image")
    return data
