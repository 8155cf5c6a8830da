"""Mount option parsing and mount steps (pure)."""

from __future__ import annotations

import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan import flags as F
from pyrunc.plan import protocol as P
from pyrunc.plan.mounts import (
    MountContext,
    clean_destination,
    finalize_readonly_steps,
    mount_steps,
    parse_options,
)


def test_flag_options_set_and_clear():
    o = parse_options(["ro", "nosuid", "nodev", "noexec", "relatime"])
    assert o.flags == F.MS_RDONLY | F.MS_NOSUID | F.MS_NODEV | F.MS_NOEXEC | F.MS_RELATIME
    assert parse_options(["ro", "rw"]).flags == 0
    assert parse_options(["nosuid", "suid"]).flags == 0
    assert parse_options(["defaults"]).flags == 0


def test_data_and_propagation_are_separated():
    o = parse_options(["nosuid", "mode=755", "size=65536k", "rslave", "private"])
    assert o.data == ("mode=755", "size=65536k")
    assert o.propagation == (F.MS_SLAVE | F.MS_REC, F.MS_PRIVATE)
    assert o.flags == F.MS_NOSUID


def test_bind_and_rbind():
    assert parse_options(["bind"]).flags == F.MS_BIND
    assert parse_options(["rbind"]).flags == F.MS_BIND | F.MS_REC
    assert parse_options(["rbind"]).is_bind


def test_relative_destinations_are_taken_from_root():
    assert clean_destination("data") == "/data"
    assert clean_destination("/a/../b/") == "/b"
    assert clean_destination("../../etc") == "/etc"


def test_tmpfs_mount_step():
    steps = mount_steps({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                         "options": ["nosuid", "mode=755"]}, MountContext(bundle="/b"))
    assert len(steps) == 1
    s = steps[0]
    assert s.op == P.OP_MOUNT
    assert s.strs == (b"tmpfs", b"/run", b"tmpfs", b"mode=755")
    assert s.ints[0] == F.MS_NOSUID
    assert s.ints[1] & P.MOUNT_F_MKDIR
    assert "MS_NOSUID" in s.what and '"/run"' in s.what


def test_readonly_bind_is_remounted():
    ctx = MountContext(bundle="/bundle", source_kinds={"/bundle/data": "file"})
    steps = mount_steps({"destination": "/data", "type": "bind", "source": "data",
                         "options": ["rbind", "ro", "rprivate"]}, ctx)
    assert [s.op for s in steps] == [P.OP_MOUNT] * 3
    bind, remount, prop = steps
    assert bind.strs[0] == b"/bundle/data"
    assert bind.ints[0] == F.MS_BIND | F.MS_REC
    assert bind.ints[1] & P.MOUNT_F_MKFILE and bind.ints[1] & P.MOUNT_F_BIND_SOURCE
    assert remount.ints[0] & F.MS_REMOUNT and remount.ints[0] & F.MS_RDONLY
    assert prop.ints[0] == F.MS_PRIVATE | F.MS_REC


def test_proc_mount_refuses_symlinked_destination():
    steps = mount_steps({"destination": "/proc", "type": "proc", "source": "proc"},
                        MountContext(bundle="/b"))
    assert steps[0].ints[1] & P.MOUNT_F_NOSYMLINK_DST


@pytest.mark.parametrize("dest", ["/proc/sys", "/proc/self/attr", "/proc/1/root"])
def test_mounts_inside_proc_are_refused(dest):
    with pytest.raises(ConfigError, match="inside /proc"):
        mount_steps({"destination": dest, "type": "bind", "source": "/tmp",
                     "options": ["bind"]}, MountContext(bundle="/b"))


def test_lxcfs_style_proc_files_are_allowed():
    steps = mount_steps({"destination": "/proc/meminfo", "type": "bind",
                         "source": "/tmp/meminfo", "options": ["bind"]},
                        MountContext(bundle="/b", source_kinds={"/tmp/meminfo": "file"}))
    assert steps[0].strs[1] == b"/proc/meminfo"


