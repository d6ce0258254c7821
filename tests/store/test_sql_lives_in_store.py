"""All SQL over loom's tables lives in ``loom_core/store/``: no other module of loom_core or loom_tui
holds SQL text in a string literal or imports sqlite3 / peewee."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("loom_core", "loom_tui")
STORE = ROOT / "loom_core" / "store"
SQL = re.compile(r"\bSELECT\s+[\w*({]|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
                 r"|\bCREATE\s+(?:TEMP\s+)?(?:TABLE|INDEX|VIEW|TRIGGER)\b|\bPRAGMA\s+\w|\bjson_extract\s*\(")
DB_MODULES = {"sqlite3", "peewee", "playhouse"}
STRING_TOKENS = {tokenize.STRING} | {getattr(tokenize, n) for n in ("FSTRING_MIDDLE",) if hasattr(tokenize, n)}


def sql_in(source: str) -> list[tuple[int, str]]:
    """``(line, why)`` for every string literal holding SQL (docstrings and comments are prose) and every
    sqlite3/peewee import in ``source``."""
    found = []
    tree = ast.parse(source)
    prose = {n.value.lineno for n in ast.walk(tree)
             if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in STRING_TOKENS and tok.start[0] not in prose:
            m = SQL.search(tok.string)
            if m:
                found.append((tok.start[0], f"SQL text {m.group(0)!r}"))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in DB_MODULES:
                found.append((node.lineno, f"imports {name}"))
    return sorted(found)


def offenders(root: Path) -> list[str]:
    out = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if path.is_relative_to(root / "loom_core" / "store"):
                continue
            for line, why in sql_in(path.read_text(encoding="utf-8")):
                out.append(f"{path.relative_to(root)}:{line}: {why}")
    return out


def test_no_sql_outside_the_store():
    found = offenders(ROOT)
    assert not found, "SQL belongs in loom_core/store/:\n" + "\n".join(found)


def test_the_scan_sees_sql_in_strings_and_imports_but_not_english_in_comments_or_docs():
    src = '''"""Select a project, then update the list; SELECT the row you want."""
import sqlite3
from peewee import SqliteDatabase
# SELECT a project: update it, delete it
q = ("SELECT sum(cost_usd), " "FROM transcripts")
w = f"SELECT {', '.join(cols)} FROM pipeline_state"
conn.execute("UPDATE transcripts SET duration_ms = 1")
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
x = "json_extract(usage, '$.failed')"
label = "Select a project or DELETE it"
'''
    lines = [line for line, _ in sql_in(src)]
    assert lines == [2, 3, 5, 6, 7, 8, 9]
