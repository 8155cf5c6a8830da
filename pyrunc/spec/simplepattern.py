"""Anchored character-class patterns without the ``re`` module.

``import re`` costs about 7 ms on the test machines (it loads ``enum``), more
than every other import of `pyrunc create` together.  The patterns in
``schemas/`` are all of one simple shape: ``^``, a sequence of literal
characters and character classes, each optionally repeated (``*``, ``+``,
``?``), then ``$``.  :func:`compile_pattern` turns such a pattern into a tuple
of :data:`Token` at build time (``schemac``); :func:`search` then gives the
verdict ``re.search(pattern, text) is not None`` would give.  Any other
pattern makes :func:`compile_pattern` return None, and the schema compiler
falls back to ``re`` for it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeAlias

#: (characters, negated, minimum count, unbounded): one literal or class with
#: its repetition.  ``characters`` lists every member (ranges expanded).
Token: TypeAlias = "tuple[str, bool, int, bool]"

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}
_SPECIAL = frozenset(".^$*+?{}[]\\|()")
_QUANTIFIERS = {"*": (0, True), "+": (1, True), "?": (0, False)}


def _escape(pattern: str, i: int) -> tuple[str, int] | None:
    """The character escaped at pattern[i] (just after a backslash)."""
    if i >= len(pattern):
        return None
    c = pattern[i]
    if c in _ESCAPES:
        return _ESCAPES[c], i + 1
    if c in _SPECIAL or c in "-/":
        return c, i + 1
    return None  # \d, \w, \s, \b ...: classes with Unicode rules; left to re


def _char_class(pattern: str, i: int) -> tuple[str, bool, int] | None:
    """Parse ``[...]`` starting after its '['; (members, negated, next index)."""
    negated = i < len(pattern) and pattern[i] == "^"
    if negated:
        i += 1
    members: list[str] = []
    first = True
    while i < len(pattern):
        c = pattern[i]
        if c == "]" and not first:
            return "".join(sorted(set(members))), negated, i + 1
        first = False
        if c == "[":
            return None  # nested sets and POSIX classes: left to re
        if c == "\\":
            escaped = _escape(pattern, i + 1)
            if escaped is None:
                return None
            c, i = escaped
        else:
            i += 1
        if i + 1 < len(pattern) and pattern[i] == "-" and pattern[i + 1] != "]":
            end = pattern[i + 1]
            if end in "\\[":
                return None
            if ord(end) < ord(c):
                return None
            members.extend(chr(o) for o in range(ord(c), ord(end) + 1))
            i += 2
        else:
            members.append(c)
    return None  # unterminated


def compile_pattern(pattern: str) -> tuple[Token, ...] | None:
    """Tokens for an anchored ``^...$`` pattern of literals and classes, else None."""
    if len(pattern) < 2 or pattern[0] != "^" or pattern[-1] != "$":
        return None
    body = pattern[1:-1]
    tokens: list[Token] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "[":
            parsed = _char_class(body, i + 1)
            if parsed is None:
                return None
            members, negated, i = parsed
        elif c == "\\":
            escaped = _escape(body, i + 1)
            if escaped is None:
                return None
            members, i = escaped
            negated = False
        elif c in _SPECIAL:
            return None
        else:
            members, negated, i = c, False, i + 1
        minimum, unbounded = 1, False
        if i < len(body) and body[i] in _QUANTIFIERS:
            minimum, unbounded = _QUANTIFIERS[body[i]]
            i += 1
            if i < len(body) and body[i] in "?+*{":
                return None  # lazy or possessive forms, or a repeated quantifier
        elif i < len(body) and body[i] == "{":
            return None
        tokens.append((members, negated, minimum, unbounded))
    return tuple(tokens)


def _match_from(tokens: tuple[Token, ...], index: int, text: str, pos: int) -> bool:
    """Whether tokens[index:] match exactly text[pos:] (greedy, backtracking)."""
    if index == len(tokens):
        return pos == len(text)
    members, negated, minimum, unbounded = tokens[index]
    limit = len(text) if unbounded else pos + 1 if minimum == 0 else pos + minimum
    limit = min(limit, len(text))
    end = pos
    while end < limit and (text[end] in members) != negated:
        end += 1
    if minimum == 1 and not unbounded:
        return end > pos and _match_from(tokens, index + 1, text, pos + 1)
    for stop in range(end, pos + minimum - 1, -1):
        if _match_from(tokens, index + 1, text, stop):
            return True
    return False


def search(tokens: tuple[Token, ...], text: str) -> bool:
    """``re.search("^...$", text) is not None`` for the pattern behind tokens.

    ``$`` without MULTILINE also matches just before a final newline, so a
    text ending in one is tried without it too.
    """
    if _match_from(tokens, 0, text, 0):
        return True
    return text.endswith("\n") and _match_from(tokens, 0, text[:-1], 0)
