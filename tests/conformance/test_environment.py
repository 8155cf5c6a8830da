"""config.md / config-linux.md / runtime-linux.md: the container's environment, checked
from inside by the probe against the container's own config.json.

Each test names the spec sections (anchors) it covers; docs/spec-conformance.md
maps every MUST to these tests.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("probe_binary")


def assert_all_ok(result) -> None:
    assert not result.failures(), "\n".join(result.failures())
    assert result.planned == len(result.ok)


def test_default_config(probe, bundle):
    """configRoot, configMounts, configProcess, configHostname, configLinuxDefaultDevices,
    runtime-linux devSymbolicLinks, configLinuxMaskedPaths, configLinuxReadonlyPaths."""
    result = probe.check(bundle.config())
    assert_all_ok(result)
    for key in ("hostname", "root.readonly", "mounts /proc", "mounts /dev/pts",
                "default device /dev/tty", "dev symlink /dev/fd", "linux.maskedPaths /proc/kcore",
                "linux.readonlyPaths /proc/sys", "process.capabilities.bounding"):
        assert key in result.ok


def test_rich_process_and_linux_config(probe, bundle):
    """configProcess (cwd, env, user, umask, rlimits, capabilities, noNewPrivileges,
    oomScoreAdj), configLinuxDevices, configLinuxSysctl, domainname, root.readonly false."""
    cfg = bundle.config()
    cfg["root"]["readonly"] = False
    cfg["domainname"] = "conformance.example"
    proc = cfg["process"]
    proc["cwd"] = "/tmp"
    proc["env"] = ["PATH=/bin:/usr/bin", "ONE=1", "WITH_SPACE=a b", "EMPTY="]
    proc["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 1001], "umask": 0o027}
    proc["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
                       {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096}]
    caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"]
    proc["capabilities"] = {"bounding": caps + ["CAP_CHOWN"], "effective": caps,
                            "permitted": caps, "inheritable": caps, "ambient": caps}
    proc["noNewPrivileges"] = True
    proc["oomScoreAdj"] = 123
    linux = cfg["linux"]
    linux["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                         "fileMode": 0o640, "uid": 0, "gid": 0},
                        {"path": "/dev/loop-test", "type": "b", "major": 7, "minor": 200,
                         "fileMode": 0o600},
                        {"path": "/dev/fifo-test", "type": "p", "fileMode": 0o644}]
    linux["sysctl"] = {"kernel.shmmax": "123456789", "net.ipv4.ip_forward": "1",
                       "kernel.domainname": "conformance.example"}
    result = probe.check(cfg)
    assert_all_ok(result)
    for key in ("process.cwd", "process.env WITH_SPACE=a b", "process.user.umask",
                "process.rlimits RLIMIT_CORE", "process.capabilities.ambient",
                "process.oomScoreAdj", "linux.devices /dev/fifo-test",
                "linux.sysctl net.ipv4.ip_forward", "domainname"):
        assert key in result.ok


def test_mounts_in_listed_order_and_options(probe, bundle, tmp_path):
    """configMounts: listed order (a later mount over an earlier one wins), bind sources,
    read-only and nosuid/nodev/noexec options."""
    src = tmp_path / "data"
    src.mkdir()
    cfg = bundle.config()
    cfg["mounts"] += [
        {"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
        {"destination": "/mnt", "type": "bind", "source": str(src),
         "options": ["rbind", "ro", "nodev", "noexec"]},
    ]
    result = probe.check(cfg)
    assert_all_ok(result)
    assert result.ok["mounts /mnt option ro"]
