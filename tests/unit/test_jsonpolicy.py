from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from interlock.errors import InterlockError
from interlock.gateway.jsonpolicy import (
    DEFAULT_MAX_DEPTH,
    MAX_INT_DIGITS,
    BadJson,
    parse_json,
    parse_json_object,
)


def rejected(raw: bytes, reason: str, **kwargs: Any) -> BadJson:
    with pytest.raises(BadJson) as info:
        parse_json(raw, **kwargs)
    assert info.value.reason == reason, str(info.value)
    return info.value


# -- valid input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b'{"id": "evt_1", "n": 1, "ok": true, "x": null}',
            {"id": "evt_1", "n": 1, "ok": True, "x": None},
        ),
        (b"[]", []),
        (b"{}", {}),
        (b'"text"', "text"),
        (b"0", 0),
        (b"-12", -12),
        (b"true", True),
        (b"null", None),
        (b" \t\r\n [1] \n", [1]),
    ],
)
def test_any_json_value_parses(raw: bytes, expected: object) -> None:
    assert parse_json(raw) == expected


def test_unicode_raw_and_escaped() -> None:
    raw = '{"name": "Zoë 東京 🎉", "esc": "\\u00e9\\ud83c\\udf89\\u6771"}'.encode()
    assert parse_json(raw) == {"name": "Zoë 東京 🎉", "esc": "é🎉東"}


def test_escaped_characters() -> None:
    raw = rb'["\"", "\\", "\/", "\b\f\n\r\t", "\u0041", "\\u0000", "\\\\", "a\\"]'
    assert parse_json(raw) == ['"', "\\", "/", "\b\f\n\r\t", "A", "\\u0000", "\\\\", "a\\"]


def test_a_utf8_bom_is_stripped() -> None:
    assert parse_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"1e308", 1e308),
        (b"-1e308", -1e308),
        (b"1.7976931348623157e308", sys.float_info.max),
        (b"5e-324", 5e-324),
        (b"1e-400", 0.0),  # underflow is finite
        (b"-0.0", -0.0),
        (b"0.1", 0.1),
        (b"1E+2", 100.0),
        (b"1." + b"5" * 5000, 1.5555555555555556),  # long fractions are fine
    ],
)
def test_floats(raw: bytes, expected: float) -> None:
    value = parse_json(raw)
    assert value == expected
    assert math.copysign(1, value) == math.copysign(1, expected)


@pytest.mark.parametrize("digits", [1, 19, 20, 64, 200, MAX_INT_DIGITS])
def test_big_but_allowed_integers(digits: int) -> None:
    text = "7" * digits
    assert parse_json(text.encode()) == int(text)
    assert parse_json(f"[-{text}]".encode()) == [-int(text)]


def test_nesting_at_exactly_max_depth() -> None:
    arrays = b"[" * DEFAULT_MAX_DEPTH + b"]" * DEFAULT_MAX_DEPTH
    objects = b'{"a":' * (DEFAULT_MAX_DEPTH - 1) + b"[1]" + b"}" * (DEFAULT_MAX_DEPTH - 1)
    assert parse_json(arrays) is not None
    assert parse_json(objects) is not None
    assert parse_json(b'[{"a": [[]]}]', max_depth=4) == [{"a": [[]]}]
    assert parse_json(b"5", max_depth=0) == 5


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    raw = b'{"a": "' + b"[{" * 500 + b'", "b\\"[[[": "\\\\", "c": "]]]]"}'
    assert parse_json(raw, max_depth=1) == {"a": "[{" * 500, 'b"[[[': "\\", "c": "]]]]"}


def test_many_siblings_are_not_depth() -> None:
    raw = b"[" + b",".join([b'{"a": [1, {"b": []}]}'] * 5000) + b"]"
    assert len(parse_json(raw)) == 5000


def test_parse_json_object() -> None:
    assert parse_json_object(b'{"a": [1]}') == {"a": [1]}
    with pytest.raises(BadJson) as info:
        parse_json_object(b"[[[]]]", 2)
    assert info.value.reason == "too_deep"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"[1]", "array"),
        (b'"s"', "string"),
        (b"1.5", "number"),
        (b"null", "null"),
        (b"true", "boolean"),
    ],
)
def test_parse_json_object_rejects_other_top_level_values(raw: bytes, kind: str) -> None:
    with pytest.raises(BadJson) as info:
        parse_json_object(raw)
    assert info.value.reason == "not_an_object"
    assert f"JSON {kind}" in str(info.value)


