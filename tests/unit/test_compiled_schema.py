"""The compiled validators (pyrunc/spec/_compiled_schema.py) against jsonschema.

jsonschema is the validator of record; the compiled module is only allowed to exist
because it gives the same verdict on every document.  Checked here on:

* hand-written realistic configs (namespaces, mounts, process, resources, ...);
* documents generated straight from our schemas (every optional field, every enum);
* mutations of both (deleted keys, wrong types, bad enums, out-of-range and
  non-integral numbers, NaN, extra keys, junk list entries);
* the official runtime-spec good/bad samples and their mutations, when the spec
  checkout is next to the repository.

Also: the committed generated module is what ``schemac`` produces today, and the
compiler refuses keywords it does not implement.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.errors import ConfigError
from pyrunc.spec import _compiled_schema as compiled
from pyrunc.spec import schemac, validate
from pyrunc.spec.template import default_spec

REPO = Path(__file__).resolve().parents[2]
OFFICIAL = REPO.parent / "shared" / "oci-runtime-spec"
SAMPLES = OFFICIAL / "schema" / "test"

KINDS: dict[str, tuple[Callable[[object], bool], str, Callable[[object], None]]] = {
    "config": (compiled.is_valid_config, validate.CONFIG_SCHEMA, validate.validate_config),
    "state": (compiled.is_valid_state, validate.STATE_SCHEMA, validate.validate_state),
    "features": (compiled.is_valid_features, validate.FEATURES_SCHEMA,
                 validate.validate_features),
}

PROFILE = settings(max_examples=200, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def oracle(kind: str, doc: Any) -> bool:
    return bool(validate._validator(KINDS[kind][1]).is_valid(doc))


def assert_same_verdict(kind: str, doc: object) -> bool:
    fast = KINDS[kind][0](doc)
    record = oracle(kind, doc)
    assert fast == record, f"compiled={fast} jsonschema={record}: {json.dumps(doc)[:2000]}"
    return fast


# --- the generated module is up to date and self-contained ---------------------------

def test_committed_module_matches_the_schemas() -> None:
    assert schemac.OUTPUT.read_text(encoding="utf-8") == schemac.generate(), (
        "pyrunc/spec/_compiled_schema.py is stale: run python3 -m pyrunc.spec.schemac"
    )


def test_generation_is_deterministic() -> None:
    assert schemac.generate() == schemac.generate()


def _imports(source: str) -> set[str]:
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    return imported


def test_generated_module_imports_no_re() -> None:
    """Our schemas' patterns are all simple: the hot path never loads re."""
    assert _imports(schemac.OUTPUT.read_text(encoding="utf-8")) == {"pyrunc.spec.simplepattern"}


def _compile_dir(tmp_path: Path, defs: dict[str, Any], root: dict[str, Any]) -> str:
    base = "https://schemas.pyrunc.invalid/"
    docs = {
        "config-schema.json": {"$schema": schemac.DIALECT, "$id": base + "config-schema.json",
                               **root},
        "state-schema.json": {"$schema": schemac.DIALECT, "$id": base + "state-schema.json"},
        "features-schema.json": {"$schema": schemac.DIALECT,
                                 "$id": base + "features-schema.json"},
        "defs.json": {"$schema": schemac.DIALECT, "$id": base + "defs.json", "$defs": defs},
    }
    for name, doc in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
    return schemac.generate(tmp_path)


@pytest.mark.parametrize("schema", [
    {"type": "string", "format": "uri"},
    {"anyOf": [{"type": "string"}]},
    {"type": "array", "uniqueItems": True},
    {"type": "object", "patternProperties": {"^a": {}}},
    {"$dynamicRef": "#x"},
    {"enum": ["a", 1]},
    {"type": "decimal"},
])
def test_unsupported_keywords_fail_loudly(tmp_path: Path, schema: dict[str, Any]) -> None:
    with pytest.raises(schemac.SchemaCompileError):
        _compile_dir(tmp_path, {}, {"properties": {"x": schema}})


def test_recursive_refs_are_refused(tmp_path: Path) -> None:
    defs = {"node": {"type": "object",
                     "properties": {"child": {"$ref": "#/$defs/node"}}}}
    with pytest.raises(schemac.SchemaCompileError, match="recursive"):
        _compile_dir(tmp_path, defs, {"$ref": "defs.json#/$defs/node"})


