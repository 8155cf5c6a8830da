"""Namespaces and cgroups of a real container, observed from inside it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import (
    SYSTEMD_CGROUP,
    cgroup_dirs_named,
    cgroups_path_for,
    mounts_under,
    needs_root,
    runc_differs,
    systemd_units_named,
)

pytestmark = needs_root

NS_NAMES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
            "cgroup": "cgroup", "user": "user", "time": "time"}


def run_ok(runtime, bundle, cfg, *extra: str) -> str:
    """Run cfg in the foreground; return stdout (asserting success)."""
    proc = runtime("run", *extra, "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def with_ns(cfg: dict, ns_type: str, path: str | None = None) -> dict:
    namespaces = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != ns_type]
    entry = {"type": ns_type}
    if path:
        entry["path"] = path
    namespaces.append(entry)
    cfg["linux"]["namespaces"] = namespaces
    return cfg


def without_ns(cfg: dict, ns_type: str) -> dict:
    cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != ns_type]
    return cfg


@pytest.mark.parametrize("ns_type", ["pid", "network", "mount", "ipc", "uts", "cgroup"])
def test_new_namespace_differs_from_host(runtime, bundle, ns_type):
    name = NS_NAMES[ns_type]
    cfg = bundle.config(["readlink", f"/proc/self/ns/{name}"])
    inside = run_ok(runtime, bundle, cfg).strip()
    assert inside.startswith(f"{name}:[")
    assert inside != os.readlink(f"/proc/self/ns/{name}")


@pytest.mark.parametrize("ns_type", ["network", "ipc", "uts", "cgroup"])
def test_namespace_left_out_is_the_hosts(runtime, bundle, ns_type):
    name = NS_NAMES[ns_type]
    cfg = without_ns(bundle.config(["readlink", f"/proc/self/ns/{name}"]), ns_type)
    cfg.pop("hostname", None)
    cfg["linux"].pop("sysctl", None)
    assert run_ok(runtime, bundle, cfg).strip() == os.readlink(f"/proc/self/ns/{name}")


def test_pid_namespace(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'; ps -o pid,args"])
    lines = run_ok(runtime, bundle, cfg).splitlines()
    assert lines[0] == "1"
    # sh, ls and grep at most: none of the host's processes.
    assert int(lines[1]) <= 3
    pids = [int(line.split()[0]) for line in lines[3:]]
    assert 1 in pids and max(pids) < 10


def test_mount_namespace_keeps_mounts_off_the_host(runtime, bundle, rootfs):
    cfg = bundle.config(["sleep", "1000"])
    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(config=cfg)), cid, check=True)
    assert mounts_under(str(rootfs)) == []
    pid = runtime.state(cid)["pid"]
    inside = Path(f"/proc/{pid}/mounts").read_text().splitlines()
    mountpoints = [line.split()[1] for line in inside]
    assert {"/", "/proc", "/dev", "/sys", "/tmp"} <= set(mountpoints)


@runc_differs("runc 1.1.5 ignores domainname (runc 1.2 sets it)")
def test_uts_namespace_hostname_and_domainname(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"])
    cfg["hostname"] = "box-one"
    cfg["domainname"] = "example.test"
    assert run_ok(runtime, bundle, cfg).splitlines() == ["box-one", "example.test"]
    assert os.uname().nodename != "box-one"


def test_ipc_namespace_is_empty(runtime, bundle):
    # A segment made on the host is not visible in the container's ipc namespace.
    host = subprocess.run(["python3", "-c", (
        "import ctypes,sys; libc=ctypes.CDLL(None,use_errno=True);"
        "print(libc.shmget(0, 4096, 0o1600))")], capture_output=True, text=True, check=True)
    shmid = int(host.stdout)
    try:
        cfg = bundle.config(["sh", "-c", "cat /proc/sysvipc/shm | wc -l"])
        # Only the header line.
        assert run_ok(runtime, bundle, cfg).strip() == "1"
        assert any(line.split()[1] == str(shmid)
                   for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:])
    finally:
        subprocess.run(["ipcrm", "-m", str(shmid)], check=False)


def test_network_namespace_has_only_lo_and_it_is_up(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/flags; ip -o link"])
    out = run_ok(runtime, bundle, cfg).splitlines()
    assert out[0] == "lo"
    assert int(out[1], 16) & 0x1, "lo is not IFF_UP"
    links = [line for line in out[2:] if line.strip()]
    assert len(links) == 1 and ": lo:" in links[0] and "UP" in links[0]


def test_cgroup_namespace_shows_root_paths(runtime, bundle):
    cfg = bundle.config(["cat", "/proc/self/cgroup"])
    cfg["linux"]["cgroupsPath"] = cgroups_path_for("pyrunc-test", f"ns-{os.getpid()}")[0]
    lines = [line for line in run_ok(runtime, bundle, cfg).splitlines() if line]
    assert lines
    for line in lines:
        assert line.split(":", 2)[2] == "/", line


def test_without_cgroup_namespace_shows_host_paths(runtime, bundle):
    cid = runtime.new_id()
    cfg = without_ns(bundle.config(["cat", "/proc/self/cgroup"]), "cgroup")
    cfg["linux"]["cgroupsPath"], cgroup = cgroups_path_for("pyrunc-test", cid)
    proc = runtime("run", "-b", str(bundle(config=cfg)), cid)
    assert proc.returncode == 0, proc.stderr
    paths = {line.split(":", 2)[2] for line in proc.stdout.decode().splitlines() if line}
    assert cgroup in paths


@pytest.fixture(scope="module")
def public_rootfs(rootfs):
    """A copy of the rootfs on a path every uid can traverse (pytest's tmp is 0700)."""
    top = Path(tempfile.mkdtemp(prefix="pyrunc-userns-"))
    try:
        top.chmod(0o755)
        shutil.copytree(rootfs, top / "rootfs", symlinks=True)
        yield top / "rootfs"
    finally:
        shutil.rmtree(top)


def userns_config(bundle, args: list[str], shared: Path | None = None,
                  rootfs: Path | None = None) -> dict:
    cfg = with_ns(bundle.config(args), "user")
    if rootfs is not None:
        cfg["root"]["path"] = str(rootfs)
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    if shared is not None:
        cfg["mounts"].append({"destination": "/home", "type": "bind", "source": str(shared),
                              "options": ["rbind", "rw"]})
    return cfg


def test_user_namespace_maps_and_file_owner(runtime, bundle, public_rootfs):
    shared = Path(tempfile.mkdtemp(prefix="pyrunc-userns-shared-"))
    shared.chmod(0o777)
    script = ("cat /proc/self/uid_map /proc/self/gid_map; id -u;"
              " touch /home/made; mkdir /home/dir")
    cfg = userns_config(bundle, ["sh", "-c", script], shared, public_rootfs)
    try:
        check_owner(runtime, bundle, cfg, shared)
    finally:
        shutil.rmtree(shared)


def check_owner(runtime, bundle, cfg, shared: Path) -> None:
    out = run_ok(runtime, bundle, cfg).split()
    assert out[:6] == ["0", "100000", "65536", "0", "100000", "65536"]
    assert out[6] == "0"
    for name in ("made", "dir"):
        st = os.stat(shared / name)
        assert (st.st_uid, st.st_gid) == (100000, 100000)


def test_user_namespace_host_root_is_nobody(runtime, bundle, public_rootfs):
    cfg = userns_config(bundle, ["stat", "-c", "%u %g", "/bin/busybox"], rootfs=public_rootfs)
    # Files of host uid 0 are not mapped: they show as the overflow id.
    out = run_ok(runtime, bundle, cfg).splitlines()
    assert out[-1] == "65534 65534"


@runc_differs("runc 1.1.5 has no time namespace (runc 1.2)")
def test_time_namespace_offsets(runtime, bundle):
    cfg = with_ns(bundle.config(["sh", "-c", "cat /proc/self/timens_offsets; cut -d' ' -f1 /proc/uptime"]),
                  "time")
    cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": 7200, "nanosecs": 0},
                                   "boottime": {"secs": 86400 * 365, "nanosecs": 0}}
    out = run_ok(runtime, bundle, cfg).splitlines()
    offsets = {line.split()[0]: int(line.split()[1]) for line in out[:2]}
    assert offsets == {"monotonic": 7200, "boottime": 86400 * 365}
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert float(out[2]) - host_uptime > 86400 * 365 - 60


