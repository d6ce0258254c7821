"""Extracting and validating the JSON header from free model text."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from loom_core.kernel.parse import extract_json, normalise_severity, parse_output

FAILURES = {"no-json", "json-parse", "schema-field"}
HEADER = {"verdict": "request_changes", "summary_line": "two problems",
          "findings": [{"severity": "critical", "category": "ambiguity", "file": "spec.md", "line": 7,
                        "summary": "unclear owner"},
                       {"severity": "nit", "message": "typo in {title}"}]}


def ok(text: str, kind: str = "reviewer") -> dict:
    p = parse_output(kind, text)
    assert p.ok, (p.failure, p.detail)
    return p.header


def test_json_in_a_fence_inside_prose():
    text = "Here is my review.\n\n```json\n" + json.dumps(HEADER, indent=2) + "\n```\n\nThanks!"
    h = ok(text)
    assert h["verdict"] == "REQUEST_CHANGES"
    assert [f["severity"] for f in h["findings"]] == ["blocking", "info"]
    assert h["findings"][0]["line_start"] == 7 and h["findings"][0]["line_end"] == 7
    assert h["findings"][1]["summary"] == "typo in {title}"
    assert h["findings"][1]["category"] == "general"


def test_fence_is_preferred_over_an_earlier_brace_in_prose():
    text = 'I considered {"verdict": "APPROVE", "findings": []} first, but:\n```json\n' \
           + json.dumps(HEADER) + "\n```"
    assert ok(text)["verdict"] == "REQUEST_CHANGES"


def test_bare_json():
    assert ok(json.dumps({"verdict": "approve", "findings": []})) == {"verdict": "APPROVE", "findings": []}


def test_json_followed_by_prose():
    h = ok(json.dumps(HEADER) + "\n\nI hope this helps. {not json}")
    assert h["summary_line"] == "two problems"


def test_nested_braces_and_quotes_inside_strings():
    header = {"verdict": "APPROVE", "findings": [
        {"severity": "info", "summary": 'use "{x}" not }{ and \\"escaped {"', "evidence": "a { b } } c"}]}
    text = "Prose with a stray } brace first.\n" + json.dumps(header) + "\ntrailing } {"
    h = ok(text)
    assert h["findings"][0]["summary"] == 'use "{x}" not }{ and \\"escaped {"'
    assert h["findings"][0]["evidence_excerpt"] == "a { b } } c"


@pytest.mark.parametrize(("raw", "norm"), [
    ("critical", "blocking"), ("Blocker", "blocking"), (" HIGH ", "blocking"),
    ("warning", "warn"), ("Medium", "warn"), ("warn", "warn"),
    ("nit", "info"), ("minor", "info"), ("suggestion", "info"), ("info", "info"),
    ("spicy", None), (3, None), (None, None),
])
def test_severity_synonyms(raw, norm):
    assert normalise_severity(raw) == norm


def test_unknown_severity_is_a_schema_failure():
    p = parse_output("reviewer", json.dumps({"verdict": "APPROVE", "findings": [{"severity": "spicy"}]}))
    assert not p.ok and p.failure == "schema-field" and "findings[0]" in p.detail


@pytest.mark.parametrize(("text", "failure"), [
    ("", "no-json"),
    ("   \n", "no-json"),
    ("All good, approve.", "no-json"),
    ('{"verdict": "APPROVE", "findings": [', "json-parse"),
    ("```json\n{verdict: APPROVE}\n```", "json-parse"),
    ('{"findings": []}', "schema-field"),
    ('{"verdict": "  ", "findings": []}', "schema-field"),
    ('{"verdict": "APPROVE"}', "schema-field"),
    ('{"verdict": "APPROVE", "findings": {"a": 1}}', "schema-field"),
    ('{"verdict": "APPROVE", "findings": ["bad"]}', "schema-field"),
])
def test_failure_kinds(text, failure):
    p = parse_output("reviewer", text)
    assert not p.ok
    assert p.failure == failure
    assert p.excerpt == text[:400]


def test_validator_may_omit_findings_and_other_kinds_skip_the_schema():
    assert ok('{"verdict": "pass"}', "validator") == {"verdict": "PASS", "findings": []}
    assert ok('{"notes": [1, 2]}', "research-note") == {"notes": [1, 2]}
    assert extract_json("[1, 2, 3]")[0] is None  # an array is not a header


def test_long_output_excerpt_is_bounded():
    p = parse_output("reviewer", "x" * 5000)
    assert p.failure == "no-json" and len(p.excerpt) == 400


# --------------------------------------------------------------------------- property: never raises

def check_parsed(text: str) -> None:
    p = parse_output("reviewer", text)
    if p.ok:
        assert isinstance(p.header["verdict"], str) and p.header["verdict"]
        assert isinstance(p.header["findings"], list)
        for f in p.header["findings"]:
            assert f["severity"] in ("blocking", "warn", "info")
    else:
        assert p.failure in FAILURES
        assert isinstance(p.detail, str) and isinstance(p.excerpt, str)


VALID = [
    json.dumps(HEADER),
    "Review:\n```json\n" + json.dumps(HEADER, indent=1) + "\n```\nbye",
    json.dumps({"verdict": "APPROVE", "findings": []}) + " trailing prose",
]


@st.composite
def mutated_headers(draw) -> str:
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "delete", "insert", "replace", "duplicate"]))
        i = draw(st.integers(0, len(text)))
        if op == "truncate":
            text = text[:i]
        elif op == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 20)):]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(['{', '}', '"', '\\', '`', '```', ',', ':', '[', ']'])
                                   | st.text(max_size=5)) + text[i:]
        elif op == "replace" and text:
            j = min(i, len(text) - 1)
            text = text[:j] + draw(st.characters()) + text[j + 1:]
        else:
            text = text[:i] + text[i // 2:i] + text[i:]
    return text


json_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) \
    | st.text(alphabet=st.characters(codec="ascii"), max_size=8)
json_value = st.recursive(json_scalar, lambda kids: st.lists(kids, max_size=3)
                          | st.dictionaries(st.text(max_size=5), kids, max_size=3), max_leaves=8)
SEVERITIES = st.sampled_from(["blocking", "warn", "info", "critical", "nit", "Warning", "HIGH"])
finding_like = st.fixed_dictionaries(
    {"severity": SEVERITIES},
    optional={k: json_value for k in ("file", "line", "line_start", "line_end", "category", "summary",
                                       "message", "evidence", "fix")},
) | st.dictionaries(st.sampled_from(["severity", "line", "summary"]), json_value, max_size=3)
header_like = st.fixed_dictionaries(
    {"verdict": st.sampled_from(["APPROVE", "request_changes", ""]) | json_value,
     "findings": st.lists(finding_like, max_size=3) | json_value},
    optional={"summary_line": json_value},
)

FAST = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.text())
@example("")
@example("{")
@example("}{")
@example('"{"')
@example("```json\n```")
@example("[" * 5000)
@example("{" + '"a":' * 3000)
def test_arbitrary_text_never_raises(text):
    check_parsed(text)


@FAST
@given(mutated_headers())
def test_mutated_headers_never_raise(text):
    check_parsed(text)


@FAST
@given(header_like, st.sampled_from(["{}", "```json\n{}\n```", "note: {} ok"]))
def test_structurally_odd_headers_never_raise(header, frame):
    check_parsed(frame.replace("{}", json.dumps(header)))


@pytest.mark.parametrize("line", ["²", "①"])
def test_non_ascii_digit_line_numbers_never_raise(line):
    check_parsed(json.dumps({"verdict": "APPROVE", "findings": [{"severity": "info", "line": line}]}))


# --------------------------------------------------------------------------- numbers a model may write

FORMS = ("int", "neg", "str", "exp", "frac", "nan", "inf")
DIGITS = (*range(0, 25), 4000, 4298, 4299, 4300, 4301, 4302, 6000)  # short ones, and around Python's limit
KEYS = ("line_start", "line", "line_end", "confidence")


def _number(n: int) -> str:
    """Number ``n`` of a cheap enumeration of what a model may write where a number goes: up to 6,000 digits
    (Python refuses int/str conversion past 4,300), signs, exponents, fractions, NaN and Infinity."""
    digits, n = DIGITS[n % len(DIGITS)], n // len(DIGITS)
    form = FORMS[n % len(FORMS)]
    body = "1" + str(n % 10) * digits  # JSON numbers have no leading zeros
    return {"int": body, "neg": "-" + body, "str": f'"{body}"', "exp": f"{body[:3]}e{body[:4]}",
            "frac": f"{body}.{body[:5]}", "nan": "NaN", "inf": "-Infinity"}[form]


def _case(n: int) -> tuple[str, str, str]:
    return _number(n), _number(n // 7 + 3), KEYS[n % len(KEYS)]


def _check_number_case(value: str, other: str, key: str) -> None:
    text = f'{{"verdict": "request_changes", "score": {other}, "findings": [{{"severity": "warn", ' \
           f'"summary": "s", "{key}": {value}}}]}}'
    p = parse_output("reviewer", text)
    assert p.ok, (p.failure, p.detail)
    f = p.header["findings"][0]
    for k in ("line_start", "line_end"):
        assert f[k] is None or (type(f[k]) is int and 0 <= f[k] < 2**31), f[k]
    json.dumps(p.header, allow_nan=False)  # the store keeps strict JSON: no NaN / Infinity, no huge ints lost


@pytest.mark.parametrize("case", [('"' + "9" * 4301 + '"', "1", "line_start"),  # over Python's int/str limit:
                                  ("9" * 4301, "1", "line_start")])              # parse_output raised
def test_numbers_over_pythons_int_limit_never_raise(case):
    _check_number_case(*case)


def test_numbers_of_any_size_never_raise_and_store_safely():
    """A sweep instead of random draws (same cost as 3,000 of them): the value and key depend on ``n`` mod
    2,240 and stride 3 is prime to it, so every digit count x form x digit x key occurs (each ~9 times), and
    every second number (``n // 7 + 3``) of the whole enumeration occurs too."""
    failures = []
    for n in range(0, len(DIGITS) * 70 * 7 * 4 + 1, 3):
        case = _case(n)
        try:
            _check_number_case(*case)
        except Exception as exc:  # noqa: BLE001 - collected, every failing case reported below
            failures.append(f"n={n} {tuple(c[:40] for c in case)}: {type(exc).__name__} {str(exc)[:200]}")
    assert not failures, f"{len(failures)} failing cases, first ones:\n" + "\n".join(failures[:8])