def _load_config_check(tmp_path: Path, source: str) -> Callable[[object], bool]:
    """is_valid_config of a generated module."""
    (tmp_path / "generated.py").write_text(source)
    spec = importlib.util.spec_from_file_location("generated", tmp_path / "generated.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.is_valid_config  # type: ignore[no-any-return]


def test_small_schema_compiles_and_runs(tmp_path: Path) -> None:
    defs = {"port": {"type": "integer", "minimum": 1, "maximum": 65535}}
    source = _compile_dir(tmp_path, defs, {
        "type": "object", "required": ["port"],
        "properties": {"port": {"$ref": "defs.json#/$defs/port"},
                       "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2}},
        "additionalProperties": {"type": "boolean"},
    })
    check = _load_config_check(tmp_path, source)
    assert check({"port": 80, "name": "ab", "extra": True})
    assert check({"port": 80.0})
    assert not check({"port": 0})
    assert not check({"port": True})
    assert not check({"port": 80, "name": "a"})
    assert not check({"port": 80, "name": "AB"})
    assert not check({"port": 80, "extra": 1})
    assert not check({"name": "ab"})


def test_other_patterns_fall_back_to_re(tmp_path: Path) -> None:
    source = _compile_dir(tmp_path, {}, {
        "type": "object",
        "properties": {"a": {"type": "string", "pattern": "^x{2}\\d$"},
                       "b": {"type": "string", "pattern": "^[a-c]+$"}}})
    assert _imports(source) == {"re", "pyrunc.spec.simplepattern"}
    check = _load_config_check(tmp_path, source)
    assert check({"a": "xx1", "b": "abc"}) and check({"a": "xx1\n"})
    assert not check({"a": "x1"}) and not check({"b": "abd"}) and not check({"b": ""})


# --- realistic configs ------------------------------------------------------------------

UINT32 = st.integers(0, 2**32 - 1)
UINT64 = st.integers(0, 2**64 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
SMALL = st.integers(0, 65536)
WORD = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=12)
PATH = st.lists(st.from_regex(r"\A[a-z0-9._-]{1,8}\Z"), min_size=1, max_size=4).map(
    lambda parts: "/" + "/".join(parts))
NAMESPACES = ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
CAPS = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE", "CAP_SYS_ADMIN"]


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


id_mapping = st.fixed_dictionaries({"containerID": UINT32, "hostID": UINT32, "size": UINT32})
mount = st.fixed_dictionaries(
    {"destination": PATH},
    optional={"type": st.sampled_from(["proc", "tmpfs", "bind", "sysfs", "devpts", "mqueue"]),
              "source": PATH | WORD,
              "options": st.lists(st.sampled_from(
                  ["nosuid", "noexec", "nodev", "ro", "rbind", "rprivate", "mode=755",
                   "size=65536k", "newinstance", "ptmxmode=0666", "gid=5"]), max_size=5),
              "uidMappings": st.lists(id_mapping, max_size=2),
              "gidMappings": st.lists(id_mapping, max_size=2)},
)
rlimit = st.fixed_dictionaries({
    "type": st.sampled_from(["RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE", "RLIMIT_AS"]),
    "soft": UINT64, "hard": UINT64})
capability_sets = optional(**{name: st.lists(st.sampled_from(CAPS), max_size=4, unique=True)
                              for name in ("bounding", "effective", "inheritable",
                                           "permitted", "ambient")})
process = st.fixed_dictionaries(
    {"cwd": PATH,
     "args": st.lists(WORD | PATH, min_size=1, max_size=4),
     "user": st.fixed_dictionaries({"uid": UINT32, "gid": UINT32},
                                   optional={"umask": st.integers(0, 0o777),
                                             "additionalGids": st.lists(UINT32, max_size=3),
                                             "username": WORD})},
    optional={"terminal": st.booleans(),
              "consoleSize": st.fixed_dictionaries({"height": SMALL, "width": SMALL}),
              "env": st.lists(st.from_regex(r"\A[A-Z_]{1,8}=[a-z/:]{0,12}\Z"), max_size=4),
              "capabilities": capability_sets,
              "rlimits": st.lists(rlimit, max_size=3),
              "noNewPrivileges": st.booleans(),
              "oomScoreAdj": st.integers(-1000, 1000),
              "apparmorProfile": WORD,
              "selinuxLabel": WORD,
              "ioPriority": st.fixed_dictionaries(
                  {"class": st.sampled_from(["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE",
                                             "IOPRIO_CLASS_IDLE"])},
                  optional={"priority": st.integers(0, 7)}),
              "scheduler": st.fixed_dictionaries(
                  {"policy": st.sampled_from(["SCHED_OTHER", "SCHED_FIFO", "SCHED_BATCH"])},
                  optional={"nice": st.integers(-20, 19), "priority": st.integers(0, 99)})},
)
device_rule = st.fixed_dictionaries(
    {"allow": st.booleans()},
    optional={"type": st.sampled_from(["a", "b", "c"]), "major": INT64, "minor": INT64,
              "access": st.sampled_from(["rwm", "r", "rw"])})
block_rate = st.fixed_dictionaries({"major": INT64, "minor": INT64}, optional={"rate": UINT64})
resources = optional(
    devices=st.lists(device_rule, max_size=3),
    memory=optional(limit=INT64, reservation=INT64, swap=INT64, swappiness=UINT64,
                    disableOOMKiller=st.booleans()),
    cpu=optional(shares=UINT64, quota=INT64, period=UINT64, cpus=st.just("0-3"),
                 mems=st.just("0"), idle=INT64),
    pids=st.fixed_dictionaries({"limit": INT64}),
    blockIO=optional(weight=st.integers(0, 65535), throttleReadBpsDevice=st.lists(block_rate,
                                                                                max_size=2)),
    hugepageLimits=st.lists(st.fixed_dictionaries(
        {"pageSize": st.sampled_from(["2MB", "1GB", "64KB"]), "limit": UINT64}), max_size=2),
    network=optional(classID=UINT32, priorities=st.lists(
        st.fixed_dictionaries({"name": WORD, "priority": UINT32}), max_size=2)),
    unified=st.dictionaries(st.sampled_from(["memory.high", "pids.max", "cpu.weight"]), WORD),
)
seccomp = st.fixed_dictionaries(
    {"defaultAction": st.sampled_from(["SCMP_ACT_ERRNO", "SCMP_ACT_ALLOW", "SCMP_ACT_KILL"])},
    optional={"architectures": st.lists(st.sampled_from(
                  ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"]), max_size=3),
              "syscalls": st.lists(st.fixed_dictionaries(
                  {"names": st.lists(st.sampled_from(["read", "write", "clone", "mount"]),
                                     min_size=1, max_size=3),
                   "action": st.sampled_from(["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"])},
                  optional={"errnoRet": UINT32, "args": st.lists(st.fixed_dictionaries(
                      {"index": st.integers(0, 5), "value": UINT64,
                       "op": st.sampled_from(["SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ"])}),
                      max_size=2)}), max_size=3)})
linux = optional(
    namespaces=st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(NAMESPACES)}, optional={"path": PATH}), max_size=8),
    uidMappings=st.lists(id_mapping, max_size=2),
    gidMappings=st.lists(id_mapping, max_size=2),
    devices=st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["c", "b", "u", "p"]), "path": PATH},
        optional={"major": INT64, "minor": INT64, "fileMode": st.integers(0, 0o777),
                  "uid": UINT32, "gid": UINT32}), max_size=3),
    resources=resources,
    cgroupsPath=PATH,
    sysctl=st.dictionaries(st.sampled_from(["net.ipv4.ip_forward", "kernel.shmmax"]), WORD),
    seccomp=seccomp,
    rootfsPropagation=st.sampled_from(["private", "shared", "slave", "unbindable", "rprivate",
                                       "rshared", "rslave", "runbindable"]),
    maskedPaths=st.lists(PATH, max_size=4),
    readonlyPaths=st.lists(PATH, max_size=4),
    mountLabel=WORD,
    timeOffsets=optional(monotonic=optional(secs=INT64, nanosecs=UINT32)),
)
hook = st.fixed_dictionaries({"path": PATH}, optional={
    "args": st.lists(WORD, max_size=3), "env": st.lists(WORD, max_size=2),
    "timeout": st.integers(1, 3600)})
