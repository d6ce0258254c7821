"""The textual diff of a sandbox (§9.3): unified, capped per file above a size, with a per-file list."""

from __future__ import annotations

from collections.abc import Callable

import pygit2

DIFF_CAP_BYTES = 256 * 1024
DIFF_LINES_PER_FILE = 300


def render_diff(diff: pygit2.Diff, rel: Callable[[str], str | None], cap_bytes: int) -> str:
    """The patch text of ``diff`` for paths ``rel`` keeps; above ``cap_bytes`` each file keeps its first
    300 changed lines and a full per-file ``+N/-M`` list is appended."""
    files: list[tuple[str, str, int, int, bool]] = []
    for i, d in enumerate(diff.deltas):
        path = d.new_file.path if d.status_char() != "D" else d.old_file.path
        if rel(path) is None:
            continue
        patch = diff[i]
        if patch is None:
            continue
        _, adds, dels = patch.line_stats
        files.append((path, patch.data.decode("utf-8", "replace"), adds, dels, patch.delta.is_binary))
    text = "".join(body for _, body, *_ in files)
    if len(text.encode("utf-8")) > cap_bytes:
        parts = [truncate_patch(body, DIFF_LINES_PER_FILE) for _, body, *_ in files]
        parts.append(f"\n# diff truncated (over {cap_bytes} bytes): first {DIFF_LINES_PER_FILE} changed "
                     f"lines per file kept; full per-file changes:\n")
        parts.extend(f"+{a}/-{d} {p}{' (binary)' if b else ''}\n" for p, _, a, d, b in files)
        text = "".join(parts)
    return text


def truncate_patch(body: str, max_changed: int) -> str:
    out: list[str] = []
    changed = 0
    in_hunks = False
    dropped = 0
    for line in body.splitlines(keepends=True):
        if line.startswith("@@"):
            in_hunks = True
        elif in_hunks and line[:1] in ("+", "-"):
            changed += 1
            if changed > max_changed:
                dropped += 1
                continue
        if changed > max_changed:
            continue
        out.append(line)
    if dropped:
        if out and not out[-1].endswith("\n"):
            out.append("\n")
        out.append(f"# ... {dropped} more changed line(s) in this file not shown\n")
    return "".join(out)
