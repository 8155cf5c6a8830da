"""JSON for the light commands, on CPython's ``_json`` accelerator alone.

``import json`` pulls in ``re`` and, through it, ``enum``: about 8 ms, a
third of what `pyrunc state` costs in all.  The C scanner and encoder that
``json`` itself uses need neither, so `state`, `start`, `kill`, `delete` and
`list` read state.json and print their output through this module instead.
The output is byte for byte what ``json.dumps`` gives for the same call
(tests/unit/test_jsonio.py checks that), so nothing an engine parses changes.
Where ``_json`` is missing (another Python implementation) the ``json``
module is used.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None  # type: ignore[assignment]

_WHITESPACE = " \t\n\r"


class _ScanContext:
    """The attributes ``_json.make_scanner`` reads (those of json.JSONDecoder)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, Any] = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


# The scanner and encoders, made on first use (keyed by role).
_made: dict[str, Any] = {}


def _encoder(role: str, key_separator: str, item_separator: str) -> Callable[[Any, int], list[str]]:
    if role not in _made:
        def refuse(obj: Any) -> Any:
            raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

        _made[role] = _json.make_encoder({}, refuse, _json.encode_basestring_ascii, None,
                                         key_separator, item_separator, False, False, True)
    return _made[role]  # type: ignore[no-any-return]


def loads(text: str | bytes) -> Any:
    """Parse a JSON document; ValueError on anything that is not one."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    if _json is None:  # pragma: no cover
        import json

        return json.loads(text)
    scan = _made.get("scan")
    if scan is None:
        scan = _made["scan"] = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]
    start = 0
    while start < len(text) and text[start] in _WHITESPACE:
        start += 1
    try:
        value, end = scan(text, start)
    except StopIteration as stop:
        raise ValueError(f"invalid JSON at offset {stop.value}") from None
    except SystemError:
        # The scanner words its errors with json.decoder.JSONDecodeError, taken
        # from sys.modules without importing it; unloaded, the error is lost.
        raise ValueError("invalid JSON") from None
    while end < len(text) and text[end] in _WHITESPACE:
        end += 1
    if end != len(text):
        raise ValueError(f"extra data at offset {end}")
    return value


def loads_file_bytes(raw: bytes) -> Any:
    """A file's JSON document: :func:`loads` when it is plain UTF-8; otherwise
    ``json.loads``, which also decodes UTF-16/32 and a byte-order mark and words
    the ValueError of a bad document."""
    try:
        return loads(raw)
    except ValueError:
        import json

        return json.loads(raw)


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def dumps_compact(value: Any) -> str:
    """json.dumps(value, separators=(",", ":"))."""
    if _json is None:  # pragma: no cover
        import json

        return json.dumps(value, separators=(",", ":"))
    return "".join(_encoder("compact", ":", ",")(value, 0))


# Go's encoding/json escapes these inside strings (HTML safety, JS line ends).
_GO_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
               ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def dumps_go(value: Any) -> str:
    """Compact JSON as Go's json.Encoder writes it (runc's list, ps): UTF-8
    text kept as is, and ``<``, ``>``, ``&``, U+2028, U+2029 escaped.

    The characters replaced can only occur inside strings, so replacing them
    in the encoded text is exact.
    """
    if _json is None:  # pragma: no cover
        import json

        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        if "go" not in _made:
            def refuse(obj: Any) -> Any:
                raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

            _made["go"] = _json.make_encoder({}, refuse, _json.encode_basestring, None,
                                             ":", ",", False, False, False)
        text = "".join(_made["go"](value, 0))
    for char, escaped in _GO_ESCAPES:
        if char in text:
            text = text.replace(char, escaped)
    return text


def _go_string(value: str) -> str:
    return dumps_go(value)


def dumps_go_indent(value: Any, indent: int = 2) -> str:
    """json.MarshalIndent(value, "", indent spaces) as Go writes it (runc's
    state): the strings as :func:`dumps_go` writes them, no final newline.

    Go sorts the keys of a map but keeps a struct's field order; a dict
    here keeps its order, so a caller sorts the dicts that stand for maps.
    """
    out: list[str] = []
    _pretty(value, 0, " " * indent, out, _go_string)
    return "".join(out)


def dumps(value: Any, indent: int | None = None) -> str:
    """json.dumps(value) or json.dumps(value, indent=N), ASCII output."""
    if indent is None:
        if _json is None:  # pragma: no cover
            import json

            return json.dumps(value)
        return "".join(_encoder("spaced", ": ", ", ")(value, 0))
    out: list[str] = []
    _pretty(value, 0, " " * indent, out)
    return "".join(out)


def _string(value: str) -> str:
    if _json is None:  # pragma: no cover
        import json

        return json.dumps(value)
    return str(_json.encode_basestring_ascii(value))


def _pretty(value: Any, level: int, unit: str, out: list[str],
            string: Callable[[str], str] | None = None) -> None:
    """json.dumps's indented layout: ",\\n" between items, ": " after keys.

    ``string`` encodes a string (default: json.dumps's ASCII form).
    """
    if string is None:
        string = _string
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = "\n" + unit * (level + 1)
        out.append("{")
        first = True
        for key, item in value.items():
            out.append(inner if first else "," + inner)
            first = False
            out.append(string(key if isinstance(key, str) else _key(key)))
            out.append(": ")
            _pretty(item, level + 1, unit, out, string)
        out.append("\n" + unit * level + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = "\n" + unit * (level + 1)
        out.append("[")
        for i, item in enumerate(value):
            out.append(inner if i == 0 else "," + inner)
            _pretty(item, level + 1, unit, out, string)
        out.append("\n" + unit * level + "]")
    elif isinstance(value, str):
        out.append(string(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float(value))
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _key(key: Any) -> str:
    """Non-string keys as json.dumps turns them into strings."""
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return _float(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def clone(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists and scalars), without ``copy``.

    ``copy.deepcopy`` imports ``weakref`` and more; decoded JSON needs none of it.
    """
    if isinstance(value, dict):
        return {key: clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clone(item) for item in value]
    return value
