"""configLinuxNetDevices: a veth made by the test is moved (and renamed) into the
container's network namespace, keeps its addresses and is up.

Only veth pairs created here are touched; their names carry the test's pid.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import runc_differs

# Every test here fails under runc 1.1.5, which ignores netDevices (runtime-spec 1.2);
# docs/spec-conformance.md "Fields added in runtime-spec 1.2/1.3".
pytestmark = runc_differs("runc 1.1.5 ignores linux.netDevices (runtime-spec 1.2)")

@pytest.fixture
def veth():
    """A veth pair (host end with an IPv4 and an IPv6 address); removed afterwards."""
    name, peer = f"pyv{os.getpid() % 100000}a", f"pyv{os.getpid() % 100000}b"
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", peer], check=True)
    subprocess.run(["ip", "addr", "add", "10.213.7.1/24", "dev", name], check=True)
    subprocess.run(["ip", "addr", "add", "fd00:213:7::1/64", "dev", name], check=True)
    yield name
    for dev in (name, peer):
        subprocess.run(["ip", "link", "del", dev], capture_output=True)


def test_device_moved_renamed_up_with_addresses(runtime, bundle, veth):
    cfg = bundle.config(["sh", "-c", "ip -o addr show dev ctr0; ip -o link show dev ctr0"])
    cfg["linux"]["netDevices"] = {veth: {"name": "ctr0"}}
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "10.213.7.1/24" in out and "fd00:213:7::1/64" in out
    assert "UP" in out.split("link/")[0].splitlines()[-1]
    # Not moved back (the spec forbids it); the veth died with the namespace.
    assert subprocess.run(["ip", "link", "show", veth], capture_output=True).returncode != 0


def test_device_keeps_its_name_without_a_new_name(runtime, bundle, veth):
    cfg = bundle.config(["ip", "-o", "link", "show", "dev", veth])
    cfg["linux"]["netDevices"] = {veth: {}}
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    assert veth in proc.stdout.decode()


def test_name_taken_in_the_container_is_an_error(runtime, bundle, veth):
    cfg = bundle.config(["true"])
    cfg["linux"]["netDevices"] = {veth: {"name": "lo"}}
    cid = runtime.new_id()
    proc = runtime("create", "-b", str(bundle(config=cfg)), cid)
    assert proc.returncode != 0
    assert runtime("state", cid).returncode != 0


def test_missing_device_is_an_error(runtime, bundle):
    cfg = bundle.config(["true"])
    cfg["linux"]["netDevices"] = {"pyvnothere0": {}}
    cid = runtime.new_id()
    assert runtime("create", "-b", str(bundle(config=cfg)), cid).returncode != 0
    assert runtime("state", cid).returncode != 0
