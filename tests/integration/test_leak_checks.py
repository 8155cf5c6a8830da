"""The tests' own cgroup leak checks look only at mounted cgroup hierarchies.

Podman's cgroupfs driver, on a hybrid host, makes plain directories on the
/sys/fs/cgroup tmpfs for controllers the host has not mounted (hugetlb,
net_cls, net_prio, perf_event) and writes conmon/tasks files into them.
Those are no cgroups: counting them failed the engine tests' teardown with
"cgroups left behind".  Reproduced in a private mount namespace whose
/sys/fs/cgroup is a new tmpfs holding the host's cgroup mounts plus such a
plain directory, so the host is not touched.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

from tests.conftest import REPO, needs_root
from tests.helpers import cgroupfs

pytestmark = needs_root

SCRIPT = r"""
set -e
T=$(mktemp -d)
mount -t tmpfs -o mode=755 tmpfs "$T"
for mp in $MOUNTS; do
  d="$T/${mp#/sys/fs/cgroup/}"; mkdir -p "$d"; mount --bind "$mp" "$d"
done
mkdir -p "$T/hugetlb/$NAME" "$T/perf_event/$NAME/conmon"
echo 1 > "$T/hugetlb/$NAME/tasks"
mount --move "$T" /sys/fs/cgroup
exec "$PY" -c "$CODE"
"""

CODE = r"""
import json, os, sys
sys.path.insert(0, os.environ["REPO"])
from tests.conftest import cgroup_dirs_named
from tests.helpers import cgroupfs
print(json.dumps([cgroup_dirs_named(os.environ["NAME"]), [str(h) for h in cgroupfs.hierarchies()]]))
"""


def test_leak_check_ignores_plain_directories_on_the_tmpfs() -> None:
    if cgroupfs.mode() == "v2":
        import pytest

        pytest.skip("pure cgroup v2: /sys/fs/cgroup is the cgroup2 mount itself, no tmpfs")
    import json

    name = f"pyrunc-leak-{uuid.uuid4().hex[:8]}"
    mounts = " ".join(str(h) for h in cgroupfs.hierarchies())
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", SCRIPT],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "MOUNTS": mounts, "NAME": name,
             "PY": sys.executable, "CODE": CODE, "REPO": str(REPO)},
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    found, hierarchies = json.loads(proc.stdout)
    assert found == []
    assert "/sys/fs/cgroup/hugetlb" not in hierarchies
    assert sorted(hierarchies) == sorted(mounts.split())
