"""Host facts read from an image without following its symlinks (no root needed)."""

from __future__ import annotations

import os

from pyrunc.linux.facts import passwd_home


def test_passwd_home_reads_a_regular_file(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nu:x:7:7::/home/u:/bin/sh\n")
    assert passwd_home(str(tmp_path), 0) == "/root"
    assert passwd_home(str(tmp_path), 7) == "/home/u"
    assert passwd_home(str(tmp_path), 8) is None


def test_passwd_home_never_follows_image_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0:root:/leaked:/bin/sh\n")
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    os.symlink(str(outside), rootfs / "etc")
    assert passwd_home(str(rootfs), 0) is None
    os.unlink(rootfs / "etc")
    (rootfs / "etc").mkdir()
    os.symlink(str(outside / "passwd"), rootfs / "etc" / "passwd")
    assert passwd_home(str(rootfs), 0) is None


def test_passwd_home_does_not_block_on_a_fifo(tmp_path):
    (tmp_path / "etc").mkdir()
    os.mkfifo(tmp_path / "etc" / "passwd")
    assert passwd_home(str(tmp_path), 0) is None


def test_rootfs_through_a_symlink_is_refused_like_runc(tmp_path):
    import pytest

    from pyrunc.errors import ConfigError
    from pyrunc.linux.facts import resolve_rootfs

    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "rootfs")
    assert resolve_rootfs(str(tmp_path), "real") == str(tmp_path / "real")
    with pytest.raises(ConfigError, match="not an absolute path, or a symlink"):
        resolve_rootfs(str(tmp_path), "rootfs")
    with pytest.raises(ConfigError, match="invalid rootfs: stat"):
        resolve_rootfs(str(tmp_path), "missing")