# -- rejections ----------------------------------------------------------------------------


def test_bad_json_is_an_interlock_error() -> None:
    assert issubclass(BadJson, InterlockError)


@pytest.mark.parametrize("raw", [b"", b" ", b"\r\n\t ", b"\xef\xbb\xbf", b"\xef\xbb\xbf \n"])
def test_empty(raw: bytes) -> None:
    assert "empty" in str(rejected(raw, "empty"))


@pytest.mark.parametrize(
    ("raw", "line", "column"),
    [
        (b"\xff", 1, 1),
        (b'{"a": "caf\xc3"}', 1, 11),  # truncated sequence
        (b'[\n "\xc0\xaf"]', 2, 3),  # overlong encoding
        (b'"\xed\xa0\x80"', 1, 2),  # an encoded surrogate
        (b'"\xf4\x90\x80\x80"', 1, 2),  # above U+10FFFF
        (b"\xff\xfe[\x001\x00]\x00", 1, 1),  # UTF-16 is not sniffed
        (b'"\xc3\xa9\xff"', 1, 3),  # columns count characters
    ],
)
def test_invalid_utf8(raw: bytes, line: int, column: int) -> None:
    exc = rejected(raw, "invalid_utf8")
    assert (exc.line, exc.column) == (line, column)
    assert "UTF-8" in str(exc)


@pytest.mark.parametrize(
    ("raw", "line", "column"),
    [
        (rb'"\ud800"', 1, 2),
        (rb'["ok", "\udc00"]', 1, 9),
        (rb'"\udc00\ud800"', 1, 2),  # reversed pair
        (rb'"\ud800\ud800"', 1, 2),
        (rb'{"\uDBFF": 1}', 1, 3),  # in a key, upper case
        (rb'"\\\ud800"', 1, 4),  # an escaped backslash, then the escape
        (rb'"\ud800\\udc00"', 1, 2),  # the "low half" is text after a backslash
        (rb'"\\ud800\udc00"', 1, 9),  # the "high half" is text after a backslash
    ],
)
def test_unpaired_surrogate_escapes(raw: bytes, line: int, column: int) -> None:
    exc = rejected(raw, "invalid_utf8")
    assert (exc.line, exc.column) == (line, column)
    assert "unpaired surrogate" in str(exc)


def test_a_backslash_before_u_d800_text_is_not_an_escape() -> None:
    assert parse_json(rb'"\\ud800"') == "\\ud800"


@pytest.mark.parametrize(
    ("raw", "line", "column"),
    [
        (b"[1, 2,]", 1, 7),
        (b"{'a': 1}", 1, 2),
        (b"{a: 1}", 1, 2),
        (b"[1] [2]", 1, 5),
        (b"[1 2]", 1, 4),
        (b"01", 1, 2),
        (b"+1", 1, 1),
        (b".5", 1, 1),
        (b"1.", 1, 2),
        (b"[1] // note", 1, 5),
        (b'"tab\there"', 1, 5),  # a raw control character
        (b'"\\x41"', 1, 2),
        (b'"\\u12"', 1, 3),
        (b'{"a" 1}', 1, 6),
        (b'["unterminated', 1, 2),
        (b"[\n  1,\n  ]", 3, 3),
        (b"tru", 1, 1),
        (b"\xef\xbb\xbf\xef\xbb\xbf1", 1, 1),  # only one BOM is stripped
    ],
)
def test_malformed(raw: bytes, line: int, column: int) -> None:
    exc = rejected(raw, "malformed")
    assert (exc.line, exc.column) == (line, column)
    assert str(exc).startswith("malformed JSON (")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": 1, "b": {"c": 1, "c": 1}}',
        b'[[[{"k": null, "k": null}]]]',
        b'{"a": 1, "\\u0061": 2}',  # the same key, escaped differently
        b'{"x": [1, 2, {"y": {"z": 0, "z": 0}}]}',
    ],
)
def test_duplicate_keys_at_any_depth(raw: bytes) -> None:
    assert "duplicate object key" in str(rejected(raw, "duplicate_key"))


