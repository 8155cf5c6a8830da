"""``default_spec``: runc's example config, for runtime-spec 1.3.0."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pyrunc.spec.semantic import check_config
from pyrunc.spec.template import default_spec
from pyrunc.spec.validate import validate_config

CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def ns_types(doc: dict[str, Any]) -> list[str]:
    return [n["type"] for n in doc["linux"]["namespaces"]]


def test_privileged_defaults() -> None:
    doc = default_spec()
    assert doc["ociVersion"] == "1.3.0"
    process = doc["process"]
    assert process["terminal"] is True
    assert process["args"] == ["sh"]
    assert process["cwd"] == "/"
    assert process["user"] == {"uid": 0, "gid": 0}
    assert process["noNewPrivileges"] is True
    assert process["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    # CVE-2022-29162: no inheritable (and hence no ambient) capabilities.
    assert process["capabilities"] == {"bounding": CAPS, "effective": CAPS, "permitted": CAPS}
    assert doc["root"] == {"path": "rootfs", "readonly": True}
    assert [m["destination"] for m in doc["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
    ]
    assert ns_types(doc) == ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    assert doc["linux"]["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}
    assert "/proc/kcore" in doc["linux"]["maskedPaths"]
    assert "/proc/sys" in doc["linux"]["readonlyPaths"]
    assert "uidMappings" not in doc["linux"]


def test_cgroupns_optional() -> None:
    assert "cgroup" not in ns_types(default_spec(cgroupns=False))


def test_rootless_variant() -> None:
    doc = default_spec(rootless=True, uid=1000, gid=1001)
    assert ns_types(doc) == ["pid", "ipc", "uts", "mount", "cgroup", "user"]
    assert doc["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert doc["linux"]["gidMappings"] == [{"containerID": 0, "hostID": 1001, "size": 1}]
    assert "resources" not in doc["linux"]
    sys_mount = next(m for m in doc["mounts"] if m["destination"] == "/sys")
    assert sys_mount == {
        "destination": "/sys", "type": "none", "source": "/sys",
        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
    }
    for mount in doc["mounts"]:
        assert not any(o.startswith(("uid=", "gid=")) for o in mount.get("options", []))


def test_rootless_defaults_to_effective_ids() -> None:
    doc = default_spec(rootless=True)
    assert doc["linux"]["uidMappings"][0]["hostID"] == os.geteuid()
    assert doc["linux"]["gidMappings"][0]["hostID"] == os.getegid()


def test_fresh_copies() -> None:
    a = default_spec()
    a["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    a["mounts"][0]["destination"] = "/x"
    b = default_spec()
    assert b["process"]["capabilities"]["bounding"] == CAPS
    assert b["mounts"][0]["destination"] == "/proc"


@pytest.mark.parametrize("rootless", [False, True])
def test_valid(rootless: bool) -> None:
    doc = default_spec(rootless=rootless)
    validate_config(doc)
    check_config(doc, "/bundle")
    json.dumps(doc)


def _runc_spec(tmp_path: Path, rootless: bool) -> dict[str, Any]:
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed")
    args = [runc, "spec"] + (["--rootless"] if rootless else [])
    subprocess.run(args, cwd=tmp_path, check=True, capture_output=True)
    doc: dict[str, Any] = json.loads((tmp_path / "config.json").read_text())
    return doc


@pytest.mark.parametrize("rootless", [False, True])
def test_matches_runc_spec(tmp_path: Path, rootless: bool) -> None:
    """Same as the installed runc's output, except where newer runc changed the defaults."""
    theirs = _runc_spec(tmp_path, rootless)
    # runc 1.1 adds a cgroup namespace only where /sys/fs/cgroup is cgroup2.
    unified = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    ours = default_spec(rootless=rootless, cgroupns=unified)
    assert ours["mounts"] == theirs["mounts"]
    assert ours["root"] == theirs["root"]
    assert ours["hostname"] == theirs["hostname"]
    for key in ("terminal", "user", "args", "env", "cwd", "rlimits", "noNewPrivileges"):
        assert ours["process"][key] == theirs["process"][key], key
    for kind in ("bounding", "effective", "permitted"):
        assert ours["process"]["capabilities"][kind] == theirs["process"]["capabilities"][kind]
    # runc before 1.2 still listed ambient capabilities; newer runc and we do not.
    assert "inheritable" not in theirs["process"]["capabilities"]
    assert ns_types(ours) == ns_types(theirs)
    for key in ("uidMappings", "gidMappings", "resources", "readonlyPaths"):
        assert ours["linux"].get(key) == theirs["linux"].get(key), key
    # Newer runc masks more paths (e.g. /sys/devices/virtual/tpm); never fewer.
    assert set(theirs["linux"]["maskedPaths"]) <= set(ours["linux"]["maskedPaths"])
