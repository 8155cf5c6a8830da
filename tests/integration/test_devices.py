"""/dev, linux.devices, masked and read-only paths, names and sysctls, from inside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import needs_root, runc_differs

pytestmark = needs_root


def run_ok(runtime, bundle, cfg, *extra: str) -> str:
    proc = runtime("run", *extra, "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


# --- default devices --------------------------------------------------------

DEFAULT_DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
                   "urandom": (1, 9), "tty": (5, 0)}


def test_default_devices_are_char_devices_with_right_numbers(runtime, bundle):
    names = " ".join(f"/dev/{n}" for n in DEFAULT_DEVICES)
    cfg = bundle.config(["stat", "-c", "%n %F %t %T %a %u %g", *names.split()])
    seen = {}
    for line in run_ok(runtime, bundle, cfg).splitlines():
        path, rest = line.split(" ", 1)
        seen[path] = rest
    for name, (major, minor) in DEFAULT_DEVICES.items():
        assert seen[f"/dev/{name}"] == f"character special file {major:x} {minor:x} 666 0 0", name


def test_default_devices_work(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | od -An -tx1;"
                         " head -c 8 /dev/urandom | wc -c; (echo y > /dev/full) 2>&1; echo rc=$?"])
    out = run_ok(runtime, bundle, cfg).split("\n")
    assert out[0].split() == ["00", "00", "00", "00"]
    assert out[1].strip() == "8"
    assert "No space left on device" in out[2]


def test_dev_links(runtime, bundle):
    cfg = bundle.config(["sh", "-c", ("for l in fd stdin stdout stderr ptmx core; do"
                                      " echo $l=$(readlink /dev/$l); done")])
    links = dict(line.split("=", 1) for line in run_ok(runtime, bundle, cfg).splitlines())
    assert links["fd"] == "/proc/self/fd"
    assert links["stdin"] == "/proc/self/fd/0"
    assert links["stdout"] == "/proc/self/fd/1"
    assert links["stderr"] == "/proc/self/fd/2"
    assert links["ptmx"] == "pts/ptmx"
    assert links["core"] == ("/proc/kcore" if Path("/proc/kcore").exists() else "")


def test_dev_pts_ptmx_and_shm(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "stat -c '%F %t %T' /dev/pts/ptmx; stat -L -c %F /dev/ptmx;"
                         " echo data > /dev/shm/seg && cat /dev/shm/seg; stat -c %a /dev/shm"])
    out = run_ok(runtime, bundle, cfg).splitlines()
    assert out[0] == "character special file 5 2"
    assert out[1] == "character special file"
    assert out[2] == "data"
    assert out[3] == "1777"


def test_dev_is_a_fresh_tmpfs_without_host_nodes(runtime, bundle):
    out = run_ok(runtime, bundle, bundle.config(["ls", "/dev"])).split()
    assert "sda" not in out and "vda" not in out and "kmsg" not in out
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"} <= set(out)


# --- linux.devices ----------------------------------------------------------

def test_config_devices_are_created(runtime, bundle):
    cfg = bundle.config(["stat", "-c", "%n %F %t %T %a %u %g", "/dev/mychar", "/dev/myblock",
                         "/dev/myfifo", "/dev/sub/dir/node"])
    cfg["linux"]["devices"] = [
        {"path": "/dev/mychar", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640,
         "uid": 1000, "gid": 1001},
        {"path": "/dev/myblock", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600,
         "uid": 0, "gid": 6},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o620},
        {"path": "/dev/sub/dir/node", "type": "c", "major": 1, "minor": 5},
    ]
    lines = run_ok(runtime, bundle, cfg).splitlines()
    assert lines[0] == "/dev/mychar character special file 1 3 640 1000 1001"
    assert lines[1] == "/dev/myblock block special file 7 0 600 0 6"
    assert lines[2] == "/dev/myfifo fifo 0 0 620 0 0"
    assert lines[3].startswith("/dev/sub/dir/node character special file 1 5 ")


@pytest.mark.parametrize(("access", "expected"), [("rwa", "r-ok w-ok"), ("ar", "r-ok w-denied")])
def test_device_access_letters_other_than_rwm_are_ignored(runtime, bundle, access, expected):
    # runc accepts e.g. "rwa" and applies "rw"; the opens inside show which bits hold.
    script = (": < /dev/fuse && echo -n r-ok || echo -n r-denied; "
              "(: > /dev/fuse) 2>/dev/null && echo ' w-ok' || echo ' w-denied'")
    cfg = bundle.config(["sh", "-c", script])
    cfg["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                                "fileMode": 0o666}]
    cfg["linux"]["resources"] = {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": access}]}
    assert run_ok(runtime, bundle, cfg) == expected + "\n"


@runc_differs("runc 1.1.5 fails its init's reopen of /dev/null (EPERM) when the config lists /dev/null itself")
def test_config_device_overrides_a_default(runtime, bundle):
    cfg = bundle.config(["stat", "-c", "%t %T %a", "/dev/null"])
    cfg["linux"]["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3,
                                "fileMode": 0o600}]
    assert run_ok(runtime, bundle, cfg).strip() == "1 3 600"


# --- masked and read-only paths --------------------------------------------

def test_masked_file_reads_empty_and_masked_dir_is_empty(runtime, bundle):
    cfg = bundle.config(["sh", "-c", ("wc -c < /proc/keys; echo; ls -A /sys/firmware | wc -l;"
                                      " touch /sys/firmware/x 2>&1; echo rc=$?;"
                                      " stat -c %t,%T /proc/keys")])
    cfg["linux"]["maskedPaths"] = ["/proc/keys", "/sys/firmware", "/proc/does-not-exist"]
    out = [line.strip() for line in run_ok(runtime, bundle, cfg).splitlines() if line.strip()]
    assert out[0] == "0"
    assert out[1] == "0"
    assert out[-2] == "rc=1"
    assert out[-1] == "1,3"  # masked with /dev/null


def test_masked_file_hides_content(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "cat /proc/version | wc -c"])
    assert int(run_ok(runtime, bundle, cfg)) > 0
    cfg["linux"]["maskedPaths"] = ["/proc/version"]
    assert int(run_ok(runtime, bundle, cfg)) == 0


def test_readonly_paths_refuse_writes(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "(echo 1 > /proc/sys/kernel/ns_last_pid) 2>&1; echo rc=$?;"
                         " (echo x > /tmp/ro/f) 2>&1; echo rc=$?"])
    cfg["mounts"].append({"destination": "/tmp/ro", "type": "tmpfs", "source": "tmpfs"})
    cfg["linux"]["readonlyPaths"] = ["/proc/sys", "/tmp/ro", "/proc/not-there"]
    out = run_ok(runtime, bundle, cfg)
    assert out.count("Read-only file system") == 2, out
    assert out.count("rc=1") == 2, out


# --- hostname, domainname, sysctl ------------------------------------------

@runc_differs("runc 1.1.5 ignores domainname (runc 1.2 sets it)")
def test_hostname_and_domainname(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "hostname; cat /proc/sys/kernel/hostname"
                         " /proc/sys/kernel/domainname"])
    cfg["hostname"] = "devices-test"
    cfg["domainname"] = "pyrunc.test"
    assert run_ok(runtime, bundle, cfg).split() == ["devices-test", "devices-test", "pyrunc.test"]


def test_empty_hostname_keeps_the_inherited_one(runtime, bundle):
    # runc sets the hostname only when it is not empty.
    cfg = bundle.config(["cat", "/proc/sys/kernel/hostname"])
    cfg["hostname"] = ""
    assert run_ok(runtime, bundle, cfg).strip() == os.uname().nodename


def test_net_sysctl_in_the_containers_netns(runtime, bundle):
    host_before = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    wanted = "0" if host_before.strip() == "1" else "1"
    cfg = bundle.config(["cat", "/proc/sys/net/ipv4/ip_forward"])
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": wanted}
    assert run_ok(runtime, bundle, cfg).strip() == wanted
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_before


@pytest.mark.parametrize("key", ["kernel.shmmax", "kernel/msgmax"])
def test_ipc_sysctl_in_the_containers_ipcns(runtime, bundle, key):
    path = "/proc/sys/" + key.replace(".", "/")
    host_before = Path(path).read_text()
    cfg = bundle.config(["cat", path])
    cfg["linux"]["sysctl"] = {key: "4096"}
    assert run_ok(runtime, bundle, cfg).strip() == "4096"
    assert Path(path).read_text() == host_before


def test_sysctl_with_slashes_and_dotted_names(runtime, bundle):
    cfg = bundle.config(["cat", "/proc/sys/net/ipv4/conf/lo/forwarding"])
    cfg["linux"]["sysctl"] = {"net/ipv4/conf/lo/forwarding": "1"}
    assert run_ok(runtime, bundle, cfg).strip() == "1"