def _holder(argv: list[str]) -> subprocess.Popen:
    holder = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    return holder


def _stop(holder: subprocess.Popen) -> None:
    holder.kill()
    holder.wait(timeout=10)


def test_join_uts_namespace_by_path(runtime, bundle):
    holder = _holder(["unshare", "--uts", "sh", "-c",
                      "hostname held-by-test; echo ready; exec sleep 1000"])
    try:
        cfg = with_ns(bundle.config(["sh", "-c", "hostname; readlink /proc/self/ns/uts"]),
                      "uts", f"/proc/{holder.pid}/ns/uts")
        cfg.pop("hostname", None)
        out = run_ok(runtime, bundle, cfg).splitlines()
        assert out == ["held-by-test", os.readlink(f"/proc/{holder.pid}/ns/uts")]
    finally:
        _stop(holder)


def test_join_network_namespace_by_path(runtime, bundle):
    holder = _holder(["unshare", "--net", "sh", "-c",
                      "ip link add dummy7 type dummy 2>/dev/null || true; echo ready; exec sleep 1000"])
    try:
        cfg = with_ns(bundle.config(["readlink", "/proc/self/ns/net"]),
                      "network", f"/proc/{holder.pid}/ns/net")
        out = run_ok(runtime, bundle, cfg).strip()
        assert out == os.readlink(f"/proc/{holder.pid}/ns/net")
    finally:
        _stop(holder)


