"""What an agent sees of the work it judges, and the documents the driver saves for it.

Agents that judge (bundle extra ``judges``) get the work under review appended to their prompt,
on every backend: in the context phase the context document, in the planning phase the plan,
afterwards the sandbox's change against the baseline — the changed files with ``+N/-M`` counts
and the unified diff, cut at :data:`PROMPT_CAP` bytes (the full diff stays in
``.loom/work/diff.txt``). A file the path guard would not let an agent read (``.env``, keys, …)
is listed but its hunks are left out, in the prompt and in ``diff.txt``.

Agents that describe (bundle extra ``writes_doc``: planners → ``plan.md``, analyzers →
``context-doc.md``, the architect → ``architecture-decisions.md``) may not be able to write files
(read-only tools, a plain call); when the spawn left the document unchanged, the driver saves the
agent's answer as that document (a leading JSON block stripped). Everything here lives in the
sandbox's ``.loom/work/``, which is never committed.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from loom_core.agents.pathguard import resolve_safe_path

WORK = ".loom/work"
PROMPT_CAP = 60 * 1024
_LEADING_JSON = re.compile(r"\A\s*```json[ \t]*\n.*?\n```[ \t]*(?:\n|\Z)", re.S)
TRUNCATED = "\n# diff truncated"  # the workspace's marker before its per-file +N/-M list
_DIFF_HEAD = re.compile(r"^diff --git a/(.*?) b/(.*)$")


def doc_digest(root: Path, name: str) -> str | None:
    """Content hash of ``.loom/work/<name>``, None when it does not exist."""
    try:
        return hashlib.sha256((Path(root) / WORK / name).read_bytes()).hexdigest()
    except OSError:
        return None


def document_text(output: str) -> str:
    """An agent's answer as a document: a leading fenced JSON block is dropped."""
    return _LEADING_JSON.sub("", output or "", count=1).strip()


def save_document(root: Path, name: str, output: str) -> bool:
    """Write the answer to ``.loom/work/<name>``; False when there is nothing to write."""
    text = document_text(output)
    if not text:
        return False
    path = Path(root) / WORK / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return True


# ---------------------------------------------------------------------------------------- diffs


def split_diff(text: str) -> list[tuple[str, str]]:
    """``[(path, chunk)]`` per ``diff --git`` header; text before the first header (or a trailing
    note such as a truncation list) becomes a chunk with path ``""``."""
    chunks: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines(keepends=True):
        m = _DIFF_HEAD.match(line.rstrip("\n"))
        if m:
            chunks.append((m.group(2), [line]))
        elif line.startswith(TRUNCATED.lstrip("\n")):
            chunks.append(("", [line]))
        else:
            chunks[-1][1].append(line)
    return [(p, "".join(lines)) for p, lines in chunks if lines]


def chunk_stats(chunk: str) -> tuple[int, int]:
    """Added and removed lines in one file's hunks."""
    adds = dels = 0
    in_hunk = False
    for line in chunk.splitlines():
        if line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line.startswith("+"):
            adds += 1
        elif in_hunk and line.startswith("-"):
            dels += 1
    return adds, dels


def guarded_diff(text: str, root: Path) -> tuple[str, list[str]]:
    """The diff with the hunks of unreadable files (credentials, ``.git``) replaced by a note,
    and the paths left out."""
    out: list[str] = []
    hidden: list[str] = []
    for path, chunk in split_diff(text):
        res = resolve_safe_path(path, root) if path else None
        if res is not None and not res.ok and (res.reason or "").startswith("sensitive-"):
            hidden.append(path)
            out.append(f"diff --git a/{path} b/{path}\n# content not shown: {res.reason}\n")
        else:
            out.append(chunk)
    return "".join(out), hidden


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    return "`" * max(3, longest + 1)


def _cut(text: str, cap: int) -> tuple[str, bool]:
    data = text.encode("utf-8")
    if len(data) <= cap:
        return text, False
    head = data[:cap].decode("utf-8", "ignore")
    nl = head.rfind("\n")
    return (head[:nl + 1] if nl > 0 else head), True


