"""Two kinds of JSON body that no route may see, found on the raw bytes before any route parses them.

- **Deep nesting.** ``json.loads`` recurses once per ``[`` or ``{``: a few hundred kilobytes
  of ``[[[…]]]`` raise ``RecursionError`` deep in a route. No request of this API is nested
  deeper than a handful of levels, so a body nested deeper than :data:`MAX_JSON_DEPTH` is
  refused.
- **Unpaired UTF-16 surrogate escapes.** JSON writes characters outside the BMP as a pair of
  escapes (``\\ud83d\\ude00``). Python decodes a lone half (``\\udc80``) into a ``str`` that
  no database can encode, so the write fails after the route has started — a usage batch
  would be half-written. Such a body is refused. An escaped backslash (``\\\\udc80``) is
  literal text, not an escape, and passes.

Both checks are cheap and bail out at once for ordinary bodies: a body with at most
:data:`MAX_JSON_DEPTH` opening brackets cannot be too deep, and one without the bytes
``\\u`` has no escape to check. Otherwise the work is a few C-level byte and regex passes,
then one Python loop over the brackets alone (two per object of a usage batch): for a
1000-event batch, well under a millisecond, about what ``json.loads`` of it costs. Anything
else malformed is left to the route's own JSON parsing.
"""

from __future__ import annotations

import re

MAX_JSON_DEPTH = 64

DEEP_NESTING_MESSAGE = f"The request body is nested deeper than {MAX_JSON_DEPTH} levels."
LONE_SURROGATE_MESSAGE = (
    "The request body contains an unpaired UTF-16 surrogate escape (such as \\ud800 without its "
    "low half); it is not text that can be stored."
)

_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
# A surrogate escape that is not half of a high-then-low pair: a high half not followed by
# a low one, or a low half whose 12 bytes up to its end are not a high-then-low pair. Exact
# once every escaped backslash is out of the way (see has_unpaired_surrogate_escape).
_HIGH = rb"\\u[dD][89abAB][0-9a-fA-F]{2}"
_LOW = rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
_LONE_SURROGATE = re.compile(
    rb"\\u[dD](?:[89abAB][0-9a-fA-F]{2}(?!%s)|[c-fC-F][0-9a-fA-F]{2}(?<!%s%s))" % (_LOW, _HIGH, _LOW)
)


def refusal(body: bytes) -> str | None:
    """Why ``body`` may not reach a route, or None."""
    if nested_deeper_than(body, MAX_JSON_DEPTH):
        return DEEP_NESTING_MESSAGE
    if has_unpaired_surrogate_escape(body):
        return LONE_SURROGATE_MESSAGE
    return None


def _without_escaped_backslashes(body: bytes, placeholder: bytes) -> bytes:
    # bytes.replace works left to right without overlaps, exactly as a JSON reader pairs
    # backslashes: afterwards every backslash left starts an escape of its own.
    return body.replace(b"\\\\", placeholder)


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """True if the brackets outside JSON strings nest deeper than ``limit``."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    if b'\\"' in body:  # escaped quotes out: every quote left opens or closes a string
        body = _without_escaped_backslashes(body, b"").replace(b'\\"', b"")
    # Quotes and brackets only; the pieces between an odd and an even quote are in strings.
    brackets = b"".join(body.translate(None, _NOT_STRUCTURE).split(b'"')[::2])
    depth = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        elif byte in b"]}" and depth:
            depth -= 1
    return False


def has_unpaired_surrogate_escape(body: bytes) -> bool:
    """True if a ``\\uD800``–``\\uDFFF`` escape is not half of a high-then-low pair."""
    if b"\\u" not in body:
        return False
    # A placeholder, not nothing: in \ud83d\\\ude00 (a high half, an escaped backslash,
    # a low half) the two halves must not close up into a pair.
    return _LONE_SURROGATE.search(_without_escaped_backslashes(body, b"_")) is not None
