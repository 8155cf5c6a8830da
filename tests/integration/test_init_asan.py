"""pyrunc-init under AddressSanitizer and UBSan.

A separate, dynamically linked pyrunc-init (static binaries cannot link
ASan) is built with -fsanitize=address,undefined into a temp dir from
setup.py's sources and flags, plus a tiny file that bakes in the sanitizer
options (detect_leaks=0: the init execs or exits, leaks do not matter;
abort on the first error, so a finding is a SIGABRT the tests see).
PYRUNC_INIT_BINARY (pyrunc/linux/initproc.py) makes pyrunc copy it into
the sealed memfd instead of the packaged one.

Then: the plan-reader fuzz of test_init_fuzz.py, and a few real
containers through the CLI.  ASan must report nothing.  It needs /proc
only at startup (in the host mount namespace), so the container's own
/proc does not matter.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, needs_root

pytestmark = [needs_root, pytest.mark.skipif(shutil.which("cc") is None, reason="needs cc")]

OPTIONS_C = r"""
const char *__asan_default_options(void);
const char *__ubsan_default_options(void);
const char *__asan_default_options(void)
{ return "detect_leaks=0:abort_on_error=1:handle_abort=0:log_path=stderr"; }
const char *__ubsan_default_options(void)
{ return "halt_on_error=1:abort_on_error=1:print_stacktrace=1"; }
"""
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer", "-g", "-O1"]
FINDINGS = ("AddressSanitizer", "runtime error:", "UndefinedBehaviorSanitizer", "LeakSanitizer")


def init_cflags() -> list[str]:
    """INIT_CFLAGS as setup.py has them (read, not imported: importing runs setup())."""
    for node in ast.parse((REPO / "setup.py").read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "INIT_CFLAGS":
            return list(ast.literal_eval(node.value))
    raise AssertionError("INIT_CFLAGS not found in setup.py")


@pytest.fixture(scope="module")
def asan_init(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("asan")
    options = out / "sanitizer_options.c"
    options.write_text(OPTIONS_C)
    binary = out / "pyrunc-init-asan"
    sources = sorted(str(p) for p in (REPO / "csrc" / "init").glob("*.c"))
    cmd = [os.environ.get("CC", "cc"), *init_cflags(), *SANITIZE, "-o", str(binary),
           *sources, str(options), "-lseccomp"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot build the sanitizer pyrunc-init: {proc.stderr[-400:]}")
    probe = subprocess.run([str(binary)], capture_output=True, text=True, env={})
    assert not any(f in probe.stderr for f in FINDINGS), probe.stderr
    return binary


def test_plan_reader_fuzz_under_asan(asan_init, monkeypatch):
    from tests.integration import test_init_fuzz

    monkeypatch.setenv("PYRUNC_INIT_BINARY", str(asan_init))
    # The fuzz asserts no case was killed by a signal: a sanitizer finding aborts.
    test_init_fuzz.test_plan_reader_fuzz()


@pytest.mark.parametrize("args", [["true"], ["sh", "-c", "echo hi; ls / >/dev/null"]])
def test_containers_under_asan(asan_init, runtime, bundle, monkeypatch, args):
    monkeypatch.setenv("PYRUNC_INIT_BINARY", str(asan_init))
    proc = runtime("run", "-b", str(bundle(args)), runtime.new_id("asan"))
    text = (proc.stdout + proc.stderr).decode(errors="replace")
    assert not any(f in text for f in FINDINGS), text
    assert proc.returncode == 0, text


def test_create_exec_delete_under_asan(asan_init, runtime, bundle, monkeypatch):
    monkeypatch.setenv("PYRUNC_INIT_BINARY", str(asan_init))
    cid = runtime.new_id("asan")
    outputs = [runtime("create", "-b", str(bundle(["sleep", "30"])), cid),
               runtime("exec", cid, "sh", "-c", "echo in"),
               runtime("start", cid),
               runtime("exec", cid, "true"),
               runtime("delete", "--force", cid)]
    for proc in outputs:
        text = (proc.stdout + proc.stderr).decode(errors="replace")
        assert not any(f in text for f in FINDINGS), text
        assert proc.returncode == 0, text


def test_asan_build_really_aborts(asan_init, tmp_path):
    """Control: the options are in force (a sanitizer build with them aborts on a bug)."""
    bug = tmp_path / "bug.c"
    bug.write_text(OPTIONS_C + "#include <stdlib.h>\nint main(void){char *p = malloc(4);"
                   " p[4] = 1; return p[0];}\n")
    exe = tmp_path / "bug"
    subprocess.run([os.environ.get("CC", "cc"), *SANITIZE, "-o", str(exe), str(bug)], check=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, env={})
    assert proc.returncode < 0 and any(f in proc.stderr for f in FINDINGS), proc.stderr
