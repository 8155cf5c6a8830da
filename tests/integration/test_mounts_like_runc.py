"""Mount behaviours where runc's users rely on runc's exact rules (issue 16).

Each test runs the same config under pyrunc and, with PYRUNC_TEST_RUNTIME=runc,
under runc; where runc 1.1.5 and newer runc differ the test follows newer runc
and says so (docs/spec-conformance.md lists the differences).
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from tests.conftest import needs_root, runtime_argv

pytestmark = needs_root

RUNC_1_1 = "runc" in os.path.basename(runtime_argv()[0])


def run(runtime: Any, bundle: Any, cfg: dict[str, Any]) -> subprocess.CompletedProcess:
    return runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())


def run_ok(runtime: Any, bundle: Any, cfg: dict[str, Any]) -> str:
    proc = run(runtime, bundle, cfg)
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()
    return proc.stdout.decode()


def mount_options(proc_mounts: str, mountpoint: str) -> set[str]:
    """Options of the last mount on mountpoint in /proc/mounts text."""
    found = None
    for line in proc_mounts.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == mountpoint:
            found = set(fields[3].split(","))
    assert found is not None, f"{mountpoint} not mounted:\n{proc_mounts}"
    return found


def set_options(cfg: dict[str, Any], destination: str, *extra: str) -> None:
    for m in cfg["mounts"]:
        if m["destination"] == destination:
            m["options"] = [*m.get("options", []), *extra]
            return
    raise AssertionError(destination)


# --- read-only tmpfs and /dev: made read-only last -------------------------------

def test_read_only_dev_still_gets_devpts_and_device_nodes(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "cat /proc/mounts; test -c /dev/null && echo null-ok; "
                                     "touch /dev/new 2>/dev/null || echo dev-is-ro"])
    set_options(cfg, "/dev", "ro")
    out = run_ok(runtime, bundle, cfg)
    assert "ro" in mount_options(out, "/dev")
    assert "rw" in mount_options(out, "/dev/pts")
    assert "null-ok" in out and "dev-is-ro" in out


def test_read_only_tmpfs_can_hold_later_mounts(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "cat /proc/mounts; touch /tmp/sub/x && echo sub-rw; "
                                     "touch /tmp/y 2>/dev/null || echo tmp-is-ro"])
    set_options(cfg, "/tmp", "ro")
    cfg["mounts"].append({"destination": "/tmp/sub", "type": "tmpfs", "source": "tmpfs",
                          "options": ["size=1m"]})
    out = run_ok(runtime, bundle, cfg)
    assert "ro" in mount_options(out, "/tmp") and "rw" in mount_options(out, "/tmp/sub")
    assert "sub-rw" in out and "tmp-is-ro" in out


# --- createContainer hooks run in the rootfs -------------------------------------

def test_create_container_hook_runs_with_the_rootfs_as_cwd(runtime, bundle, rootfs, tmp_path):
    out = tmp_path / "hook-cwd"
    cfg = bundle.config(["true"])
    cfg["hooks"] = {"createContainer": [{
        "path": "/bin/sh", "args": ["sh", "-c", f'readlink /proc/self/cwd > "{out}"']}]}
    run_ok(runtime, bundle, cfg)
    assert out.read_text().strip() == str(rootfs)
