"""process.apparmorProfile, process.selinuxLabel, linux.mountLabel and linux.intelRdt on
a host without AppArmor, SELinux or resctrl: pyrunc fails where runc fails (same
wording), and a failed create leaves nothing behind (runtime.md errors)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import OTHER_RUNTIME

no_lsm = pytest.mark.skipif(
    os.path.exists("/sys/kernel/security/apparmor") or os.path.exists("/sys/fs/selinux/enforce"),
    reason="this host has an LSM")


@no_lsm
@pytest.mark.parametrize("section,key,value,words", [
    ("process", "apparmorProfile", "pyrunc-test", "unable to apply apparmor profile"),
    ("process", "selinuxLabel", "system_u:system_r:container_t:s0",
     "selinux label is specified in config, but selinux is disabled or not supported"),
    ("linux", "mountLabel", "system_u:object_r:container_file_t:s0", "nvalid argument"),
    ("linux", "intelRdt", {"l3CacheSchema": "L3:0=f"},
     "intelRdt.l3CacheSchema is specified in config, but Intel RDT/CAT is not enabled"),
])
def test_unavailable_security_feature_fails_create(runtime, bundle, section, key, value, words):
    cfg = bundle.config(["true"])
    cfg[section][key] = value
    cid = runtime.new_id()
    proc = runtime("create", "-b", str(bundle(config=cfg)), cid)
    assert proc.returncode == 1
    assert words in proc.stderr.decode()
    assert runtime("state", cid).returncode != 0


@pytest.mark.skipif(os.path.exists("/sys/fs/resctrl/schemata"), reason="resctrl is mounted")
def test_intel_rdt_without_resctrl_is_an_error(runtime, bundle):
    """configLinuxIntelRdt: no resctrl mounted -> MUST error (runc 1.1.5 ignores a bare
    closID: a documented difference)."""
    cfg = bundle.config(["true"])
    cfg["linux"]["intelRdt"] = {"closID": "pyrunc-test"}
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    if OTHER_RUNTIME and proc.returncode == 0:
        pytest.xfail("runc 1.1.5 ignores intelRdt.closID without resctrl")
    assert proc.returncode != 0