def test_process_in_named_cgroup_and_removed_on_delete(runtime, bundle):
    cid = runtime.new_id()
    cfg = bundle.config(["sleep", "1000"])
    cfg["linux"]["cgroupsPath"], cgroup = cgroups_path_for("pyrunc-test", cid)
    runtime("run", "-d", "-b", str(bundle(config=cfg)), cid, check=True)
    pid = runtime.state(cid)["pid"]
    own = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    assert any(line.endswith(f":{cgroup}") for line in own), own
    dirs = cgroup_dirs_named(cid)
    assert dirs
    for d in dirs:
        assert str(pid) in Path(d, "cgroup.procs").read_text().split()
    runtime("delete", "--force", cid, check=True)
    assert cgroup_dirs_named(cid) == []
    assert systemd_units_named(cid) == []


def test_default_cgroup_is_named_after_the_id(runtime, bundle):
    cid = runtime.new_id()
    cfg = bundle.config(["sleep", "1000"])
    cfg["linux"].pop("cgroupsPath", None)
    runtime("run", "-d", "-b", str(bundle(config=cfg)), cid, check=True)
    pid = runtime.state(cid)["pid"]
    dirs = cgroup_dirs_named(cid)
    assert dirs
    for d in dirs:
        assert str(pid) in Path(d, "cgroup.procs").read_text().split()
    own = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    # cgroupfs: a cgroup called <id>; the systemd driver: the unit
    # <prefix>-<id>.scope (prefix "pyrunc", runc's "runc") in system.slice.
    name = re.compile(rf"/system\.slice/[a-z]+-{cid}\.scope$" if SYSTEMD_CGROUP else rf"/{cid}$")
    assert any(name.search(line.split(":", 2)[2]) for line in own), own
    assert all(name.search(d) for d in dirs), dirs
    runtime("delete", "--force", cid, check=True)
    deadline = time.monotonic() + 5
    while cgroup_dirs_named(cid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cgroup_dirs_named(cid) == []
    assert systemd_units_named(cid) == []
