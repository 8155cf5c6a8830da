"""Build-time compiler: pyrunc's JSON Schemas to a standalone Python validator.

``schemas/*.json`` stays the single source of truth and jsonschema stays the
validator of record; this module turns those schemas into plain Python
functions that return ``True``/``False`` (``pyrunc/spec/_compiled_schema.py``),
so that the hot path can check a config without importing jsonschema.  Only when
the compiled check rejects a document does ``pyrunc.spec.validate`` import
jsonschema, to explain why.

The compiler understands exactly the draft 2020-12 keywords our schemas use and
refuses anything else with :class:`SchemaCompileError`, so a schema edit that
reaches for a new keyword cannot silently validate less than jsonschema does.

The generated module:

* imports nothing but :mod:`pyrunc.spec.simplepattern`, which checks the
  simple anchored patterns our schemas use, and ``re`` only for a pattern
  beyond it (compiled once, at module level);
* has one small function per distinct subschema, so no function nests more than
  one loop and the call depth is bounded by the schema depth (``$ref`` cycles are
  refused, so a hostile document cannot drive it into deep recursion);
* is deterministic: the same schemas always produce the same bytes.

Regenerate after editing a schema::

    python3 -m pyrunc.spec.schemac          # rewrite _compiled_schema.py
    python3 -m pyrunc.spec.schemac --check  # exit 1 if it is out of date

Instances are assumed to be JSON-decoded data (dict, list, str, int, float,
bool, None), which is what ``json.loads`` produces.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin

from pyrunc.spec.simplepattern import compile_pattern

PACKAGE_DIR = Path(__file__).resolve().parent
SCHEMA_DIR = PACKAGE_DIR.parent.parent / "schemas"
OUTPUT = PACKAGE_DIR / "_compiled_schema.py"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Public function name -> schema file; the order is the order in the output.
ENTRY_POINTS: dict[str, str] = {
    "is_valid_config": "config-schema.json",
    "is_valid_state": "state-schema.json",
    "is_valid_features": "features-schema.json",
}

# Every keyword the compiler knows.  Anything else is an error.
ANNOTATIONS = frozenset({"title", "description"})
ROOT_ONLY = frozenset({"$schema", "$id", "$defs"})
OBJECT_KEYWORDS = frozenset({"properties", "required", "additionalProperties", "propertyNames"})
ARRAY_KEYWORDS = frozenset({"items", "minItems"})
STRING_KEYWORDS = frozenset({"minLength", "pattern"})
NUMBER_KEYWORDS = frozenset({"minimum", "maximum"})
GENERIC_KEYWORDS = frozenset({"$ref", "type", "enum"})
SUPPORTED = (ANNOTATIONS | ROOT_ONLY | OBJECT_KEYWORDS | ARRAY_KEYWORDS | STRING_KEYWORDS
             | NUMBER_KEYWORDS | GENERIC_KEYWORDS)

# jsonschema's draft 2020-12 type checker, as Python expressions over ``x``.
TYPE_TESTS: dict[str, str] = {
    "object": "isinstance(x, dict)",
    "array": "isinstance(x, list)",
    "string": "isinstance(x, str)",
    "boolean": "isinstance(x, bool)",
    "null": "x is None",
    "integer": ("(isinstance(x, int) and not isinstance(x, bool))"
                " or (isinstance(x, float) and x.is_integer())"),
    "number": "isinstance(x, (int, float)) and not isinstance(x, bool)",
}
NUMERIC = frozenset({"integer", "number"})
# Types whose test is cheap enough to inline instead of calling a function.
INLINE_TYPES: dict[str, str] = {
    "object": "isinstance({}, dict)",
    "array": "isinstance({}, list)",
    "string": "isinstance({}, str)",
    "boolean": "isinstance({}, bool)",
}


class SchemaCompileError(Exception):
    """The schemas use something this compiler does not support."""



@dataclass
class _Output:
    """What has been generated so far."""

    functions: list[str] = field(default_factory=list)
    by_body: dict[str, str] = field(default_factory=dict)
    constants: list[str] = field(default_factory=list)
    by_constant: dict[str, str] = field(default_factory=dict)
    imports: set[str] = field(default_factory=set)

    def constant(self, prefix: str, expression: str) -> str:
        name = self.by_constant.get(expression)
        if name is None:
            name = f"_{prefix}{len(self.constants)}"
            self.by_constant[expression] = name
            self.constants.append(f"{name} = {expression}")
        return name

    def function(self, body: list[str], where: str) -> str:
        """A check template (``{}`` stands for the value) for a function body."""
        key = "\n".join(body)
        name = self.by_body.get(key)
        if name is None:
            name = f"_v{len(self.functions)}"
            self.by_body[key] = name
            lines = [f"def {name}(x: object) -> bool:", f"    # {where}"]
            lines += ["    " + line for line in body]
            self.functions.append("\n".join(lines))
        return name + "({})"


class Compiler:
    """Compile a set of schema documents that reference each other by ``$id``."""

    def __init__(self, documents: Mapping[str, Mapping[str, object]]) -> None:
        self.documents: dict[str, Mapping[str, object]] = {}
        for name, doc in documents.items():
            if doc.get("$schema") != DIALECT:
                raise SchemaCompileError(f"{name}: $schema must be {DIALECT}")
            uri = doc.get("$id")
            if not isinstance(uri, str) or urldefrag(uri).fragment:
                raise SchemaCompileError(f"{name}: needs an absolute $id without fragment")
            self.documents[uri] = doc
        self.out = _Output()
        self.by_ref: dict[str, str | None] = {}
        self.in_progress: list[str] = []

    # --- references ------------------------------------------------------------

    def _resolve(self, uri: str) -> object:
        base, fragment = urldefrag(uri)
        try:
            node: object = self.documents[base]
        except KeyError:
            raise SchemaCompileError(f"$ref to unknown document {base}") from None
        if fragment == "":
            return node
        if not fragment.startswith("/"):
            raise SchemaCompileError(f"{uri}: only JSON-pointer fragments are supported")
        for raw in fragment[1:].split("/"):
            token = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise SchemaCompileError(f"$ref {uri} points nowhere")
        return node

    def _ref(self, uri: str) -> str | None:
        if uri in self.by_ref:
            return self.by_ref[uri]
        if uri in self.in_progress:
            cycle = " -> ".join([*self.in_progress[self.in_progress.index(uri):], uri])
            raise SchemaCompileError(f"recursive $ref is not supported: {cycle}")
        self.in_progress.append(uri)
        try:
            base = urldefrag(uri).url
            name = self.compile(self._resolve(uri), base, uri)
        finally:
            self.in_progress.pop()
        self.by_ref[uri] = name
        return name

    # --- schemas -----------------------------------------------------------------

    def compile(self, schema: object, base: str, where: str) -> str | None:
        """A check for ``schema``; None when it accepts everything.

        The check is an expression template: ``check.format("x['a']")`` is true
        when ``x['a']`` is valid.
        """
        if schema is True:
            return None
        if schema is False:
            return self.out.function(["return False"], where)
        if not isinstance(schema, Mapping):
            raise SchemaCompileError(f"{where}: a schema must be an object or a boolean")
        unknown = sorted(set(schema) - SUPPORTED)
        if unknown:
            raise SchemaCompileError(f"{where}: unsupported keyword(s) {', '.join(unknown)}")
        is_root = where == base
        misplaced = sorted(k for k in ROOT_ONLY if k in schema and not is_root)
        if misplaced:
            raise SchemaCompileError(f"{where}: {', '.join(misplaced)} only at a document root")
        if is_root and "$defs" in schema and not isinstance(schema["$defs"], Mapping):
            raise SchemaCompileError(f"{where}: $defs must be an object")

        checks = set(schema) - ANNOTATIONS - ROOT_ONLY
        if not checks:
            return None
        ref = schema.get("$ref")
        if ref is not None and not isinstance(ref, str):
            raise SchemaCompileError(f"{where}: $ref must be a string")
        if checks == {"$ref"} and isinstance(ref, str):
            # A bare reference is the referenced schema: no wrapper function.
            return self._ref(urljoin(base, ref))
        if checks == {"type"} and schema["type"] in INLINE_TYPES:
            return INLINE_TYPES[str(schema["type"])]

        body: list[str] = []
        known = self._type(schema, where, body)
        if isinstance(ref, str):
            target = self._ref(urljoin(base, ref))
            if target is not None:
                body.append(f"if not {target.format('x')}:")
                body.append("    return False")
        self._enum(schema, where, body, known)
        groups = (
            ("number", NUMBER_KEYWORDS, self._number),
            ("string", STRING_KEYWORDS, self._string),
            ("array", ARRAY_KEYWORDS, self._array),
            ("object", OBJECT_KEYWORDS, self._object),
        )
        for kind, keywords, emit in groups:
            if not keywords & checks:
                continue
            lines: list[str] = []
            emit(schema, base, where, lines)
            if known == kind or (kind == "number" and known in NUMERIC):
                body += lines
            else:
                body.append(f"if {TYPE_TESTS[kind]}:")
                body += ["    " + line for line in lines]
        body.append("return True")
        return self.out.function(body, where)

    def _type(self, schema: Mapping[str, object], where: str, body: list[str]) -> str | None:
        """Emit the ``type`` test; return the one type it guarantees, if any."""
        if "type" not in schema:
            return None
        value = schema["type"]
        names = [value] if isinstance(value, str) else value
        if (not isinstance(names, list) or not names
                or not all(isinstance(n, str) and n in TYPE_TESTS for n in names)):
            raise SchemaCompileError(f"{where}: bad type {value!r}")
        tests = [TYPE_TESTS[str(n)] for n in names]
        if len(tests) == 1 and tests[0].startswith("isinstance("):
            body.append(f"if not {tests[0]}:")
        else:
            joined = tests[0] if len(tests) == 1 else " or ".join(f"({t})" for t in tests)
            body.append(f"if not ({joined}):")
        body.append("    return False")
        if len(names) == 1:
            return str(names[0])
        if set(names) <= NUMERIC:
            return "number"
        return None

    def _enum(self, schema: Mapping[str, object], where: str, body: list[str],
              known: str | None) -> None:
        if "enum" not in schema:
            return
        values = schema["enum"]
        if not isinstance(values, list) or not values:
            raise SchemaCompileError(f"{where}: enum must be a non-empty array")
        if not all(isinstance(v, str) for v in values):
            # jsonschema compares non-strings with bool/int care; not needed so far.
            raise SchemaCompileError(f"{where}: only string enums are supported")
        members = ", ".join(json.dumps(v) for v in sorted(set(values)))
        name = self.out.constant("E", f"frozenset({{{members}}})")
        guard = "" if known == "string" else "not isinstance(x, str) or "
        body.append(f"if {guard}x not in {name}:")
        body.append("    return False")

    def _number(self, schema: Mapping[str, object], base: str, where: str,
                lines: list[str]) -> None:
        # Written as "x < minimum" like jsonschema, so NaN compares the same way.
        for keyword, operator in (("minimum", "<"), ("maximum", ">")):
            if keyword in schema:
                bound = schema[keyword]
                if not isinstance(bound, int) or isinstance(bound, bool):
                    raise SchemaCompileError(f"{where}: {keyword} must be an integer")
                lines.append(f"if x {operator} {bound}:")
                lines.append("    return False")

    def _string(self, schema: Mapping[str, object], base: str, where: str,
                lines: list[str]) -> None:
        if "minLength" in schema:
            lines.append(f"if len(x) < {self._count(schema, 'minLength', where)}:")
            lines.append("    return False")
        if "pattern" in schema:
            pattern = schema["pattern"]
            if not isinstance(pattern, str):
                raise SchemaCompileError(f"{where}: pattern must be a string")
            try:
                re.compile(pattern)
            except re.error as e:
                raise SchemaCompileError(f"{where}: bad pattern {pattern!r}: {e}") from None
            tokens = compile_pattern(pattern)
            if tokens is not None:
                # Checked without importing re (see simplepattern).
                name = self.out.constant("P", repr(tokens))
                self.out.imports.add("from pyrunc.spec.simplepattern import search as _search")
                lines.append(f"if not _search({name}, x):")
            else:
                name = self.out.constant("R", f"re.compile({pattern!r})")
                self.out.imports.add("import re")
                # jsonschema uses re.search: the pattern is not anchored implicitly.
                lines.append(f"if {name}.search(x) is None:")
            lines.append("    return False")

    def _array(self, schema: Mapping[str, object], base: str, where: str,
               lines: list[str]) -> None:
        if "minItems" in schema:
            lines.append(f"if len(x) < {self._count(schema, 'minItems', where)}:")
            lines.append("    return False")
        if "items" in schema:
            item = self.compile(schema["items"], base, _child(where, "items"))
            if item is not None:
                lines += ["for v in x:", f"    if not {item.format('v')}:", "        return False"]

    def _object(self, schema: Mapping[str, object], base: str, where: str,
                lines: list[str]) -> None:
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise SchemaCompileError(f"{where}: required must be an array of strings")
        if required:
            missing = " or ".join(f"{json.dumps(r)} not in x" for r in required)
            lines.append(f"if {missing}:")
            lines.append("    return False")
        properties = schema.get("properties", {})
        if not isinstance(properties, Mapping):
            raise SchemaCompileError(f"{where}: properties must be an object")
        for name, subschema in properties.items():
            check = self.compile(subschema, base, _child(where, "properties", name))
            if check is not None:
                key = json.dumps(name)
                value = check.format(f"x[{key}]")
                # Required keys are known to be present by now.
                guard = "" if name in required else f"{key} in x and "
                lines.append(f"if {guard}not {value}:")
                lines.append("    return False")
        if "additionalProperties" in schema:
            extra = self.compile(schema["additionalProperties"], base,
                                 _child(where, "additionalProperties"))
            if extra is not None and properties:
                names = ", ".join(json.dumps(n) for n in sorted(properties))
                known = self.out.constant("P", f"frozenset({{{names}}})")
                lines += ["for k, v in x.items():",
                          f"    if k not in {known} and not {extra.format('v')}:",
                          "        return False"]
            elif extra is not None:
                lines += ["for v in x.values():", f"    if not {extra.format('v')}:",
                          "        return False"]
        if "propertyNames" in schema:
            check = self.compile(schema["propertyNames"], base, _child(where, "propertyNames"))
            if check is not None:
                lines += ["for k in x:", f"    if not {check.format('k')}:", "        return False"]

    @staticmethod
    def _count(schema: Mapping[str, object], keyword: str, where: str) -> int:
        value = schema[keyword]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SchemaCompileError(f"{where}: {keyword} must be a non-negative integer")
        return value

    # --- output --------------------------------------------------------------------

    def module(self, entry_points: Mapping[str, str], base: str) -> str:
        """The complete generated module, entry points named as in ``entry_points``."""
        entries: list[tuple[str, str | None]] = []
        for public, filename in entry_points.items():
            entries.append((public, self._ref(urljoin(base, filename))))
        parts = [HEADER.rstrip("\n")]
        parts.append("\n".join([*sorted(self.out.imports), "", "__all__ = [",
                                *(f"    {json.dumps(p)}," for p, _ in sorted(entries)), "]"]))
        if self.out.constants:
            parts.append("\n".join(self.out.constants))
        parts += self.out.functions
        for public, target in entries:
            call = "True" if target is None else target.format("doc")
            parts.append(f"def {public}(doc: object) -> bool:\n"
                         f"    \"\"\"True when ``doc`` is valid against {entry_points[public]}.\"\"\"\n"
                         f"    return {call}")
        return "\n\n\n".join(parts) + "\n"


HEADER = '''\
# GENERATED FILE -- DO NOT EDIT.
# Produced by pyrunc.spec.schemac from schemas/*.json; after changing a schema,
# regenerate it with:  python3 -m pyrunc.spec.schemac
#
# Every check is written "if <failure>: return False" on purpose (flat, uniform,
# no generator overhead); the two ruff style rules that would fold them are off.
# ruff: noqa: SIM102, SIM103
"""Validators compiled ahead of time from pyrunc's JSON Schemas.

