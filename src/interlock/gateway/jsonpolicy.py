"""Strict JSON for webhook bodies: one policy, one error (:class:`BadJson`).

>>> parse_json(b'{"id": "evt_1", "amount": 1250, "tags": ["a", "b"]}')
{'id': 'evt_1', 'amount': 1250, 'tags': ['a', 'b']}
>>> parse_json(b'{"a": 1, "a": 2}')
Traceback (most recent call last):
    ...
interlock.gateway.jsonpolicy.BadJson: duplicate object key "a" (keys must be unique in an object)

Policy: RFC 8259, minus what is unsafe to store, compare or re-encode. One
leading UTF-8 BOM is ignored (RFC 8259 §8.1 allows it; signatures are checked
over the raw bytes first; positions count from after it). Rejected: invalid
UTF-8, and escaped unpaired surrogates (``"\\ud800"`` has no UTF-8 form), as
``invalid_utf8``; duplicate keys at any depth; ``NaN``, ``Infinity`` and
literals that overflow a double (``1e400``); integers over 4,300 digits; NUL,
raw or ``\\u0000``; nesting deeper than ``max_depth``, found by an iterative
pre-scan (100,000 ``[`` take milliseconds and never a RecursionError); an empty
or all-whitespace body; anything else malformed. Messages name the problem and
its line and column where that is cheap to know, and echo at most a short
sanitised key or escape: never values, which may be personal data or secrets.

Speed: C-level scans of the bytes (``in``, ``translate``, ``replace``, regexes,
``itertools``), then the standard library's C scanner with an
``object_pairs_hook`` (duplicates) and a ``parse_float`` hook (overflow).
Integers use ``int()``'s own 4,300-digit check. orjson is faster but not
equivalent: it keeps the last of duplicate keys and makes big integers floats.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from collections.abc import Iterator
from itertools import accumulate, compress, count, islice
from typing import Any, Final, Literal, NoReturn

from interlock.errors import InterlockError

__all__ = ["BadJson", "BadJsonReason", "parse_json", "parse_json_object"]

BadJsonReason = Literal[
    "invalid_utf8",
    "malformed",
    "duplicate_key",
    "non_finite_number",
    "integer_too_large",
    "nul_character",
    "too_deep",
    "empty",
    "not_an_object",
]

DEFAULT_MAX_DEPTH: Final = 64
MAX_INT_DIGITS: Final = 4300  # CPython's default int/str conversion limit

_BOM: Final = b"\xef\xbb\xbf"
_LONE_SURROGATE: Final = re.compile(  # a high one not followed by a low one, or vice versa
    rb"\\u[dD](?:[89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|[c-fC-F][0-9a-fA-F]{2}(?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}))"
)
_NON_FINITE: Final = re.compile(  # skips whole strings, so "NaN" in one is not found
    rb'(?:[^"NI]++|"[^"\\]*+(?:\\.[^"\\]*+)*+"|N(?!aN)|I(?!nfinity))*+(NaN|Infinity)', re.DOTALL
)
_SUSPECT_ESCAPE: Final = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_QUOTE_ESCAPES: Final = re.compile(rb'\\[\\"]')  # the escapes that hide a '"' from a scan
_QUOTED: Final = re.compile(rb'"[^"]*+(?:"|\Z)')
_PAIR: Final = b"\x01\xff"  # an innermost [] or {}
_PASSES: Final = 6
_STRUCTURE: Final = bytes(b for b in range(256) if b not in b'"[]{}')  # deleted: all but these
_SIGNED: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes
_IS_BRACKET: Final = [b in b"[]{}" for b in range(256)]
_INT_LIMIT_DIGITS: Final = re.compile(r"value has (\d+) digits")
_KINDS: Final = {list: "array", str: "string", bool: "boolean", type(None): "null"}


class BadJson(InterlockError):
    """A body the JSON policy rejects; ``reason`` is a stable machine-readable code.

    ``line`` and ``column`` (1-based, columns in characters) are set when known.

    >>> try:
    ...     parse_json(b'[1, 2,]')
    ... except BadJson as exc:
    ...     print(exc.reason, exc.line, exc.column)
    malformed 1 7
    """

    def __init__(
        self,
        reason: BadJsonReason,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        where = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(message + where)
        self.reason: BadJsonReason = reason
        self.line = line
        self.column = column


def parse_json(raw: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The JSON value in ``raw`` (any type at the top level), or :class:`BadJson`.

    ``max_depth`` counts nested arrays and objects: ``[[1]]`` has depth 2.

    >>> parse_json(b'\\xef\\xbb\\xbf [1.5, "caf\\\\u00e9", null]')
    [1.5, 'café', None]
    >>> parse_json(b'[[[]]]', max_depth=2)
    Traceback (most recent call last):
        ...
    interlock.gateway.jsonpolicy.BadJson: nesting is deeper than 2 levels at line 1, column 3
    """
    if max_depth < 0:
        raise ValueError(f"max_depth must be 0 or more, not {max_depth}")
    data = raw[3:] if raw.startswith(_BOM) else raw
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        detail = f"the body is not UTF-8 (byte 0x{data[exc.start]:02x}: {exc.reason})"
        raise _bad_at("invalid_utf8", detail, data, exc.start) from None
    _prescan(data, max_depth)
    # With the default limit, int() enforces ours in C; otherwise a (slower) hook does.
    plain = sys.get_int_max_str_digits() == MAX_INT_DIGITS
    try:
        return (_DECODER if plain else _CHECKED_INT_DECODER).decode(text)
    except json.JSONDecodeError as exc:
        if not text.strip(" \t\r\n"):
            raise BadJson("empty", "the body is empty (expected a JSON value)") from None
        what = exc.msg.split(" (")[0].removesuffix(" at").removesuffix(" starting")
        msg = f"malformed JSON ({what[:1].lower()}{what[1:]})"
        raise BadJson("malformed", msg, line=exc.lineno, column=exc.colno) from None
    except ValueError as exc:  # only int()'s digit limit raises a bare ValueError here
        digits = int(found[1]) if (found := _INT_LIMIT_DIGITS.search(str(exc))) else None
        raise _too_many_digits(digits) from None
    except RecursionError:
        raise BadJson("too_deep", "nesting is too deep for the parser") from None
    except _NonFiniteConstant as exc:
        if not (at := _NON_FINITE.match(data)):  # always found: belt and braces
            raise BadJson("non_finite_number", str(exc)) from None
        start = at.start(1) - (data[at.start(1) - 1 : at.start(1)] == b"-")
        raise _bad_at("non_finite_number", str(exc), data, start) from None


