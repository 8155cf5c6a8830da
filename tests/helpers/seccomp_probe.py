"""What the seccomp tests share: a static probe built once, and the config around it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BundleFactory, Runtime


def build_static_probe(tmp_path_factory: pytest.TempPathFactory, name: str, source: str,
                       *cflags: str) -> Path:
    """A 0755 directory holding `probe`, SOURCE built with gcc -static (skips without gcc).

    Bind-mounted at /tmp/probe, below the config's /tmp tmpfs, so the mount
    point is not created in the rootfs all tests share.  0755: tests run the
    probe as an unprivileged user too.
    """
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the probe")
    d = tmp_path_factory.mktemp(name)
    (d / "probe.c").write_text(source)
    res = subprocess.run(["gcc", "-static", "-O1", *cflags, "-o", str(d / "probe"),
                          str(d / "probe.c")], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot build a static probe: {res.stderr.strip()[:200]}")
    d.chmod(0o755)
    return d


def config_with(bundle: BundleFactory, args: list[str], seccomp: dict[str, Any],
                probe_dir: Path | None = None, nnp: bool = True,
                writable_root: bool = False) -> dict[str, Any]:
    """The test config running ARGS under SECCOMP, with the probe at /tmp/probe."""
    cfg = bundle.config(args)
    if writable_root:
        cfg["root"]["readonly"] = False
    cfg["process"]["noNewPrivileges"] = nnp
    cfg["linux"]["seccomp"] = seccomp
    if probe_dir is not None:
        cfg["mounts"].append({"destination": "/tmp/probe", "type": "bind",
                              "source": str(probe_dir), "options": ["rbind", "ro"]})
    return cfg


def run(runtime: Runtime, bundle: BundleFactory, cfg: dict[str, Any],
        prefix: str = "sc") -> tuple[int, str, str]:
    """`run` the config: (status, stdout, stderr)."""
    res = runtime("run", "--bundle", str(bundle(config=cfg)), runtime.new_id(prefix), timeout=60)
    return res.returncode, res.stdout.decode(), res.stderr.decode()