config = st.fixed_dictionaries(
    {"ociVersion": st.sampled_from(["1.0.2", "1.2.0", "1.3.0"]),
     "root": st.fixed_dictionaries({"path": st.sampled_from(["rootfs", "/srv/rootfs"])},
                                   optional={"readonly": st.booleans()}),
     "process": process},
    optional={"hostname": WORD, "domainname": WORD,
              "mounts": st.lists(mount, max_size=6),
              "hooks": optional(**{name: st.lists(hook, max_size=2) for name in (
                  "prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop")}),
              "annotations": st.dictionaries(st.text(min_size=1, max_size=10), WORD,
                                             max_size=3),
              "linux": linux},
)


# --- documents generated straight from the schemas -------------------------------------

def _schema_registry() -> dict[str, dict[str, Any]]:
    docs = {}
    for path in sorted(Path(validate.SCHEMA_DIR).glob("*.json")):
        doc = json.loads(path.read_text())
        docs[doc["$id"]] = doc
    return docs


REGISTRY = _schema_registry()


def _resolve(uri: str) -> tuple[str, Any]:
    base, fragment = urldefrag(uri)
    node: Any = REGISTRY[base]
    for token in filter(None, fragment.split("/")):
        node = node[token]
    return base, node


def from_schema(node: Any, base: str) -> st.SearchStrategy[Any]:
    """Valid instances of ``node``: required keys always, optional ones sometimes."""
    if node is True or node == {}:
        return st.none() | st.booleans() | WORD
    if "$ref" in node:
        target_base, target = _resolve(urljoin(base, node["$ref"]))
        return from_schema(target, target_base)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties", {})
        required = {k: from_schema(props[k], base) for k in node.get("required", [])}
        optional_ = {k: from_schema(v, base) for k, v in props.items() if k not in required}
        fixed = st.fixed_dictionaries(required, optional=optional_)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            keys = from_schema(node.get("propertyNames", True), base).filter(
                lambda k: isinstance(k, str)) if "propertyNames" in node else WORD
            more = st.dictionaries(keys, from_schema(extra, base), max_size=2)
            return st.tuples(fixed, more).map(lambda pair: {**pair[1], **pair[0]})
        return fixed
    if kind == "array":
        return st.lists(from_schema(node.get("items", True), base),
                        min_size=node.get("minItems", 0), max_size=3)
    if kind == "string" or (kind is None and "minLength" in node):
        if "pattern" in node:
            return st.from_regex(node["pattern"])
        return st.text(min_size=node.get("minLength", 0), max_size=10)
    if kind == "integer":
        return st.integers(node.get("minimum"), node.get("maximum"))
    if kind == "boolean":
        return st.booleans()
    raise AssertionError(f"test generator does not know {node}")


