"""Schema validation of OCI documents: config.json, state and features.

The schemas live in the repository's ``schemas/`` directory (reached through the
``pyrunc/schemas`` link).  jsonschema is imported only when a document is actually
validated: importing it costs far more than the rest of a ``create``.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyrunc.errors import ConfigError

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

SCHEMA_DIR = Path(__file__).parent.parent / "schemas"
SCHEMA_BASE = "https://schemas.pyrunc.invalid/"
CONFIG_SCHEMA = "config-schema.json"
STATE_SCHEMA = "state-schema.json"
FEATURES_SCHEMA = "features-schema.json"


@cache
def _validator(name: str) -> Validator:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        with path.open(encoding="utf-8") as f:
            resource = Resource.from_contents(json.load(f))
        resources.append((resource.id() or SCHEMA_BASE + path.name, resource))
    registry: Registry[Any] = Registry().with_resources(resources)
    schema = registry.contents(SCHEMA_BASE + name)
    validator: Validator = Draft202012Validator(schema, registry=registry)
    return validator


def json_path(parts: Any) -> str:
    """Render a jsonschema path (a deque of keys and indexes) as ``a.b[2].c``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


def _message(error: ValidationError) -> str:
    # jsonschema's wording for minItems changed between releases; pin ours.
    if error.validator == "minItems":
        return f"{error.instance!r} is too short"
    if error.validator == "maxItems":
        return f"{error.instance!r} is too long"
    first: str = error.message.splitlines()[0]
    return first


def _check(doc: object, schema: str, label: str) -> None:
    from jsonschema.exceptions import best_match

    instance: Any = doc
    error = best_match(_validator(schema).iter_errors(instance))
    if error is None:
        return
    where = json_path(error.absolute_path) or label
    raise ConfigError(f"{where}: {_message(error)}")


def validate_config(doc: object) -> None:
    """Check a parsed config.json against the runtime-spec schema.

    Raises ConfigError with one line naming the offending JSON path and the
    violated rule, e.g. ``process.args: [] is too short``.
    """
    _check(doc, CONFIG_SCHEMA, "config.json")


def validate_state(doc: object) -> None:
    """Check a container state document (the output of ``state``)."""
    _check(doc, STATE_SCHEMA, "state")


def validate_features(doc: object) -> None:
    """Check a runtime features document (the output of ``features``)."""
    _check(doc, FEATURES_SCHEMA, "features")


def load_config(bundle_dir: str) -> dict[str, Any]:
    """Read and parse ``<bundle_dir>/config.json``; no schema validation.

    Every failure is a ConfigError with a one-line message in runc's wording.
    """
    path = os.path.join(bundle_dir, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError("JSON specification file config.json not found") from None
    except OSError as e:
        raise ConfigError(f"open config.json: {e.strerror or e}") from None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"config.json: invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(
            f"config.json: invalid JSON: top level must be an object, not {type(doc).__name__}"
        )
    return doc
