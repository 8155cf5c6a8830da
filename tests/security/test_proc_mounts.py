"""Attack class 9: mounts over /proc, and the default hardening in force.

CVEs: CVE-2015-3630/3631 (writable /proc files, volumes over /proc changing
LSM attributes), CVE-2019-19921 (mounts onto /proc paths; runc then allowed
only the lxcfs files below /proc).

Planner: nothing may be mounted below /proc except the allow-list, and
/proc itself takes procfs only.  pyrunc-init: a destination reaching
procfs through a symlink in the image is refused (see
test_procfs_writes.py).  Defaults: a container run from `pyrunc spec`'s
config reads the masked files empty and cannot write the read-only paths.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan.mounts import PROC_MOUNT_ALLOWLIST, MountContext, mount_steps
from tests.conftest import needs_root, runtime_argv, runtime_env
from tests.security.conftest import one_error_line

REFUSED = ["/proc/sys", "/proc/sys/kernel/core_pattern", "/proc/self/attr/exec",
           "/proc/self/attr", "/proc/1", "/proc/1/attr/current", "/proc/sysrq-trigger",
           "/proc/thread-self/attr/exec", "/proc/kcore", "/proc/meminfo/x", "/proc/./sys",
           "/proc/sys/kernel/../..//sys", "/proc/net", "/proc/self"]


def plan(dest: str, mtype: str = "bind", source: str = "/tmp", kind: str = "dir"):
    m = {"destination": dest, "type": mtype, "source": source,
         "options": ["rbind"] if mtype == "bind" else []}
    ctx = MountContext(bundle="/b", source_kinds={source: kind})
    return mount_steps(m, ctx)


@pytest.mark.parametrize("dest", REFUSED)
@pytest.mark.parametrize("mtype", ["bind", "tmpfs", "proc"])
def test_planner_refuses_below_proc(dest, mtype):
    with pytest.raises(ConfigError) as info:
        plan(dest, mtype)
    assert "/proc" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("mtype,kind", [("bind", "dir"), ("bind", "file"), ("tmpfs", "dir"),
                                        ("sysfs", "dir"), ("devpts", "dir")])
def test_planner_refuses_non_procfs_on_proc(mtype, kind):
    with pytest.raises(ConfigError):
        plan("/proc", mtype, kind=kind)


@pytest.mark.parametrize("dest", sorted(PROC_MOUNT_ALLOWLIST))
def test_planner_accepts_the_allow_list(dest):
    assert plan(dest, "bind", "/tmp/lxcfs-file", kind="file")


def test_planner_accepts_procfs_on_proc():
    assert plan("/proc", "proc", "proc")
    assert plan("/proc", "bind", "/proc", kind="procfs")


def test_allow_list_is_runc_s():
    """Just the lxcfs files (runc's validProcMounts); nothing that writes kernel state."""
    assert PROC_MOUNT_ALLOWLIST == {
        "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
        "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
        "/proc/sys/kernel/ns_last_pid", "/proc/pressure"}


# ---- through the CLI, on the real kernel ------------------------------------------


@needs_root
@pytest.mark.parametrize("dest", ["/proc/sys", "/proc/self/attr/exec", "/proc/1"])
def test_cli_refuses_and_leaves_nothing(runtime, bundle, tmp_path, dest):
    canary = tmp_path / "canary"
    canary.mkdir()
    cfg = bundle.config(["true"])
    cfg["mounts"].append({"destination": dest, "type": "bind", "source": str(canary),
                          "options": ["rbind"]})
    cid = runtime.new_id("procmnt")
    proc = runtime("run", "-b", str(bundle(config=cfg)), cid)
    assert proc.returncode == 1
    assert "/proc" in one_error_line(proc.stderr)
    assert not (runtime.root / cid).exists()
    assert list(canary.iterdir()) == []


@needs_root
def test_cli_accepts_meminfo_bind(runtime, bundle, tmp_path):
    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal: 1 kB\n")
    cfg = bundle.config(["cat", "/proc/meminfo"])
    cfg["mounts"].append({"destination": "/proc/meminfo", "type": "bind", "source": str(fake),
                          "options": ["bind", "ro"]})
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("meminfo"))
    assert (proc.returncode, proc.stdout) == (0, b"MemTotal: 1 kB\n"), proc.stderr


def spec_config(tmp_path: Path, rootfs: Path, script: str) -> Path:
    """`pyrunc spec`'s config (not the test suite's), running SCRIPT on ROOTFS."""
    b = tmp_path / "spec-bundle"
    b.mkdir()
    subprocess.run([*runtime_argv(), "spec", "--bundle", str(b)], check=True, env=runtime_env())
    cfg = json.loads((b / "config.json").read_text())
    cfg["root"]["path"] = str(rootfs)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", script]
    (b / "config.json").write_text(json.dumps(cfg))
    return b


@needs_root
def test_spec_defaults_in_force(runtime, tmp_path, rootfs):
    b = tmp_path / "probe"
    b.mkdir()
    subprocess.run([*runtime_argv(), "spec", "--bundle", str(b)], check=True, env=runtime_env())
    defaults = json.loads((b / "config.json").read_text())["linux"]
    masked = [p for p in defaults["maskedPaths"] if os.path.exists(p)]
    readonly = [p for p in defaults["readonlyPaths"] if os.path.exists(p)]
    # Writes are only ever opens with O_TRUNC and no data (`: > file`), which
    # procfs ignores: even a failing test cannot change a sysctl or trigger
    # sysrq.  A read-only mount refuses the open with EROFS.
    assert masked and readonly
    script = (
        "for p in " + " ".join(masked) + "; do "
        "if [ -d $p ]; then echo \"M $p $(ls -A $p | wc -l)\"; "
        "else echo \"M $p $(head -c 64 $p 2>/dev/null | wc -c)\"; fi; done; "
        "for p in " + " ".join(readonly) + "; do "
        "t=$p; [ -d $p ] && t=$(find $p -maxdepth 3 -type f -perm -200 2>/dev/null | head -1); "
        "[ -z \"$t\" ] && t=$p/pyrunc-probe; "
        "if (: > $t) 2>/dev/null; then echo \"W $p $t\"; else echo \"R $p\"; fi; done; "
        "(: > /pyrunc-rootfs-probe) 2>/dev/null && echo ROOT-WRITABLE; true")
    bundle_dir = spec_config(tmp_path, rootfs, script)
    proc = runtime("run", "-b", str(bundle_dir), runtime.new_id("spec"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    masked_lines = [line for line in lines if line.startswith("M ")]
    assert len(masked_lines) == len(masked), lines
    for line in masked_lines:
        assert line.endswith(" 0"), f"masked path readable: {line}"
    for p in readonly:
        assert f"R {p}" in lines, f"read-only path writable: {p}: {lines}"
    assert "ROOT-WRITABLE" not in lines
