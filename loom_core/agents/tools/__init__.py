"""Loom's own sandboxed file tools, for providers without an agentic CLI (spec §8).

A direct-API provider (Anthropic, OpenAI-style) gets these tools instead of a shell:

* ``read_file(path, offset=1, limit=400)``: numbered lines, says when it stopped early;
* ``write_file(path, content)``: creates or replaces a file, making parent directories inside the root;
* ``edit_file(path, old_string, new_string, replace_all=False)``: exact-string replacement, refusing a
  missing or ambiguous ``old_string``;
* ``list_files(pattern="**/*")``: files under the root matching a glob (``**/`` spans directories,
  ``*`` and ``?`` do not), sorted POSIX paths, at most 500;
* ``grep(pattern, glob="**/*")``: Python regex over text files, ``path:line:text`` sorted by path then
  line, the tail kept above 4 000 bytes;
* ``run_checks()``: only when the caller supplies a checks runner.

``read_only=True`` (reviewers, planners and other agents that judge or describe but do not edit)
offers only ``read_file``, ``list_files`` and ``grep``; a write tool named anyway is refused
(``refused: read-only: …``) and nothing is written.

Every path goes through :func:`~loom_core.agents.pathguard.resolve_safe_path` (writes with
``for_write=True``); a refusal is ``refused: <reason>``. The guard hands back a canonical path with no
symlink in it, and the tools then open it one component at a time from the root with ``O_NOFOLLOW``
(``openat``), so a symlink that appears between the check and the use fails the call instead of being
followed out of the root. Writes go to a temporary file renamed over the target, so a hard link to a
file elsewhere is broken rather than written through. There is no shell tool (no real process
sandbox here). ``call`` never raises; ``audit`` receives one payload per call.
"""

from loom_core.agents.tools.registry import READ_TOOLS, ToolOutcome
from loom_core.agents.tools.sandbox import SandboxTools
from loom_core.agents.tools.search import SKIP_DIRS, glob_regex

__all__ = ["READ_TOOLS", "SKIP_DIRS", "SandboxTools", "ToolOutcome", "glob_regex"]