def parse_json_object(raw: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """Like :func:`parse_json`, but the top-level value must be an object.

    >>> parse_json_object(b'{"ok": true}')
    {'ok': True}
    >>> parse_json_object(b'[1]')
    Traceback (most recent call last):
        ...
    interlock.gateway.jsonpolicy.BadJson: the body is a JSON array; a JSON object is required
    """
    value = parse_json(raw, max_depth=max_depth)
    if not isinstance(value, dict):
        kind = _KINDS.get(type(value), "number")
        raise BadJson("not_an_object", f"the body is a JSON {kind}; a JSON object is required")
    return value


def _prescan(data: bytes, max_depth: int) -> None:
    """NUL characters, unpaired surrogate escapes and nesting depth, without recursion."""
    if b"\x00" in data:
        raise _bad_at("nul_character", "NUL character in the body", data, data.index(b"\x00"))
    scan = data
    if b"\\" in data:
        # Same length, so offsets hold: after this every '\\' starts an escape, every '"'
        # delimits a string (and there is no other NUL: see above).
        scan = _QUOTE_ESCAPES.sub(b"\x00\x00", data)
        if _SUSPECT_ESCAPE.search(scan):
            _check_escapes(scan)
    brackets = scan.translate(None, _STRUCTURE)  # only '"[]{}' are left
    if brackets.count(b"[") + brackets.count(b"{") <= max_depth:
        return  # a cheap upper bound
    brackets = brackets.replace(b'""', b"")  # empty strings and the gaps between strings
    if b'"' in brackets:
        brackets = _QUOTED.sub(b"", brackets)  # strings with brackets in them
    # A pass removes the innermost pairs, lowering the deepest point by exactly one when the
    # nesting is balanced (at most one if not): a few passes shrink typical bodies to nothing.
    nest, passes = brackets.translate(_SIGNED), 0
    while passes < min(max_depth, _PASSES) and _PAIR in nest:
        nest, passes = nest.replace(_PAIR, b""), passes + 1
    if not nest:
        return
    rest = max(accumulate(memoryview(nest).cast("b")))
    if rest > max_depth or (rest + passes > max_depth and max(_depths(brackets)) > max_depth):
        _raise_too_deep(data, brackets, max_depth)


def _depths(brackets: bytes) -> Iterator[int]:
    return accumulate(memoryview(brackets.translate(_SIGNED)).cast("b"))


def _check_escapes(scan: bytes) -> None:
    if (nul := scan.find(b"\\u0000")) >= 0:
        raise _bad_at("nul_character", "NUL character (\\u0000) in a string", scan, nul)
    if lone := _LONE_SURROGATE.search(scan):
        message = f"unpaired surrogate escape \\{lone[0][1:].decode()} (strings must be Unicode)"
        raise _bad_at("invalid_utf8", message, scan, lone.start())


def _raise_too_deep(data: bytes, brackets: bytes, max_depth: int) -> NoReturn:
    message = f"nesting is deeper than {max_depth} levels"
    if sum(map(data.count, (b"[", b"]", b"{", b"}"))) != len(brackets):
        raise BadJson("too_deep", message)  # brackets inside strings: the position is not cheap
    index = next(compress(count(), map(max_depth.__lt__, _depths(brackets))), None)
    if index is None:  # unbalanced: too deep only relative to an unmatched closer
        raise BadJson("too_deep", message)
    offsets = compress(count(), map(_IS_BRACKET.__getitem__, data))
    raise _bad_at("too_deep", message, data, next(islice(offsets, index, None)))


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        key = next(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
        message = f"duplicate object key {_safe(key)} (keys must be unique in an object)"
        raise BadJson("duplicate_key", message)
    return obj


class _NonFiniteConstant(BadJson):
    """``NaN``/``Infinity`` met by the parser; re-raised as a :class:`BadJson` with a position."""


def _constant(name: str) -> NoReturn:
    raise _NonFiniteConstant("non_finite_number", f"{name} is not a JSON number")


def _checked_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise BadJson("non_finite_number", "a number is too large for a double (it overflows)")
    return value


def _checked_int(literal: str) -> int:
    digits = len(literal) - literal.startswith("-")
    if digits <= MAX_INT_DIGITS:
        try:
            return int(literal)
        except ValueError:  # the process lowered sys.set_int_max_str_digits below ours
            pass
    raise _too_many_digits(digits)


def _too_many_digits(digits: int | None) -> BadJson:
    has = f"has {digits:,} digits" if digits is not None else "is too long"
    return BadJson("integer_too_large", f"an integer {has} (the limit is {MAX_INT_DIGITS:,})")


_HOOKS: Final[dict[str, Any]] = {"object_pairs_hook": _pairs, "parse_constant": _constant}
_DECODER: Final = json.JSONDecoder(**_HOOKS, parse_float=_checked_float)
_CHECKED_INT_DECODER: Final = json.JSONDecoder(
    **_HOOKS, parse_float=_checked_float, parse_int=_checked_int
)


def _where(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte ``offset``."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", "replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def _bad_at(reason: BadJsonReason, message: str, data: bytes, offset: int) -> BadJson:
    line, column = _where(data, offset)
    return BadJson(reason, message, line=line, column=column)


def _safe(key: str, limit: int = 20) -> str:
    """At most ``limit`` characters of a key, quoted, with all but printable ASCII as '?'."""
    shown = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in key[:limit])
    return f'"{shown}"' + ("..." if len(key) > limit else "")
