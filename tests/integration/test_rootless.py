"""Rootless containers: the runtime run by an ordinary user (the tests' own, see
tests/helpers/rootless.py), observed from inside the container and on the host."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import cgroup_dirs_named, cgroupfs_driver_only, needs_root, processes_with
from tests.helpers import cgroupfs
from tests.helpers.rootless import rootless_runtime_argv, runtime_name

pytestmark = [
    needs_root,
    cgroupfs_driver_only("rootless cgroupfs rules; the test user has no systemd user manager, "
                         "which the systemd driver needs (test_rootless_delegated.py starts one)"),
]

RUNC = runtime_name() != "pyrunc"


def error_lines(stderr: bytes) -> list[str]:
    text = stderr.decode(errors="replace")
    assert "Traceback" not in text, text
    return [line for line in text.splitlines() if line.strip()]


def run_out(rootless, cfg, *extra: str) -> str:
    proc = rootless.ok("run", *extra, "-b", str(rootless.bundle(cfg)), rootless.new_id())
    return proc.stdout.decode()


def nothing_left(rootless, cid: str) -> None:
    assert not (rootless.root / cid).exists()
    assert cgroup_dirs_named(cid) == []
    assert processes_with(cid) == []


def test_spec_rootless_runs_as_is(rootless):
    """`spec --rootless` (as the user) gives a config that runs unchanged."""
    work = rootless.workdir / "spec"
    work.mkdir()
    shutil.copytree(rootless.user.rootfs, work / "rootfs", symlinks=True)
    rootless.user.chown_tree(work)
    rootless.ok("spec", "--rootless", "-b", str(work))
    cfg = json.loads((work / "config.json").read_text())
    assert cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": rootless.user.uid,
                                            "size": 1}]
    # The terminal process (runc wants a controlling tty for it): under script(1).
    user = rootless.user
    runtime = shlex.join([*rootless_runtime_argv(user), "run", "-b", str(work),
                          rootless.new_id()])
    proc = subprocess.run(user.argv("script", "-qec", runtime, "/dev/null"),
                          input=b"cat /proc/self/uid_map; exit 3\n", capture_output=True,
                          timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"0 {user.uid} 1" in " ".join(proc.stdout.decode(errors="replace").split())


def test_default_root_is_private_in_xdg_runtime_dir(rootless):
    cid = rootless.new_id()
    rootless.ok("run", "-d", "-b", str(rootless.bundle(rootless.config(["sleep", "60"]))), cid)
    root = rootless.root
    assert (root / cid).is_dir()
    st = root.stat()
    assert st.st_uid == rootless.user.uid and stat.S_IMODE(st.st_mode) & 0o777 == 0o700
    for entry in (root / cid).iterdir():
        if entry.is_file() and not entry.name.endswith(".fifo"):
            assert stat.S_IMODE(entry.stat().st_mode) & 0o077 == 0, entry
    listed = json.loads(rootless.ok("list", "-f", "json").stdout)
    assert [s["id"] for s in listed] == [cid]
    assert listed[0]["owner"] == rootless.user.name


def test_single_mapping_written_directly(rootless):
    """The user's own ids, one line each; setgroups "deny" as the kernel requires."""
    out = run_out(rootless, rootless.config(
        ["sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups"]))
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert lines == ["0", "0", f"0 {rootless.user.uid} 1", f"0 {rootless.user.gid} 1", "deny"]


def test_multiple_mappings_through_newuidmap(rootless):
    """A wider map comes from /etc/subuid: a file made by container uid 1000 is owned
    by the matching subordinate id on the host."""
    user = rootless.user
    shared = rootless.workdir / "shared"
    shared.mkdir()
    user.chown_tree(shared)
    cfg = rootless.config(["sh", "-c", "id; cat /proc/self/uid_map /proc/self/setgroups; "
                                       "touch /shared/by-1000"],
                          maps=user.multi_maps(), user={"uid": 1000, "gid": 1000})
    cfg["mounts"].append({"destination": "/shared", "type": "bind", "source": str(shared),
                          "options": ["rbind", "rw"]})
    # The container's uid 1000 writes into a dir owned by its root: give it a way in.
    shared.chmod(0o777)
    out = run_out(rootless, cfg)
    assert "uid=1000 gid=1000" in out
    assert f"1 {user.subuid[0]} 65536" in " ".join(out.split())
    assert "allow" in out.split()
    st = (shared / "by-1000").stat()
    assert (st.st_uid, st.st_gid) == (user.subuid[0] + 999, user.subgid[0] + 999)


