"""Claude Code ``PreToolUse`` hook for the shell tool (spec §8.5): a command that would delete, move, truncate or
rewrite loom's store (``.loom/state.db`` and its ``-wal``/``-shm``) is denied with a pointer to
``pipeline_recover``; anything else — or anything this cannot parse — is allowed. Advisory, not a security
boundary. Standard library only (it runs before every shell command).

Input (stdin): the hook's JSON (``tool_name``, ``tool_input.command``). Deny: the structured decision on
stdout, the reason on stderr, exit 2. Allow: no output, exit 0.
"""

from __future__ import annotations

import json
import re
import shlex
import sys

STORE = re.compile(r"(^|/)\.loom/state\.db(-wal|-shm|-journal)?$")
REMOVERS = {"rm", "mv", "unlink", "shred", "truncate"}
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "\n"}
REDIRECTS = {">", ">>", ">|", "&>", "&>>", "1>", "2>"}
REASON = ("loom: this command would damage the task store (.loom/state.db). To get a stuck task going, use "
          "the pipeline_recover tool (or /proceed); to start over, run `loom reset` in a terminal.")


def _store(word: str) -> bool:
    return bool(STORE.search(word.strip("'\"")))


def _segments(tokens: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for t in tokens:
        if t in SEPARATORS:
            out.append([])
        else:
            out[-1].append(t)
    return [s for s in out if s]


def _command_word(seg: list[str]) -> tuple[str, list[str]]:
    """The program a simple command runs (past ``sudo``/``env``/``command``, assignments) and its arguments."""
    i = 0
    while i < len(seg) and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", seg[i]) or seg[i] in ("sudo", "env", "command",
                                                                                          "builtin", "exec")):
        i += 1
    if i >= len(seg):
        return "", []
    return seg[i].rsplit("/", 1)[-1], seg[i + 1:]


def touches_store(command: str) -> bool:
    """Whether a shell command would remove, move, redirect into or ``sed -i`` loom's store."""
    if "state.db" not in command:
        return False
    try:
        lex = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
        lex.whitespace_split = True
        tokens = list(lex)
    except ValueError:  # unbalanced quotes: not ours to judge
        return False
    for seg in _segments(tokens):
        for i, tok in enumerate(seg[:-1]):
            if tok in REDIRECTS and _store(seg[i + 1]):
                return True
        prog, args = _command_word(seg)
        targets = [a for a in args if _store(a)]
        if not targets:
            continue
        if prog in REMOVERS:
            return True
        if prog in ("sed", "gsed", "perl") and any(a == "--in-place" or re.match(r"^-[a-zA-Z]*i", a) for a in args):
            return True
        if prog == "tee" or (prog in ("cp", "install") and _store(args[-1])):  # overwritten
            return True
    return False


def main() -> int:
    try:
        doc = json.load(sys.stdin)
        command = (doc.get("tool_input") or {}).get("command")
    except (ValueError, AttributeError):
        return 0
    if not isinstance(command, str) or not touches_store(command):
        return 0
    print(json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
                                             "permissionDecisionReason": REASON}}))
    print(REASON, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
