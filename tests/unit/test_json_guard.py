"""The edge's raw-byte JSON checks: nesting depth and unpaired surrogate escapes, one row per case."""

from __future__ import annotations

import json

import pytest

from modelfaucet.http.json_guard import (
    MAX_JSON_DEPTH,
    has_unpaired_surrogate_escape,
    nested_deeper_than,
    refusal,
)


def nested(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * depth + closer * depth


DEPTH_CASES = [
    ("an empty body", b"", False),
    ("a flat object", b'{"a":1,"b":[1,2,3]}', False),
    ("exactly the limit of lists", nested(MAX_JSON_DEPTH), False),
    ("one past the limit of lists", nested(MAX_JSON_DEPTH + 1), True),
    ("one past the limit of objects", b'{"a":' * (MAX_JSON_DEPTH + 1) + b"0" + b"}" * (MAX_JSON_DEPTH + 1), True),
    ("mixed lists and objects past the limit", b'[{"a":' * 40 + b"0" + b"}]" * 40, True),
    ("many siblings, each shallow", b"[" + b"[[]]," * 5000 + b"[]]", False),
    ("brackets inside a string do not count", b'{"s":"' + b"[" * 500 + b'"}', False),
    ("an escaped quote does not end the string", b'{"s":"\\"' + b"[" * 500 + b'"}', False),
    ("an escaped backslash before the closing quote", b'{"s":"\\\\","t":' + nested(100) + b"}", True),
    ("a string after an escaped backslash hides its brackets", b'["\\\\", "' + b"[" * 500 + b'"]', False),
    ("unbalanced closers first do not go negative", b"]" * 100 + nested(10), False),
    ("an unterminated string counts what follows as text", b'["' + b"[" * 500, False),
]


@pytest.mark.parametrize(("case", "body", "too_deep"), DEPTH_CASES, ids=[row[0] for row in DEPTH_CASES])
def test_nesting_depth_is_counted_outside_strings(case: str, body: bytes, too_deep: bool) -> None:
    assert nested_deeper_than(body, MAX_JSON_DEPTH) is too_deep


SURROGATE_CASES = [
    ("no escapes", b'{"a":"plain"}', False),
    ("a BMP escape", b'{"a":"\\u00e9\\u7528"}', False),
    ("a valid pair", b'{"a":"\\ud83d\\ude00"}', False),
    ("a valid pair in upper case", b'{"a":"\\uD83D\\uDE00"}', False),
    ("many valid pairs", b'{"a":"' + b"\\ud83d\\ude00" * 1000 + b'"}', False),
    ("a lone high half", b'{"a":"\\ud800"}', True),
    ("a lone high half at the end of the text", b'"abc\\udbff"', True),
    ("a lone low half", b'{"a":"\\udc80"}', True),
    ("a lone low half in upper case", b'{"a":"\\uDC80"}', True),
    ("two high halves, then a low one", b'"\\ud800\\ud800\\udc00"', True),
    ("a pair, then a lone low half", b'"\\ud83d\\ude00\\ude00"', True),
    ("low before high", b'"\\ude00\\ud83d"', True),
    ("a high half, then an ordinary escape", b'"\\ud83d\\n"', True),
    ("an escaped backslash before u: literal text", b'{"a":"\\\\udc80"}', False),
    ("an escaped backslash before a pair-looking text", b'{"a":"\\\\ud83d\\\\ude00"}', False),
    ("an escaped backslash, then a real lone escape", b'{"a":"\\\\\\udc80"}', True),
    ("literal high text, then a real low half", b'{"a":"\\\\ud83d\\ude00"}', True),
    ("a high half, an escaped backslash, a low half", b'{"a":"\\ud83d\\\\\\ude00"}', True),
    ("two escaped backslashes before u", b'{"a":"\\\\\\\\udc80"}', False),
    ("a unicode-escaped backslash before u: literal text", b'{"a":"\\u005cud800"}', False),
    ("a lone half in an object key", b'{"\\udc80":1}', True),
]


@pytest.mark.parametrize(("case", "body", "lone"), SURROGATE_CASES, ids=[row[0] for row in SURROGATE_CASES])
def test_an_unpaired_surrogate_escape_is_found_exactly(case: str, body: bytes, lone: bool) -> None:
    assert has_unpaired_surrogate_escape(body) is lone


@pytest.mark.parametrize(("case", "body", "lone"), SURROGATE_CASES, ids=[row[0] for row in SURROGATE_CASES])
def test_the_scan_agrees_with_what_python_decodes(case: str, body: bytes, lone: bool) -> None:
    text = json.dumps(json.loads(body), ensure_ascii=False)
    assert _holds_a_lone_surrogate(text) is lone


def _holds_a_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def test_refusal_names_the_problem_or_passes_the_body() -> None:
    assert refusal(b'{"events":[]}') is None
    assert "nested deeper" in (refusal(nested(MAX_JSON_DEPTH + 1)) or "")
    assert "unpaired UTF-16 surrogate escape" in (refusal(b'"\\udc80"') or "")