@pytest.mark.xfail(RUNC, reason="runc 1.1.5 sets no supplementary groups in any rootless "
                   "container", strict=True)
def test_multiple_mappings_allow_additional_groups(rootless):
    """With newgidmap setgroups stays allowed: the groups asked for are set (and the
    caller's own supplementary groups are dropped)."""
    cfg = rootless.config(["id"], maps=rootless.user.multi_maps(),
                          user={"uid": 1000, "gid": 1000, "additionalGids": [1001]})
    assert run_out(rootless, cfg).split() == ["uid=1000", "gid=1000", "groups=1001"]


def test_single_mapping_refuses_additional_groups(rootless):
    cfg = rootless.config(["id"], user={"uid": 0, "gid": 0, "additionalGids": [0]})
    cid = rootless.new_id()
    proc = rootless("run", "-b", str(rootless.bundle(cfg)), cid)
    assert proc.returncode == 1
    assert "cannot set any additional groups in a rootless container" in \
        error_lines(proc.stderr)[-1]
    nothing_left(rootless, cid)


def test_mapping_outside_subordinate_ranges_is_refused(rootless):
    user = rootless.user
    maps = user.multi_maps()
    outside = user.subuid[0] + user.subuid[1] + 1000
    maps["uidMappings"][1] = {"containerID": 1, "hostID": outside, "size": 10}
    cid = rootless.new_id()
    proc = rootless("run", "-b", str(rootless.bundle(rootless.config(["true"], maps=maps))), cid)
    assert proc.returncode == 1
    if not RUNC:  # runc passes newuidmap's complaint and its own lines through
        (line,) = error_lines(proc.stderr)
        assert "linux.uidMappings" in line and str(outside) in line
    nothing_left(rootless, cid)


def test_config_without_user_namespace_is_refused(rootless):
    cfg = rootless.config(["true"])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "user"]
    del cfg["linux"]["uidMappings"], cfg["linux"]["gidMappings"]
    cid = rootless.new_id()
    proc = rootless("run", "-b", str(rootless.bundle(cfg)), cid)
    assert proc.returncode == 1
    assert "rootless container requires user namespaces" in error_lines(proc.stderr)[-1]
    nothing_left(rootless, cid)


@pytest.mark.parametrize("maps", ["single", "multi"])
def test_devices_are_the_hosts_nodes_bound(rootless, maps):
    """mknod is not allowed to the user: /dev/null is the host's node, bound."""
    user = rootless.user
    cfg = rootless.config(["sh", "-c", "echo gone > /dev/null && stat -c '%t:%T' /dev/null "
                                       "&& grep ' /dev/null ' /proc/self/mountinfo | wc -l"],
                          maps=user.single_maps() if maps == "single" else user.multi_maps())
    assert run_out(rootless, cfg).split() == ["1:3", "1"]


def test_cgroup_skipped_when_not_writable(rootless):
    """--rootless auto: no cgroup the user cannot make, and nothing left of one."""
    cid = rootless.new_id()
    proc = rootless("run", "-b", str(rootless.bundle(rootless.config(["true"]))), cid)
    assert proc.returncode == 0, proc.stderr
    assert cgroup_dirs_named(cid) == []


def test_limits_without_a_cgroup_are_refused(rootless):
    cfg = rootless.config(["true"])
    cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    cid = rootless.new_id()
    proc = rootless("run", "-b", str(rootless.bundle(cfg)), cid)
    assert proc.returncode == 1
    # runc's wording: its cgroup2 manager's, or its v1 manager's (also on hybrid hosts).
    expected = ("rootless needs no limits + no cgrouppath when no permission is granted for cgroups"
                if cgroupfs.mode() == "v2" else
                "cannot set memory limit: container could not join or create cgroup")
    assert expected in error_lines(proc.stderr)[-1]
    if not RUNC:
        assert len(error_lines(proc.stderr)) == 1
    nothing_left(rootless, cid)


@pytest.mark.xfail(RUNC, reason="runc 1.1.5 has no sysfs fallback (newer runc binds /sys)",
                   strict=True)