def test_bind_on_proc_needs_a_procfs_source():
    with pytest.raises(ConfigError, match="not procfs"):
        mount_steps({"destination": "/proc", "type": "bind", "source": "/tmp/fake",
                     "options": ["rbind"]}, MountContext(bundle="/b", source_kinds={"/tmp/fake": "dir"}))
    steps = mount_steps({"destination": "/proc", "type": "bind", "source": "/proc",
                         "options": ["rbind"]}, MountContext(bundle="/b", source_kinds={"/proc": "procfs"}))
    assert steps[0].strs[:2] == (b"/proc", b"/proc")


def test_read_only_tmpfs_and_dev_are_made_read_only_last():
    dev = {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nosuid"]}
    tmp = {"destination": "tmp", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}
    sysfs = {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]}
    rw = {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": []}
    ctx = MountContext(bundle="/b")
    for m in (dev, tmp):
        (step,) = mount_steps(m, ctx)
        assert not step.ints[0] & F.MS_RDONLY
    assert mount_steps(sysfs, ctx)[0].ints[0] & F.MS_RDONLY
    steps = finalize_readonly_steps([dev, sysfs, rw, tmp])
    assert [s.strs[1] for s in steps] == [b"/dev", b"/tmp"]
    for s in steps:
        assert s.ints[0] & (F.MS_REMOUNT | F.MS_BIND | F.MS_RDONLY) == \
            F.MS_REMOUNT | F.MS_BIND | F.MS_RDONLY
        assert s.ints[1] & P.MOUNT_F_NO_SOURCE
    assert steps[0].ints[0] & F.MS_NOSUID


def test_tmpfs_asks_for_the_mode_of_the_covered_directory():
    (step,) = mount_steps({"destination": "/run", "type": "tmpfs", "options": ["mode=700"]},
                          MountContext(bundle="/b"))
    assert step.ints[1] & P.MOUNT_F_DIR_MODE and step.strs[3] == b"mode=700"
    (step,) = mount_steps({"destination": "/dev/mqueue", "type": "mqueue"}, MountContext(bundle="/b"))
    assert not step.ints[1] & P.MOUNT_F_DIR_MODE


def test_bind_remount_sets_exactly_the_flags_and_may_keep_locked_ones():
    ctx = MountContext(bundle="/b")
    _, remount = mount_steps({"destination": "/d", "type": "bind", "source": "/s",
                              "options": ["bind", "rw", "suid", "nodev"]}, ctx)
    assert remount.ints[0] == F.MS_NODEV | F.MS_BIND | F.MS_REMOUNT
    assert remount.ints[1] & P.MOUNT_F_KEEP_LOCKED
    assert remount.ints[3] == F.MS_RDONLY | F.MS_NOSUID
    # Set then cleared, or cleared then set: the last word counts.
    assert parse_options(["ro", "rw", "nosuid"]).cleared == F.MS_RDONLY
    assert parse_options(["rw", "ro"]).cleared == 0
    assert len(mount_steps({"destination": "/d", "type": "bind", "source": "/s",
                            "options": ["rbind"]}, ctx)) == 1


def test_bind_source_inside_the_rootfs_is_resolved_in_the_root_when_mounted():
    ctx = MountContext(bundle="/b", rootfs="/r/rootfs", source_kinds={"/r/rootfs/a/x": "missing"})
    (step,) = mount_steps({"destination": "/b", "type": "bind", "source": "/r/rootfs/a/x",
                           "options": ["bind"]}, ctx)
    assert step.strs[0] == b"/a/x"
    bits = P.MOUNT_F_BIND_SOURCE | P.MOUNT_F_SOURCE_ROOT | P.MOUNT_F_KIND_OF_SOURCE
    assert step.ints[1] & bits == bits
    # Outside the rootfs (a sibling with the same prefix too) it is a host path.
    ctx = MountContext(bundle="/b", rootfs="/r/rootfs", source_kinds={"/r/rootfs2/x": "dir"})
    (step,) = mount_steps({"destination": "/b", "type": "bind", "source": "/r/rootfs2/x",
                           "options": ["bind"]}, ctx)
    assert step.strs[0] == b"/r/rootfs2/x" and not step.ints[1] & P.MOUNT_F_SOURCE_ROOT