def refresh_diff(workspace) -> tuple[str, str]:
    """Rewrite ``.loom/work/diff.txt``; ``(raw diff, diff without unreadable files' hunks)``. The
    file agents can read holds the guarded text."""
    raw = workspace.diff_text()
    text, hidden = guarded_diff(raw, Path(workspace.root))
    if hidden:
        (Path(workspace.root) / WORK / "diff.txt").write_text(text, encoding="utf-8")
    return raw, text


def change_section(workspace, *, cap: int = PROMPT_CAP) -> str:
    """The body of "### The change under review" for ``workspace`` (refreshes ``diff.txt``)."""
    modified, created = workspace.delta()
    if not workspace.isolated:
        files = [f"- {p} (modified)" for p in modified] + [f"- {p} (new)" for p in created]
        listing = "\n".join(files) or "(no file changed)"
        return ("The project is not a git repository, so there is no textual diff. Files changed by "
                f"this task:\n{listing}\n\nOpen them with `read_file` to judge the change.")
    raw, text = refresh_diff(workspace)
    marker = text.find(TRUNCATED)
    if marker >= 0:  # the workspace cut the diff and listed every file's counts after the marker
        body = text[:marker].rstrip("\n") + "\n"
        rows = [f"- {line.strip()}" for line in text[marker + 1:].splitlines()[1:] if line.strip()]
        body += "# (the workspace kept the first changed lines of each file; the counts above are complete)\n"
    else:
        body = text
        prefix = (getattr(workspace, "prefix", "") or "").strip("/")
        stats = {p.removeprefix(prefix + "/") if prefix else p: chunk_stats(c) for p, c in split_diff(raw) if p}
        rows = []
        for p in sorted(set(modified) | set(created)):
            count = f" +{stats[p][0]}/-{stats[p][1]}" if p in stats else ""
            rows.append(f"- {p} ({'new' if p in created else 'modified'}{count})")
    if not rows and not body.strip():
        return "The sandbox has no change against the baseline: nothing was changed."
    shown, cut = _cut(body, cap)
    fence = _fence(shown)
    parts = ["Files changed against the baseline:", "\n".join(rows) or "(none)", "",
             "The diff of the sandbox against the baseline follows. The full diff is in "
             "`.loom/work/diff.txt`; use `read_file` / `grep` to see the code around each hunk.",
             f"{fence}diff\n{shown.rstrip()}\n{fence}"]
    if cut:
        size = len(body.encode("utf-8")) // 1024
        parts.append(f"(diff cut at {cap // 1024} KB of {size} KB; read the rest in `.loom/work/diff.txt`)")
    return "\n".join(parts)


def document_section(root: Path, name: str, *, cap: int = PROMPT_CAP) -> str:
    """The body of a "… under review" section holding ``.loom/work/<name>``."""
    path = Path(root) / WORK / name
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(`.loom/work/{name}` was not written: there is nothing to review there.)"
    shown, cut = _cut(text, cap)
    note = f"\n(cut at {cap // 1024} KB; read the rest in `.loom/work/{name}`)" if cut else ""
    return f"From `.loom/work/{name}`:\n\n{shown.rstrip()}\n{note}".rstrip()


SECTIONS = {
    "context": ("The document under review", "context-doc.md"),
    "planning": ("The plan under review", "plan.md"),
}


def review_section(workspace, phase: str) -> str:
    """The prompt section a judging agent gets in ``phase``: the context doc, the plan, or the change."""
    if phase in SECTIONS:
        title, name = SECTIONS[phase]
        return f"\n\n### {title}\n{document_section(Path(workspace.root), name)}\n"
    try:
        body = change_section(workspace)
    except Exception as exc:  # noqa: BLE001 - the agent still runs; it is told why it sees no diff
        body = (f"(the diff could not be produced: {exc}; open the changed files with `read_file` and "
                "`.loom/work/diff.txt` if it exists)")
    return f"\n\n### The change under review\n{body}\n"
