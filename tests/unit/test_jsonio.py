"""pyrunc.jsonio gives json's exact bytes and verdicts (it replaces json on the light commands)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrunc import jsonio

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=20) | \
    st.floats(allow_nan=False)
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@given(documents)
def test_dumps_matches_json(doc):
    assert jsonio.dumps(doc) == json.dumps(doc)
    assert jsonio.dumps(doc, indent=2) == json.dumps(doc, indent=2)
    assert jsonio.dumps_compact(doc) == json.dumps(doc, separators=(",", ":"))


@given(documents)
def test_loads_round_trips(doc):
    text = json.dumps(doc)
    assert jsonio.loads(text) == json.loads(text)
    assert jsonio.loads(("  \n" + text + "\t\n").encode()) == json.loads(text)


@given(st.text(max_size=40))
def test_loads_verdict_matches_json(text):
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            jsonio.loads(text)
        return
    got = jsonio.loads(text)
    assert got == expected or (isinstance(got, float) and math.isnan(got))


def test_special_floats_and_keys():
    doc = {"a": float("inf"), "b": [float("-inf")], 1: "x", None: True, 2.5: False}
    assert jsonio.dumps(doc, indent=2) == json.dumps(doc, indent=2)
    assert jsonio.dumps({"n": float("nan")}) == json.dumps({"n": float("nan")})
    with pytest.raises(TypeError):
        jsonio.dumps({"x": object()})