def schema_docs(kind: str) -> st.SearchStrategy[Any]:
    base = validate.SCHEMA_BASE + KINDS[kind][1]
    return from_schema(REGISTRY[base], base)


# --- mutations --------------------------------------------------------------------------

WEIRD: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 1.5, -0.5, 2**16, 2**31, -(2**31) - 1, 2**32, 2**63,
    -(2**63) - 1, 2**64, 1e30, -1e30, math.nan, math.inf, -math.inf, "", "x", "BOGUS",
    "1GB", "RLIMIT_nofile", "CAP_", "MB:0=20\n", "0-3", "cgroup", [], [None], ["a"], {},
    {"a": 1}, {"": ""},
]
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | WORD,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WORD, inner, max_size=3),
    max_leaves=6)
# Copied: a mutation may later edit the drawn value in place.
ODD = (st.sampled_from(WEIRD) | ANY_JSON).map(copy.deepcopy)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


@st.composite
def mutated(draw: st.DrawFn, docs: st.SearchStrategy[Any]) -> Any:
    doc = copy.deepcopy(draw(docs))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        how = draw(st.sampled_from(["delete", "replace", "extra", "append", "number"]))
        target = _at(doc, path)
        if how == "delete" and path:
            parent = _at(doc, path[:-1])
            del parent[path[-1]]
        elif how == "extra" and isinstance(target, dict):
            key = draw(st.sampled_from(["bogus", "", "type", "path", "limit", "0"]) | WORD)
            target[key] = draw(ODD)
        elif how == "append" and isinstance(target, list):
            target.append(draw(ODD))
        elif path:
            parent = _at(doc, path[:-1])
            value: Any
            if how == "number" and isinstance(target, int) and not isinstance(target, bool):
                value = draw(st.sampled_from([-1, target + 1, target - 1, float(target),
                                              target + 0.5, 2**64, -(2**63) - 1]))
            else:
                value = draw(ODD)
            parent[path[-1]] = value
        else:
            doc = draw(ODD)
    return doc


