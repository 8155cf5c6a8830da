"""csrc/protocol.h and pyrunc/plan/protocol.py must agree on every number."""

from __future__ import annotations

import ast
import operator
import re
from pathlib import Path

import pytest

from pyrunc.plan import protocol

HEADER = Path(__file__).resolve().parents[2] / "csrc" / "protocol.h"
PREFIXES = ("OP_", "MSG_", "MOUNT_F_", "CAPS_F_", "CHDIR_F_", "SETID_F_", "CONSOLE_F_", "PLAN_", "STEP_", "SYNC_",
            "WAIT_F_", "HOOK_", "SECCOMP_")
_OPS = {ast.LShift: operator.lshift, ast.BitOr: operator.or_, ast.Add: operator.add}


def _c_int(text: str) -> int:
    """Value of a C integer constant expression like ``(4u << 20)``."""
    text = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", text.strip())

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError(f"unsupported C expression: {text!r}")

    return ev(ast.parse(text, mode="eval").body)


def _strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)


def header_constants() -> dict[str, int]:
    text = _strip_comments(HEADER.read_text())
    found: dict[str, int] = {}
    for name, value in re.findall(r"^#define\s+([A-Z][A-Z0-9_]*)\s+(.+?)\s*$", text, re.MULTILINE):
        if name.startswith(PREFIXES):
            found[name] = _c_int(value)
    for body in re.findall(r"enum\s+\w+\s*\{(.*?)\}", text, re.DOTALL):
        for name, value in re.findall(r"\b([A-Z][A-Z0-9_]*)\s*=\s*([^,\s]+)", body):
            found[name] = _c_int(value)
    return found


def python_constants() -> dict[str, int]:
    return {name: value for name, value in vars(protocol).items()
            if name.startswith(PREFIXES) and isinstance(value, int)}


def test_header_parses_to_something() -> None:
    consts = header_constants()
    assert consts["OP_SETNS"] == 1
    assert consts["PLAN_MAX_LEN"] == 4 << 20
    assert sum(name.startswith("MSG_") for name in consts) >= 7


@pytest.mark.parametrize("name", sorted(header_constants()))
def test_header_constant_mirrored(name: str) -> None:
    assert getattr(protocol, name, None) == header_constants()[name]


@pytest.mark.parametrize("name", sorted(python_constants()))
def test_python_constant_in_header(name: str) -> None:
    assert header_constants().get(name) == python_constants()[name]


def test_ops_are_unique_and_below_op_max() -> None:
    text = _strip_comments(HEADER.read_text())
    enum = re.search(r"enum\s+plan_op\s*\{(.*?)\}", text, re.DOTALL).group(1)
    assert enum.rstrip().rstrip(",").split(",")[-1].strip() == "OP_MAX"
    ops = {k: v for k, v in header_constants().items() if k.startswith("OP_")}
    assert len(set(ops.values())) == len(ops)


def test_wire_struct_sizes() -> None:
    text = _strip_comments(HEADER.read_text())
    fields = re.search(r"struct\s+sync_msg\s*\{(.*?)\}", text, re.DOTALL).group(1)
    assert re.findall(r"(u?int32_t)\s+(\w+);", fields) == [
        ("uint32_t", "type"), ("int32_t", "step"), ("int32_t", "err"), ("int32_t", "value")]
    assert "char text[SYNC_TEXT_MAX];" in fields
    assert protocol.SYNC_MSG.size == 16 + protocol.SYNC_TEXT_MAX
    assert len(protocol.encode_plan([])) == 16
    assert len(protocol.encode_step(protocol.step(protocol.OP_READY))) == 8 + 8 * protocol.STEP_NINTS
    assert "(8 + 8*STEP_NINTS bytes = 56 bytes)" in HEADER.read_text()
    assert 8 + 8 * protocol.STEP_NINTS == 56
