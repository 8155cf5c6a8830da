"""Attack class 3: special directories of the image are symlinks out of the rootfs.

CVEs: CVE-2019-19921, CVE-2023-27561, CVE-2023-28642 (symlinked /proc made
procfs land elsewhere), youki CVE-2025-54867 (symlinked /proc or /sys
mounted on the host), runc CVE-2026-41579 and crun CVE-2026-47766 (a /dev
symlink sent device creation to the host).

Each of /proc, /sys, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys/fs/cgroup
is made, in a private rootfs copy, an absolute or a relative symlink to a
host canary directory.  pyrunc must refuse, or act inside the rootfs only:
the canary stays empty and nothing is mounted on it; the host's /proc, /sys
and /dev mount tables are unchanged.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import mounts_under, needs_root, runc_differs
from tests.security.conftest import config_for

pytestmark = needs_root

SPECIAL = ("/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys/fs/cgroup")


def host_mount_table(own: Path) -> list[str]:
    """The host's mount points where this test's container could leak one.

    That is /, the host's /proc, /sys and /dev trees (where a special dir
    resolved outside the rootfs lands) and this test's own temp dir (the
    rootfs, the bundle and the canary).  Mounts elsewhere belong to other
    work on the machine (another test session's tmpfs in its own temp dir
    comes and goes at any time) and would make the comparison flaky.
    """
    watched = ("/proc", "/sys", "/dev", str(own))
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted(mp for mp in points
                  if mp == "/" or any(mp == w or mp.startswith(w + "/") for w in watched))


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
@pytest.mark.parametrize("special", SPECIAL)
def test_special_dir_is_a_symlink(runtime, bundle, private_rootfs, tmp_path, special, relative, request):
    if special == "/dev":
        request.applymarker(runc_differs("runc 1.1.5 follows an image's /dev symlink out of the rootfs"))
    canary = tmp_path / "host-canary"
    canary.mkdir()
    link = private_rootfs / special.lstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.exists():
        shutil.rmtree(link)
    depth = special.count("/") + 10
    os.symlink(("../" * depth + str(canary).lstrip("/")) if relative else str(canary), link)
    cfg = config_for(private_rootfs, ["true"])
    cfg["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup",
                          "source": "cgroup", "options": ["ro", "nosuid", "nodev", "noexec"]})
    before = host_mount_table(tmp_path)
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id("symdir"))
    assert b"Traceback" not in proc.stderr
    if proc.returncode != 0:
        assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert list(canary.iterdir()) == [], f"{special}: host canary changed"
    assert mounts_under(str(canary)) == []
    assert host_mount_table(tmp_path) == before