def test_duplicate_key_messages_show_a_short_sanitised_key() -> None:
    exc = rejected(
        b'{"\\n\\u00e9' + b"x" * 40 + b'": 1, "\\n\\u00e9' + b"x" * 40 + b'": 2}', "duplicate_key"
    )
    assert str(exc).startswith('duplicate object key "??' + "x" * 18 + '"... ')


@pytest.mark.parametrize(
    ("raw", "token", "column"),
    [
        (b"NaN", "NaN", 1),
        (b"[1, Infinity]", "Infinity", 5),
        (b'{"NaN": -Infinity}', "-Infinity", 9),
        (b'["Infinity", "NaN", NaN]', "NaN", 21),
    ],
)
def test_non_finite_constants(raw: bytes, token: str, column: int) -> None:
    exc = rejected(raw, "non_finite_number")
    assert str(exc).startswith(f"{token} is not a JSON number")
    assert (exc.line, exc.column) == (1, column)


@pytest.mark.parametrize("raw", [b"1e400", b"-1e400", b"[1E+999]", b"1" * 400 + b".0", b"2e308"])
def test_numbers_that_overflow_a_double(raw: bytes) -> None:
    assert "overflows" in str(rejected(raw, "non_finite_number"))


@pytest.mark.parametrize(
    "raw",
    [
        b"1" * (MAX_INT_DIGITS + 1),
        b"-" + b"9" * (MAX_INT_DIGITS + 1),
        b'{"a": [1, 2, ' + b"3" * 10_000 + b"]}",
    ],
)
def test_integers_over_the_digit_limit(raw: bytes) -> None:
    exc = rejected(raw, "integer_too_large")
    assert "digits (the limit is 4,300)" in str(exc)


@pytest.fixture
def int_digits_limit() -> Iterator[None]:
    before = sys.get_int_max_str_digits()
    yield
    sys.set_int_max_str_digits(before)


@pytest.mark.usefixtures("int_digits_limit")
@pytest.mark.parametrize("process_limit", [0, 640, 100_000])
def test_the_digit_limit_holds_whatever_the_process_limit(process_limit: int) -> None:
    sys.set_int_max_str_digits(process_limit)
    assert parse_json(b"[" + b"5" * 600 + b"]") == [int("5" * 600)]
    rejected(b"5" * (MAX_INT_DIGITS + 1), "integer_too_large")
    if process_limit == 0:
        assert parse_json(b"5" * MAX_INT_DIGITS) == int("5" * MAX_INT_DIGITS)
    if process_limit == 640:  # stricter than ours: still a clean BadJson
        rejected(b"5" * 641, "integer_too_large")


@pytest.mark.parametrize(
    ("raw", "column"),
    [
        (b'"a\x00b"', 3),
        (b'{"k\x00": 1}', 4),
        (b"[1,\x00]", 4),
        (rb'"a\u0000"', 3),
        (rb'{"\u0000": 1}', 3),
        (rb'["\\\u0000"]', 5),  # escaped backslash, then the NUL escape
        (rb'"\n\u0000"', 4),
    ],
)
def test_nul_characters(raw: bytes, column: int) -> None:
    exc = rejected(raw, "nul_character")
    assert (exc.line, exc.column) == (1, column)


def test_escaped_backslash_then_u0000_text_is_not_nul() -> None:
    assert parse_json(rb'["\\u0000", "\\\\u0000"]') == ["\\u0000", "\\\\u0000"]


@pytest.mark.parametrize(
    ("raw", "max_depth", "column"),
    [
        (b"[" * 65 + b"]" * 65, 64, 65),
        (b'{"a":' * 65 + b"1" + b"}" * 65, 64, 321),
        (b"[{}]", 1, 2),
        (b"[]", 0, 1),
        (b'["\\"\\\\", [[[1]]]]', 3, 12),
    ],
)
def test_too_deep(raw: bytes, max_depth: int, column: int) -> None:
    exc = rejected(raw, "too_deep", max_depth=max_depth)
    assert (exc.line, exc.column) == (1, column)
    assert f"deeper than {max_depth} levels" in str(exc)


