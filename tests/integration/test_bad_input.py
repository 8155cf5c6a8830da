"""Broken bundles: exit status 1, one line on stderr, and nothing left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import (
    cgroup_dirs_named,
    cgroups_path_for,
    mounts_under,
    needs_root,
    processes_with,
    systemd_units_named,
)

pytestmark = needs_root


def listing(path: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, name), path))
    return out


def our_inits(rootfs: Path, cid: str) -> list[int]:
    """pyrunc-init processes of this test: in its cgroup or with its rootfs mounted.

    Other tests on the machine may run their own inits at the same time.
    """
    mine = []
    for pid in processes_with("pyrunc-init"):
        try:
            text = Path(f"/proc/{pid}/cgroup").read_text()
            text += Path(f"/proc/{pid}/mountinfo").read_text()
        except OSError:
            continue
        if cid in text or f" {rootfs} " in text or f" {rootfs}/" in text:
            mine.append(pid)
    return mine


def mutate_invalid_json(cfg, b):
    return "{not json"


def mutate_schema(cfg, b):
    cfg["process"]["args"] = "sh"
    return cfg


def mutate_missing_rootfs(cfg, b):
    cfg["root"]["path"] = str(b.parent / "no-such-rootfs")
    return cfg


def mutate_bind_source_missing(cfg, b):
    cfg["mounts"].append({"destination": "/bad-mount-target", "type": "bind",
                          "source": str(b.parent / "no-such-source"), "options": ["rbind"]})
    return cfg


def mutate_tmpfs_bad_option(cfg, b):
    cfg["mounts"].append({"destination": "/tmp/bad", "type": "tmpfs", "source": "tmpfs",
                          "options": ["size=garbage"]})
    return cfg


def mutate_missing_binary(cfg, b):
    cfg["process"]["args"] = ["foo"]
    return cfg


def mutate_missing_binary_path(cfg, b):
    cfg["process"]["args"] = ["/no/such/bin"]
    return cfg


def mutate_unknown_namespace(cfg, b):
    cfg["linux"]["namespaces"].append({"type": "bogus"})
    return cfg


def mutate_hostname_without_uts(cfg, b):
    cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != "uts"]
    cfg["hostname"] = "nope"
    return cfg


def mutate_root_escapes_bundle(cfg, b):
    cfg["root"]["path"] = "../../../.."
    return cfg


def mutate_cwd_is_a_file(cfg, b):
    cfg["process"]["cwd"] = "/etc/passwd"
    return cfg


def mutate_join_missing_namespace(cfg, b):
    cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != "uts"]
    cfg["linux"]["namespaces"].append({"type": "uts", "path": "/proc/0/ns/uts"})
    cfg.pop("hostname", None)
    return cfg


CASES = {
    "invalid-json": mutate_invalid_json,
    "schema-violation": mutate_schema,
    "missing-rootfs": mutate_missing_rootfs,
    "bind-source-missing": mutate_bind_source_missing,
    "tmpfs-bad-option": mutate_tmpfs_bad_option,
    "missing-binary": mutate_missing_binary,
    "missing-binary-path": mutate_missing_binary_path,
    "unknown-namespace": mutate_unknown_namespace,
    "hostname-without-uts": mutate_hostname_without_uts,
    "root-escapes-bundle": mutate_root_escapes_bundle,
    "cwd-is-a-file": mutate_cwd_is_a_file,
    "join-missing-namespace": mutate_join_missing_namespace,
}


@pytest.mark.parametrize("command", ["create", "run"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_bundle_leaves_nothing_behind(runtime, bundle, rootfs, command, case):
    cid = runtime.new_id("bad")
    cfg = bundle.config(["sleep", "1000"])
    cfg["linux"]["cgroupsPath"] = cgroups_path_for("pyrunc-test", cid)[0]
    b = bundle(config=cfg)
    result = CASES[case](cfg, b)
    (b / "config.json").write_text(result if isinstance(result, str) else json.dumps(result))
    rootfs_before = listing(rootfs)

    proc = runtime(command, "-b", str(b), cid)

    err = proc.stderr.decode().replace('\\"', '"')  # runc's log line escapes quotes
    assert proc.returncode == 1, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert not (runtime.root / cid).exists()
    assert cgroup_dirs_named(cid) == []
    assert systemd_units_named(cid) == []
    assert mounts_under(str(rootfs)) == []
    assert mounts_under(str(b)) == []
    assert processes_with(cid) == []
    assert our_inits(rootfs, cid) == []
    assert listing(rootfs) == rootfs_before
    # The id is free again: a good bundle can use it.
    if case == "missing-binary":
        assert 'exec: "foo": executable file not found in $PATH' in err, err
        runtime.ids.add(cid)


def test_missing_binary_message_is_runcs(runtime, bundle):
    b = bundle(["foo"])
    proc = runtime("run", "-b", str(b), runtime.new_id())
    assert proc.returncode == 1
    line = proc.stderr.decode().strip().replace('\\"', '"')
    assert line.rstrip('"').endswith('exec: "foo": executable file not found in $PATH'), line


def test_id_is_reusable_after_a_failed_create(runtime, bundle):
    cid = runtime.new_id()
    assert runtime("create", "-b", str(bundle(["foo"])), cid).returncode == 1
    proc = runtime("run", "-b", str(bundle(["true"])), cid)
    assert proc.returncode == 0, proc.stderr
