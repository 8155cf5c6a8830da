"""Mount extensions observed from inside real containers: recursive attributes,
nosymfollow, tmpcopyup and idmapped mounts."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import needs_root, runc_differs
from tests.integration.test_namespaces import public_rootfs as public_rootfs  # fixture

pytestmark = needs_root


def run_ok(runtime: Any, bundle: Any, cfg: dict[str, Any]) -> str:
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()
    return proc.stdout.decode()


def per_mount_options(mountinfo: str, mountpoint: str) -> set[str]:
    """Per-mount options (mountinfo field 6) of the last mount on mountpoint."""
    found = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[4] == mountpoint:
            found = set(fields[5].split(","))
    assert found is not None, f"{mountpoint} not in mountinfo:\n{mountinfo}"
    return found


def bind(source: Path, dest: str, *options: str) -> dict[str, Any]:
    return {"destination": dest, "type": "bind", "source": str(source),
            "options": ["rbind", *options]}


WRITE_PROBE = ("for f in /mnt/x /mnt/sub/x; do if touch $f 2>/dev/null; then echo $f rw; "
               "else echo $f ro; fi; done")


def test_rro_makes_nested_submounts_read_only(runtime, bundle, dir_with_submount):
    cfg = bundle.config(["sh", "-c", WRITE_PROBE])
    cfg["mounts"].append(bind(dir_with_submount, "/mnt", "rro"))
    assert run_ok(runtime, bundle, cfg).split("\n")[:2] == ["/mnt/x ro", "/mnt/sub/x ro"]
    assert not (dir_with_submount / "x").exists() and not (dir_with_submount / "sub" / "x").exists()


def test_plain_ro_leaves_nested_submounts_writable(runtime, bundle, dir_with_submount):
    cfg = bundle.config(["sh", "-c", WRITE_PROBE + "; rm -f /mnt/sub/x"])
    cfg["mounts"].append(bind(dir_with_submount, "/mnt", "ro"))
    assert run_ok(runtime, bundle, cfg).split("\n")[:2] == ["/mnt/x ro", "/mnt/sub/x rw"]


@runc_differs("runc 1.1.5 applies rro but never clears it again (rrw)")
def test_rrw_undoes_an_earlier_rro(runtime, bundle, dir_with_submount):
    cfg = bundle.config(["sh", "-c", WRITE_PROBE + "; rm -f /mnt/x /mnt/sub/x"])
    cfg["mounts"].append(bind(dir_with_submount, "/mnt", "rro", "rrw"))
    assert run_ok(runtime, bundle, cfg).split("\n")[:2] == ["/mnt/x rw", "/mnt/sub/x rw"]


@pytest.mark.parametrize("options, expected", [
    (["rnosuid", "rnodev", "rnoexec"], {"nosuid", "nodev", "noexec"}),
    (["rnoatime", "rnodiratime"], {"noatime", "nodiratime"}),
    (["rstrictatime"], set()),
    (["rnosymfollow"], {"nosymfollow"}),
])
def test_recursive_attributes_reach_every_submount(runtime, bundle, dir_with_submount, options, expected):
    cfg = bundle.config(["cat", "/proc/self/mountinfo"])
    cfg["mounts"].append(bind(dir_with_submount, "/mnt", *options))
    info = run_ok(runtime, bundle, cfg)
    for mp in ("/mnt", "/mnt/sub"):
        opts = per_mount_options(info, mp)
        assert expected <= opts, (mp, opts)
        if options == ["rstrictatime"]:
            assert not {"relatime", "noatime"} & opts, (mp, opts)


@runc_differs("runc 1.1.5 does not clear recursive attributes (rsuid, rexec, ratime) after setting them")
def test_recursive_clear_options(runtime, bundle, dir_with_submount):
    cfg = bundle.config(["cat", "/proc/self/mountinfo"])
    cfg["mounts"].append(bind(dir_with_submount, "/mnt", "rnosuid", "rnoexec", "rnoatime",
                              "rsuid", "rexec", "ratime"))
    info = run_ok(runtime, bundle, cfg)
    for mp in ("/mnt", "/mnt/sub"):
        opts = per_mount_options(info, mp)
        assert not {"nosuid", "noexec", "noatime"} & opts, (mp, opts)
        assert "relatime" in opts


def test_nosymfollow_refuses_to_follow_symlinks(runtime, bundle, tmp_path):
    d = tmp_path / "links"
    d.mkdir()
    (d / "target").write_text("followed\n")
    (d / "link").symlink_to("target")
    cfg = bundle.config(["sh", "-c", "readlink /mnt/link; cat /mnt/link || echo refused"])
    cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(d),
                          "options": ["bind", "nosymfollow"]})
    out = run_ok(runtime, bundle, cfg)
    assert out.split("\n")[0] == "target"
    assert "refused" in out and "followed" not in out


def test_tmpcopyup_shows_the_image_files_in_the_tmpfs(runtime, bundle, rootfs):
    cfg = bundle.config(["sh", "-c", "cat /etc/hostname; ls -ln /etc/passwd; "
                                     "echo changed > /etc/hostname; cat /etc/hostname; "
                                     "grep ' /etc ' /proc/mounts"])
    cfg["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "nodev", "mode=755", "tmpcopyup"]})
    lines = run_ok(runtime, bundle, cfg).splitlines()
    assert lines[0] == "pyrunc"
    mode, _, uid, gid = lines[1].split()[:4]
    st = (rootfs / "etc" / "passwd").stat()
    assert (mode, int(uid), int(gid)) == ("-rw-r--r--", st.st_uid, st.st_gid)
    assert lines[2] == "changed"
    assert lines[3].split()[2] == "tmpfs"
    # The image itself is untouched.
    assert (rootfs / "etc" / "hostname").read_text() == "pyrunc\n"


def test_tmpcopyup_copies_trees_symlinks_and_stays_read_only_when_asked(runtime, bundle,
                                                                       rootfs, tmp_path):
    src = tmp_path / "tree"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "deep").write_text("deep\n")
    (src / "a" / "exe").write_text("#!/bin/sh\n")
    (src / "a" / "exe").chmod(0o750)
    (src / "escape").symlink_to("/etc/shadow")
    os.chown(src / "a" / "b" / "deep", 1234, 5678)
    cfg = bundle.config(["sh", "-c", "cat /data/a/b/deep; stat -c '%u:%g' /data/a/b/deep; "
                                     "stat -c '%a' /data/a/exe; readlink /data/escape; "
                                     "touch /data/new 2>/dev/null && echo rw || echo ro"])
    # The tree is bound in first, then a tmpfs with tmpcopyup covers it.
    cfg["mounts"] += [
        {"destination": "/data", "type": "bind", "source": str(src), "options": ["rbind", "ro"]},
        {"destination": "/data", "type": "tmpfs", "source": "tmpfs",
         "options": ["ro", "tmpcopyup"]},
    ]
    lines = run_ok(runtime, bundle, cfg).splitlines()
    assert lines == ["deep", "1234:5678", "750", "/etc/shadow", "ro"]


def test_tmpcopyup_with_read_only_root_like_podman(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "ls /var; touch /var/run/ok && echo ok"])
    cfg["root"]["readonly"] = True
    cfg["mounts"].append({"destination": "/var", "type": "tmpfs", "source": "tmpfs",
                          "options": ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]})
    out = run_ok(runtime, bundle, cfg).split()
    assert "run" in out and out[-1] == "ok"


@pytest.fixture
def owned() -> Iterator[Path]:
    """A host directory holding files owned by 0, 1000 and 1001, on a path
    any uid can traverse (pytest's tmp is 0700)."""
    top = Path(tempfile.mkdtemp(prefix="pyrunc-idmap-"))
    try:
        top.chmod(0o755)
        d = top / "owned"
        d.mkdir()
        for name, uid in (("root", 0), ("u1000", 1000), ("u1001", 1001)):
            (d / name).write_text(name)
            os.chown(d / name, uid, uid)
        yield d
    finally:
        shutil.rmtree(top)


def owners(listing: str) -> dict[str, tuple[int, int]]:
    """name -> (uid, gid) from `ls -ln` output."""
    out = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 9:
            out[fields[-1]] = (int(fields[2]), int(fields[3]))
    return out


@runc_differs("runc 1.1.5 has no idmapped mounts (runc 1.2) and ignores the idmap option")
def test_idmap_with_mount_mappings(runtime, bundle, owned):
    maps = [{"containerID": 1000, "hostID": 2000, "size": 10}]
    cfg = bundle.config(["sh", "-c", "ls -ln /mnt; ls -ln /plain"])
    cfg["mounts"] += [
        {"destination": "/mnt", "type": "bind", "source": str(owned),
         "options": ["bind", "idmap"], "uidMappings": maps, "gidMappings": maps},
        {"destination": "/plain", "type": "bind", "source": str(owned), "options": ["bind"]},
    ]
    idmapped, plain = run_ok(runtime, bundle, cfg).split("total", 2)[1:]
    assert owners(idmapped) == {"u1000": (2000, 2000), "u1001": (2001, 2001),
                                "root": (65534, 65534)}
    assert owners(plain) == {"u1000": (1000, 1000), "u1001": (1001, 1001), "root": (0, 0)}
    # The host's files are untouched.
    assert (owned / "u1000").stat().st_uid == 1000


@runc_differs("runc 1.1.5 has no idmapped mounts (runc 1.2) and ignores the idmap option")
def test_idmap_uses_the_container_mappings_in_a_user_namespace(runtime, bundle, owned,
                                                              public_rootfs):
    from tests.integration.test_namespaces import userns_config

    cfg = userns_config(bundle, ["sh", "-c", "ls -ln /mnt; touch /mnt/new; ls -ln /plain"],
                        rootfs=public_rootfs)
    cfg["mounts"] += [
        {"destination": "/mnt", "type": "bind", "source": str(owned), "options": ["rbind", "idmap"]},
        {"destination": "/plain", "type": "bind", "source": str(owned), "options": ["bind"]},
    ]
    idmapped, plain = run_ok(runtime, bundle, cfg).split("total", 2)[1:]
    # Host ids seen through the container's own mapping: root is root again.
    assert owners(idmapped) == {"root": (0, 0), "u1000": (1000, 1000), "u1001": (1001, 1001)}
    assert owners(plain)["root"] == (65534, 65534)
    # Written by the container's root: on the host it is owned by uid 0, not 100000.
    assert (owned / "new").stat().st_uid == 0


@runc_differs("runc 1.1.5 has no idmapped mounts (runc 1.2) and ignores the idmap option")
def test_idmap_needs_mappings_and_a_bind_mount(runtime, bundle, owned):
    cfg = bundle.config(["true"])
    cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(owned),
                          "options": ["bind", "idmap"]})
    cid = runtime.new_id()
    proc = runtime("run", "-b", str(bundle(config=cfg)), cid)
    assert proc.returncode == 1
    assert "idmap" in proc.stderr.decode() and len(proc.stderr.decode().splitlines()) == 1
    assert not (runtime.root / cid).exists()


@runc_differs("runc 1.1.5 has no idmapped mounts (runc 1.2) and ignores the idmap option")
def test_features_list_what_works(runtime):
    doc = json.loads(runtime("features", check=True).stdout)
    for opt in ("rro", "rnosuid", "rnosymfollow", "tmpcopyup", "idmap", "ridmap"):
        assert opt in doc["mountOptions"]
    assert doc["linux"]["mountExtensions"]["idmap"]["enabled"] is True
