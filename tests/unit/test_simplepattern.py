"""pyrunc.spec.simplepattern against re: same verdict for every pattern it accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.spec.simplepattern import compile_pattern, search

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def schema_patterns() -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.append(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted(SCHEMAS.glob("*.json")):
        walk(json.loads(path.read_text()))
    return sorted(set(found))


# Beyond the schemas' own: escapes, '?', ']' and '-' as members, negation.
EXTRA = ["^a?b*c+$", "^[]a]+$", "^[a-]$", "^[^a-c]*x$", "^\\.[\\-/]$", "^$", "^x$",
         "^[\\n\\t]+$", "^[^\\n]*$", "^a[b-d]?[b-d]+$", "^\\[\\]$"]
ACCEPTED = schema_patterns() + EXTRA
# Shapes left to re: the compiler must say so rather than guess.
REFUSED = ["RLIMIT_[A-Z]+", "^a.b$", "^a{2}$", "^(a|b)$", "^\\d+$", "^\\w$", "^a+?$",
           "^[[:alpha:]]$", "^[a-]", "^a\\$", "^[z-a]$", "^[abc$", "^a|b$", "^a**$", "a$"]


def test_every_schema_pattern_is_compiled_without_re() -> None:
    assert schema_patterns(), "the schemas have patterns; the walk found none"
    for pattern in schema_patterns():
        assert compile_pattern(pattern) is not None, pattern


@pytest.mark.parametrize("pattern", REFUSED)
def test_other_shapes_are_left_to_re(pattern: str) -> None:
    assert compile_pattern(pattern) is None


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_known_texts(pattern: str) -> None:
    tokens = compile_pattern(pattern)
    assert tokens is not None
    for text in ["", "\n", "a", "abc", "x\n", "x\n\n", "RLIMIT_NOFILE", "RLIMIT_NOFILE\n",
                 "CAP_SYS_ADMIN", "cap_x", "0-3, 7", "2MB", "10GB", "0MB", "MB:0=1;1=2",
                 "MB:a\nb", ".-", "]]a", "a-", "[]", "ab", "acc", "bb", "\t\n"]:
        assert search(tokens, text) == (re.search(pattern, text) is not None), (pattern, text)


ALPHABET = "ABCIKLMRT_GB:0129 ,-\n\tabcx.[]/"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ACCEPTED), st.text(alphabet=ALPHABET, max_size=20))
def test_same_verdict_as_re(pattern: str, text: str) -> None:
    tokens = compile_pattern(pattern)
    assert tokens is not None
    assert search(tokens, text) == (re.search(pattern, text) is not None)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ACCEPTED), st.text(max_size=12))
def test_same_verdict_on_any_text(pattern: str, text: str) -> None:
    tokens = compile_pattern(pattern)
    assert tokens is not None
    assert search(tokens, text) == (re.search(pattern, text) is not None)