Each public function returns True exactly when jsonschema (draft 2020-12) would
accept the document.  They say nothing about why a document is invalid: for that,
pyrunc.spec.validate asks jsonschema.
"""
'''


def _child(where: str, *tokens: str) -> str:
    """``where`` (a URI with a JSON-pointer fragment) extended by ``tokens``."""
    escaped = "/".join(t.replace("~", "~0").replace("/", "~1") for t in tokens)
    return f"{where}/{escaped}" if "#" in where else f"{where}#/{escaped}"


def load_schemas(directory: Path = SCHEMA_DIR) -> dict[str, Mapping[str, object]]:
    """Every ``*.json`` in ``directory``, keyed by file name, in name order."""
    documents: dict[str, Mapping[str, object]] = {}
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            raise SchemaCompileError(f"{path.name}: not a JSON object")
        documents[path.name] = doc
    return documents


def generate(directory: Path = SCHEMA_DIR) -> str:
    """Source text of ``_compiled_schema.py`` for the schemas in ``directory``."""
    documents = load_schemas(directory)
    compiler = Compiler(documents)
    first = documents[ENTRY_POINTS["is_valid_config"]]
    base = str(first["$id"])
    return compiler.module(ENTRY_POINTS, base)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = args == ["--check"]
    if args and not check:
        print("usage: python3 -m pyrunc.spec.schemac [--check]", file=sys.stderr)
        return 2
    source = generate()
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else None
    if check:
        if current != source:
            print(f"{OUTPUT} is out of date: run python3 -m pyrunc.spec.schemac",
                  file=sys.stderr)
            return 1
        return 0
    if current != source:
        OUTPUT.write_text(source, encoding="utf-8")
        print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
