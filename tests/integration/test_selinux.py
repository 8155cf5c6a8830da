"""process.selinuxLabel, linux.mountLabel and `exec --process-label` on an SELinux host.

Runs where SELinux is enforcing and the policy has container domains:
container_t, spc_t and container_file_t of the container module, or, in the VM
lane booted with `--lsm selinux` (tests/vm/lane.py), the stand-ins of
tests/vm/selinux/pyrunc_test.cil (Debian 12's policy has no container module).
The container's root is a copy of the busybox rootfs labelled with the file
type, as podman labels an image's files.  A file labelled shadow_t stands for
what the policy keeps from containers: a process in the confined domain is
refused it, one in the privileged ("spc") domain reads it.

The container's results go to a file in its root, read from here: a confined
process may not use the test's own stdio (the kernel replaces descriptors
the new domain may not use at execve), exactly as the policy intends.

The one test that runs on a host without SELinux checks runc's error for a
label there (tests/conformance/test_lsm_rdt.py has create's).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import OTHER_RUNTIME, REPO, cgroup_dirs_named, needs_root, processes_with


def context_known(context: str) -> bool:
    """Whether the loaded policy accepts CONTEXT (selinuxfs's context check)."""
    try:
        fd = os.open("/sys/fs/selinux/context", os.O_RDWR)
    except OSError:
        return False
    try:
        os.write(fd, context.encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def pick_types() -> tuple[str, str, str]:
    """(confined domain, privileged domain, file type): the container module's
    (Fedora/RHEL: container-selinux), else the VM lane's stand-ins
    (tests/vm/selinux/pyrunc_test.cil: Debian's policy has no container module)."""
    for names in (("container_t", "spc_t", "container_file_t"),
                  ("pyrunc_container_t", "pyrunc_spc_t", "pyrunc_container_file_t")):
        if context_known(f"system_u:system_r:{names[0]}:s0") and \
                context_known(f"system_u:object_r:{names[2]}:s0"):
            return names
    return ("container_t", "spc_t", "container_file_t")


_DOMAIN, _SPC, _FILE = pick_types()
CONTAINER = f"system_u:system_r:{_DOMAIN}:s0"
SPC = f"system_u:system_r:{_SPC}:s0"
FILE_LABEL = f"system_u:object_r:{_FILE}:s0"
# What the policy keeps from containers.
SECRET_LABEL = "system_u:object_r:shadow_t:s0"
# Syntactically a context, but of no type the policy has: the kernel refuses it.
BAD = "system_u:system_r:pyrunc_no_such_t:s0"


def selinux_enforcing() -> bool:
    try:
        return Path("/sys/fs/selinux/enforce").read_text().strip() == "1"
    except OSError:
        return False



needs_selinux = [
    needs_root,
    pytest.mark.skipif(not selinux_enforcing(), reason="SELinux is not enforcing on this host "
                       "(runs in the VM lane: tests/vm/lane.py run --lsm selinux)"),
    pytest.mark.skipif(not context_known(CONTAINER) or not context_known(SPC),
                       reason="the SELinux policy has no container domains (container_t, spc_t "
                       "or the lane's tests/vm/selinux/pyrunc_test.cil)"),
]


@pytest.fixture(scope="module")
def labelled_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox root labelled container_file_t, with /secret labelled shadow_t."""
    dest = tmp_path_factory.mktemp("selinux") / "rootfs"
    subprocess.run([str(REPO / "bundles" / "make-rootfs.sh"), str(dest)], check=True,
                   stdout=subprocess.DEVNULL)
    (dest / "secret").write_text("secret\n")
    (dest / "out").mkdir()
    subprocess.run(["chcon", "-R", FILE_LABEL, str(dest)], check=True)
    subprocess.run(["chcon", SECRET_LABEL, str(dest / "secret")], check=True)
    return dest


# Print the label, then try to read /secret; the outcome is the last line (and a
# refusal is the shell's "can't open /secret: Permission denied" before it).
PROBE = ("cat /proc/self/attr/current; echo; "
         "if read s </secret; then echo read; else echo denied; fi")
REFUSED = "sh: can't open /secret: Permission denied"


def probe_cmd(out: str) -> list[str]:
    return ["sh", "-c", f"( {PROBE} ) >/out/{out} 2>&1"]


def result(rootfs: Path, out: str) -> list[str]:
    text = (rootfs / "out" / out).read_text()
    return [line.strip().rstrip("\0") for line in text.splitlines() if line.strip()]


def config(bundle, rootfs: Path, args: list[str], label: str | None,
           mount_label: str | None = None) -> dict:
    cfg = bundle.config(args)
    cfg["root"]["path"] = str(rootfs)
    cfg["root"]["readonly"] = False
    if label is not None:
        cfg["process"]["selinuxLabel"] = label
    if mount_label is not None:
        cfg["linux"]["mountLabel"] = mount_label
    return cfg


def run_probe(runtime, bundle, rootfs: Path, label: str | None) -> list[str]:
    out = uuid.uuid4().hex
    cfg = config(bundle, rootfs, probe_cmd(out), label)
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    return result(rootfs, out)


def started(runtime, bundle, rootfs: Path, label: str | None, first: list[str] | None = None,
            **kw) -> str:
    """A running container (its process sleeps); FIRST runs before the sleep."""
    script = (" ".join(first) + "; " if first else "") + "exec sleep 1000"
    cfg = config(bundle, rootfs, ["sh", "-c", script], label, **kw)
    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(config=cfg)), cid, check=True)
    return cid


def exec_probe(runtime, cid: str, rootfs: Path, *flags: str) -> list[str]:
    out = uuid.uuid4().hex
    proc = runtime("exec", *flags, cid, *probe_cmd(out))
    assert proc.returncode == 0, proc.stderr
    return result(rootfs, out)


def wait_for(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.1)
    return path.read_text()


def assert_nothing_left(runtime, cid: str) -> None:
    assert runtime("state", cid).returncode != 0
    assert not (runtime.root / cid).exists()
    assert cgroup_dirs_named(cid) == []
    assert processes_with(cid) == []


# --- a host with SELinux ------------------------------------------------------------


class TestEnforcing:
    pytestmark = needs_selinux

    def test_confined_container_shows_its_label_and_is_denied(self, runtime, bundle,
                                                              labelled_rootfs):
        out = run_probe(runtime, bundle, labelled_rootfs, CONTAINER)
        assert out == [CONTAINER, REFUSED, "denied"]

    def test_super_privileged_container_may_read_it(self, runtime, bundle, labelled_rootfs):
        out = run_probe(runtime, bundle, labelled_rootfs, SPC)
        assert out == [SPC, "read"]

    def test_label_with_categories(self, runtime, bundle, labelled_rootfs):
        """podman's labels carry a pair of MCS categories; the root's files have none
        and stay readable (s0 is dominated by s0:c1,c2)."""
        out = run_probe(runtime, bundle, labelled_rootfs, CONTAINER + ":c1,c2")
        assert out == [CONTAINER + ":c1,c2", REFUSED, "denied"]

    def test_exec_process_label_and_the_container_default(self, runtime, bundle,
                                                          labelled_rootfs):
        cid = started(runtime, bundle, labelled_rootfs, SPC)
        assert exec_probe(runtime, cid, labelled_rootfs) == [SPC, "read"]
        assert exec_probe(runtime, cid, labelled_rootfs, "--process-label", CONTAINER) == \
            [CONTAINER, REFUSED, "denied"]

    def test_exec_process_json_label(self, runtime, bundle, labelled_rootfs, tmp_path):
        cid = started(runtime, bundle, labelled_rootfs, SPC)
        out = uuid.uuid4().hex
        process = {"args": probe_cmd(out), "cwd": "/", "env": ["PATH=/bin"],
                   "user": {"uid": 0, "gid": 0}, "selinuxLabel": CONTAINER}
        path = tmp_path / "process.json"
        path.write_text(json.dumps(process))
        proc = runtime("exec", "-p", str(path), cid)
        assert proc.returncode == 0, proc.stderr
        assert result(labelled_rootfs, out) == [CONTAINER, REFUSED, "denied"]

    def test_mount_label_on_the_tmpfs_mounts(self, runtime, bundle, labelled_rootfs):
        """linux.mountLabel: context= on tmpfs (and /dev, /dev/pts), as runc adds it; the
        confined process may write there, and the mount shows the label."""
        out = uuid.uuid4().hex
        first = ["( grep -E ' /(data|dev/pts) ' /proc/self/mountinfo;",
                 "if echo x > /data/f; then echo wrote; else echo denied; fi )",
                 f">/out/{out}.tmp 2>&1; mv /out/{out}.tmp /out/{out}"]
        cfg = config(bundle, labelled_rootfs, ["true"], CONTAINER + ":c1,c2",
                     mount_label=FILE_LABEL)
        cfg["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                              "options": ["nosuid", "nodev", "size=1m"]})
        cfg["process"]["args"] = ["sh", "-c", " ".join(first) + "; exec sleep 1000"]
        cid = runtime.new_id()
        runtime("run", "-d", "-b", str(bundle(config=cfg)), cid, check=True)
        lines = wait_for(labelled_rootfs / "out" / out).splitlines()
        assert lines[-1] == "wrote", lines
        mounts = {line.split()[4]: line for line in lines[:-1]}
        for where in ("/data", "/dev/pts"):
            assert re.search(r"[ ,]context=\"?" + re.escape(FILE_LABEL) + r"\"?(,|$)",
                             mounts[where]), mounts[where]
        pid = runtime.state(cid)["pid"]
        for where in ("data", "dev"):
            xattr = os.getxattr(f"/proc/{pid}/root/{where}", "security.selinux")
            assert xattr.rstrip(b"\0").decode() == FILE_LABEL, where

    def test_mount_label_on_the_mqueue_mount(self, runtime, bundle, labelled_rootfs):
        """mqueue takes no context= option: as runc, the mounted directory is labelled
        (its security.selinux) with linux.mountLabel after the mount."""
        label = FILE_LABEL + ":c1,c2"  # categories: surely not what mqueue gets by default
        cid = started(runtime, bundle, labelled_rootfs, CONTAINER + ":c1,c2",
                      mount_label=label)
        pid = runtime.state(cid)["pid"]
        root = f"/proc/{pid}/root"
        assert any(line.split()[4] == "/dev/mqueue" and " - mqueue " in line
                   for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines())
        xattr = os.getxattr(f"{root}/dev/mqueue", "security.selinux")
        assert xattr.rstrip(b"\0").decode() == label

    def test_session_keyring_carries_the_label(self, runtime, bundle, labelled_rootfs):
        """As runc: the container's session keyring "_ses.<id>" is created with its label."""
        cid = started(runtime, bundle, labelled_rootfs, CONTAINER)
        assert key_security(f"_ses.{cid}") == CONTAINER

    @pytest.mark.parametrize("keyring", [True, False], ids=["keyring", "no-new-keyring"])
    def test_invalid_label_is_one_line_and_leaves_nothing(self, runtime, bundle,
                                                           labelled_rootfs, keyring):
        cfg = config(bundle, labelled_rootfs, ["true"], BAD)
        cid = runtime.new_id()
        extra = [] if keyring else ["--no-new-keyring"]
        proc = runtime("create", *extra, "-b", str(bundle(config=cfg)), cid)
        err = proc.stderr.decode()
        assert proc.returncode == 1, err
        assert len(err.splitlines()) == 1, err
        if not OTHER_RUNTIME:
            attr = "keycreate" if keyring else "exec"
            assert err.strip() == (f'unable to apply SELinux label "{BAD}" '
                                   f"(process.selinuxLabel): write /proc/thread-self/attr/"
                                   f"{attr}: invalid argument")
        assert_nothing_left(runtime, cid)

    def test_exec_invalid_label(self, runtime, bundle, labelled_rootfs):
        cid = started(runtime, bundle, labelled_rootfs, SPC)
        proc = runtime("exec", "--process-label", BAD, cid, "true")
        err = proc.stderr.decode()
        assert proc.returncode == 255, err
        assert len(err.splitlines()) == 1, err
        if not OTHER_RUNTIME:
            assert BAD in err and "write /proc/thread-self/attr/keycreate" in err
        assert runtime.state(cid)["status"] == "running"


def key_security(description: str) -> str:
    """The SELinux label of the keyring named DESCRIPTION (KEYCTL_GET_SECURITY)."""
    import ctypes

    found = [line.split() for line in Path("/proc/keys").read_text().splitlines()
             if f" keyring {description}:" in " ".join(line.split())]
    assert found, f"no keyring {description} in /proc/keys"
    key = int(found[0][0], 16)
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(512)
    n = libc.syscall(250, 17, key, buf, len(buf))  # SYS_keyctl, KEYCTL_GET_SECURITY (x86_64)
    assert n > 0, os.strerror(ctypes.get_errno())
    return buf.value.decode()


# --- a host without SELinux -------------------------------------------------------------


@needs_root
@pytest.mark.skipif(os.path.exists("/sys/fs/selinux/enforce"), reason="this host has SELinux")
def test_exec_label_without_selinux_is_runc_error(runtime, bundle):
    """runc 1.1.5 refuses `exec --process-label` where SELinux is off (create: conformance)."""
    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(["sleep", "1000"])), cid, check=True)
    proc = runtime("exec", "--process-label", CONTAINER, cid, "true")
    err = proc.stderr.decode()
    assert proc.returncode == 255, err
    assert len(err.splitlines()) == 1, err
    assert "selinux label is specified in config, but selinux is disabled or not supported" in err
    assert runtime.state(cid)["status"] == "running"
