"""Attack classes 7 and 8: capabilities of exec'd processes, setuid under
noNewPrivileges, and how user ids are parsed.

CVEs: CVE-2022-29162 / crun CVE-2022-27650 / youki CVE-2025-27612 (exec
--cap filled the inheritable set), CVE-2016-3697 (a numeric user name in
the image's passwd taken for a uid), crun CVE-2026-30892 (`exec -u 1` ran
as root).  Canary: the container's own view of its ids and Cap* sets.
"""

from __future__ import annotations

import os
import stat

import pytest

from tests.conftest import needs_root, runc_differs
from tests.security.conftest import config_for

pytestmark = needs_root


@pytest.fixture
def running(runtime, bundle, private_rootfs):
    passwd = private_rootfs / "etc" / "passwd"
    # A user whose *name* is a number that is root's... and root's uid is 0.
    passwd.write_text(passwd.read_text() + "1:x:0:0:digits:/digits:/bin/sh\n"
                      "1000:x:0:0:digits:/digits:/bin/sh\n")
    cid = runtime.new_id("caps")
    runtime("run", "-d", "-b", str(bundle(config=config_for(private_rootfs, ["sleep", "120"]))),
            cid, check=True)
    return cid


def status_field(text: str, name: str) -> int:
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"{name} missing")


@pytest.mark.parametrize("cap", ["CAP_NET_RAW", "CAP_SYS_ADMIN", "net_admin"])
def test_exec_cap_never_inheritable_or_ambient(runtime, running, cap):
    proc = runtime("exec", "--cap", cap, running, "cat", "/proc/self/status", check=True)
    text = proc.stdout.decode()
    assert status_field(text, "CapInh") == 0, text
    assert status_field(text, "CapAmb") == 0, text
    assert status_field(text, "CapEff") != 0


@pytest.mark.parametrize("flag, want", [("1", "1 0"), ("1:1", "1 1"), ("0", "0 0"),
                                        ("1000", "1000 0"), ("1000:1000", "1000 1000")])
def test_exec_user_is_numeric(runtime, running, flag, want):
    proc = runtime("exec", "-u", flag, running, "sh", "-c", "echo $(id -u) $(id -g)", check=True)
    assert proc.stdout.decode().split() == want.split()


@pytest.mark.parametrize("flag", ["root", "1:root", "-1", "1:", ":1", "0x1", " 1", "1 ",
                                  pytest.param("+1", marks=runc_differs("runc 1.1.5 takes -u +1 as uid 1"))])
def test_exec_user_bad_values(runtime, running, flag):
    proc = runtime("exec", "-u", flag, running, "id", "-u")
    assert proc.returncode == 255 and proc.stdout == b"", proc
    assert len(proc.stderr.splitlines()) == 1 and b"Traceback" not in proc.stderr


@pytest.mark.parametrize("nnp, euid", [(True, "1000"), (False, "0")])
def test_no_new_privileges_stops_setuid(runtime, bundle, private_rootfs, nnp, euid):
    probe = private_rootfs / "probe"
    os.chown(probe, 0, 0)
    os.chmod(probe, 0o4755)
    assert os.stat(probe).st_mode & stat.S_ISUID
    cfg = config_for(private_rootfs, ["/probe", "ids"], noNewPrivileges=nnp,
                     user={"uid": 1000, "gid": 1000})
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("nnp"))
    assert proc.returncode == 0, proc.stderr.decode()
    fields = dict(f.split("=") for f in proc.stdout.decode().split())
    assert fields["uid"] == "1000" and fields["euid"] == euid, fields
