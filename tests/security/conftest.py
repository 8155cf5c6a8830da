"""Fixtures of the attack tests: a static attacker probe and private rootfs copies.

Every test that changes an image (symlinks in it, a setuid binary, a fake
/proc) works on its own copy of the busybox rootfs in a temp dir, and every
canary the tests watch lives in a temp dir too.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASE_CONFIG, needs_root

HERE = Path(__file__).resolve().parent

pytestmark = needs_root


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/security/probe.c built static (it runs inside bare images)."""
    out = tmp_path_factory.mktemp("probe") / "probe"
    proc = subprocess.run(["gcc", "-O2", "-static", "-Wall", "-Werror", "-o", str(out),
                           str(HERE / "probe.c")], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot build the static probe: {proc.stderr.strip()[-300:]}")
    return out


@pytest.fixture
def private_rootfs(tmp_path: Path, rootfs: Path, probe_binary: Path) -> Path:
    """A private copy of the busybox rootfs with the probe at /probe."""
    dest = tmp_path / "private-rootfs"
    shutil.copytree(rootfs, dest, symlinks=True)
    # Other tests may have left a mount point called /probe in the shared
    # rootfs; the attacker binary must be a plain file there.
    stale = dest / "probe"
    if stale.is_dir() and not stale.is_symlink():
        shutil.rmtree(stale)
    elif stale.exists() or stale.is_symlink():
        stale.unlink()
    shutil.copy2(probe_binary, dest / "probe")
    return dest


def config_for(root: Path, args: list[str], **process: Any) -> dict[str, Any]:
    """The base busybox config on ROOT (writable root) running ARGS."""
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["root"] = {"path": str(root), "readonly": False}
    cfg["process"]["args"] = args
    cfg["process"].update(process)
    return cfg


def without_namespace(cfg: dict[str, Any], ns_type: str) -> dict[str, Any]:
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != ns_type]
    return cfg


def one_error_line(stderr: bytes) -> str:
    """The single error line a failed command must print (no traceback)."""
    text = stderr.decode(errors="replace")
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def tree_snapshot(path: Path) -> dict[str, tuple[int, int, int, int, bytes]]:
    """Every entry below path (not following symlinks) with mode, owner and content."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            data = b""
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    data = f.read(4096)
            snap[os.path.relpath(p, path)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, data)
    return snap


def host_stat(path: str) -> tuple[int, int, int, int, int]:
    """What must never change about a host file: type+mode, owner, device, inode."""
    st = os.stat(path)
    return (st.st_mode, st.st_uid, st.st_gid, st.st_rdev, st.st_ino)