def test_sysfs_falls_back_to_binding_the_hosts(rootless):
    """Without a network namespace of its own the user may not mount sysfs: /sys is bound."""
    cfg = rootless.config(["sh", "-c", "ls /sys/class/net; grep ' /sys ' /proc/self/mountinfo"])
    for m in cfg["mounts"]:
        if m["destination"] == "/sys":
            m.update(type="sysfs", source="sysfs", options=["nosuid", "noexec", "nodev", "ro"])
    out = run_out(rootless, cfg)
    assert "lo" in out.split()
    mount_line = [line for line in out.splitlines() if " /sys " in line][0]
    assert " ro," in mount_line or " ro " in mount_line


def test_sysfs_is_fresh_with_a_network_namespace(rootless):
    cfg = rootless.config(["sh", "-c", "ls /sys/class/net"])
    cfg["linux"]["namespaces"].append({"type": "network"})
    for m in cfg["mounts"]:
        if m["destination"] == "/sys":
            m.update(type="sysfs", source="sysfs", options=["nosuid", "noexec", "nodev", "ro"])
    assert run_out(rootless, cfg).split() == ["lo"]


@pytest.mark.parametrize("maps", ["single", "multi"])
def test_exec_kill_delete_by_the_owner(rootless, maps):
    user = rootless.user
    cid = rootless.new_id()
    cfg = rootless.config(["sleep", "60"],
                          maps=user.single_maps() if maps == "single" else user.multi_maps())
    rootless.ok("run", "-d", "-b", str(rootless.bundle(cfg)), cid)
    assert rootless.state(cid)["status"] == "running"
    assert rootless.ok("exec", cid, "id", "-u").stdout.split() == [b"0"]
    if maps == "multi":
        assert rootless.ok("exec", "--user", "1000:1000", cid, "id").stdout.split()[:2] == \
            [b"uid=1000", b"gid=1000"]
    rootless.ok("kill", cid, "KILL")
    for _ in range(200):
        if rootless.state(cid)["status"] == "stopped":
            break
        subprocess.run(["sleep", "0.05"])
    assert rootless.state(cid)["status"] == "stopped"
    rootless.ok("delete", cid)
    nothing_left(rootless, cid)


@pytest.mark.xfail(RUNC, reason="runc 1.1.5's ps needs the container's cgroup", strict=True)
def test_ps_without_a_cgroup(rootless):
    cid = rootless.new_id()
    rootless.ok("run", "-d", "-b", str(rootless.bundle(rootless.config(["sleep", "60"]))), cid)
    rootless.ok("exec", "-d", cid, "sleep", "61")
    pids = json.loads(rootless.ok("ps", "-f", "json", cid).stdout)
    assert rootless.state(cid)["pid"] in pids and len(pids) == 2
    table = rootless.ok("ps", cid).stdout.decode()
    assert "sleep 61" in table


def test_another_user_cannot_see_or_touch_the_state(rootless):
    """Another unprivileged account (nobody) can neither list nor delete the container."""
    cid = rootless.new_id()
    rootless.ok("run", "-d", "-b", str(rootless.bundle(rootless.config(["sleep", "60"]))), cid)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    state_file = rootless.root / cid / "state.json"
    for argv in (["ls", str(rootless.root)], ["cat", str(state_file)]):
        proc = subprocess.run(nobody + argv, capture_output=True, timeout=30)
        assert proc.returncode != 0 and b"ermission denied" in proc.stderr
    # Even with the directory made searchable, the state file itself is the owner's.
    assert stat.S_IMODE(state_file.stat().st_mode) & 0o077 == 0 if state_file.exists() else True
    assert rootless.state(cid)["status"] == "running"


CGROUP_ROOT = Path("/sys/fs/cgroup")
#: Pure cgroup v2: one hierarchy, mounted on /sys/fs/cgroup itself.
V2 = (CGROUP_ROOT / "cgroup.procs").exists()


def _hierarchies() -> list[Path]:
    if V2:
        return [CGROUP_ROOT]
    return sorted(p for p in CGROUP_ROOT.iterdir()
                  if p.is_dir() and not p.is_symlink() and (p / "cgroup.procs").exists())


def _caller_dir(h: Path, name: str) -> Path:
    """Where the callers sit: on cgroup v2 a leaf of their own, since a cgroup
    holding processes cannot hand controllers to its children (the container)."""
    return h / name / "caller" if V2 else h / name