# --- verdicts ---------------------------------------------------------------------------

@PROFILE
@given(config)
def test_realistic_configs(doc: dict[str, Any]) -> None:
    assert assert_same_verdict("config", doc)


@PROFILE
@given(mutated(config))
def test_mutated_realistic_configs(doc: Any) -> None:
    assert_same_verdict("config", doc)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_schema_generated_documents(kind: str) -> None:
    @PROFILE
    @given(schema_docs(kind))
    def check(doc: Any) -> None:
        assert assert_same_verdict(kind, doc)

    check()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_mutated_schema_generated_documents(kind: str) -> None:
    @settings(PROFILE, max_examples=400)
    @given(mutated(schema_docs(kind)))
    def check(doc: Any) -> None:
        assert_same_verdict(kind, doc)

    check()


@settings(PROFILE, max_examples=100)
@given(mutated(config))
def test_public_entry_point_agrees(doc: Any) -> None:
    """validate_config raises (one line) exactly when jsonschema rejects."""
    try:
        validate.validate_config(doc)
    except ConfigError as e:
        assert "\n" not in str(e)
        assert not oracle("config", doc)
    else:
        assert oracle("config", doc)


def test_templates_and_demo_bundle() -> None:
    for doc in (default_spec(), default_spec(rootless=True),
                json.loads((REPO / "bundles" / "busybox" / "config.json").read_text())):
        assert assert_same_verdict("config", doc)


# --- the official samples ---------------------------------------------------------------

def _official_docs(kind: str) -> list[tuple[str, Any]]:
    docs = []
    for path in sorted((SAMPLES / kind).glob("*/*.json")):
        try:
            docs.append((f"{path.parent.name}/{path.name}", json.loads(path.read_text())))
        except ValueError:
            continue  # not JSON at all: the loader rejects it before any schema
    return docs


def _deterministic_mutations(doc: Any) -> Iterator[Any]:
    for path in _paths(doc):
        if not path:
            continue
        if isinstance(path[-1], str):
            mutated_doc = copy.deepcopy(doc)
            del _at(mutated_doc, path[:-1])[path[-1]]
            yield mutated_doc
        values: tuple[Any, ...] = (None, "7", -1, 2**64, 1.5, {})
        for value in values:
            mutated_doc = copy.deepcopy(doc)
            _at(mutated_doc, path[:-1])[path[-1]] = value
            yield mutated_doc


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="runtime-spec checkout not available")
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_official_samples_and_their_mutations(kind: str) -> None:
    samples = _official_docs(kind)
    assert samples
    total = 0
    for name, doc in samples:
        verdict = assert_same_verdict(kind, doc)
        if name.startswith("good/"):
            assert verdict, name
        for variant in _deterministic_mutations(doc):
            assert_same_verdict(kind, variant)
            total += 1
    assert total > 40


def _schema_test_helpers() -> Any:
    """tests/unit/test_schemas.py's generated-mutation helpers, if they load."""
    path = Path(__file__).with_name("test_schemas.py")
    spec = importlib.util.spec_from_file_location("_schema_helpers", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (ImportError, pytest.skip.Exception):
        return None
    return module


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="runtime-spec checkout not available")
def test_existing_mutation_corpus() -> None:
    helpers = _schema_test_helpers()
    if helpers is None or not hasattr(helpers, "_mutations"):
        pytest.skip("test_schemas helpers not loadable")
    total = rejected = 0
    for base in helpers._base_configs():
        for _label, doc in helpers._mutations(base):
            rejected += not assert_same_verdict("config", doc)
            total += 1
    assert total > 500 and rejected > 100
