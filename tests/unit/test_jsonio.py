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


@given(documents)
def test_clone_is_deep_and_equal(doc):
    copied = jsonio.clone(doc)
    assert copied == doc
    stack = [(doc, copied)]
    while stack:
        original, other = stack.pop()
        if isinstance(original, (dict, list)):
            assert other is not original
            pairs = zip(original.values(), other.values()) if isinstance(original, dict) \
                else zip(original, other)
            stack.extend(pairs)


@pytest.mark.parametrize("raw", [
    b'{"a": [1, 2.5, "x"]}', '{"a": "\u00e9"}'.encode(), b"\xef\xbb\xbf{\"bom\": true}",
    '{"wide": 1}'.encode("utf-16"), '{"wide": 1}'.encode("utf-32-le"),
    b"", b"{", b'{"a": 1} x', b"\xff\xfe\xfd", b"[1,]", b"Infinity",
])
def test_loads_file_bytes_is_json_loads(raw):
    try:
        expected = json.loads(raw)
    except ValueError as e:
        with pytest.raises(ValueError) as got:
            jsonio.loads_file_bytes(raw)
        assert str(got.value) == str(e)
    else:
        assert jsonio.loads_file_bytes(raw) == expected


def test_bad_documents_are_value_errors_without_json_loaded():
    """_json reports scanner errors through json.decoder, which the light
    commands never import: the error must still be a ValueError."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys\nfrom pyrunc import jsonio\nassert 'json.decoder' not in sys.modules\n"
            "for bad in ['{\"a\": x}', '[1,]', '{\"a\" 1}', '\"\\\\q\"', '[']:\n"
            "    try:\n        jsonio.loads(bad)\n    except ValueError:\n        continue\n"
            "    raise SystemExit('accepted ' + bad)\nprint('ok')\n")
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=repo, capture_output=True,
                          text=True, check=False, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr


def test_dumps_go_is_go_encoding_json():
    from pyrunc.jsonio import dumps_go

    doc = [{"a": "x&y<z>", "b": "é\u2028", "c": None, "d": [1, True], "e": "\n\t\x01"}]
    assert dumps_go(doc) == ('[{"a":"x\\u0026y\\u003cz\\u003e","b":"é\\u2028","c":null,'
                             '"d":[1,true],"e":"\\n\\t\\u0001"}]')
    assert dumps_go(None) == "null"


def test_dumps_go_indent_is_go_marshal_indent():
    from pyrunc.jsonio import dumps_go_indent

    doc = {"id": "x<&>", "n": 1, "a": {"k\u00e9": "\U0001F600\u2029"}, "e": {}, "l": [],
           "m": [None, False]}
    assert dumps_go_indent(doc) == (
        '{\n  "id": "x\\u003c\\u0026\\u003e",\n  "n": 1,\n'
        '  "a": {\n    "k\u00e9": "\U0001F600\\u2029"\n  },\n  "e": {},\n  "l": [],\n'
        '  "m": [\n    null,\n    false\n  ]\n}')