@pytest.fixture
def delegated_cgroup(rootless):
    """A cgroup subtree given to the test user in every hierarchy (as a systemd
    user session delegates one); the runtime is started inside it."""
    if V2 and "pids" not in (CGROUP_ROOT / "cgroup.subtree_control").read_text().split():
        pytest.skip("the cgroup2 root does not hand the pids controller to its children")
    name = f"pyrunc-rl-{uuid.uuid4().hex[:8]}"
    made = []
    try:
        for h in _hierarchies():
            for d in dict.fromkeys([h / name, _caller_dir(h, name)]):
                d.mkdir()
                made.append(d)
                for f in ("cpuset.cpus", "cpuset.mems") if not V2 else ():
                    if (d / f).exists():  # v1 cpusets start empty
                        (d / f).write_text((d.parent / f).read_text())
                # What systemd hands over with Delegate=yes.
                os.chown(d, rootless.user.uid, rootless.user.gid)
                for f in ("cgroup.procs", "tasks", "cgroup.subtree_control", "cgroup.threads"):
                    if (d / f).exists():
                        os.chown(d / f, rootless.user.uid, rootless.user.gid)
        yield name
    finally:
        rootless.cleanup()  # the containers first: their cgroups are inside
        for d in reversed(made):
            for sub in sorted(d.glob("**/"), key=lambda p: -len(p.parts)):
                if sub != d:
                    try:
                        sub.rmdir()
                    except OSError:
                        pass
            try:
                d.rmdir()
            except OSError:
                pass


def _inside(name: str) -> list[str]:
    """A prefix that moves the command into the delegated subtree first (cgroup v2
    lets a user move a process only within a subtree it owns)."""
    procs = " ".join(str(_caller_dir(h, name) / "cgroup.procs") for h in _hierarchies())
    return ["sh", "-c", f'for f in {procs}; do echo $$ > "$f"; done; exec "$@"', "sh"]


def test_writable_cgroups_path_enforces_limits(rootless, delegated_cgroup):
    cid = rootless.new_id()
    cfg = rootless.config(["sleep", "60"])
    cfg["linux"]["cgroupsPath"] = f"/{delegated_cgroup}/{cid}"
    cfg["linux"]["resources"] = {"pids": {"limit": 24}}
    # Every call runs in the delegated subtree, as in a user session.
    rootless.prefix = _inside(delegated_cgroup)
    rootless.ok("run", "-d", "-b", str(rootless.bundle(cfg)), cid)
    pids_dir = (CGROUP_ROOT if V2 else CGROUP_ROOT / "pids") / delegated_cgroup / cid
    assert pids_dir.is_dir()
    assert (pids_dir / "pids.max").read_text().strip() == "24"
    rootless("exec", cid, "sh", "-c", "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done")
    assert int((pids_dir / "pids.events").read_text().split()[-1]) > 0  # forks refused
    assert len((pids_dir / "cgroup.procs").read_text().split()) <= 24
    # The freezer is the user's too: pause and resume work.
    rootless.ok("pause", cid)
    assert rootless.state(cid)["status"] == "paused"
    rootless.ok("resume", cid)
    assert rootless.state(cid)["status"] == "running"
    assert rootless.state(cid)["pid"] in json.loads(rootless.ok("ps", "-f", "json", cid).stdout)
    rootless.ok("delete", "--force", cid)
    assert not pids_dir.exists()
    nothing_left(rootless, cid)


def test_unwritable_cgroups_path_is_an_error(rootless):
    """An explicit cgroupsPath is not skipped: failing to make it fails the create."""
    cid = rootless.new_id()
    cfg = rootless.config(["true"])
    cfg["linux"]["cgroupsPath"] = f"/pyrunc-rl-denied/{cid}"
    proc = rootless("run", "-b", str(rootless.bundle(cfg)), cid)
    assert proc.returncode == 1
    if not RUNC:
        (line,) = error_lines(proc.stderr)
        assert "Permission denied" in line and "pyrunc-rl-denied" in line
    nothing_left(rootless, cid)
    assert cgroup_dirs_named("pyrunc-rl-denied") == []


def test_without_xdg_runtime_dir_the_system_root_is_refused(rootless):
    """As runc: no $XDG_RUNTIME_DIR means the system --root, which is not the user's."""
    cid = rootless.new_id()
    proc = rootless("run", "-b", str(rootless.bundle(rootless.config(["true"]))), cid,
                    env={"XDG_RUNTIME_DIR": ""})
    assert proc.returncode == 1
    assert f"/run/{runtime_name()}" in error_lines(proc.stderr)[-1]
    assert "ermission denied" in error_lines(proc.stderr)[-1]