def test_too_deep_without_a_position_when_strings_hold_brackets() -> None:
    exc = rejected(b'["[", ' + b"[" * 70 + b"]" * 70 + b"]", "too_deep")
    assert exc.line is None
    assert str(exc) == "nesting is deeper than 64 levels"


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000,
        b"]" + b"[" * 100 + b"]" * 100,  # unbalanced
        b"[" * 50_000 + b'"' + b"[" * 50_000,
    ],
)
def test_deep_nesting_is_found_without_recursion(raw: bytes) -> None:
    started = time.perf_counter()
    rejected(raw, "too_deep")
    assert time.perf_counter() - started < 1.0


def test_a_huge_max_depth_still_fails_cleanly_at_the_parsers_limit() -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    assert str(rejected(raw, "too_deep", max_depth=10**6)) == "nesting is too deep for the parser"


def test_a_negative_max_depth_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        parse_json(b"1", max_depth=-1)


def test_messages_never_echo_values() -> None:
    secret = b"sk_live_51Hx9SECRETsecret"
    bodies = [
        b'{"token": "' + secret + b'" "x"}',
        b'{"token": "' + secret + b'", "token": "' + secret + b'"}',
        b'{"token": "' + secret + b'\\u0000"}',
        b'{"token": "' + secret + b'\\udfff"}',
        b'{"token": "' + secret + b'", "n": NaN}',
        b'{"token": "' + secret + b'\xff"}',
        b'{"token": "' + secret + b'", "deep": ' + b"[" * 80 + b"]" * 80 + b"}",
    ]
    for body in bodies:
        with pytest.raises(BadJson) as info:
            parse_json(body)
        assert b"SECRET" not in str(info.value).encode()
        assert len(str(info.value)) < 140


# -- properties ----------------------------------------------------------------------------

JSONISH = st.lists(
    st.sampled_from(
        [
            b"[",
            b"]",
            b"{",
            b"}",
            b'"',
            b"\\",
            b":",
            b",",
            b" ",
            b"0",
            b"-1",
            b"1e999",
            b"NaN",
            b"-Infinity",
            b"u",
            b"\\u0000",
            b"\\ud800",
            b"\\udc00",
            b"\\\\",
            b'\\"',
            b"\x00",
            b"\xff",
            b"\xef\xbb\xbf",
            b"true",
            b"null",
            b"9" * 4301,
            b'"k"',
            b"\n",
        ]
    ),
    max_size=60,
).map(b"".join)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), JSONISH))
def test_arbitrary_bytes_parse_or_raise_bad_json(raw: bytes) -> None:
    for max_depth in (0, 3, DEFAULT_MAX_DEPTH):
        error = outcome(raw, max_depth)
        if error is not None:
            assert error.reason
            assert (error.line is None) == (error.column is None)


def outcome(raw: bytes, max_depth: int) -> BadJson | None:
    """None if ``raw`` parses; its BadJson if not (any other exception fails the test)."""
    try:
        parse_json(raw, max_depth=max_depth)
    except BadJson as exc:
        return exc
    return None


TEXT = st.text(
    st.one_of(
        st.characters(codec="utf-8", exclude_characters="\x00"),
        st.sampled_from('"\\[]{}/\n\t\u2028'),
    )
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**MAX_INT_DIGITS - 1), max_value=10**MAX_INT_DIGITS - 1)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children) | st.dictionaries(TEXT, children),
    max_leaves=40,
)


def depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES, st.booleans())
def test_json_values_round_trip(value: object, ensure_ascii: bool) -> None:
    assume(depth(value) <= DEFAULT_MAX_DEPTH)
    assume(all(abs(v) < 10**MAX_INT_DIGITS for v in ints(value)))
    assert parse_json(json.dumps(value, ensure_ascii=ensure_ascii).encode()) == value


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_the_depth_prescan_matches_the_real_depth(value: object) -> None:
    assume(all(abs(v) < 10**MAX_INT_DIGITS for v in ints(value)))
    raw = json.dumps(value).encode()
    levels = depth(value)
    assert parse_json(raw, max_depth=levels) == value
    if levels:
        rejected(raw, "too_deep", max_depth=levels - 1)


def ints(value: object) -> Iterator[int]:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from ints(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from ints(item)
